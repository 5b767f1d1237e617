r"""Closed forms of data hallucination teaching (DHT): the gradient ratio of Eq. (5) and the scaling map
of Thm 1. The one-step objective of Eq. (4) is LAST's and IMT's (:func:`teachtheory.theory.last.one_step_change`,
re-exported here).

For linear learners the per-example gradient is dl/dm (m = <w, x>) times x. Scaling the input,
x~ = beta x, therefore gives grad l(x~) = g(x~) beta grad l(x) with

* LSR, l = 1/2 (<w,x> - y)^2:        g(x~) = (<w,x~> - y) / (<w,x> - y),
* LR,  l = log(1 + exp(-y <w,x>)):   g(x~) = (1 + exp(y <w,x>)) / (1 + exp(y <w,x~>)).

The DHT paper prints the reciprocals of both. The total multiplier of grad l(x) is
g_s = beta g(x~) (DHT Appendix A, Eq. 12-13); for LSR, g_s = beta (beta m - y)/(m - y), so the
scaling that realises a prescribed g_s = c solves m beta^2 - y beta - c (m - y) = 0.

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Eq. (4)-(5), Thm 1,
    Appendix A (Eq. 11-13).
"""

from __future__ import annotations

import torch

# DHT Eq. (4) is the one-step objective of LAST Eq. (1) and IMT, defined once in theory.last.
from .last import one_step_change

