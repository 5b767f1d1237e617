"""Closed forms of label synthesis teaching (LAST) and of the IMT greedy score.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Eq. (1)-(3).
    Liu et al., "Iterative Machine Teaching", ICML 2017 (the greedy score).
"""

from __future__ import annotations

import torch

__all__ = ["greedy_score", "greedy_label_lsr", "LOGISTIC_CRITICAL_MARGIN"]

# u0 with u0 * sigmoid(u0) = 1: the margin at which the logistic residual -y sigmoid(-y m),
# seen as a function of the label y, has its only turning point.
LOGISTIC_CRITICAL_MARGIN = 1.2784645427610738


def greedy_score(inner: torch.Tensor, sqnorm: torch.Tensor, lr: float | torch.Tensor) -> torch.Tensor:
    r"""One-step change of the squared distance to the target, per candidate example.

    .. math:: \|w - \eta g - w^*\|^2 - \|w - w^*\|^2 = \eta^2 \|g\|^2 - 2\eta \langle w - w^*, g\rangle

    Args:
        inner: <w - w*, g> for each candidate, any shape.
        sqnorm: ||g||^2, same shape.
        lr: step size eta.

    References: LAST Eq. (1); IMT (Liu et al. 2017) greedy objective.
    """
    return lr * lr * sqnorm - 2.0 * lr * inner


def greedy_label_lsr(
    w: torch.Tensor, w_star: torch.Tensor, x: torch.Tensor, lr: float | torch.Tensor
) -> torch.Tensor:
    r"""The greedy LAST label for the least-squares learner, broadcasting over leading dims.

    .. math:: y^* = (1 - \lambda) \langle w, x\rangle + \lambda \langle w^*, x\rangle,
              \quad \lambda = \frac{1}{\eta \langle x, x\rangle}

    Args:
        w, w_star, x: tensors [..., d] (broadcast against each other).
        lr: step size eta > 0.

    Returns:
        y* [...]. With this label the update is the Kaczmarz projection
        e' = (I - x x^T / ||x||^2) e, for every eta.

    References: LAST Eq. (3).
    """
    lam = 1.0 / (lr * (x * x).sum(-1))
    return (1.0 - lam) * (w * x).sum(-1) + lam * (w_star * x).sum(-1)
