r"""Soft committee machines with :math:`g(x) = \mathrm{erf}(x/\sqrt 2)`: Gaussian averages, the
generalisation error and the Saad-Solla ODEs of online SGD.

Setting (Goldt et al. 2019 conventions). Input :math:`x \sim N(0, I_N)`; student
:math:`\phi(x) = \sum_{k=1}^K v_k\, g(\lambda_k)`, teacher :math:`\phi^*(x) = \sum_{n=1}^M v^*_n\, g(\nu_n)`,
local fields (pre-activations) :math:`\lambda_k = w_k\cdot x/\sqrt N`, :math:`\nu_n = w^*_n\cdot x/\sqrt N`,
label :math:`y = \phi^*(x) + \sigma\zeta`, :math:`\zeta\sim N(0,1)`. The fields are jointly Gaussian with
covariance

.. math:: \Omega = \begin{pmatrix} Q & R \\ R^\top & T\end{pmatrix},\quad
          Q_{kl} = \frac{w_k\cdot w_l}{N},\ R_{kn} = \frac{w_k\cdot w^*_n}{N},\ T_{nm} = \frac{w^*_n\cdot w^*_m}{N}.

Equations derived here, numbered (C1)-(C8) for reference (the closed forms are the averages of
Saad & Solla 1995 and Biehl & Schwarze 1995, re-derived):

(C1) :math:`I_2(a,b) = E[g(u_a) g(u_b)] = \frac{2}{\pi}\arcsin\frac{C_{ab}}{\sqrt{(1+C_{aa})(1+C_{bb})}}`.
Derivation: Price's theorem :math:`\partial_{C_{ab}} E[g(u_a)g(u_b)] = E[g'(u_a)g'(u_b)] = J_2`,
integrated from :math:`C_{ab} = 0` where :math:`I_2 = 0` (g is odd) — :func:`symbolic_i2`.

(C2) :math:`J_2(a,b) = E[g'(u_a) g'(u_b)] = \frac{2}{\pi}\big[(1+C_{aa})(1+C_{bb}) - C_{ab}^2\big]^{-1/2}`,
since :math:`g'(x) = \sqrt{2/\pi}\,e^{-x^2/2}` and :math:`E[e^{-u^\top u/2}] = \det(I + C)^{-1/2}` —
:func:`symbolic_j2`.

(C3) :math:`I_3(a,b,c) = E[g'(u_a)\, u_b\, g(u_c)] = \frac{2}{\pi}\frac{1}{\sqrt{\Lambda_3}}
\frac{C_{bc}(1+C_{aa}) - C_{ab}C_{ac}}{1 + C_{aa}}`, :math:`\Lambda_3 = (1+C_{aa})(1+C_{cc}) - C_{ac}^2`.
Derivation: Stein's lemma on :math:`u_b` and on :math:`u_a` with :math:`g''(x) = -x g'(x)` — :func:`symbolic_i3`.

(C4) :math:`I_4(a,b,c,d) = E[g'(u_a)g'(u_b)g(u_c)g(u_d)] = \frac{4}{\pi^2}\frac{1}{\sqrt{\Lambda_4}}
\arcsin\frac{\Lambda_0}{\sqrt{\Lambda_1\Lambda_2}}` with (1, 2, 3, 4 = a, b, c, d)
:math:`\Lambda_4 = (1+C_{11})(1+C_{22}) - C_{12}^2`,
:math:`\Lambda_0 = \Lambda_4 C_{34} - C_{23}C_{24}(1+C_{11}) - C_{13}C_{14}(1+C_{22})
+ C_{12}C_{13}C_{24} + C_{12}C_{14}C_{23}`,
:math:`\Lambda_1 = \Lambda_4(1+C_{33}) - C_{23}^2(1+C_{11}) - C_{13}^2(1+C_{22}) + 2C_{12}C_{13}C_{23}`
(= det of :math:`I + C` on fields 1, 2, 3, so never 0), :math:`\Lambda_2` likewise with 3 -> 4.
Check: :math:`\partial_{C_{34}} I_4 = \frac{4}{\pi^2}\det(I + C)^{-1/2}` (Price) — :func:`symbolic_i4_price`.

(C5) generalisation error :math:`\epsilon_g = \tfrac12 E[(\phi - \phi^*)^2] = \tfrac12 s^\top I_2(\Omega)\, s`,
:math:`s = (-v, v^*)` (noise-free; the test error on noisy labels adds :math:`\sigma^2/2`).

Online SGD on :math:`\tfrac12\Delta^2`, :math:`\Delta = y - \phi(x)`:
:math:`w_k \leftarrow w_k + \frac{\eta}{\sqrt N} v_k g'(\lambda_k)\Delta\, x` (plain SGD with learning rate
:math:`\eta` on :math:`w_k`, since :math:`\partial\lambda_k/\partial w_k = x/\sqrt N`), and
:math:`v_k \leftarrow v_k + \frac{\eta_v}{N} g(\lambda_k)\Delta`. One step changes :math:`Q, R` by
:math:`O(1/N)` in drift and in noise (:math:`\|x\|^2/N \to 1`), and :math:`v` by :math:`O(1/N)`; so
:math:`\alpha = \text{steps}/N` is the time in which the order parameters move by O(1) and their
fluctuations are :math:`O(1/\sqrt N)`. With :math:`s = (-v, v^*)` over the K + M fields
(students first) and :math:`A_{kb} = E[g'(\lambda_k) u_b \Delta] = \sum_c s_c I_3(k,b,c)`:

(C6) :math:`\frac{dR_{kn}}{d\alpha} = \eta\, v_k A_{k,K+n}`

(C7) :math:`\frac{dQ_{kl}}{d\alpha} = \eta\, v_k A_{kl} + \eta\, v_l A_{lk}
+ \eta^2 v_k v_l \Big[\sum_{c,d} s_c s_d I_4(k,l,c,d) + \sigma^2 J_2(k,l)\Big]`

(C8) :math:`\frac{dv_k}{d\alpha} = \eta_v \sum_c s_c I_2(k, c)` (zero when only the first layer is trained).

Tian's teacher-student talk prints the activation as erf(x/2); Saad & Solla's, and the one used here, is
erf(x/sqrt 2), for which the closed forms below hold (the "2" is read as PDF garbling of sqrt 2).

Saad & Solla's convention (fields :math:`J\cdot\xi` with :math:`|J| = O(1)`, step :math:`\eta/N`,
:math:`v = v^* = 1`) is the same system with :math:`J = w/\sqrt N`.

References:
    D. Saad and S. A. Solla, "On-line learning in soft committee machines", Phys. Rev. E 52, 4225 (1995):
    (generalisation error, equations of motion for Q and R, the averages I2, I3, I4; equation numbers here are
    this module's (C1)-(C8)).
    S. Goldt, M. Advani, A. Saxe, F. Krzakala, L. Zdeborova, "Dynamics of stochastic gradient descent for
    two-layer neural networks in the teacher-student setup", NeurIPS 2019 (SGD scaling, ODEs for
    Q, R, v with output noise). M. Biehl and H. Schwarze, J. Phys. A 28, 643 (1995).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from .ode import rk4

__all__ = [
    "I2",
    "I3",
    "I4",
    "J2",
    "ODESolution",
    "check_order_parameters",
    "committee_averages",
    "field_covariance",
    "g",
    "g_prime",
    "generalisation_error",
    "i2_entries",
    "i3_entries",
    "i4_entries",
    "integrate_ode",
    "j2_entries",
    "ode_rhs",
    "symbolic_i2",
    "symbolic_i3",
    "symbolic_i4_price",
    "symbolic_j2",
    "symmetric_plateau",
    "symmetric_subspace_point",
]

TWO_OVER_PI = 2.0 / math.pi
ODE_METHODS = ("DOP853", "RK45", "RK23", "Radau", "BDF", "LSODA", "rk4")
RTOL_MIN = 100 * float(np.finfo(np.float64).eps)  # solve_ivp raises smaller rtol to this, with a warning


def g(x: torch.Tensor) -> torch.Tensor:
    r""":math:`g(x) = \mathrm{erf}(x/\sqrt 2)`.

    References:
        Saad & Solla, Phys. Rev. E 1995 (the activation erf(x/sqrt 2)).
    """
    return torch.erf(x * (1.0 / math.sqrt(2.0)))


def g_prime(x: torch.Tensor) -> torch.Tensor:
    r""":math:`g'(x) = \sqrt{2/\pi}\, e^{-x^2/2}`.

    References:
        Saad & Solla, Phys. Rev. E 1995.
    """
    return math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * x * x)


# -- the averages, from covariance entries (broadcasting) --------------------------------------


def i2_entries(c11: torch.Tensor, c12: torch.Tensor, c22: torch.Tensor) -> torch.Tensor:
    r"""(C1) :math:`E[g(u_1)g(u_2)] = \frac{2}{\pi}\arcsin\frac{C_{12}}{\sqrt{(1+C_{11})(1+C_{22})}}`.

    References: Saad & Solla 1995 (I2); Goldt et al. 2019. Derivation (C1) here.
    """
    ratio = c12 / torch.sqrt((1.0 + c11) * (1.0 + c22))
    return TWO_OVER_PI * torch.asin(ratio.clamp(-1.0, 1.0))


def j2_entries(c11: torch.Tensor, c12: torch.Tensor, c22: torch.Tensor) -> torch.Tensor:
    r"""(C2) :math:`E[g'(u_1)g'(u_2)] = \frac{2}{\pi}\big[(1+C_{11})(1+C_{22}) - C_{12}^2\big]^{-1/2}`.

    References: Goldt et al. 2019 (J2, the output-noise term). Derivation (C2) here.
    """
    return TWO_OVER_PI / torch.sqrt((1.0 + c11) * (1.0 + c22) - c12 * c12)


def i3_entries(c11: torch.Tensor, c12: torch.Tensor, c13: torch.Tensor, c23: torch.Tensor,
               c33: torch.Tensor) -> torch.Tensor:
    r"""(C3) :math:`E[g'(u_1)\,u_2\,g(u_3)]
    = \frac{2}{\pi}\frac{1}{\sqrt{\Lambda_3}}\frac{C_{23}(1+C_{11}) - C_{12}C_{13}}{1+C_{11}}`,
    :math:`\Lambda_3 = (1+C_{11})(1+C_{33}) - C_{13}^2` (independent of :math:`C_{22}`).

    References: Saad & Solla 1995 (I3); Goldt et al. 2019. Derivation (C3) here.
    """
    lam3 = (1.0 + c11) * (1.0 + c33) - c13 * c13
    return TWO_OVER_PI / torch.sqrt(lam3) * (c23 * (1.0 + c11) - c12 * c13) / (1.0 + c11)


def i4_entries(c11, c12, c13, c14, c22, c23, c24, c33, c34, c44) -> torch.Tensor:
    r"""(C4) :math:`E[g'(u_1)g'(u_2)g(u_3)g(u_4)]
    = \frac{4}{\pi^2}\frac{1}{\sqrt{\Lambda_4}}\arcsin\frac{\Lambda_0}{\sqrt{\Lambda_1\Lambda_2}}`
    (the :math:`\Lambda`'s are in the module docstring).

    References: Saad & Solla 1995 (I4); Goldt et al. 2019. Check (C4) here.
    """
    lam4 = (1.0 + c11) * (1.0 + c22) - c12 * c12
    lam0 = lam4 * c34 - c23 * c24 * (1.0 + c11) - c13 * c14 * (1.0 + c22) + c12 * c13 * c24 + c12 * c14 * c23
    lam1 = lam4 * (1.0 + c33) - c23 * c23 * (1.0 + c11) - c13 * c13 * (1.0 + c22) + 2.0 * c12 * c13 * c23
    lam2 = lam4 * (1.0 + c44) - c24 * c24 * (1.0 + c11) - c14 * c14 * (1.0 + c22) + 2.0 * c12 * c14 * c24
    ratio = (lam0 / torch.sqrt(lam1 * lam2)).clamp(-1.0, 1.0)
    return TWO_OVER_PI**2 / torch.sqrt(lam4) * torch.asin(ratio)


# -- matrix-level wrappers ---------------------------------------------------------------------


def _check_covariance(C: torch.Tensor, n: int, name: str = "C") -> torch.Tensor:
    if not isinstance(C, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(C).__name__}")
    if C.ndim < 2 or C.shape[-2:] != (n, n):
        raise ValueError(f"{name} must have shape [..., {n}, {n}], got {tuple(C.shape)}")
    if not torch.isfinite(C).all():
        raise ValueError(f"{name} contains NaN or inf")
    scale = C.abs().amax().clamp_min(1.0)
    if (C - C.transpose(-1, -2)).abs().amax() > 1e-9 * scale:
        raise ValueError(f"{name} must be symmetric")
    if torch.linalg.eigvalsh(C.to(torch.float64)).amin() < -1e-9 * float(scale):
        raise ValueError(f"{name} must be positive semi-definite (a covariance of Gaussian fields)")
    return C


def I2(C: torch.Tensor) -> torch.Tensor:
    r"""(C1) :math:`E[g(u_1)g(u_2)]` for :math:`u \sim N(0, C)`, C of shape [..., 2, 2]; returns [...].

    References:
        Saad & Solla, Phys. Rev. E 1995 (the average I2); (C1) in this module's numbering.
    """
    _check_covariance(C, 2)
    return i2_entries(C[..., 0, 0], C[..., 0, 1], C[..., 1, 1])


def J2(C: torch.Tensor) -> torch.Tensor:
    r"""(C2) :math:`E[g'(u_1)g'(u_2)]` for :math:`u \sim N(0, C)`, C of shape [..., 2, 2]; returns [...].

    References:
        Goldt et al., NeurIPS 2019 (the output-noise term of the ODEs, where J2 enters); (C2) in this
        module's numbering.
    """
    _check_covariance(C, 2)
    return j2_entries(C[..., 0, 0], C[..., 0, 1], C[..., 1, 1])


def I3(C: torch.Tensor) -> torch.Tensor:
    r"""(C3) :math:`E[g'(u_1)\,u_2\,g(u_3)]` for :math:`u \sim N(0, C)`, C of shape [..., 3, 3]; returns [...].

    References:
        Saad & Solla, Phys. Rev. E 1995 (the average I3); (C3) in this module's numbering.
    """
    _check_covariance(C, 3)
    return i3_entries(C[..., 0, 0], C[..., 0, 1], C[..., 0, 2], C[..., 1, 2], C[..., 2, 2])


def I4(C: torch.Tensor) -> torch.Tensor:
    r"""(C4) :math:`E[g'(u_1)g'(u_2)g(u_3)g(u_4)]` for :math:`u \sim N(0, C)`, C of shape [..., 4, 4]; returns [...].

    References:
        Saad & Solla, Phys. Rev. E 1995 (the average I4); (C4) in this module's numbering.
    """
    _check_covariance(C, 4)

    def c(i, j):
        return C[..., i, j]

    return i4_entries(c(0, 0), c(0, 1), c(0, 2), c(0, 3), c(1, 1), c(1, 2), c(1, 3), c(2, 2), c(2, 3), c(3, 3))


# -- order parameters --------------------------------------------------------------------------


def check_order_parameters(Q: torch.Tensor, R: torch.Tensor, T: torch.Tensor, v: torch.Tensor,
                           v_star: torch.Tensor, *, psd: bool = True) -> tuple[int, int]:
    """Validate shapes [..., K, K], [..., K, M], [..., M, M], [..., K], [..., M] and finiteness; returns (K, M).

    Raises:
        ValueError naming the offending argument.
    """
    for name, t in (("Q", Q), ("R", R), ("T", T), ("v", v), ("v_star", v_star)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")
    if Q.ndim < 2 or Q.shape[-1] != Q.shape[-2] or Q.shape[-1] < 1:
        raise ValueError(f"Q must have shape [..., K, K], got {tuple(Q.shape)}")
    if T.ndim < 2 or T.shape[-1] != T.shape[-2] or T.shape[-1] < 1:
        raise ValueError(f"T must have shape [..., M, M], got {tuple(T.shape)}")
    K, M = Q.shape[-1], T.shape[-1]
    if R.ndim < 2 or R.shape[-2:] != (K, M):
        raise ValueError(f"R must have shape [..., K, M] = [..., {K}, {M}], got {tuple(R.shape)}")
    if v.ndim < 1 or v.shape[-1] != K:
        raise ValueError(f"v must have shape [..., K] = [..., {K}], got {tuple(v.shape)}")
    if v_star.ndim < 1 or v_star.shape[-1] != M:
        raise ValueError(f"v_star must have shape [..., M] = [..., {M}], got {tuple(v_star.shape)}")
    if psd:
        omega = field_covariance(Q, R, T).to(torch.float64)
        scale = float(omega.abs().amax().clamp_min(1.0))
        if torch.linalg.eigvalsh(omega).amin() < -1e-8 * scale:
            raise ValueError("Q, R, T: the covariance [[Q, R], [R^T, T]] of the local fields must be positive "
                             "semi-definite (it is a Gram matrix of weight vectors)")
    return K, M


def field_covariance(Q: torch.Tensor, R: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    r"""The covariance :math:`\Omega = [[Q, R], [R^\top, T]]` of (student fields, teacher fields), [..., K+M, K+M].

    References:
        Saad & Solla, Phys. Rev. E 1995; Goldt et al., NeurIPS 2019 (order parameters Q, R, T).
    """
    batch = torch.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2])
    K, M = Q.shape[-1], T.shape[-1]
    Q, R, T = Q.expand(*batch, K, K), R.expand(*batch, K, M), T.expand(*batch, M, M)
    top = torch.cat([Q, R], dim=-1)
    bottom = torch.cat([R.transpose(-1, -2), T], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def committee_averages(omega: torch.Tensor, K: int) -> dict[str, torch.Tensor]:
    """All averages the ODEs need, from the field covariance ``omega`` [..., P, P] (students = first K fields).

    Returns:
        ``I2`` [..., P, P], ``J2`` [..., K, K], ``I3`` [..., K, P, P] (I3[k, b, c] = E[g'(u_k) u_b g(u_c)]),
        ``I4`` [..., K, K, P, P] (I4[k, l, c, d] = E[g'(u_k) g'(u_l) g(u_c) g(u_d)]).

    References:
        Saad & Solla, Phys. Rev. E 1995; Goldt et al., NeurIPS 2019; (C1)-(C4) in this module's numbering.
    """
    d = torch.diagonal(omega, dim1=-2, dim2=-1)  # [..., P]
    out = {"I2": i2_entries(d[..., :, None], omega, d[..., None, :])}
    ds = d[..., :K]
    out["J2"] = j2_entries(ds[..., :, None], omega[..., :K, :K], ds[..., None, :])
    # I3[k, b, c]: 1 = k, 2 = b, 3 = c
    c11 = ds[..., :, None, None]
    c12 = omega[..., :K, :, None]
    c13 = omega[..., :K, None, :]
    c23 = omega[..., None, :, :]
    c33 = d[..., None, None, :]
    out["I3"] = i3_entries(c11, c12, c13, c23, c33)
    # I4[k, l, c, d]: 1 = k, 2 = l, 3 = c, 4 = d
    oks = omega[..., :K, :]  # [..., K, P]
    out["I4"] = i4_entries(
        ds[..., :, None, None, None], omega[..., :K, :K][..., :, :, None, None], oks[..., :, None, :, None],
        oks[..., :, None, None, :], ds[..., None, :, None, None], oks[..., None, :, :, None],
        oks[..., None, :, None, :], d[..., None, None, :, None], omega[..., None, None, :, :],
        d[..., None, None, None, :],
    )
    return out


def generalisation_error(Q: torch.Tensor, R: torch.Tensor, T: torch.Tensor, v: torch.Tensor,
                         v_star: torch.Tensor) -> torch.Tensor:
    r"""(C5) :math:`\epsilon_g = \tfrac12 E_x[(\phi(x) - \phi^*(x))^2] = \tfrac12 \sum_{c,d} s_c s_d I_2(c,d)`,
    :math:`s = (-v, v^*)`, i.e.

    .. math:: \epsilon_g = \tfrac12\sum_{kl} v_k v_l I_2(k,l) + \tfrac12\sum_{nm} v^*_n v^*_m I_2(n,m)
              - \sum_{kn} v_k v^*_n I_2(k,n)

    Args:
        Q [..., K, K], R [..., K, M], T [..., M, M], v [..., K], v_star [..., M] (broadcast over leading dims).

    Returns:
        [...] the noise-free generalisation error.

    References: Saad & Solla 1995; Goldt et al. 2019 (generalisation error in Q, R, T, v). (C5) here.
    """
    check_order_parameters(Q, R, T, v, v_star, psd=False)
    omega = field_covariance(Q, R, T)
    d = torch.diagonal(omega, dim1=-2, dim2=-1)
    i2 = i2_entries(d[..., :, None], omega, d[..., None, :])
    s = _signed_weights(v, v_star)
    return 0.5 * torch.einsum("...c,...cd,...d->...", s, i2, s)


def _signed_weights(v: torch.Tensor, v_star: torch.Tensor) -> torch.Tensor:
    batch = torch.broadcast_shapes(v.shape[:-1], v_star.shape[:-1])
    return torch.cat([-v.expand(*batch, v.shape[-1]), v_star.expand(*batch, v_star.shape[-1])], dim=-1)


# -- the ODEs ----------------------------------------------------------------------------------


def _check_rates(lr: float, lr_v: float | None, noise_var: float) -> float:
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if lr_v is not None and (not isinstance(lr_v, (int, float)) or not math.isfinite(lr_v) or lr_v < 0):
        raise ValueError(f"lr_v must be a non-negative finite number, got {lr_v!r}")
    if not isinstance(noise_var, (int, float)) or not math.isfinite(noise_var) or noise_var < 0:
        raise ValueError(f"noise_var must be a non-negative finite number, got {noise_var!r}")
    return float(lr if lr_v is None else lr_v)


def ode_rhs(Q: torch.Tensor, R: torch.Tensor, T: torch.Tensor, v: torch.Tensor, v_star: torch.Tensor,
            lr: float, *, lr_v: float | None = None, train_second_layer: bool = True,
            noise_var: float = 0.0, validate: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Right-hand side (C6)-(C8) of the online-SGD ODEs in :math:`\alpha = \text{steps}/N`.

    .. math::
        \frac{dR_{kn}}{d\alpha} = \eta v_k\Big[\sum_m v^*_m I_3(k,n,m) - \sum_j v_j I_3(k,n,j)\Big],\qquad
        \frac{dv_k}{d\alpha} = \eta_v\Big[\sum_n v^*_n I_2(k,n) - \sum_j v_j I_2(k,j)\Big]

        \frac{dQ_{kl}}{d\alpha} = \eta v_k\Big[\sum_m v^*_m I_3(k,l,m) - \sum_j v_j I_3(k,l,j)\Big]
          + (k\leftrightarrow l)
          + \eta^2 v_k v_l\Big[\sum_{nm} v^*_n v^*_m I_4(k,l,n,m) - 2\sum_{jn} v_j v^*_n I_4(k,l,j,n)
          + \sum_{ij} v_i v_j I_4(k,l,i,j) + \sigma^2 J_2(k,l)\Big]

    (the second index of I3 is the one that carries the bare field; T is constant).

    How it is computed (all K x (K+M) and K x K x (K+M) x (K+M) blocks at once, a fixed number of tensor
    operations whatever K and M). With :math:`e_a = 1 + \Omega_{aa}` and :math:`s = (-v, v^*)`:

    * (C3) is affine in the bare field's covariances, so the sum over the third field is a matrix product:
      :math:`A_{kb} = \sum_c s_c I_3(k,b,c)
      = \frac{2}{\pi}\big[(W\Omega)_{kb} - \Omega_{kb}\sum_c W_{kc}\Omega_{kc}/e_k\big]`,
      :math:`W_{kc} = s_c / \sqrt{e_k e_c - \Omega_{kc}^2}`.
    * (C4) for the student pair (k, l): :math:`\Lambda_0(c, d) = \Lambda_4\Omega_{cd} - z_c^\top \mathrm{adj}(S)\, z_d`
      with :math:`S = [[e_k, \Omega_{kl}], [\Omega_{kl}, e_l]]` (:math:`\det S = \Lambda_4`) and
      :math:`z_c = (\Omega_{kc}, \Omega_{lc})`; and :math:`\Lambda_1(c) = \Lambda_0(c, c) + \Lambda_4` (expand both
      in the module docstring's definitions). So one [K, K, P, P] tensor gives every :math:`I_4(k,l,c,d)`.
    * (C2) :math:`J_2(k, l) = \frac{2}{\pi}\Lambda_4^{-1/2}` reuses :math:`\Lambda_4`.

    Args:
        Q, R, T, v, v_star: order parameters (see :func:`generalisation_error`), any common leading dims.
        lr: first-layer learning rate eta (the SGD step on w_k is eta/sqrt(N) v_k g'(lambda_k) Delta x).
        lr_v: second-layer learning rate (the SGD step on v is lr_v/N g(lambda_k) Delta); default lr.
        train_second_layer: if False, dv/dalpha = 0 (Saad & Solla's setting).
        noise_var: sigma^2 of the output noise on the teacher's labels.
        validate: check shapes and finiteness (skip it inside an integrator, where the inputs are known good).

    Returns:
        (dQ, dR, dv) with the shapes of (Q, R, v) broadcast to the common leading dims.

    References: Saad & Solla 1995 (equations of motion for Q and R, the averages I3 and I4);
    Goldt et al. 2019 (with second-layer learning and output noise). (C2)-(C4), (C6)-(C8) here.
    """
    lr_v = _check_rates(lr, lr_v, noise_var)
    if validate:
        check_order_parameters(Q, R, T, v, v_star, psd=False)
    return _rhs(Q, R, T, v, v_star, float(lr), lr_v, bool(train_second_layer), float(noise_var))


# Array functions the right-hand side needs, for torch tensors (ode_rhs) and numpy arrays (the integrators,
# where numpy's smaller per-call overhead matters: a K = M = 2 state has 10 numbers).
_TORCH_OPS = SimpleNamespace(sqrt=torch.sqrt, asin=torch.asin, clip=torch.clamp, concat=torch.cat,
                             broadcast_to=torch.broadcast_to, zeros_like=torch.zeros_like)
_NUMPY_OPS = SimpleNamespace(sqrt=np.sqrt, asin=np.arcsin, clip=np.clip, concat=np.concatenate,
                             broadcast_to=np.broadcast_to, zeros_like=np.zeros_like)


def _rhs(Q, R, T, v, v_star, lr: float, lr_v: float, train_second_layer: bool, noise_var: float):
    """(C6)-(C8) without checks, on torch tensors or numpy arrays; see :func:`ode_rhs` for the algebra."""
    xp = _NUMPY_OPS if isinstance(Q, np.ndarray) else _TORCH_OPS
    K, M = Q.shape[-1], T.shape[-1]
    batch = tuple(np.broadcast_shapes(Q.shape[:-2], R.shape[:-2], T.shape[:-2], v.shape[:-1], v_star.shape[:-1]))
    R = xp.broadcast_to(R, (*batch, K, M))
    ok = xp.concat([xp.broadcast_to(Q, (*batch, K, K)), R], -1)  # student rows Omega_kc, [..., K, P]
    omega = xp.concat([ok, xp.concat([R.swapaxes(-1, -2), xp.broadcast_to(T, (*batch, M, M))], -1)], -2)
    vv = xp.broadcast_to(v, (*batch, K))
    s = xp.concat([-vv, xp.broadcast_to(v_star, (*batch, M))], -1)  # [..., P]
    e = 1.0 + omega.diagonal(0, -2, -1)  # [..., P]
    ek = e[..., :K]
    prod = ek[..., :, None] * e[..., None, :]  # e_k e_c, [..., K, P]
    # (C3) summed over the third field: A[k, b] = sum_c s_c I3(k, b, c)
    w = s[..., None, :] / xp.sqrt(prod - ok * ok)
    A = TWO_OVER_PI * (w @ omega - ok * ((w * ok).sum(-1) / ek)[..., None])
    # (C4) on the [K, K, P, P] block: Lambda_0 as a quadratic form in (Omega_kc, Omega_lc), Lambda_1 its diagonal
    okk = ok[..., :K]  # Omega_kl
    lam4 = ek[..., :, None] * ek[..., None, :] - okk * okk  # [..., K, K]
    same = ok[..., :, :, None] * ok[..., :, None, :]  # Omega_kc Omega_kd, [..., K, P, P]
    cross = ok[..., :, None, :, None] * ok[..., None, :, None, :]  # Omega_kc Omega_ld, [..., K, K, P, P]
    lam0 = (lam4[..., None, None] * omega[..., None, None, :, :]
            - ek[..., None, :, None, None] * same[..., :, None, :, :]
            - ek[..., :, None, None, None] * same[..., None, :, :, :]
            + okk[..., None, None] * (cross + cross.swapaxes(-1, -2)))
    lam1 = lam0.diagonal(0, -2, -1) + lam4[..., None]  # [..., K, K, P]
    arc = xp.asin(xp.clip(lam0 / xp.sqrt(lam1[..., :, None] * lam1[..., None, :]), -1.0, 1.0))
    quad = ((arc @ s[..., None, None, :, None])[..., 0] * s[..., None, None, :]).sum(-1)  # sum_cd s_c s_d
    inv_root4 = 1.0 / xp.sqrt(lam4)
    B = TWO_OVER_PI**2 * inv_root4 * quad
    if noise_var:
        B = B + noise_var * TWO_OVER_PI * inv_root4  # sigma^2 J2(k, l)
    vcol = vv[..., :, None]
    drift = lr * vcol * A[..., :, :K]
    dQ = drift + drift.swapaxes(-1, -2) + (lr * lr) * vcol * vv[..., None, :] * B
    dR = lr * vcol * A[..., :, K:]
    if train_second_layer:
        i2 = TWO_OVER_PI * xp.asin(xp.clip(ok / xp.sqrt(prod), -1.0, 1.0))  # (C1) rows of the students
        dv = lr_v * (i2 @ s[..., :, None])[..., 0]
    else:
        dv = xp.zeros_like(vv)
    return dQ, dR, dv


@dataclass
class ODESolution:
    """A solution of the committee ODEs on a grid of times.

    Attributes:
        alpha [A]; Q [..., A, K, K]; R [..., A, K, M]; v [..., A, K]; eps [..., A] (generalisation error).
        method: "rk4" or a scipy solve_ivp method.
        error: estimated max absolute error over Q, R, v at the grid (None if not estimated). RK4: Richardson
            estimate |y_h - y_{h/2}|/15 of the returned y_{h/2}. solve_ivp: max |y(rtol) - y(10 rtol)|, the
            change when the tolerances are tightened tenfold to the returned ones (an upper estimate: it is the
            error of the looser solution).
        eps_error: the same estimate for eps.
        details: RK4: dt (final step), halvings, tol_met. solve_ivp: rtol/atol (of the returned solution),
            nfev, njev, nlu, steps (accepted), max_step, tightenings, tol_met. Both: error_rule.

    References:
        Saad & Solla, Phys. Rev. E 1995; Goldt et al., NeurIPS 2019; (C5)-(C8) in this module's numbering.
    """

    alpha: np.ndarray
    Q: torch.Tensor
    R: torch.Tensor
    v: torch.Tensor
    eps: torch.Tensor
    method: str
    error: float | None = None
    eps_error: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _pack(Q, R, v):
    return torch.cat([Q.flatten(-2), R.flatten(-2), v], dim=-1)


def _unpack(y, K, M):
    Q = y[..., : K * K].unflatten(-1, (K, K))
    R = y[..., K * K: K * K + K * M].unflatten(-1, (K, M))
    v = y[..., K * K + K * M:]
    return Q, R, v


def _positive(value, name: str, *, allow_none: bool = False, floor: float = 0.0) -> None:
    if value is None and allow_none:
        return
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value <= 0 or value < floor):
        accepted = f"a finite number >= {floor:.3g}" if floor > 0 else "a positive finite number"
        raise ValueError(f"{name} must be {accepted}{' or None' if allow_none else ''}, got {value!r}")


def integrate_ode(
    Q0: torch.Tensor, R0: torch.Tensor, T: torch.Tensor, v0: torch.Tensor, v_star: torch.Tensor,
    alphas, lr: float, *, lr_v: float | None = None, train_second_layer: bool = True, noise_var: float = 0.0,
    method: str = "DOP853", dt: float = 0.05, tol: float | None = None, max_halvings: int = 8,
    rtol: float = 1e-9, atol: float = 1e-11, estimate_error: bool = True,
) -> ODESolution:
    r"""Integrate (C6)-(C8) from (Q0, R0, v0) and report the solution at ``alphas``.

    Default: :func:`scipy.integrate.solve_ivp` with ``method`` ("DOP853", or "RK45", "RK23", "Radau", "BDF",
    "LSODA") under local error control ``rtol``/``atol``, read off its dense output at ``alphas``; the batch is one
    state vector. With ``estimate_error`` the problem is solved again at ten times looser tolerances and
    the largest difference is reported as the error; with ``tol`` the tolerances are tightened tenfold (at most
    ``max_halvings`` times, not below ``RTOL_MIN``) until that estimate is at most tol.

    ``method="rk4"`` (for a check that needs a known step): classical RK4 with constant steps of at most ``dt``
    between grid points, run with dt and dt/2; the error of the dt/2 solution is estimated by Richardson
    extrapolation, :math:`|y_h - y_{h/2}|/15`. With ``tol``, dt is halved (at most ``max_halvings`` times) until
    that estimate is at most tol. Without ``estimate_error`` (and ``tol``) only the dt run is made.

    The integration runs in float64 on the CPU, on numpy arrays, whatever the inputs' dtype and device (the
    state has K^2 + KM + K numbers per problem, so the cost is the per-call overhead of the array library, which
    is several times smaller for numpy than for torch); results are cast back.

    Args:
        Q0 [..., K, K], R0 [..., K, M], T [..., M, M], v0 [..., K], v_star [..., M]: initial order parameters.
        alphas: increasing times, starting at 0 (1-D array-like).
        lr, lr_v, train_second_layer, noise_var: see :func:`ode_rhs`.
        method: "DOP853" (default), one of ``ODE_METHODS``.
        dt: largest RK4 step (validated, used by "rk4" only).
        tol: target for the estimated max absolute error of (Q, R, v), or None.
        max_halvings: most step halvings (rk4) or tenfold tolerance tightenings (solve_ivp) to reach ``tol``.
        rtol, atol: solve_ivp's relative and absolute tolerances (ignored by "rk4"); rtol >= ``RTOL_MIN``.
        estimate_error: also solve at a coarser setting and report the difference as ``error``/``eps_error``.

    Returns:
        :class:`ODESolution` (dtype and device of Q0).

    Raises:
        ValueError: a bad argument (named in the message). RuntimeError: solve_ivp did not reach alphas[-1].

    References: Saad & Solla 1995; Goldt et al. 2019. E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary
    Differential Equations I", Springer (1993), Sec. II.10 (DOP853, dense output) and II.4 (Richardson error
    estimate for step halving).
    """
    _check_rates(lr, lr_v, noise_var)
    K, M = check_order_parameters(Q0, R0, T, v0, v_star)
    alphas = np.asarray(alphas, dtype=float)
    if alphas.ndim != 1 or alphas.size < 1 or not np.all(np.isfinite(alphas)):
        raise ValueError("alphas must be a non-empty 1-D array of finite times")
    if alphas[0] != 0.0 or np.any(np.diff(alphas) <= 0):
        raise ValueError("alphas must start at 0 and increase strictly")
    if not isinstance(method, str) or method not in ODE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ODE_METHODS)}, got {method!r}")
    _positive(dt, "dt")
    _positive(tol, "tol", allow_none=True)
    _positive(rtol, "rtol", floor=RTOL_MIN)
    _positive(atol, "atol")
    if isinstance(max_halvings, bool) or not isinstance(max_halvings, int) or max_halvings < 0:
        raise ValueError(f"max_halvings must be a non-negative integer, got {max_halvings!r}")
    if not isinstance(estimate_error, bool):
        raise TypeError(f"estimate_error must be a bool, got {type(estimate_error).__name__}")
    dtype, device = Q0.dtype, Q0.device
    batch = torch.broadcast_shapes(Q0.shape[:-2], R0.shape[:-2], T.shape[:-2], v0.shape[:-1], v_star.shape[:-1])
    T = T.detach().to(device="cpu", dtype=torch.float64).expand(*batch, M, M)
    v_star = v_star.detach().to(device="cpu", dtype=torch.float64).expand(*batch, M)
    y0 = _pack(Q0.detach().cpu().double().expand(*batch, K, K), R0.detach().cpu().double().expand(*batch, K, M),
               v0.detach().cpu().double().expand(*batch, K)).numpy()
    T_np, v_star_np = T.numpy(), v_star.numpy()
    lr_v = _check_rates(lr, lr_v, noise_var)
    args = (float(lr), lr_v, bool(train_second_layer), float(noise_var))
    sizes = [K * K, K * K + K * M]

    def f(y: np.ndarray) -> np.ndarray:
        q, r, v = np.split(y, sizes, axis=-1)
        dQ, dR, dv = _rhs(q.reshape(*batch, K, K), r.reshape(*batch, K, M), T_np, v, v_star_np, *args)
        return np.concatenate([dQ.reshape(*batch, K * K), dR.reshape(*batch, K * M), dv], -1)

    if method == "rk4":
        ys, error, eps_error, details = _integrate_rk4(f, y0, alphas, T, v_star, K, M, dt, tol, max_halvings,
                                                       estimate_error)
    else:
        ys, error, eps_error, details = _integrate_ivp(f, y0, alphas, T, v_star, K, M, method, tol,
                                                       max_halvings, rtol, atol, estimate_error)
    eps = _eps_from_state(ys, T, v_star, K, M)
    Q, R, v = (t.to(device=device, dtype=dtype) for t in _unpack(ys, K, M))
    return ODESolution(alphas, Q, R, v, eps.to(device=device, dtype=dtype), method, error, eps_error, details)


