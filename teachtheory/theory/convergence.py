"""Convergence bounds of the teachability theorems (LAST Thm 1-3, DHT Thm 1) and their constants.

Pure functions: the constants (mu_i, L_i, mu_bar, L_max) computed from a pool, the bounds as printed,
the bounds re-derived here, and an estimator of the order of convergence; sympy twins carry the
derivations that are algebra.

Derivations (e = w - w*, F = mean_i l_i, one example i drawn uniformly, step s = eta g):

* One step: ||e'||^2 = ||e||^2 - 2 s <grad l_i(w), e> + s^2 ||grad l_i(w)||^2.
* Each l_i convex and L_i-smooth (gradient L_i-Lipschitz) with grad l_i(w*) = 0 (interpolation):
  co-coercivity gives ||grad l_i(w)||^2 <= L_i <grad l_i(w), e>. The theorems' "L_i-Lipschitz"
  must mean this smoothness constant (l_i itself is not globally Lipschitz for LSR), and this is
  the only inequality that the proofs need from it.
* F mu_bar-strongly convex: <grad F(w), e> >= mu_bar ||e||^2 (and F(w*) >= F(w) - <grad F(w), e>
  + mu_bar/2 ||e||^2). A sum of mu_i-strongly convex l_i is (sum mu_i)-strongly convex, so the
  modulus of F is at least mean_i mu_i; for rank-one losses (LSR with scalar output) every mu_i
  is 0 and only the modulus of F makes the theorems non-vacuous. We use mu_bar = lambda_min of
  the Hessian of F and report mean_i mu_i beside it.

Theorem 1 (g = c1 ||e_t||, so s = c1 eta ||e_t||): for s L_max <= 2, ::

    E[||e_{t+1}||^2 | e_t] <= ||e_t||^2 - s (2 - s L_max) <grad F, e_t>
                           <= ||e_t||^2 (1 - 2 c1 eta mu_bar ||e_t|| + c1^2 eta^2 mu_bar L_max ||e_t||^2).

The factor depends on ||e_t||: it tends to 1 as e_t -> 0, so the convergence is not geometric
(E||e_t||^2 ~ 1/(c1 eta mu_bar t)^2). The printed factor 1 - c1 eta mu_bar + c1^2 eta^2 L_max has
no ||e_t|| in it and is not invariant under a change of units of w; it is what the same proof
gives for a *constant* g = c1 with L_i read as the squared-gradient constant
||grad l_i(w)||^2 <= L_i ||w - w*||^2. A deterministic bound for g = c1 ||e_t||: with
phi(u) = u (1 - 2 a mu_bar sqrt(u) + a^2 mu_bar L_max u), a = c1 eta, phi is concave and
non-decreasing on [0, ||e_0||^2] when a ||e_0|| L_max <= 1/3, ||e_t|| never increases, so by Jensen
E||e_T||^2 <= u_T with u_0 = ||e_0||^2, u_{t+1} = phi(u_t).

Theorem 2 (Armijo, c2 = 1/2): the Armijo inequality and interpolation give
s^2 ||grad l_i||^2 <= 2 s (l_i(w) - l_i(w*)); with D_i = <grad l_i, e> - (l_i(w) - l_i(w*)) >= 0
(convexity), ||e'||^2 <= ||e||^2 - 2 s_i D_i <= ||e||^2 - 2 s_lo D_i, and E D_i >= mu_bar/2 ||e||^2.
So E||e_T||^2 <= (1 - mu_bar s_lo)^T ||e_0||^2 where s_lo is a lower bound on every step taken.
The printed max(1 - mu_bar/L_max, 1 - mu_bar eta_max) is the case s_lo = min(1/L_max, eta_max),
true for the *largest* admissible step; a backtracking grid eta g_max shrink^k only guarantees the
largest grid point <= 2(1 - c2)/L_i, which can be as small as shrink/L_i.

Theorem 3 (g = eta^-1 H(a)^-1, a = alpha w* + (1 - alpha) w): e' = H(a)^-1 (H(a) e - grad F(w)) and
H(a) e - grad F(w) = (1/2 - alpha) T[e, e] + O(||e||^3) (T the third derivative at w*). Order 2 for
alpha != 1/2 (alpha = 0 Newton, alpha = 1 the chord method with the Hessian at w*), order 3 for
alpha = 1/2; ||e'|| <= L_H (s^2 - s + 1/2) / mu ||e||^2, s = 1 - alpha, L_H the Hessian's
Lipschitz constant.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Thm 1-3.
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Thm 1 and Appendix A.
    Vaswani et al., "Painless Stochastic Gradient", NeurIPS 2019, Thm 1 (the Armijo bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "PoolConstants", "quadratic_pool_constants", "printed_thm1_bound", "scaled_gradient_bound",
    "scaled_gradient_bound_condition", "constant_step_bound", "printed_thm2_bound", "armijo_step_floor",
    "armijo_bound", "logistic_hessian_lipschitz", "hessian_step_order", "hessian_step_constant",
    "estimate_order", "LOGISTIC_MAX_SIGMA2", "sgd_expected_sq_error", "sgd_rate", "mixed_rate_bound",
    "subsampled_newton_matrix", "subsampled_newton_rate",
    "symbolic_thm1_radial_factor", "symbolic_thm1_bound_shape", "symbolic_hessian_step_error",
]

# max_z |sigma''(z)| = 1/(6 sqrt 3), sigma the logistic function (attained at z = log(2 +- sqrt 3)).
LOGISTIC_MAX_SIGMA2 = 1.0 / (6.0 * math.sqrt(3.0))


@dataclass(frozen=True)
class PoolConstants:
    """Constants of a pool of quadratic losses l_i(w) = 1/2 (w - w*)^T H_i (w - w*).

    Attributes:
        L: per-example smoothness L_i = lambda_max(H_i) [n].
        mu: per-example strong-convexity moduli mu_i = lambda_min(H_i) [n] (0 for rank-one H_i).
        mu_bar: strong-convexity modulus of the mean loss, lambda_min(mean_i H_i) (>= mean_i mu_i).
        mean_mu_i: mean_i mu_i (the printed mu_bar read literally).
        L_max: max_i L_i.
        L_sq_max: max_i lambda_max(H_i)^2, the constant of ||grad l_i(w)||^2 <= L_sq ||w - w*||^2.
        min_curvature: the smallest eigenvalue over all H_i (>= 0 means every l_i is convex).

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 1-3 (the constants mu_i, L_i, mu_bar, L_max).
    """

    L: np.ndarray
    mu: np.ndarray
    mu_bar: float
    mean_mu_i: float
    L_max: float
    L_sq_max: float
    min_curvature: float


def quadratic_pool_constants(X: torch.Tensor, outputs: int = 1) -> PoolConstants:
    r"""Constants of least-squares losses on a pool X [n, d] (or [1, n, d]) in float64.

    For l_i(W) = 1/2 ||W^T x_i - y_i||^2 with W [d, K] the Hessian in vec(W) is
    (x_i x_i^T) \otimes I_K, so L_i = ||x_i||^2, mu_i = lambda_min(x_i x_i^T) (0 unless d = 1),
    and the mean loss has modulus lambda_min(mean_i x_i x_i^T).

    References: LAST Thm 1-2 (constants mu_i, L_i, mu_bar, L_max).
    """
    X = torch.as_tensor(X, dtype=torch.float64)
    if X.dim() == 3:
        if X.shape[0] != 1:
            raise ValueError(f"X: one shared pool expected, got leading size {X.shape[0]}")
        X = X[0]
    if X.dim() != 2 or X.shape[0] == 0:
        raise ValueError(f"X must have shape [n, d] with n >= 1, got {tuple(X.shape)}")
    if outputs < 1:
        raise ValueError(f"outputs must be a positive integer, got {outputs}")
    H = X[:, :, None] * X[:, None, :]  # [n, d, d]
    eig = torch.linalg.eigvalsh(H)  # [n, d]
    L = eig[:, -1].numpy()
    mu = np.clip(eig[:, 0].numpy(), 0.0, None) if X.shape[1] > 1 else eig[:, 0].numpy()
    mean_H = H.mean(0)
    mu_bar = float(torch.linalg.eigvalsh(mean_H)[0])
    return PoolConstants(L=L, mu=mu, mu_bar=mu_bar, mean_mu_i=float(mu.mean()), L_max=float(L.max()),
                         L_sq_max=float((L**2).max()), min_curvature=float(eig.min()))


def printed_thm1_bound(c1: float, eta: float, mu_bar: float, L_max: float, e0_sq: float, steps: int) -> np.ndarray:
    r"""LAST Thm 1 / DHT Thm 1 as printed: (1 - c_1\eta\bar\mu + c_1^2\eta^2 L_{max})^t \|e_0\|^2, t = 0..steps.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 1; Qiu, Liu et al., AISTATS 2023 (DHT), Thm 1.
    """
    rate = 1.0 - c1 * eta * mu_bar + (c1 * eta) ** 2 * L_max
    return e0_sq * rate ** np.arange(steps + 1, dtype=float)


def scaled_gradient_bound(c1: float, eta: float, mu_bar: float, L_max: float, e0_sq: float, steps: int) -> np.ndarray:
    r"""Derived bound on E||e_t||^2 for g = c1 ||e_t|| (see the module docstring).

    .. math:: u_0 = \|e_0\|^2,\quad u_{t+1} = u_t\,(1 - 2 c_1\eta\bar\mu\sqrt{u_t} + c_1^2\eta^2\bar\mu L_{max} u_t)

    Valid when :func:`scaled_gradient_bound_condition` holds. Returns u_t, t = 0..steps.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 1 (the setting; the bound is derived in the module docstring).
    """
    a = c1 * eta
    u = np.empty(steps + 1)
    u[0] = e0_sq
    for t in range(steps):
        s = u[t]
        u[t + 1] = s * (1.0 - 2.0 * a * mu_bar * math.sqrt(s) + a * a * mu_bar * L_max * s)
    return u


def scaled_gradient_bound_condition(c1: float, eta: float, L_max: float, e0_norm: float) -> float:
    """c1 eta ||e_0|| L_max: the derived Thm 1 bound needs it <= 1/3 (concave, non-decreasing step map).

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 1 (the setting; the condition is derived in the module docstring).
    """
    return c1 * eta * e0_norm * L_max


def constant_step_bound(a: float, mu_bar: float, L_max: float, e0_sq: float, steps: int) -> np.ndarray:
    r"""E||e_t||^2 <= (1 - a(2 - a L_{max})\bar\mu)^t \|e_0\|^2 for a constant effective step a = eta g <= 2/L_max.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 1 (proof for a constant step); Qiu, Liu et al., AISTATS 2023 (DHT),
        Thm 1.
    """
    rate = 1.0 - a * (2.0 - a * L_max) * mu_bar
    return e0_sq * rate ** np.arange(steps + 1, dtype=float)


def sgd_expected_sq_error(sigma0: torch.Tensor, pool: torch.Tensor, a: float, steps: int, *,
                          quad_weight: float | None = None) -> torch.Tensor:
    r"""Exact E||e_t||^2, t = 0..steps, of constant-step SGD on noise-free least squares (x uniform on a pool).

    One step is e' = (I - a x x^T) e, so with S = mean_i x_i x_i^T and Sigma_t = E[e_t e_t^T]:

    .. math:: \Sigma_{t+1} = \Sigma_t - a(S\Sigma_t + \Sigma_t S) + a^2\,\mathrm{mean}_i (x_i^T\Sigma_t x_i)\,x_i x_i^T

    a linear map of Sigma, so E||e_t||^2 decays geometrically at the rate :func:`sgd_rate`.

    Args:
        sigma0: E[e_0 e_0^T], [..., d, d]. pool: the inputs [..., n, d]. a: the step. steps: T.
        quad_weight: the weight of the mean_i term in place of a^2 (None: a^2, the SGD step itself; another value
            gives the same recursion with that term reweighted, e.g. a rescaled one-step change).

    Returns:
        [..., T + 1] expected squared distances (the trace of Sigma_t).

    References: LAST Thm 1 setting (interpolation); Strohmer & Vershynin, J. Fourier Anal. Appl. 2009 (a = 1/||x||^2).
    """
    n = pool.shape[-2]
    b = a * a if quad_weight is None else quad_weight
    S = pool.transpose(-1, -2) @ pool / n
    sigma = sigma0
    out = [torch.diagonal(sigma, dim1=-2, dim2=-1).sum(-1)]
    for _ in range(steps):
        quad = torch.einsum("...ni,...ij,...nj->...n", pool, sigma, pool)
        sigma = (sigma - a * (S @ sigma + sigma @ S)
                 + (b / n) * torch.einsum("...n,...ni,...nj->...ij", quad, pool, pool))
        out.append(torch.diagonal(sigma, dim1=-2, dim2=-1).sum(-1))
    return torch.stack(out, -1)


def sgd_rate(pool: torch.Tensor, a: float) -> float:
    r"""The asymptotic per-step factor of E||e_t||^2 under :func:`sgd_expected_sq_error`: the spectral radius of
    the linear map Sigma -> E[(I - a x x^T) Sigma (I - a x x^T)] (a d^2 x d^2 matrix; pool [n, d])."""
    n, d = pool.shape[-2:]
    eye = torch.eye(d, dtype=pool.dtype)
    steps = eye - a * pool[:, :, None] * pool[:, None, :]  # [n, d, d]
    op = sum(torch.kron(m, m) for m in steps) / n  # vec(M S M^T) = (M kron M) vec(S) for symmetric M
    return float(torch.linalg.eigvals(op).abs().max())


def mixed_rate_bound(pool: torch.Tensor, eta: float) -> float:
    r"""lambda_max(mean_i (I - eta x_i x_i^T)^2): a per-step factor of ||e||^2 for mixed teaching on noise-free LSR.

    Mixed teaching (LAST Sec. 3.5) takes IMT's example x_{i*} (true labels) and then the greedy label, which for
    an unconstrained LSR label projects e onto x_{i*}'s orthogonal complement, the best step along x_{i*}. So
    ||e'||^2 <= ||(I - eta x_{i*} x_{i*}^T) e||^2 = min_i ||(I - eta x_i x_i^T) e||^2 (interpolation: IMT's true-label
    step is this one) <= mean_i ||(I - eta x_i x_i^T) e||^2 <= rho ||e||^2: exponential teachability when rho < 1.

    References: LAST Sec. 3.5; Liu et al., "Iterative Machine Teaching", ICML 2017 (the ET of IMT).
    """
    d = pool.shape[-1]
    steps = torch.eye(d, dtype=pool.dtype) - eta * pool[:, :, None] * pool[:, None, :]
    return float(torch.linalg.eigvalsh((steps @ steps).mean(0))[-1])


def subsampled_newton_matrix(H: torch.Tensor, H_S: torch.Tensor) -> torch.Tensor:
    r"""I - H_S^{-1} H: the linear part of one step e' = e - H_S^{-1} grad F(w*+e) with a sub-sampled Hessian H_S.

    grad F(w* + e) = H e + O(||e||^2), so e' = (I - H_S^{-1} H) e + O(||e||^2): linear convergence at the
    spectral radius of this matrix, super-exponential (order 2) only when H_S = H. Batched over leading dims.

    References: LAST Sec. 3.4 (Thm 3 with a sub-sampled Hessian); Roosta-Khorasani & Mahoney, "Sub-sampled Newton
    methods", Math. Program. 2019.
    """
    eye = torch.eye(H.shape[-1], dtype=H.dtype)
    return eye - torch.linalg.solve(H_S, H.expand_as(H_S))


def subsampled_newton_rate(H: torch.Tensor, H_S: torch.Tensor) -> torch.Tensor:
    """The spectral radius of :func:`subsampled_newton_matrix` (the linear rate near w*), batched."""
    return torch.linalg.eigvals(subsampled_newton_matrix(H, H_S)).abs().amax(-1)


def printed_thm2_bound(mu_bar: float, L_max: float, eta_max: float, e0_sq: float, steps: int) -> np.ndarray:
    r"""LAST Thm 2 as printed: \max(1 - \bar\mu/L_{max}, 1 - \bar\mu\eta_{max})^t \|e_0\|^2.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 2; Vaswani et al., NeurIPS 2019, Thm 1.
    """
    rate = max(1.0 - mu_bar / L_max, 1.0 - mu_bar * eta_max)
    return e0_sq * rate ** np.arange(steps + 1, dtype=float)


def armijo_step_floor(L: np.ndarray, eta: float, g_max: float, shrink: float, c2: float = 0.5,
                      max_halvings: int = 40) -> float:
    r"""The smallest effective step eta g a backtracking Armijo teacher can take on a pool.

    Every step s <= 2(1 - c_2)/L_i satisfies the Armijo condition for an L_i-smooth l_i, so the
    first grid value eta g_max shrink^k meeting it is at least the largest grid value
    <= min(eta g_max, 2(1 - c_2)/L_i). Returns the minimum over the pool.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 2; Vaswani et al., NeurIPS 2019, Thm 1.
    """
    grid = eta * g_max * shrink ** np.arange(max_halvings)
    floors = []
    for Li in np.atleast_1d(np.asarray(L, float)):
        cap = 2.0 * (1.0 - c2) / Li if Li > 0 else np.inf
        ok = grid[grid <= cap * (1 + 1e-12)]
        floors.append(ok.max() if ok.size else grid[-1])
    return float(min(floors))


def armijo_bound(mu_bar: float, s_lo: float, e0_sq: float, steps: int) -> np.ndarray:
    r"""Derived Thm 2 bound: E||e_t||^2 <= (1 - \bar\mu s_{lo})^t \|e_0\|^2, s_lo a floor on every step.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 2; Vaswani et al., NeurIPS 2019, Thm 1.
    """
    rate = 1.0 - mu_bar * s_lo
    return e0_sq * rate ** np.arange(steps + 1, dtype=float)


def logistic_hessian_lipschitz(X: torch.Tensor) -> float:
    r"""A Lipschitz constant of w -> Hess F(w) for the mean logistic loss on the pool X [n, d]:

    .. math:: \|H(w) - H(v)\|_2 \le \max|\sigma''| \cdot \mathrm{mean}_i \|x_i\|^3 \|w - v\|.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 3 (the Hessian's Lipschitz constant L_H).
    """
    X = torch.as_tensor(X, dtype=torch.float64).reshape(-1, X.shape[-1])
    return float(LOGISTIC_MAX_SIGMA2 * (X.norm(dim=-1) ** 3).mean())


def hessian_step_order(alpha: float) -> int:
    """Order of convergence of w' = w - H(alpha w* + (1 - alpha) w)^-1 grad F(w): 3 at alpha = 1/2, else 2.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 3.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    return 3 if abs(alpha - 0.5) < 1e-12 else 2


def hessian_step_constant(alpha: float, L_H: float, mu: float) -> float:
    """K with ||e'|| <= K ||e||^2: L_H (s^2 - s + 1/2)/mu, s = 1 - alpha (local quadratic contraction).

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 3.
    """
    s = 1.0 - alpha
    return L_H * (s * s - s + 0.5) / mu


def estimate_order(e_now: np.ndarray, e_next: np.ndarray, correction: bool = True) -> dict:
    """Order q from the regression log e_{t+1} = q log e_t + c (+ b e_t) over independent pairs, with its OLS SE.

    Args:
        e_now, e_next: 1-D arrays of paired distances (one pair per run, e.g. the first step from
            starts drawn at random radii and directions, so log e_t is independent of the direction).
        correction: also fit the first correction term b e_t of e_{t+1} = C e_t^q (1 + O(e_t)),
            which removes the leading pre-asymptotic bias of q.

    Returns: dict(q, se, intercept, pairs, residual_sd).

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 3 (the order of convergence it measures).
    """
    e_now, e_next = np.asarray(e_now, float), np.asarray(e_next, float)
    x, y = np.log(e_now), np.log(e_next)
    columns = [x, np.ones_like(x)] + ([e_now] if correction else [])
    A = np.stack(columns, 1)
    if x.size < A.shape[1] + 1:
        raise ValueError(f"need at least {A.shape[1] + 1} pairs to estimate an order, got {x.size}")
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    sigma2 = float(resid @ resid) / (x.size - A.shape[1])
    cov = sigma2 * np.linalg.pinv(A.T @ A)
    return {"q": float(coef[0]), "se": float(math.sqrt(cov[0, 0])), "intercept": float(coef[1]),
            "pairs": int(x.size), "residual_sd": math.sqrt(sigma2)}


# -- sympy twins -----------------------------------------------------------------------


def symbolic_thm1_radial_factor():
    """One step of g = c1 ||e|| on l(w) = 1/2 x^2 ||w - w*||^2 (every assumption of Thm 1 holds, mu = L = x^2).

    Returns (factor, printed): ||e'||^2/||e||^2 = (1 - c1 eta x^2 r)^2 with r = ||e||, and the printed
    rate with mu = L = x^2. The factor depends on r (-> 1 as r -> 0); the printed one does not.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 1.
    """
    import sympy as sp

    a, x, r = sp.symbols("a x r", positive=True)  # a = c1 eta
    factor = sp.expand((1 - a * x**2 * r) ** 2)
    printed = 1 - a * x**2 + a**2 * x**2
    return factor, printed


def symbolic_thm1_bound_shape():
    """phi(u) = u (1 - 2 a mu sqrt(u) + a^2 mu L u) and its first two derivatives in u (sympy).

    phi'' <= 0 iff a L sqrt(u) <= 3/4 and phi' >= 1 - 3 a mu sqrt(u); with mu <= L both hold on
    [0, u_0] when a L sqrt(u_0) <= 1/3.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 1 (the derived bound of the module docstring).
    """
    import sympy as sp

    a, mu, L, u = sp.symbols("a mu L u", positive=True)
    phi = u * (1 - 2 * a * mu * sp.sqrt(u) + a**2 * mu * L * u)
    return phi, sp.simplify(sp.diff(phi, u)), sp.simplify(sp.diff(phi, u, 2))


def symbolic_hessian_step_error(order: int = 3):
    """Series of e' = e - f'(w* + e)/f''(w* + (1 - alpha) e) in e for a scalar f with f'(w*) = 0.

    Returns (series, coefficients): the coefficients of e^2 and e^3 in terms of alpha and the
    derivatives f2, f3, f4 of f at w*. The e^2 coefficient is (1/2 - alpha) f3/f2.

    References:
        Liu et al., NeurIPS 2021 (LAST), Thm 3.
    """
    import sympy as sp

    e, alpha, f2, f3, f4, f5 = sp.symbols("e alpha f2 f3 f4 f5", real=True)
    s = 1 - alpha
    grad = f2 * e + f3 * e**2 / 2 + f4 * e**3 / 6 + f5 * e**4 / 24
    hess = f2 + f3 * (s * e) + f4 * (s * e) ** 2 / 2 + f5 * (s * e) ** 3 / 6
    e_next = sp.series(e - grad / hess, e, 0, order + 1).removeO()
    e_next = sp.expand(e_next)
    coefficients = {k: sp.factor(sp.simplify(e_next.coeff(e, k))) for k in range(0, order + 1)}
    return e_next, coefficients
