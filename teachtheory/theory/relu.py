r"""Closed forms for teacher-student ReLU networks with Gaussian input (Tian 2017).

Conventions (per sample; the talk's factor N is the sum over N samples): x ~ N(0, I_d),

.. math::
    J(w) = \tfrac12 E\big[(\mathrm{relu}(w^{*\top} x) - \mathrm{relu}(w^\top x))^2\big]
         = \frac{\|w\|^2}{4} + \frac{\|w^*\|^2}{4}
           - \frac{\|w\|\,\|w^*\|}{2\pi}\big(\sin\theta + (\pi - \theta)\cos\theta\big),

    E\,\nabla_w J = \tfrac12 (w - w^*) + \frac{1}{2\pi}\Big(\theta w^* - \frac{\|w^*\|}{\|w\|}\sin\theta\, w\Big),

with theta the angle between w and w*. For K nodes with top weights a (student) and a* (teacher),
f(x) = sum_j a_j relu(w_j.x):

.. math::
    E\,\frac{\partial J}{\partial w_j} = a_j\Big[\sum_k a_k h(w_j, w_k) - \sum_k a^*_k h(w_j, w^*_k)\Big],\quad
    h(w, u) = E[1_{w^\top x > 0} 1_{u^\top x > 0} x x^\top] u
            = \frac{1}{2\pi}\Big[(\pi - \theta_{wu}) u + \|u\| \sin\theta_{wu} \frac{w}{\|w\|}\Big].

Everything here is a pure function on tensors (no random draws, no simulation loops), batched over
leading dimensions, computed in the input's dtype (float64 by default for Python inputs). Numeric twin:
2-D quadrature in the plane of (w, w*) (:func:`quadrature_population_gradient`); sympy twins:
:func:`symbolic_relu_kernel`, :func:`symbolic_population_gradient`, :func:`symbolic_symmetric_fixed_point`.
The simulations built on these formulas (population-gradient descent, the Monte Carlo estimators with
standard errors) live in :mod:`teachtheory.teacher_student.population`.

References:
    Y. Tian, "An Analytical Formula of Population Gradient for two-layered ReLU network and its
    Applications in Convergence and Critical Point Analysis", ICML 2017 (the analytical gradient, the
    one-ReLU Lyapunov region and random initialisation, the symmetric multiple-ReLU dynamics).
    Y. Cho and L. Saul, "Kernel methods for deep learning", NeurIPS 2009 (arc-cosine kernel, order 1).
    Tian's teacher-student talk, slides "An Analytic Formula" and "Simplest Teacher Student Setting".
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

__all__ = [
    "INV_2PI",
    "ALIGNMENT_CONSTANT",
    "alignment_epsilon",
    "alignment_gradient_bound",
    "angle",
    "gate_correlation",
    "in_omega",
    "init_in_omega_probability",
    "init_in_omega_probability_quadrature",
    "init_radius",
    "lyapunov_inner",
    "lyapunov_plane_minimum",
    "pair_sums",
    "population_gradient",
    "population_gradient_k",
    "population_loss",
    "population_loss_k",
    "quadrature_population_gradient",
    "recursive_gradient",
    "relu_kernel",
    "symbolic_population_gradient",
    "symbolic_relu_kernel",
    "symbolic_symmetric_fixed_point",
    "symmetric_coordinates",
    "symmetric_fixed_point",
    "symmetric_start",
]

INV_2PI = 1.0 / (2.0 * math.pi)


# -- input handling ----------------------------------------------------------------------------


def _tensor(name: str, value, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a tensor or an array of numbers, got {type(value).__name__}") from exc
    if like is not None and not isinstance(value, torch.Tensor):
        t = t.to(dtype=like.dtype, device=like.device)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (a vector [..., d]), got a scalar")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _vectors(**named) -> list[torch.Tensor]:
    """Validate weight vectors [..., d]: finite, non-zero norm, the same d; cast to a common dtype."""
    items = list(named.items())
    first = _tensor(items[0][0], items[0][1])
    out = [first]
    for name, value in items[1:]:
        out.append(_tensor(name, value, like=first))
    d = out[0].shape[-1]
    for (name, _), t in zip(items, out):
        if t.shape[-1] != d:
            raise ValueError(f"{name} has last dimension {t.shape[-1]}, expected {d} (the input dimension d)")
        if d < 1:
            raise ValueError(f"{name}: the input dimension d must be at least 1")
        if (t.norm(dim=-1) == 0).any():
            raise ValueError(f"{name} must have non-zero norm (the gradient is undefined at 0)")
    dtype = torch.promote_types(out[0].dtype, out[-1].dtype)
    return [t.to(dtype) for t in out]


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def angle(w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Angle between w and u in [0, pi], broadcasting over leading dims.

    Uses Kahan's formula theta = 2 atan2(||w^ - u^||, ||w^ + u^||), accurate near 0 and pi.
    """
    a, b = _unit(w), _unit(u)
    return 2.0 * torch.atan2((a - b).norm(dim=-1), (a + b).norm(dim=-1))


# -- one node --------------------------------------------------------------------------------