def _integrate_rk4(f, y0, alphas, T, v_star, K, M, dt, tol, max_halvings, estimate_error):
    """Fixed-step RK4 (steps of at most dt, landing on every grid point) with Richardson step halving."""
    def run(h: float) -> torch.Tensor:
        ys, y = [y0], y0
        for a, b in itertools.pairwise(alphas):
            n = max(1, math.ceil((b - a) / h - 1e-9))
            y = rk4(f, y, (b - a) / n, n)
            ys.append(y)
        return torch.from_numpy(np.stack(ys, axis=-2))

    h = float(dt)
    coarse = run(h)
    if tol is None and not estimate_error:
        return coarse, None, None, {"dt": h, "halvings": 0, "tol_met": None, "error_rule": "none (one RK4 run)"}
    halvings = 0
    while True:
        fine = run(h / 2)
        err = float((fine - coarse).abs().amax()) / 15.0
        if tol is None or err <= tol or halvings >= max_halvings:
            break
        coarse, h, halvings = fine, h / 2, halvings + 1
    eps_c = _eps_from_state(coarse, T, v_star, K, M)
    eps_f = _eps_from_state(fine, T, v_star, K, M)
    details = {"dt": h / 2, "halvings": halvings, "tol_met": None if tol is None else err <= tol,
               "error_rule": "Richardson |y(dt) - y(dt/2)|/15 (RK4, order 4)"}
    return fine, err, float((eps_f - eps_c).abs().amax()) / 15.0, details


