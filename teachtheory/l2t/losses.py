r"""Fixed training losses of the L2T-DLN baselines (Table 1), per run: each returns [R].

Every loss has the signature ``loss(student, theta, x, y, step) -> [R]`` (mean over the batch).

References:
    Cross entropy; label smoothing (Szegedy et al. 2016); large-margin softmax (Liu, Wen, Yu & Yang,
    ICML 2016, Eq. 4-6, m = 2); smooth 0-1 loss (Nguyen & Sanner, ICML 2013: a sigmoid of the margin,
    here the multi-class margin z_y - logsumexp_{j != y} z_j).
"""

from __future__ import annotations

import math

import torch

__all__ = ["BASELINES", "cross_entropy", "label_smoothing", "large_margin_softmax", "smooth_zero_one", "get_loss",
           "per_run_cross_entropy"]


def per_run_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy per run: logits [R, B, K], y [R, B] -> [R]."""
    return -torch.log_softmax(logits, -1).gather(-1, y[..., None])[..., 0].mean(-1)


def cross_entropy(student, theta, x, y, step: int = 0) -> torch.Tensor:
    """Baseline loss: mean cross entropy per run [R] of the student's logits on (x, y)."""
    return per_run_cross_entropy(student.forward(theta, x), y)


def label_smoothing(student, theta, x, y, step: int = 0, eps: float = 0.1) -> torch.Tensor:
    """Cross entropy against (1 - eps) onehot + eps / K."""
    logp = torch.log_softmax(student.forward(theta, x), -1)
    nll = -logp.gather(-1, y[..., None])[..., 0]
    return ((1 - eps) * nll - eps * logp.mean(-1)).mean(-1)


def large_margin_softmax(student, theta, x, y, step: int = 0, m: int = 2, beta0: float = 100.0,
                         beta_min: float = 1.0, decay: float = 0.99) -> torch.Tensor:
    r"""L-Softmax with margin m: the target logit :math:`\|W_y\|\|h\|\cos\theta_y` is replaced by
    :math:`(\beta\|W_y\|\|h\|\cos\theta_y + \|W_y\|\|h\|\psi(\theta_y))/(1 + \beta)`,
    :math:`\psi(\theta) = (-1)^k\cos(m\theta) - 2k` for :math:`\theta\in[k\pi/m, (k+1)\pi/m]`, with
    :math:`\beta = \max(\beta_{\min}, \beta_0\,\text{decay}^{\text{step}})` annealed as in the original."""
    logits, h = student.forward_features(theta, x)
    W, b = theta[-2], theta[-1]  # [R, H, K], [R, K]
    Wy = torch.gather(W.transpose(1, 2), 1, y[..., None].expand(*y.shape, W.shape[1]))  # [R, B, H]
    wn = Wy.norm(dim=-1).clamp_min(1e-12)
    hn = h.norm(dim=-1).clamp_min(1e-12)
    cos = ((Wy * h).sum(-1) / (wn * hn)).clamp(-1.0, 1.0)
    angle = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    k = torch.floor(angle * m / math.pi).detach()
    cos_m = torch.cos(m * angle)
    psi = (1 - 2 * torch.remainder(k, 2)) * cos_m - 2 * k
    beta = max(beta_min, beta0 * decay**step)
    target = (beta * wn * hn * cos + wn * hn * psi) / (1 + beta) + torch.gather(b, 1, y)
    logits = logits.scatter(-1, y[..., None], target[..., None])
    return per_run_cross_entropy(logits, y)


def smooth_zero_one(student, theta, x, y, step: int = 0, scale: float = 1.0) -> torch.Tensor:
    r"""Sigmoid of the negative multi-class margin, :math:`\sigma(-s\,(z_y - \log\sum_{j\ne y} e^{z_j}))`."""
    logits = student.forward(theta, x)
    zy = logits.gather(-1, y[..., None])[..., 0]
    others = logits.scatter(-1, y[..., None], float("-inf"))
    margin = zy - torch.logsumexp(others, -1)
    return torch.sigmoid(-scale * margin).mean(-1)


BASELINES = {
    "CE": cross_entropy,
    "label smoothing": label_smoothing,
    "L-M softmax": large_margin_softmax,
    "smooth 0-1": smooth_zero_one,
}


def get_loss(name: str):
    """The baseline loss called ``name`` (a key of ``BASELINES``); ValueError for an unknown name."""
    if name not in BASELINES:
        raise ValueError(f"loss must be one of {', '.join(BASELINES)}, got {name!r}")
    return BASELINES[name]