__all__ = [
    "lsr_grad", "logistic_grad", "one_step_change", "ratio_lsr", "ratio_logistic", "printed_ratio_lsr",
    "printed_ratio_logistic", "scaling_multiplier_lsr", "scaling_multiplier_range_lsr", "solve_scaling_lsr",
    "symbolic_ratio_lsr", "symbolic_ratio_logistic",
]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def lsr_grad(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""\nabla_w \tfrac12(\langle w,x\rangle - y)^2 = (\langle w,x\rangle - y)\,x, broadcasting over leading dims."""
    return (_dot(w, x) - y)[..., None] * x


def logistic_grad(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""\nabla_w \log(1 + e^{-y\langle w,x\rangle}) = -y\,x / (1 + e^{y\langle w,x\rangle}), broadcasting."""
    return (-y * torch.sigmoid(-y * _dot(w, x)))[..., None] * x


def ratio_lsr(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, beta) -> torch.Tensor:
    r"""Derived Eq. (5) ratio for LSR: g(\tilde x) = (\langle w,\tilde x\rangle - y)/(\langle w,x\rangle - y),
    \tilde x = \beta x."""
    m = _dot(w, x)
    return (beta * m - y) / (m - y)


def ratio_logistic(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, beta) -> torch.Tensor:
    r"""Derived Eq. (5) ratio for LR, \tilde x = \beta x:

    .. math:: g(\tilde x) = \frac{1 + e^{y\langle w,x\rangle}}{1 + e^{y\langle w,\tilde x\rangle}}
              = \frac{\sigma(-y\beta m)}{\sigma(-y m)}
    """
    m = _dot(w, x)
    return torch.sigmoid(-y * beta * m) / torch.sigmoid(-y * m)


def printed_ratio_lsr(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, beta) -> torch.Tensor:
    r"""Eq. (5) LSR ratio as printed: (\langle w,x\rangle - y)/(\langle w,\tilde x\rangle - y)."""
    m = _dot(w, x)
    return (m - y) / (beta * m - y)


def printed_ratio_logistic(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, beta) -> torch.Tensor:
    r"""Eq. (5) LR ratio as printed: (1 + e^{y\langle w,\tilde x\rangle})/(1 + e^{y\langle w,x\rangle})."""
    m = _dot(w, x)
    return torch.sigmoid(-y * m) / torch.sigmoid(-y * beta * m)


def scaling_multiplier_lsr(m: torch.Tensor, y: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    r"""g_s = \beta g(\tilde x) = \beta(\beta m - y)/(m - y): grad l(\beta x) = g_s grad l(x) for LSR (m = <w, x>)."""
    return beta * (beta * m - y) / (m - y)


def scaling_multiplier_range_lsr(m: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The range over real beta of g_s = \beta(\beta m - y)/(m - y) (LSR, m = <w, x> != y): (low, high).

    g_s is a parabola in beta with vertex beta = y/(2m) and vertex value v = -y^2/(4 m (m - y)). When
    m (m - y) > 0 it opens upwards: [v, inf); when m (m - y) < 0 downwards: (-inf, v]; when m = 0 it is
    -beta y/(0 - y) = beta, all of R. A label-synthesis multiplier (m - y')/(m - y) takes every real value, so
    a scaling map reproduces LAST's step only inside this range (e.g. m = 1, y = 2: g_s <= 1).

    References: DHT (Qiu, Liu et al., AISTATS 2023), Thm 1 and Appendix A, Eq. (13).
    """
    curvature = m * (m - y)
    vertex = -y * y / (4.0 * torch.where(curvature != 0, curvature, torch.ones_like(curvature)))
    inf = torch.full_like(vertex, torch.inf)
    low = torch.where(curvature > 0, vertex, -inf)
    high = torch.where(curvature < 0, vertex, inf)
    return low, high


def solve_scaling_lsr(m: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The scaling beta with \beta(\beta m - y)/(m - y) = target, elementwise (LSR, DHT Thm 1).

    Solves m beta^2 - y beta - target (m - y) = 0 with the numerically stable quadratic formula.
    Both roots give the same update (grad l(beta x) depends on beta only through g_s); the one of
    smaller magnitude is returned. Where no real root exists (the discriminant
    y^2 + 4 m target (m - y) is negative) the vertex beta = y/(2m), the attainable g_s closest to
    the target, is returned and ``feasible`` is False. Where m = y (zero gradient) beta = 1.

    Returns: (beta, feasible), both shaped like m.
    """
    r = m - y
    c0 = -target * r
    disc = y * y - 4.0 * m * c0
    feasible = disc >= 0
    root = torch.sqrt(disc.clamp_min(0.0))
    # q = -(b + sign(b) sqrt(disc))/2 with b = -y; roots q/m and c0/q.
    sign = torch.where(y >= 0, torch.ones_like(y), -torch.ones_like(y))
    q = 0.5 * (y + sign * root)
    tiny = torch.finfo(m.dtype).tiny
    safe_q = torch.where(q.abs() > tiny, q, torch.full_like(q, tiny))
    safe_m = torch.where(m.abs() > tiny, m, torch.full_like(m, tiny))
    r1, r2 = q / safe_m, c0 / safe_q
    beta = torch.where(r1.abs() <= r2.abs(), r1, r2)
    beta = torch.where(m.abs() <= tiny, target, beta)  # linear case: -y beta = -target y
    beta = torch.where(feasible, beta, y / (2.0 * safe_m))
    zero_grad = r == 0
    beta = torch.where(zero_grad, torch.ones_like(beta), beta)
    feasible = feasible | zero_grad
    return beta, feasible


# -- sympy twins -----------------------------------------------------------------------


def _ratio_symbols():
    import sympy as sp

    return sp.symbols("m y beta", real=True)


def _ratio_report(derived, printed, corrected) -> dict:
    import sympy as sp

    return {
        "derived": derived, "printed": printed, "corrected": corrected,
        "derived_minus_corrected": sp.simplify(derived - corrected),
        "derived_minus_printed": sp.simplify(derived - printed),
        "derived_times_printed": sp.simplify(derived * printed),
    }


def symbolic_ratio_lsr() -> dict:
    """Derive g for LSR from the gradients (sympy).

    With m = <w, x>: grad l(beta x) / (beta grad l(x)) = ((beta m - y) beta x) / (beta (m - y) x).
    Returns a dict: derived, printed, corrected (the closed form of :func:`ratio_lsr`), and the
    simplified derived - corrected (0), derived - printed (non-zero) and derived * printed (1: the
    printed form is the reciprocal).
    """
    import sympy as sp

    m, y, beta = _ratio_symbols()
    t = sp.symbols("t", real=True)  # the margin <w, x>
    dl = sp.diff((t - y) ** 2 / 2, t)  # dl/dm; grad_w l = dl/dm * x
    derived = sp.simplify(dl.subs(t, beta * m) * beta / (beta * dl.subs(t, m)))
    return _ratio_report(derived, (m - y) / (beta * m - y), (beta * m - y) / (m - y))


def symbolic_ratio_logistic() -> dict:
    """Derive g for LR by differentiating log(1 + exp(-y m)) in the margin m (sympy); see :func:`symbolic_ratio_lsr`."""
    import sympy as sp

    m, y, beta = _ratio_symbols()
    t = sp.symbols("t", real=True)
    dl = sp.diff(sp.log(1 + sp.exp(-y * t)), t)
    derived = sp.simplify(dl.subs(t, beta * m) * beta / (beta * dl.subs(t, m)))
    printed = (1 + sp.exp(y * beta * m)) / (1 + sp.exp(y * m))
    corrected = (1 + sp.exp(y * m)) / (1 + sp.exp(y * beta * m))
    return _ratio_report(derived, printed, corrected)