def _integrate_ivp(f, y0, alphas, T, v_star, K, M, method, tol, max_halvings, rtol, atol, estimate_error):
    """solve_ivp on the flattened batch, read at ``alphas`` from the dense output; failures raise."""
    from scipy.integrate import solve_ivp

    shape = y0.shape
    flat0 = y0.reshape(-1)
    stats = {"nfev": 0, "njev": 0, "nlu": 0}

    def fun(_t, flat):
        return f(flat.reshape(shape)).reshape(-1)

    def solve(r: float, a: float) -> tuple[torch.Tensor, dict]:
        sol = solve_ivp(fun, (0.0, float(alphas[-1])), flat0, method=method, rtol=r, atol=a, dense_output=True)
        for key in stats:
            stats[key] += int(getattr(sol, key))
        if sol.status != 0:
            raise RuntimeError(f"solve_ivp ({method}, rtol={r:g}, atol={a:g}) failed at alpha={sol.t[-1]:g} of "
                               f"{alphas[-1]:g}: {sol.message}")
        ys = torch.from_numpy(np.ascontiguousarray(sol.sol(alphas).T)).reshape(len(alphas), *shape).movedim(0, -2)
        steps = np.diff(sol.t)
        return ys, {"rtol": r, "atol": a, "steps": int(steps.size), "max_step": float(steps.max(initial=0.0))}

    if alphas.size == 1:  # nothing to integrate
        ys = torch.from_numpy(y0).unsqueeze(-2)
        return ys, 0.0, 0.0, {"rtol": rtol, "atol": atol, "steps": 0, "max_step": 0.0} | stats | {
            "tightenings": 0, "tol_met": None if tol is None else True, "error_rule": "exact (alphas = [0])"}
    fine, info = solve(rtol, atol)
    error = eps_error = None
    tightenings = 0
    if estimate_error or tol is not None:
        loose, _ = solve(min(10.0 * rtol, 0.1), 10.0 * atol)
        while True:
            error = float((fine - loose).abs().amax())
            if tol is None or error <= tol or tightenings >= max_halvings or info["rtol"] / 10 < RTOL_MIN:
                break
            loose = fine
            fine, info = solve(info["rtol"] / 10, info["atol"] / 10)
            tightenings += 1
        eps_error = float((_eps_from_state(fine, T, v_star, K, M) - _eps_from_state(loose, T, v_star, K, M))
                          .abs().amax())
    details = info | stats | {
        "tightenings": tightenings, "tol_met": None if tol is None else error <= tol,
        "error_rule": ("solve_ivp local error control; error = max |y(rtol, atol) - y(10 rtol, 10 atol)|"
                       if error is not None else "solve_ivp local error control (no estimate)"),
    }
    return fine, error, eps_error, details


