"""Closed forms of label synthesis teaching (LAST) and of the IMT greedy score.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Eq. (1)-(3).
    Liu et al., "Iterative Machine Teaching", ICML 2017 (the greedy score).
"""

from __future__ import annotations

import torch

__all__ = [
    "greedy_score", "greedy_label_lsr", "kaczmarz_projection", "kaczmarz_expected_sq_error", "LOGISTIC_CRITICAL_MARGIN",
    "symbolic_greedy_label_lsr", "symbolic_kaczmarz_identity",
]

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


def kaczmarz_projection(e: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""(I - x x^T / ||x||^2) e, broadcasting over leading dims: the error after a greedy LAST step on LSR."""
    return e - ((e * x).sum(-1, keepdim=True) / (x * x).sum(-1, keepdim=True)) * x


def kaczmarz_expected_sq_error(sigma0: torch.Tensor, pool: torch.Tensor, steps: int) -> torch.Tensor:
    r"""Exact E||e_t||^2, t = 0..steps, for unconstrained greedy LAST on LSR with x uniform on a pool.

    With unit vectors q_i = x_i / ||x_i||, P = mean_i q_i q_i^T and Sigma_t = E[e_t e_t^T]:

    .. math:: \Sigma_{t+1} = \Sigma_t - P\Sigma_t - \Sigma_t P + \mathrm{mean}_i (q_i^T \Sigma_t q_i)\, q_i q_i^T

    Args:
        sigma0: E[e_0 e_0^T], [..., d, d] (e_0 e_0^T for a fixed start).
        pool: the pool inputs [..., n, d].
        steps: number of steps T.

    Returns:
        [..., T + 1] expected squared distances (the trace of Sigma_t).

    References: LAST Eq. (3); randomized Kaczmarz (Strohmer & Vershynin 2009).
    """
    q = pool / pool.norm(dim=-1, keepdim=True)
    P = q.transpose(-1, -2) @ q / q.shape[-2]
    sigma = sigma0
    out = [torch.diagonal(sigma, dim1=-2, dim2=-1).sum(-1)]
    for _ in range(steps):
        quad = torch.einsum("...ni,...ij,...nj->...n", q, sigma, q)
        sigma = sigma - P @ sigma - sigma @ P + torch.einsum("...n,...ni,...nj->...ij", quad, q, q) / q.shape[-2]
        out.append(torch.diagonal(sigma, dim1=-2, dim2=-1).sum(-1))
    return torch.stack(out, -1)


# -- sympy twins -----------------------------------------------------------------------


def symbolic_greedy_label_lsr():
    """Solve LAST Eq. (1) for LSR symbolically.

    In terms of m = <w, x>, m* = <w*, x>, s = <x, x> the objective is
    G(y) = eta^2 s (m - y)^2 - 2 eta (m - y)(m - m*) (Eq. 2 up to constants).

    Returns:
        (solution, printed) sympy expressions: the minimiser from dG/dy = 0 and the printed Eq. (3)
        form (1 - lambda) m + lambda m*, lambda = 1/(eta s); their difference simplifies to 0 when
        the paper's form is right. Also G''(y) = 2 eta^2 s > 0 makes it the minimum.
    """
    import sympy as sp

    y, m, m_star, s, eta = sp.symbols("y m m_star s eta", real=True)
    G = eta**2 * s * (m - y) ** 2 - 2 * eta * (m - y) * (m - m_star)
    (solution,) = sp.solve(sp.diff(G, y), y)
    lam = 1 / (eta * s)
    printed = (1 - lam) * m + lam * m_star
    return solution, printed, sp.diff(G, y, 2)


def symbolic_kaczmarz_identity():
    """e' = e - eta (<w,x> - y*) x with the greedy y* equals (I - x x^T/||x||^2) e, for d = 3, any eta.

    Returns the sympy 3-vector of differences (zero when the identity holds).
    """
    import sympy as sp

    eta = sp.symbols("eta", positive=True)
    x = sp.Matrix(sp.symbols("x1:4", real=True))
    w = sp.Matrix(sp.symbols("w1:4", real=True))
    w_star = sp.Matrix(sp.symbols("v1:4", real=True))
    s = (x.T * x)[0]
    m, m_star = (w.T * x)[0], (w_star.T * x)[0]
    lam = 1 / (eta * s)
    y_star = (1 - lam) * m + lam * m_star
    e_next = (w - eta * (m - y_star) * x) - w_star
    e = w - w_star
    projected = e - x * (x.T * e)[0] / s
    return sp.simplify(e_next - projected)