def relu_kernel(u: torch.Tensor, v: torch.Tensor, constant: float = INV_2PI) -> torch.Tensor:
    r"""E[relu(u.x) relu(v.x)] for x ~ N(0, I), the order-1 arc-cosine kernel.

    .. math:: \kappa(u, v) = \frac{\|u\|\|v\|}{2\pi}\big(\sin\theta + (\pi - \theta)\cos\theta\big)

    ``constant`` is the 1/(2 pi) factor (only power checks change it).
    References: Cho & Saul 2009; Tian 2017.
    """
    theta = angle(u, v)
    return constant * u.norm(dim=-1) * v.norm(dim=-1) * (torch.sin(theta) + (math.pi - theta) * torch.cos(theta))


def gate_correlation(w: torch.Tensor, u: torch.Tensor, constant: float = INV_2PI) -> torch.Tensor:
    r"""h(w, u) = E[1(w.x > 0) 1(u.x > 0) x x^T] u, broadcasting over leading dims.

    .. math:: h(w, u) = \frac{1}{2\pi}\Big[(\pi - \theta) u + \|u\|\sin\theta\, \frac{w}{\|w\|}\Big]

    h(w, w) = w / 2. References: Tian 2017.
    """
    theta = angle(w, u)
    return constant * ((math.pi - theta)[..., None] * u
                       + (u.norm(dim=-1) * torch.sin(theta))[..., None] * _unit(w))


def population_loss(w, w_star) -> torch.Tensor:
    r"""J(w) = 1/2 E[(relu(w*.x) - relu(w.x))^2], x ~ N(0, I_d), batched over leading dims.

    .. math::

        J = \frac{\|w\|^2}{4} + \frac{\|w^*\|^2}{4} - \frac{\|w\|\|w^*\|}{2\pi}(\sin\theta + (\pi-\theta)\cos\theta)

    References:
        Tian, ICML 2017 (one ReLU node); Cho & Saul, NeurIPS 2009 (arc-cosine kernel of order 1).
    """
    w, w_star = _vectors(w=w, w_star=w_star)
    return 0.25 * (w * w).sum(-1) + 0.25 * (w_star * w_star).sum(-1) - relu_kernel(w, w_star)


def population_gradient(w, w_star, *, constant: float = INV_2PI) -> torch.Tensor:
    r"""E grad_w J for one ReLU node, x ~ N(0, I_d), batched over leading dims (broadcasting).

    .. math::

        E\nabla_w J = \tfrac12 (w - w^*) + \frac{1}{2\pi}\Big(\theta w^* - \frac{\|w^*\|}{\|w\|}\sin\theta\, w\Big)

    Args:
        w: student weights [..., d], non-zero.
        w_star: teacher weights [..., d], non-zero.
        constant: the 1/(2 pi) of the nonlinear term; only the power checks pass another value.

    Returns:
        [..., d] in the inputs' dtype and device.

    References: Tian 2017 (per-sample convention; the talk's formula carries a factor N, the sample count).
    """
    w, w_star = _vectors(w=w, w_star=w_star)
    theta = angle(w, w_star)[..., None]
    ratio = (w_star.norm(dim=-1) / w.norm(dim=-1))[..., None]
    return 0.5 * (w - w_star) + constant * (theta * w_star - ratio * torch.sin(theta) * w)


# -- K nodes ----------------------------------------------------------------------------------


def _top(name: str, a, W: torch.Tensor) -> torch.Tensor:
    if a is None:
        return torch.ones(W.shape[:-1], dtype=W.dtype, device=W.device)
    t = _tensor(name, a, like=W).to(W.dtype)
    if t.shape[-1] != W.shape[-2]:
        raise ValueError(f"{name} has {t.shape[-1]} entries per network but the weights have {W.shape[-2]} nodes")
    return t


def _k_inputs(W, a, W_star, a_star):
    W, W_star = _vectors(W=W, W_star=W_star)
    if W.ndim < 2 or W_star.ndim < 2:
        raise ValueError("W and W_star must be [..., K, d] (one row per node)")
    return W, _top("a", a, W), W_star, _top("a_star", a_star, W_star)


def population_loss_k(W, a, W_star, a_star, *, constant: float = INV_2PI) -> torch.Tensor:
    r"""J = 1/2 E[(sum_k a*_k relu(w*_k.x) - sum_j a_j relu(w_j.x))^2] for x ~ N(0, I_d).

    Args:
        W [..., K, d], a [..., K] (None: all ones), W_star [..., M, d], a_star [..., M] (None: ones).

    References:
        Tian, ICML 2017 (the K-node teacher-student loss).
    """
    W, a, W_star, a_star = _k_inputs(W, a, W_star, a_star)

    def quad(U, b, V, c):
        G = relu_kernel(U[..., :, None, :], V[..., None, :, :], constant)
        return torch.einsum("...i,...ij,...j->...", b, G, c)

    return 0.5 * (quad(W, a, W, a) - 2.0 * quad(W, a, W_star, a_star) + quad(W_star, a_star, W_star, a_star))