def _eps_from_state(ys: torch.Tensor, T, v_star, K, M) -> torch.Tensor:
    Q, R, v = _unpack(ys, K, M)
    A = ys.shape[-2]
    Tt = T.unsqueeze(-3).expand(*T.shape[:-2], A, M, M)
    vs = v_star.unsqueeze(-2).expand(*v_star.shape[:-1], A, M)
    return generalisation_error(Q, R, Tt, v, vs)


# -- sympy twins -------------------------------------------------------------------------------


@functools.cache
def symbolic_j2():
    r"""(C2) from the Gaussian integral: :math:`E[e^{-u^\top u/2}] = (\det C \det(C^{-1} + I))^{-1/2}`, and
    :math:`\det C\,\det(C^{-1}+I) = \det(I + C)`; the printed form has
    :math:`\det(I + C) = (1+C_{11})(1+C_{22}) - C_{12}^2`.

    Returns:
        (derived, printed, derived - printed simplified) as sympy expressions.

    References:
        Goldt et al., NeurIPS 2019; (C2) in this module's numbering.
    """
    import sympy as sp

    a, b = sp.symbols("C11 C22", positive=True)
    c = sp.symbols("C12", real=True)
    C = sp.Matrix([[a, c], [c, b]])
    derived = sp.Rational(2) / sp.pi / sp.sqrt(sp.simplify(C.det() * (C.inv() + sp.eye(2)).det()))
    printed = 2 / sp.pi / sp.sqrt((1 + a) * (1 + b) - c**2)
    return derived, printed, sp.simplify(derived - printed)


@functools.cache
def symbolic_i2():
    r"""(C1) by Price's theorem: integrate :math:`J_2` over :math:`C_{12}` from 0 (where :math:`I_2 = 0`, g odd).

    Returns:
        (derived, printed, derived - printed simplified).

    References:
        Saad & Solla, Phys. Rev. E 1995; (C1) in this module's numbering.
    """
    import sympy as sp

    a, b, S = sp.symbols("C11 C22 S", positive=True)  # S = sqrt((1 + C11)(1 + C22)) > |C12|
    c, t = sp.symbols("C12 t", real=True)
    j2 = 2 / sp.pi / sp.sqrt(S**2 - t**2)  # J2 at C12 = t, i.e. (C2)
    derived = sp.integrate(j2, (t, 0, c), conds="none").subs(S, sp.sqrt((1 + a) * (1 + b)))
    printed = 2 / sp.pi * sp.asin(c / sp.sqrt((1 + a) * (1 + b)))
    return derived, printed, sp.simplify(derived - printed)


@functools.cache
def symbolic_i3():
    r"""(C3) from Stein's lemma. With :math:`h = g'(u_1) g(u_3)`:
    :math:`E[u_2 h] = C_{12} E[g''(u_1)g(u_3)] + C_{23} E[g'(u_1)g'(u_3)]`; and since :math:`g'' = -x g'`,
    :math:`E[g''(u_1)g(u_3)] = -E[u_1 g'(u_1) g(u_3)] = -C_{11}E[g''(u_1)g(u_3)] - C_{13}J_2(1,3)`.
    Solving the linear equation gives (C3).

    Returns:
        (derived, printed, derived - printed simplified).

    References:
        Saad & Solla, Phys. Rev. E 1995; (C3) in this module's numbering.
    """
    import sympy as sp

    c11, c33 = sp.symbols("C11 C33", positive=True)
    c12, c13, c23, X = sp.symbols("C12 C13 C23 X", real=True)
    lam3 = (1 + c11) * (1 + c33) - c13**2
    j2_13 = 2 / sp.pi / sp.sqrt(lam3)
    (x_sol,) = sp.solve(sp.Eq(X, -c11 * X - c13 * j2_13), X)  # X = E[g''(u1) g(u3)]
    derived = c12 * x_sol + c23 * j2_13
    printed = 2 / sp.pi / sp.sqrt(lam3) * (c23 * (1 + c11) - c12 * c13) / (1 + c11)
    return derived, printed, sp.simplify(derived - printed)