def population_gradient_k(W, a, W_star, a_star, *, constant: float = INV_2PI) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Population gradient of the K-node two-layer ReLU network, batched over leading dims.

    .. math::
        E\frac{\partial J}{\partial w_j} = a_j\Big[\sum_k a_k h(w_j, w_k) - \sum_k a^*_k h(w_j, w^*_k)\Big],\qquad
        E\frac{\partial J}{\partial a_j} = \sum_k a_k \kappa(w_j, w_k) - \sum_k a^*_k \kappa(w_j, w^*_k)

    Args:
        W: student first-layer weights [..., K, d] (rows non-zero).
        a: student top weights [..., K], or None for all ones (Tian 2017's setting).
        W_star: teacher weights [..., M, d]; a_star: [..., M] or None.
        constant: the 1/(2 pi) in h and kappa (power checks only).

    Returns:
        (grad_W [..., K, d], grad_a [..., K]).

    References: Tian 2017 (multiple-ReLU case).
    """
    W, a, W_star, a_star = _k_inputs(W, a, W_star, a_star)
    hs, ks = pair_sums(W, W, a, constant)
    ht, kt = pair_sums(W, W_star, a_star, constant)
    return a[..., None] * (hs - ht), ks - kt


def pair_sums(W: torch.Tensor, U: torch.Tensor, b: torch.Tensor, constant: float = INV_2PI):
    r"""(sum_k b_k h(w_j, u_k) [..., K, d], sum_k b_k kappa(w_j, u_k) [..., K]) with one angle per pair.

    The two sums every K-node formula is built from (W [..., K, d], U [..., M, d], b [..., M]); no input
    checks (callers validate once, e.g. a descent loop that calls this every step).

    References:
        Tian, ICML 2017 (the K-node population gradient, built from h(w, u)).
    """
    theta = angle(W[..., :, None, :], U[..., None, :, :])  # [..., K, M]
    u_norm = U.norm(dim=-1)  # [..., M]
    w_norm = W.norm(dim=-1)  # [..., K]
    sin, cos = torch.sin(theta), torch.cos(theta)
    lin = (math.pi - theta) * b[..., None, :]  # [..., K, M]
    h = torch.matmul(lin, U) + ((sin * (b * u_norm)[..., None, :]).sum(-1) / w_norm)[..., None] * W
    kappa = w_norm * ((sin + (math.pi - theta) * cos) * (b * u_norm)[..., None, :]).sum(-1)
    return constant * h, constant * kappa


# -- numeric twins ----------------------------------------------------------------------------


def _plane_basis(w: np.ndarray, w_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e1 = w_star / np.linalg.norm(w_star)
    r = w - (w @ e1) * e1
    if np.linalg.norm(r) <= 1e-14 * np.linalg.norm(w):  # parallel: any orthogonal direction
        r = np.zeros_like(w)
        r[int(np.argmin(np.abs(e1)))] = 1.0
        r = r - (r @ e1) * e1
    return e1, r / np.linalg.norm(r)


def quadrature_population_gradient(w, w_star, *, radial: str = "closed") -> np.ndarray:
    r"""E grad_w J by quadrature in the plane of (w, w*) (a numeric twin of :func:`population_gradient`).

    The per-sample gradient is (relu(w.x) - relu(w*.x)) 1(w.x > 0) x. Its component orthogonal to
    the plane averages to zero (odd in that component), and in plane polar coordinates
    x = rho (cos phi, sin phi) the integrand factorises:

    .. math:: E\nabla J = \frac{1}{2\pi}\int_0^\infty \rho^3 e^{-\rho^2/2}d\rho
              \int_0^{2\pi} (\mathrm{relu}(w\cdot u) - \mathrm{relu}(w^*\cdot u))\,1(w\cdot u > 0)\,u\,d\phi

    with the radial integral equal to 2 (``radial="closed"``) or computed by ``scipy.integrate.quad``
    (``radial="numeric"``). The angular integral is done by adaptive quadrature split at the kinks.

    Args:
        w, w_star: one pair of vectors [d] (array-likes); not batched.

    Returns:
        numpy float64 [d].

    References:
        Tian, ICML 2017 (the analytical gradient this integral checks).
    """
    import warnings

    from scipy.integrate import IntegrationWarning, quad

    w = np.asarray(w, dtype=np.float64)
    w_star = np.asarray(w_star, dtype=np.float64)
    if w.ndim != 1 or w_star.shape != w.shape:
        raise ValueError(f"w and w_star must be vectors of the same length, got shapes {w.shape} and {w_star.shape}")
    if not (np.isfinite(w).all() and np.isfinite(w_star).all()):
        raise ValueError("w and w_star must be finite")
    if np.linalg.norm(w) == 0 or np.linalg.norm(w_star) == 0:
        raise ValueError("w and w_star must have non-zero norm")
    if radial not in ("closed", "numeric"):
        raise ValueError(f"radial must be 'closed' or 'numeric', got {radial!r}")
    if w.shape[0] == 1:  # one dimension: E[(w x)^+ ...] with x ~ N(0,1); E[x^2 1(x>0)] = 1/2
        s, s_star = np.sign(w[0]), np.sign(w_star[0])
        return np.array([0.5 * w[0] - (0.5 * w_star[0] if s == s_star else 0.0)])
    e1, e2 = _plane_basis(w, w_star)
    p = np.array([w @ e1, w @ e2])
    q = np.array([w_star @ e1, w_star @ e2])
    if radial == "closed":
        radial_value = 2.0
    else:
        radial_value = quad(lambda r: r**3 * math.exp(-r * r / 2.0), 0.0, np.inf, epsabs=1e-14, epsrel=1e-13)[0]
    kinks = sorted({(math.atan2(v[1], v[0]) + s * math.pi / 2) % (2 * math.pi) for v in (p, q) for s in (-1, 1)})
    edges = [0.0, *kinks, 2 * math.pi]

    def integrand(phi: float, k: int) -> float:
        u = (math.cos(phi), math.sin(phi))
        a = p[0] * u[0] + p[1] * u[1]
        if a <= 0:
            return 0.0
        b = max(q[0] * u[0] + q[1] * u[1], 0.0)
        return (a - b) * u[k]

    coords = []
    with warnings.catch_warnings():
        # a piece whose integral is ~0 cannot meet a relative tolerance; the absolute one (1e-13) still holds
        warnings.simplefilter("ignore", IntegrationWarning)
        for k in (0, 1):
            total = 0.0
            for lo, hi in itertools.pairwise(edges):
                if hi > lo:
                    total += quad(integrand, lo, hi, args=(k,), epsabs=1e-13, epsrel=1e-12, limit=200)[0]
            coords.append(total * radial_value / (2 * math.pi))
    return coords[0] * e1 + coords[1] * e2


# -- Lyapunov region and initialisation --------------------------------------------------------


def lyapunov_inner(w, w_star, *, constant: float = INV_2PI) -> torch.Tensor:
    r"""(w - w*) . E grad_w J, batched. Tian 2017: positive in Omega = {||w - w*|| < ||w*||}.

    References:
        Tian, ICML 2017 (the one-ReLU Lyapunov region Omega).
    """
    w, w_star = _vectors(w=w, w_star=w_star)
    return ((w - w_star) * population_gradient(w, w_star, constant=constant)).sum(-1)


def in_omega(w, w_star) -> torch.Tensor:
    r"""Boolean [...]: ||w - w*|| < ||w*||.

    References:
        Tian, ICML 2017 (the one-ReLU region Omega).
    """
    w, w_star = _vectors(w=w, w_star=w_star)
    return (w - w_star).norm(dim=-1) < w_star.norm(dim=-1)


def lyapunov_plane_minimum(grid: int = 400, *, constant: float = INV_2PI, region: str = "omega") -> dict:
    r"""Minimum over a polar grid of the normalised Lyapunov product (w - w*).E grad J / ||w - w*||^2.

    The product depends on w only through its coordinates in the plane of (w, w*) and scales as
    ||w*||^2, so w* = e_1 and w = r (cos phi, sin phi) cover every case. ``region="omega"`` grids
    Omega (|phi| < pi/2, 0 < r < 2 cos phi); ``region="annulus"`` grids 0 < r < 3, all phi, outside
    Omega (to show where the product can be negative). The grid minimum is refined by a bounded
    scipy minimiser.

    Returns:
        dict with ``minimum``, ``argmin`` (r, phi), ``grid_minimum``, ``negative_fraction`` (share of grid
        points with a negative product) and the grid (``r``, ``phi``, ``value``) for figures.

    References:
        Tian, ICML 2017 (the one-ReLU Lyapunov region Omega).
    """
    from scipy.optimize import minimize

    if region not in ("omega", "annulus"):
        raise ValueError(f"region must be 'omega' or 'annulus', got {region!r}")
    if not isinstance(grid, int) or grid < 4:
        raise ValueError(f"grid must be an integer >= 4, got {grid!r}")
    w_star = torch.tensor([1.0, 0.0], dtype=torch.float64)

    def value(r, phi):
        w = torch.stack([r * torch.cos(phi), r * torch.sin(phi)], -1)
        e = w - w_star
        return lyapunov_inner(w, w_star, constant=constant) / (e * e).sum(-1)

    if region == "omega":
        phi = torch.linspace(-math.pi / 2, math.pi / 2, grid + 2, dtype=torch.float64)[1:-1]
        frac = torch.linspace(0, 1, grid + 2, dtype=torch.float64)[1:-1]
        P, F = torch.meshgrid(phi, frac, indexing="ij")
        R = F * 2 * torch.cos(P)
    else:
        phi = torch.linspace(-math.pi, math.pi, 2 * grid + 1, dtype=torch.float64)[:-1]
        radius = torch.linspace(0, 3, grid + 1, dtype=torch.float64)[1:]
        P, R = torch.meshgrid(phi, radius, indexing="ij")
    V = value(R, P)
    if region == "annulus":
        V = torch.where(R < 2 * torch.cos(P), torch.full_like(V, float("nan")), V)
    finite = torch.nan_to_num(V, nan=float("inf"))
    idx = int(torch.argmin(finite))
    r0, p0 = float(R.reshape(-1)[idx]), float(P.reshape(-1)[idx])

    def objective(z):
        rr, pp = z
        return float(value(torch.tensor(rr, dtype=torch.float64), torch.tensor(pp, dtype=torch.float64)))

    if region == "omega":
        cons = [{"type": "ineq", "fun": lambda z: 2 * math.cos(z[1]) - z[0] - 1e-12}]
        res = minimize(objective, [r0, p0], method="SLSQP", bounds=[(1e-9, 2.0), (-math.pi / 2, math.pi / 2)],
                       constraints=cons)
        refined = min(float(res.fun), float(finite.min())) if res.success and res.x[0] < 2 * math.cos(res.x[1]) \
            else float(finite.min())
        arg = tuple(res.x) if refined < float(finite.min()) else (r0, p0)
    else:
        refined, arg = float(finite.min()), (r0, p0)
    valid = torch.isfinite(V)
    return {"minimum": refined, "argmin": arg, "grid_minimum": float(finite.min()),
            "negative_fraction": float((V[valid] < 0).to(torch.float64).mean()), "r": R.numpy(), "phi": P.numpy(),
            "value": V.numpy()}


def init_radius(d: int, eps: float, w_star_norm: float = 1.0, constant: float = 2.0 * math.pi) -> float:
    r"""Radius eps sqrt(2 pi/(d+1)) ||w*|| of Tian 2017's uniform initialisation ball (``constant`` = 2 pi).

    References:
        Tian, ICML 2017 (random initialisation in a ball).
    """
    if not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be a positive integer, got {d!r}")
    if not (0 < eps and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    return float(eps * math.sqrt(constant / (d + 1)) * w_star_norm)


def _cap_fraction(d: int, h_over_rho: float) -> float:
    """Volume fraction of a d-ball cut off by a cap of height h (as a fraction of the radius rho)."""
    from scipy.special import betainc

    t = float(np.clip(h_over_rho, 0.0, 2.0))
    if t <= 1.0:
        return 0.5 * float(betainc((d + 1) / 2.0, 0.5, 2 * t - t * t))
    return 1.0 - 0.5 * float(betainc((d + 1) / 2.0, 0.5, 2 * (2 - t) - (2 - t) ** 2))


def init_in_omega_probability(d: int, radius: float) -> float:
    r"""Exact P(w in Omega) for w uniform in the ball B(0, radius ||w*||), Omega = B(w*, ||w*||).

    The two balls (radius rho = ``radius`` around 0 and 1 around w* = e_1) meet on the hyperplane
    x_1 = a = rho^2/2; the intersection is a cap of the small ball (height rho - a) plus a cap of the
    unit ball (height a). The first is the regularized incomplete beta function,
    cap(rho, h)/V(rho) = 1/2 I_{(2 rho h - h^2)/rho^2}((d+1)/2, 1/2); the second, relative to the small
    ball's volume, is written so that nothing overflows for large d (t = 1 - a v in the slice integral):

    .. math:: \frac{\mathrm{cap}(1, a)}{V_d \rho^d} = \frac{V_{d-1}}{V_d}\,\frac{a}{\rho}
              \int_0^1 \big(v (1 - a v/2)\big)^{(d-1)/2} dv,\quad
              \frac{V_{d-1}}{V_d} = \frac{\Gamma(d/2 + 1)}{\sqrt{\pi}\,\Gamma((d+1)/2)}

    (a smooth 1-D integral, evaluated to ~1e-13 by adaptive quadrature).

    Args:
        d: input dimension (>= 1). radius: rho = r/||w*|| > 0.

    References:
        Tian, ICML 2017 (random initialisation lands in Omega).
    """
    from scipy.integrate import quad
    from scipy.special import gammaln

    if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
        raise ValueError(f"d must be a positive integer, got {d!r}")
    rho = float(radius)
    if not (rho > 0 and math.isfinite(rho)):
        raise ValueError(f"radius must be a positive finite number, got {radius!r}")
    if rho >= 2.0:
        return float(rho ** (-d))  # the small ball contains Omega
    a = rho * rho / 2.0
    small = _cap_fraction(d, (rho - a) / rho)
    if d == 1:
        return float(small + a / (2.0 * rho))  # 1-D: caps are intervals; (-rho, rho) meets (0, 2) in (0, rho): 1/2
    if a > 1.0:  # more than half of the unit ball lies on the origin's side: use its complement
        big = (1.0 - _cap_fraction(d, 2.0 - a)) * rho ** (-d)
        return float(small + big)
    k = (d - 1) / 2.0
    ratio = math.exp(gammaln(d / 2.0 + 1.0) - gammaln((d + 1) / 2.0)) / math.sqrt(math.pi)

    def slice_(v: float) -> float:
        inner = v * (1.0 - a * v / 2.0)
        return math.exp(k * math.log(inner)) if inner > 0 else 0.0

    integral = quad(slice_, 0.0, 1.0, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
    return float(small + ratio * (a / rho) * integral)


def init_in_omega_probability_quadrature(d: int, radius: float) -> float:
    r"""The same probability by 1-D quadrature over the radius s of the initial point:

    .. math:: P = \int_0^\rho \frac{d\,s^{d-1}}{\rho^d}\, P(u_1 > s/2)\,ds,\quad
              P(u_1 > t) = \tfrac12 I_{1-t^2}\big(\tfrac{d-1}{2}, \tfrac12\big)

    (u uniform on the unit sphere; ||w - e_1|| < 1 iff u_1 > ||w||/2). A twin of
    :func:`init_in_omega_probability` that does not use the cap decomposition.

    References:
        Tian, ICML 2017 (random initialisation lands in Omega).
    """
    from scipy.integrate import quad
    from scipy.special import betainc

    if not isinstance(d, (int, np.integer)) or d < 2:
        raise ValueError(f"d must be an integer >= 2 for the quadrature twin, got {d!r}")
    rho = float(radius)
    if not (rho > 0 and math.isfinite(rho)):
        raise ValueError(f"radius must be a positive finite number, got {radius!r}")

    def tail(t):
        return 0.0 if t >= 1 else 0.5 * float(betainc((d - 1) / 2.0, 0.5, 1 - t * t))

    # s = rho t: P = int_0^1 d t^(d-1) P(u_1 > rho t/2) dt (no overflow for large d)
    upper = min(1.0, 2.0 / rho)
    value = quad(lambda t: d * t ** (d - 1) * tail(rho * t / 2), 0, upper, epsabs=1e-14, epsrel=1e-12, limit=200,
                 points=[max(0.0, 1.0 - 50.0 / d)] if d > 100 else None)[0]
    return float(value)


# -- symmetric dynamics (orthonormal teacher) --------------------------------------------------


def symmetric_fixed_point(K: int) -> float:
    r"""x = y = (sqrt(K-1) - arccos(1/sqrt K) + pi)/(pi K): the symmetric critical point of
    population-gradient descent with an orthonormal teacher w*_j = e_j and top weights a = a* = 1.

    Derivation: at w_j = x 1 (all nodes equal), h(w_j, w_k) = x 1/2 and
    sum_k h(w_j, e_k) = (pi - arccos(1/sqrt K) + sqrt(K - 1)) 1/(2 pi); setting K x/2 equal to it gives x.
    References: Tian 2017 (symmetric multiple-ReLU dynamics).
    """
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    return (math.sqrt(K - 1) - math.acos(1 / math.sqrt(K)) + math.pi) / (math.pi * K)


def symmetric_start(K: int, x: float, y: float, d: int | None = None, dtype=torch.float64) -> torch.Tensor:
    r"""W [K, d] with rows w_j = x e_j + y sum_{k != j} e_k (padded with zeros to d >= K).

    References:
        Tian, ICML 2017 (symmetric multiple-ReLU dynamics).
    """
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise ValueError(f"K must be a positive integer, got {K!r}")
    d = K if d is None else d
    if d < K:
        raise ValueError(f"d must be at least K={K}, got {d}")
    W = torch.full((K, K), float(y), dtype=dtype) + (float(x) - float(y)) * torch.eye(K, dtype=dtype)
    return torch.cat([W, torch.zeros(K, d - K, dtype=dtype)], -1)


def symmetric_coordinates(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""(x, y, off) for W [..., K, d]: x = mean diagonal, y = mean off-diagonal of the first K columns,
    off = the largest deviation of W from the symmetric form x I + y (1 1^T - I) (0 when it is exact).

    References:
        Tian, ICML 2017 (symmetric multiple-ReLU dynamics).
    """
    K = W.shape[-2]
    block = W[..., :K]
    eye = torch.eye(K, dtype=W.dtype, device=W.device)
    x = torch.diagonal(block, dim1=-2, dim2=-1).mean(-1)
    y = (block * (1 - eye)).sum((-2, -1)) / max(K * (K - 1), 1)
    sym = x[..., None, None] * eye + y[..., None, None] * (1 - eye)
    off = torch.maximum((block - sym).abs().amax((-2, -1)), W[..., K:].abs().amax((-2, -1)) if W.shape[-1] > K
                        else torch.zeros_like(x))
    return x, y, off


# -- sympy twins ------------------------------------------------------------------------------


def symbolic_relu_kernel():
    r"""Derive E[relu(u.x) relu(v.x)] for unit u, v at angle theta by integrating in the plane.

    With u = e_1, v = (cos theta, sin theta) and x = rho (cos phi, sin phi) (density
    rho e^{-rho^2/2}/(2 pi)), both gates are open for phi in (theta - pi/2, pi/2).

    Returns:
        (derived, printed): sympy expressions in theta; derived - printed simplifies to 0.

    References:
        Cho & Saul, NeurIPS 2009 (arc-cosine kernel of order 1); Tian, ICML 2017.
    """
    import sympy as sp

    theta = sp.symbols("theta", positive=True)
    rho, phi = sp.symbols("rho phi", real=True)
    radial = sp.integrate(rho**3 * sp.exp(-rho**2 / 2), (rho, 0, sp.oo))
    angular = sp.integrate(sp.cos(phi) * sp.cos(phi - theta), (phi, theta - sp.pi / 2, sp.pi / 2))
    derived = sp.simplify(radial * angular / (2 * sp.pi))
    printed = (sp.sin(theta) + (sp.pi - theta) * sp.cos(theta)) / (2 * sp.pi)
    return derived, printed


def symbolic_population_gradient():
    r"""The gradient of the arc-cosine form of J, derived symbolically, against Tian's formula.

    J depends on w only through n = ||w|| and m = w.w* (s = ||w*||), so grad_w J = (dJ/dn / n) w + (dJ/dm) w*.
    With theta = arccos(m/(n s)) and J = n^2/4 + s^2/4 - n s (sin theta + (pi - theta) cos theta)/(2 pi),
    the printed formula has coefficients 1/2 - s sin(theta)/(2 pi n) on w and -1/2 + theta/(2 pi) on w*.

    Returns:
        (difference on w, difference on w*, J): the first two simplify to 0 when the formula is right.

    References:
        Tian, ICML 2017 (the analytical population gradient).
    """
    import sympy as sp

    n, s = sp.symbols("n s", positive=True)
    c = sp.symbols("c", real=True)  # cos theta, |c| < 1
    m = sp.symbols("m", real=True)
    theta = sp.acos(m / (n * s))
    J = n**2 / 4 + s**2 / 4 - n * s * (sp.sin(theta) + (sp.pi - theta) * sp.cos(theta)) / (2 * sp.pi)
    coeff_w = sp.diff(J, n) / n
    coeff_star = sp.diff(J, m)
    printed_w = sp.Rational(1, 2) - s * sp.sin(theta) / (2 * sp.pi * n)
    printed_star = -sp.Rational(1, 2) + theta / (2 * sp.pi)
    subs = {m: c * n * s}
    diff_w = sp.simplify((coeff_w - printed_w).subs(subs))
    diff_star = sp.simplify((coeff_star - printed_star).subs(subs))
    return diff_w, diff_star, J


def symbolic_symmetric_fixed_point():
    r"""Solve the symmetric fixed-point equation K x/2 = (pi - theta + sqrt(K) sin theta)/(2 pi),
    cos theta = 1/sqrt(K) (from sum_k h(x 1, e_k)), for x; compare with the printed closed form.

    Returns:
        (solution, printed, difference simplified).

    References:
        Tian, ICML 2017 (the fixed point of the symmetric multiple-ReLU dynamics).
    """
    import sympy as sp

    K = sp.symbols("K", positive=True)
    x = sp.symbols("x", real=True)
    theta = sp.acos(1 / sp.sqrt(K))
    equation = sp.Eq(K * x / 2, (sp.pi - theta + sp.sqrt(K) * sp.sin(theta)) / (2 * sp.pi))
    (solution,) = sp.solve(equation, x)
    printed = (sp.sqrt(K - 1) - sp.acos(1 / sp.sqrt(K)) + sp.pi) / (sp.pi * K)
    return solution, printed, sp.simplify(solution - printed)


# -- Lemma 1 of Tian 2020: the recursive gradient rule ----------------------------------------------


def _layers(name: str, layers) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Validate [(W_l [R, in, out], b_l [R, out])], at least two layers (one hidden layer and the output)."""
    if not isinstance(layers, (list, tuple)) or len(layers) < 2:
        raise ValueError(f"{name} must be a list of at least two (W, b) layers (hidden layers and a linear output)")
    out = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise ValueError(f"{name}[{i}] must be a (W, b) pair")
        W, b = layer
        if not isinstance(W, torch.Tensor) or not isinstance(b, torch.Tensor) or W.ndim != 3 or b.ndim != 2:
            raise ValueError(f"{name}[{i}] must be (W [R, in, out], b [R, out]) tensors")
        if b.shape != (W.shape[0], W.shape[2]) or (out and W.shape[1] != out[-1][0].shape[2]):
            raise ValueError(f"{name}[{i}] has shapes {tuple(W.shape)}, {tuple(b.shape)} that do not chain")
        out.append((W, b))
    return out


def _augment(f: torch.Tensor) -> torch.Tensor:
    """[f, 1]: the bias enters as the weight of a constant node (Tian 2020's convention)."""
    return torch.cat([f, torch.ones_like(f[..., :1])], -1)


def recursive_gradient(teacher, student, X: torch.Tensor, *, scale_A: float = 1.0, scale_B: float = 1.0) -> dict:
    r"""Lemma 1 of Tian 2020: the back-propagated gradient of a ReLU student trained on a ReLU teacher,
    :math:`g_l(x) = D_l(x)\,[A_l(x)\tilde f^*_l(x) - B_l(x)\tilde f_l(x)]`, per layer and per sample.

    Networks: hidden layers :math:`f_l = \mathrm{relu}(W_l^\top f_{l-1} + b_l)`, a linear output
    :math:`f_L = W_L^\top f_{L-1} + b_L`, per-sample loss :math:`\tfrac12\|f^*_L - f_L\|^2`;
    :math:`g_l = -\partial \text{loss}/\partial(\text{pre-activation of layer } l)`, so the weight update is
    :math:`\dot W_l = E_x[f_{l-1} g_l^\top]`. With :math:`\tilde f = [f; 1]` (biases as a constant node), gating
    :math:`D_l = \mathrm{diag}(1[\text{pre}_l > 0])` and :math:`P_l = [D_l \tilde W_l^\top;\ e^\top]`
    (:math:`\tilde f_l = P_l \tilde f_{l-1}`; e picks the constant), the recursion is
    :math:`A_{L-1} = W_L \tilde W^{*\top}_L`, :math:`B_{L-1} = W_L \tilde W_L^\top`,
    :math:`A_{l-1} = W_l D_l A_l P^*_l`, :math:`B_{l-1} = W_l D_l B_l P_l` (:math:`W_l` without its bias row).
    A and B depend on x only through the gates D, D*: they are piecewise constant.

    Args:
        teacher, student: lists of (W [R, in, out], b [R, out]); the same input and output sizes.
        X: inputs [R, n, d]. scale_A, scale_B: multiply A_l and B_l (1: the lemma; a claim's mutations).

    Returns:
        dict of lists over the hidden layers l = 1..L-1 (index l - 1): ``A`` [R, n, n_l, m_l + 1], ``B``
        [R, n, n_l, n_l + 1], ``D`` [R, n, n_l] (0/1), ``D_star`` [R, n, m_l], ``g`` [R, n, n_l] (the lemma's
        gradient), ``f`` [R, n, n_l + 1] and ``f_star`` [R, n, m_l + 1] (augmented activations); and
        ``g_out`` [R, n, c] = f*_L - f_L.

    References:
        Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension",
        ICML 2020, Lemma 1 (talk slide "Lemma1: Recursive Gradient Rule").
    """
    teacher, student = _layers("teacher", teacher), _layers("student", student)
    if len(teacher) != len(student):
        raise ValueError(f"teacher and student must have the same depth, got {len(teacher)} and {len(student)}")
    if not isinstance(X, torch.Tensor) or X.ndim != 3 or X.shape[-1] != student[0][0].shape[1]:
        raise ValueError(f"X must be [R, n, d] with d = {student[0][0].shape[1]}, got "
                         f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")
    if teacher[0][0].shape[1] != X.shape[-1] or teacher[-1][0].shape[2] != student[-1][0].shape[2]:
        raise ValueError("teacher and student must share the input and the output size")

    def run(layers):
        fs, gates = [X], []
        for W, b in layers[:-1]:
            pre = fs[-1] @ W + b[:, None]
            gates.append((pre > 0).to(X.dtype))
            fs.append(torch.relu(pre))
        W, b = layers[-1]
        return fs, gates, fs[-1] @ W + b[:, None]

    fs, gates, out = run(student)
    fs_star, gates_star, out_star = run(teacher)

    def tilde(W, b):  # [R, in + 1, out]: the weights of the augmented input
        return torch.cat([W, b[:, None, :]], 1)

    def lift(W, b, gate):  # P [R, n, out + 1, in + 1]: f~_l = P f~_{l-1}
        top = gate[..., :, None] * tilde(W, b).transpose(1, 2)[:, None]
        const = torch.zeros_like(top[..., :1, :])
        const[..., 0, -1] = 1.0
        return torch.cat([top, const], -2)

    L = len(student)
    W_L, Wt_L, Wt_star_L = student[-1][0], tilde(*student[-1]), tilde(*teacher[-1])
    A = (W_L @ Wt_star_L.transpose(1, 2))[:, None].expand(-1, X.shape[1], -1, -1)
    B = (W_L @ Wt_L.transpose(1, 2))[:, None].expand(-1, X.shape[1], -1, -1)
    As, Bs = [None] * (L - 1), [None] * (L - 1)
    As[L - 2], Bs[L - 2] = A, B
    for l in range(L - 2, 0, -1):  # hidden layer l + 1 (0-based l) -> hidden layer l
        W = student[l][0][:, None]  # [R, 1, n_l, n_{l+1}]
        A = W @ (gates[l][..., :, None] * A) @ lift(*teacher[l], gates_star[l])
        B = W @ (gates[l][..., :, None] * B) @ lift(*student[l], gates[l])
        As[l - 1], Bs[l - 1] = A, B
    gs = []
    for l in range(L - 1):
        f_star, f = _augment(fs_star[l + 1]), _augment(fs[l + 1])
        mix = scale_A * (As[l] @ f_star[..., None])[..., 0] - scale_B * (Bs[l] @ f[..., None])[..., 0]
        gs.append(gates[l] * mix)
    return {"A": As, "B": Bs, "D": gates, "D_star": gates_star, "g": gs,
            "f": [_augment(f) for f in fs[1:]], "f_star": [_augment(f) for f in fs_star[1:]],
            "g_out": out_star - out}


# -- epsilon-alignment from a small gradient (Tian 2020, two-layer, finite samples) -----------------------

ALIGNMENT_CONSTANT = 5.0  # the 5 in the gradient condition ||g_1||_inf <= alpha eps / (5 K^{3/2} sqrt(d))


def alignment_gradient_bound(alpha, K: int, d: int, eps, *, aware: bool = False,
                             constant: float = ALIGNMENT_CONSTANT):
    r"""The largest ``||g_1(x)||_inf`` on the (augmented) data that guarantees epsilon-alignment of teacher node j
    (Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension", ICML 2020,
    two-layer finite-sample theorem; the talk's slide "Polynomial Complexity for 2-layered Network"):

    .. math:: \|g_1(x)\|_\infty \le \frac{\alpha_{kj}\,\epsilon}{5 K_1^{3/2} \sqrt d},\quad K_1 = m_1 + n_1,
        \ \alpha_{kj} = v_k^\top v^*_j,

    without the :math:`\sqrt d` for teacher-aware augmentation. Works on numbers, arrays and tensors alike.

    Raises:
        ValueError: when K or d is not a positive integer.
    """
    for name, value in (("K", K), ("d", d)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    scale = constant * K ** 1.5 * (1.0 if aware else math.sqrt(d))
    return alpha * eps / scale


def alignment_epsilon(g_inf, alpha, K: int, d: int, *, aware: bool = False, constant: float = ALIGNMENT_CONSTANT):
    r"""The epsilon the gradient condition guarantees, solved for epsilon:
    :math:`\epsilon = 5 K_1^{3/2} \sqrt d\, \|g_1\|_\infty / \alpha_{kj}` (no :math:`\sqrt d` when ``aware``);
    infinite where :math:`\alpha_{kj} \le 0` (the condition cannot hold). Above 1 the guarantee is vacuous
    (:math:`\sin\tilde\theta \le 1` always). The inverse of :func:`alignment_gradient_bound` in epsilon."""
    unit = alignment_gradient_bound(1.0, K, d, 1.0, aware=aware, constant=constant)
    if isinstance(alpha, torch.Tensor) or isinstance(g_inf, torch.Tensor):
        alpha = torch.as_tensor(alpha)
        return torch.where(alpha > 0, torch.as_tensor(g_inf) / (unit * alpha.clamp_min(1e-300)),
                           torch.full_like(alpha, math.inf))
    alpha = np.asarray(alpha, float)
    with np.errstate(divide="ignore"):
        return np.where(alpha > 0, np.asarray(g_inf, float) / (unit * np.maximum(alpha, 1e-300)), np.inf)