@functools.cache
def symbolic_i4_price(points: int = 5, seed: int = 0) -> tuple[Any, float]:
    r"""(C4) checked with Price's theorem: :math:`\partial_{C_{34}} I_4 = E[g'(u_1)g'(u_2)g'(u_3)g'(u_4)]
    = \frac{4}{\pi^2}\det(I + C)^{-1/2}`, the derivative taken symbolically and compared at ``points`` random
    positive-definite rational covariances (50 digits).

    Returns:
        (the symbolic derivative minus the Price form, the largest |difference| at the points).

    References:
        Saad & Solla, Phys. Rev. E 1995; (C4) in this module's numbering.
    """
    import sympy as sp

    names = ["C11", "C12", "C13", "C14", "C22", "C23", "C24", "C33", "C34", "C44"]
    sym = dict(zip(names, sp.symbols(" ".join(names), real=True)))
    c = sym
    lam4 = (1 + c["C11"]) * (1 + c["C22"]) - c["C12"] ** 2
    lam0 = (lam4 * c["C34"] - c["C23"] * c["C24"] * (1 + c["C11"]) - c["C13"] * c["C14"] * (1 + c["C22"])
            + c["C12"] * c["C13"] * c["C24"] + c["C12"] * c["C14"] * c["C23"])
    lam1 = (lam4 * (1 + c["C33"]) - c["C23"] ** 2 * (1 + c["C11"]) - c["C13"] ** 2 * (1 + c["C22"])
            + 2 * c["C12"] * c["C13"] * c["C23"])
    lam2 = (lam4 * (1 + c["C44"]) - c["C24"] ** 2 * (1 + c["C11"]) - c["C14"] ** 2 * (1 + c["C22"])
            + 2 * c["C12"] * c["C14"] * c["C24"])
    i4 = 4 / sp.pi**2 / sp.sqrt(lam4) * sp.asin(lam0 / sp.sqrt(lam1 * lam2))
    C = sp.Matrix([[c["C11"], c["C12"], c["C13"], c["C14"]], [c["C12"], c["C22"], c["C23"], c["C24"]],
                   [c["C13"], c["C23"], c["C33"], c["C34"]], [c["C14"], c["C24"], c["C34"], c["C44"]]])
    price = 4 / sp.pi**2 / sp.sqrt((sp.eye(4) + C).det())
    difference = sp.diff(i4, c["C34"]) - price
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(points):
        A = rng.integers(-4, 5, size=(4, 6))
        G = sp.Matrix(A) * sp.Matrix(A).T / 6
        subs = {c[f"C{i + 1}{j + 1}"]: G[i, j] for i in range(4) for j in range(i, 4)}
        worst = max(worst, abs(float(difference.subs(subs).evalf(50))))
    return difference, worst


# -- the symmetric plateau (Saad & Solla 1995) ---------------------------------------------------------------


def symmetric_plateau(K: int) -> dict[str, float]:
    r"""The symmetric fixed point of (C6)-(C7) for K = M, T = I, v = v* = 1 (first layer trained) in the limit
    :math:`\eta \to 0`: :math:`Q = C = 1/(2K-1)`, :math:`R = S = 1/\sqrt{K(2K-1)}` (all students equal, each
    overlapping every teacher equally), with generalisation error
    :math:`\epsilon^* = \frac{K}{\pi}\big(\frac{\pi}{6} - K\arcsin\frac{1}{2K}\big)` (the plateau height).

    Derivation: on the symmetric subspace the O(eta) part of (C6)-(C7) vanishes where the student field equals the
    teachers' mean field in law; (C5) at that point gives eps*. Checked against :func:`ode_rhs` in scm.plateau.

    References:
        Saad & Solla, Phys. Rev. E 52, 4225 (1995), the symmetric phase (plateau) of the soft committee machine.
    """
    if isinstance(K, bool) or not isinstance(K, int) or K < 2:
        raise ValueError(f"K must be an integer >= 2, got {K!r}")
    return {"Q": 1.0 / (2 * K - 1), "C": 1.0 / (2 * K - 1), "R": 1.0 / math.sqrt(K * (2 * K - 1)),
            "S": 1.0 / math.sqrt(K * (2 * K - 1)), "eps": K / math.pi * (math.pi / 6 - K * math.asin(1 / (2 * K)))}


def symmetric_subspace_point(K: int, Q: float, C: float, R: float, S: float, dtype=torch.float64):
    """(Q [K, K], R [K, K]) with diagonal Q (R) and off-diagonal C (S): a point of the symmetric subspace."""
    eye = torch.eye(K, dtype=dtype)
    return Q * eye + C * (1 - eye), R * eye + S * (1 - eye)
