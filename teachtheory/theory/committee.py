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

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "g", "g_prime", "i2_entries", "j2_entries", "i3_entries", "i4_entries", "I2", "J2", "I3", "I4",
    "field_covariance", "committee_averages", "generalisation_error", "ode_rhs", "integrate_ode", "ODESolution",
    "check_order_parameters", "torch_threads", "symbolic_i2", "symbolic_j2", "symbolic_i3", "symbolic_i4_price",
]

TWO_OVER_PI = 2.0 / math.pi
ODE_METHODS = ("rk4", "RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")


def g(x: torch.Tensor) -> torch.Tensor:
    r""":math:`g(x) = \mathrm{erf}(x/\sqrt 2)`."""
    return torch.erf(x * (1.0 / math.sqrt(2.0)))


def g_prime(x: torch.Tensor) -> torch.Tensor:
    r""":math:`g'(x) = \sqrt{2/\pi}\, e^{-x^2/2}`."""
    return math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * x * x)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily run torch's CPU kernels on ``n`` threads (None: leave as is). Loops over many tiny tensors
    are fastest on one thread: some float64 kernels (erf) open a parallel region whatever the size, which costs
    milliseconds per call on a busy machine."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    r"""(C1) :math:`E[g(u_1)g(u_2)]` for :math:`u \sim N(0, C)`, C of shape [..., 2, 2]; returns [...]."""
    _check_covariance(C, 2)
    return i2_entries(C[..., 0, 0], C[..., 0, 1], C[..., 1, 1])


def J2(C: torch.Tensor) -> torch.Tensor:
    r"""(C2) :math:`E[g'(u_1)g'(u_2)]` for :math:`u \sim N(0, C)`, C of shape [..., 2, 2]; returns [...]."""
    _check_covariance(C, 2)
    return j2_entries(C[..., 0, 0], C[..., 0, 1], C[..., 1, 1])


def I3(C: torch.Tensor) -> torch.Tensor:
    r"""(C3) :math:`E[g'(u_1)\,u_2\,g(u_3)]` for :math:`u \sim N(0, C)`, C of shape [..., 3, 3]; returns [...]."""
    _check_covariance(C, 3)
    return i3_entries(C[..., 0, 0], C[..., 0, 1], C[..., 0, 2], C[..., 1, 2], C[..., 2, 2])


def I4(C: torch.Tensor) -> torch.Tensor:
    r"""(C4) :math:`E[g'(u_1)g'(u_2)g(u_3)g(u_4)]` for :math:`u \sim N(0, C)`, C of shape [..., 4, 4]; returns [...]."""
    _check_covariance(C, 4)
    c = lambda i, j: C[..., i, j]  # noqa: E731
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
    r"""The covariance :math:`\Omega = [[Q, R], [R^\top, T]]` of (student fields, teacher fields), [..., K+M, K+M]."""
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

    Args:
        Q, R, T, v, v_star: order parameters (see :func:`generalisation_error`), any common leading dims.
        lr: first-layer learning rate eta (the SGD step on w_k is eta/sqrt(N) v_k g'(lambda_k) Delta x).
        lr_v: second-layer learning rate (the SGD step on v is lr_v/N g(lambda_k) Delta); default lr.
        train_second_layer: if False, dv/dalpha = 0 (Saad & Solla's setting).
        noise_var: sigma^2 of the output noise on the teacher's labels.

    Returns:
        (dQ, dR, dv) with the shapes of (Q, R, v) broadcast to the common leading dims.

    References: Saad & Solla 1995 (equations of motion for Q and R);
    Goldt et al. 2019 (with second-layer learning and output noise). (C6)-(C8) here.
    """
    lr_v = _check_rates(lr, lr_v, noise_var)
    if validate:
        check_order_parameters(Q, R, T, v, v_star, psd=False)
    K = Q.shape[-1]
    omega = field_covariance(Q, R, T)
    av = committee_averages(omega, K)
    s = _signed_weights(v, v_star)  # [..., P]
    A = torch.einsum("...kbc,...c->...kb", av["I3"], s)  # E[g'(lambda_k) u_b Delta]
    B = torch.einsum("...klcd,...c,...d->...kl", av["I4"], s, s) + noise_var * av["J2"]
    vv = v.expand(*omega.shape[:-2], K)
    drift = lr * vv[..., :, None] * A[..., :, :K]
    dQ = drift + drift.transpose(-1, -2) + lr * lr * vv[..., :, None] * vv[..., None, :] * B
    dR = lr * vv[..., :, None] * A[..., :, K:]
    if train_second_layer:
        dv = lr_v * torch.einsum("...kc,...c->...k", av["I2"][..., :K, :], s)
    else:
        dv = torch.zeros_like(vv)
    return dQ, dR, dv


@dataclass
class ODESolution:
    """A solution of the committee ODEs on a grid of times.

    Attributes:
        alpha [A]; Q [..., A, K, K]; R [..., A, K, M]; v [..., A, K]; eps [..., A] (generalisation error).
        method: "rk4" or a scipy solve_ivp method.
        error: estimated max absolute error over Q, R, v (RK4: Richardson estimate |y_h - y_{h/2}|/15 of the
            returned solution y_{h/2}; solve_ivp: None, see rtol/atol).
        eps_error: the same estimate for eps (RK4 only).
        details: dt (RK4 final step), halvings, rtol/atol/nfev (solve_ivp).
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


def integrate_ode(
    Q0: torch.Tensor, R0: torch.Tensor, T: torch.Tensor, v0: torch.Tensor, v_star: torch.Tensor,
    alphas, lr: float, *, lr_v: float | None = None, train_second_layer: bool = True, noise_var: float = 0.0,
    method: str = "rk4", dt: float = 0.05, tol: float | None = None, max_halvings: int = 8,
    rtol: float = 1e-9, atol: float = 1e-11, threads: int | None = 1,
) -> ODESolution:
    r"""Integrate (C6)-(C8) from (Q0, R0, v0) and report the solution at ``alphas``.

    ``method="rk4"``: classical RK4 with constant steps of at most ``dt`` between grid points, run with dt and
    dt/2; the error of the dt/2 solution is estimated by Richardson extrapolation, :math:`|y_h - y_{h/2}|/15`.
    With ``tol``, dt is halved (at most ``max_halvings`` times) until that estimate is at most tol.
    Any other ``method`` is passed to :func:`scipy.integrate.solve_ivp` (e.g. "RK45", "DOP853", "LSODA") with
    ``rtol``/``atol``; the batch is integrated as one state vector.

    Args:
        Q0 [..., K, K], R0 [..., K, M], T [..., M, M], v0 [..., K], v_star [..., M]: initial order parameters.
        alphas: increasing times, starting at 0 (1-D array-like).
        lr, lr_v, train_second_layer, noise_var: see :func:`ode_rhs`.
        threads: torch CPU threads while integrating (default 1: the tensors are small; None leaves it alone).

    Returns:
        :class:`ODESolution` (dtype and device of Q0).

    References: Saad & Solla 1995; Goldt et al. 2019.
    """
    _check_rates(lr, lr_v, noise_var)
    K, M = check_order_parameters(Q0, R0, T, v0, v_star)
    alphas = np.asarray(alphas, dtype=float)
    if alphas.ndim != 1 or alphas.size < 1 or not np.all(np.isfinite(alphas)):
        raise ValueError("alphas must be a non-empty 1-D array of finite times")
    if alphas[0] != 0.0 or np.any(np.diff(alphas) <= 0):
        raise ValueError("alphas must start at 0 and increase strictly")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number, got {dt!r}")
    if method not in ODE_METHODS:
        raise ValueError(f"method must be one of {', '.join(ODE_METHODS)}, got {method!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive number or None, got {tol!r}")
    batch = torch.broadcast_shapes(Q0.shape[:-2], R0.shape[:-2], T.shape[:-2], v0.shape[:-1], v_star.shape[:-1])
    Q0, R0, T = Q0.expand(*batch, K, K), R0.expand(*batch, K, M), T.expand(*batch, M, M)
    v0, v_star = v0.expand(*batch, K), v_star.expand(*batch, M)
    kwargs = dict(lr=lr, lr_v=lr_v, train_second_layer=train_second_layer, noise_var=noise_var, validate=False)

    def f(y: torch.Tensor) -> torch.Tensor:
        Q, R, v = _unpack(y, K, M)
        dQ, dR, dv = ode_rhs(Q, R, T, v, v_star, **kwargs)
        return _pack(dQ, dR, dv)

    with torch_threads(None if Q0.device.type == "cuda" else threads):
        return _integrate(f, _pack(Q0, R0, v0), alphas, T, v_star, K, M, method, dt, tol, max_halvings, rtol, atol)


def _integrate(f, y0, alphas, T, v_star, K, M, method, dt, tol, max_halvings, rtol, atol) -> ODESolution:
    details: dict[str, Any] = {}
    if method == "rk4":
        def run(h: float) -> torch.Tensor:
            ys, y = [y0], y0
            for a, b in zip(alphas[:-1], alphas[1:]):
                n = max(1, int(math.ceil((b - a) / h - 1e-9)))
                step = (b - a) / n
                for _ in range(n):
                    k1 = f(y)
                    k2 = f(y + 0.5 * step * k1)
                    k3 = f(y + 0.5 * step * k2)
                    k4 = f(y + step * k3)
                    y = y + step / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
                ys.append(y)
            return torch.stack(ys, dim=-2)

        h = float(dt)
        coarse = run(h)
        halvings = 0
        while True:
            fine = run(h / 2)
            err = float((fine - coarse).abs().amax()) / 15.0
            if tol is None or err <= tol or halvings >= max_halvings:
                break
            coarse, h, halvings = fine, h / 2, halvings + 1
        ys = fine
        eps_c = _eps_from_state(coarse, T, v_star, K, M)
        eps_f = _eps_from_state(fine, T, v_star, K, M)
        details.update(dt=h / 2, halvings=halvings, error_rule="Richardson |y(dt) - y(dt/2)|/15 (RK4, order 4)")
        error, eps_error = err, float((eps_f - eps_c).abs().amax()) / 15.0
    else:
        from scipy.integrate import solve_ivp

        shape = y0.shape
        dtype, device = y0.dtype, y0.device

        def fun(_t, flat):
            y = torch.as_tensor(flat, dtype=dtype, device=device).reshape(shape)
            return f(y).reshape(-1).to(torch.float64).cpu().numpy()

        sol = solve_ivp(fun, (0.0, float(alphas[-1])), y0.detach().to(torch.float64).cpu().reshape(-1).numpy(),
                        method=method, t_eval=alphas, rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"solve_ivp failed: {sol.message}")
        ys = torch.as_tensor(sol.y.T, dtype=dtype, device=device).reshape(len(alphas), *shape)
        ys = ys.movedim(0, -2)
        details.update(rtol=rtol, atol=atol, nfev=int(sol.nfev), error_rule="solve_ivp local error control")
        error, eps_error = None, None
    Q, R, v = _unpack(ys, K, M)
    eps = _eps_from_state(ys, T, v_star, K, M)
    return ODESolution(alphas, Q, R, v, eps, method, error, eps_error, details)


def _eps_from_state(ys: torch.Tensor, T, v_star, K, M) -> torch.Tensor:
    Q, R, v = _unpack(ys, K, M)
    A = ys.shape[-2]
    Tt = T.unsqueeze(-3).expand(*T.shape[:-2], A, M, M)
    vs = v_star.unsqueeze(-2).expand(*v_star.shape[:-1], A, M)
    return generalisation_error(Q, R, Tt, v, vs)


# -- sympy twins -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def symbolic_j2():
    r"""(C2) from the Gaussian integral: :math:`E[e^{-u^\top u/2}] = (\det C \det(C^{-1} + I))^{-1/2}`, and
    :math:`\det C\,\det(C^{-1}+I) = \det(I + C)`; the printed form has
    :math:`\det(I + C) = (1+C_{11})(1+C_{22}) - C_{12}^2`.

    Returns:
        (derived, printed, derived - printed simplified) as sympy expressions.
    """
    import sympy as sp

    a, b = sp.symbols("C11 C22", positive=True)
    c = sp.symbols("C12", real=True)
    C = sp.Matrix([[a, c], [c, b]])
    derived = sp.Rational(2) / sp.pi / sp.sqrt(sp.simplify(C.det() * (C.inv() + sp.eye(2)).det()))
    printed = 2 / sp.pi / sp.sqrt((1 + a) * (1 + b) - c**2)
    return derived, printed, sp.simplify(derived - printed)


@functools.lru_cache(maxsize=None)
def symbolic_i2():
    r"""(C1) by Price's theorem: integrate :math:`J_2` over :math:`C_{12}` from 0 (where :math:`I_2 = 0`, g odd).

    Returns:
        (derived, printed, derived - printed simplified).
    """
    import sympy as sp

    a, b, S = sp.symbols("C11 C22 S", positive=True)  # S = sqrt((1 + C11)(1 + C22)) > |C12|
    c, t = sp.symbols("C12 t", real=True)
    j2 = 2 / sp.pi / sp.sqrt(S**2 - t**2)  # J2 at C12 = t, i.e. (C2)
    derived = sp.integrate(j2, (t, 0, c), conds="none").subs(S, sp.sqrt((1 + a) * (1 + b)))
    printed = 2 / sp.pi * sp.asin(c / sp.sqrt((1 + a) * (1 + b)))
    return derived, printed, sp.simplify(derived - printed)


@functools.lru_cache(maxsize=None)
def symbolic_i3():
    r"""(C3) from Stein's lemma. With :math:`h = g'(u_1) g(u_3)`:
    :math:`E[u_2 h] = C_{12} E[g''(u_1)g(u_3)] + C_{23} E[g'(u_1)g'(u_3)]`; and since :math:`g'' = -x g'`,
    :math:`E[g''(u_1)g(u_3)] = -E[u_1 g'(u_1) g(u_3)] = -C_{11}E[g''(u_1)g(u_3)] - C_{13}J_2(1,3)`.
    Solving the linear equation gives (C3).

    Returns:
        (derived, printed, derived - printed simplified).
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


@functools.lru_cache(maxsize=None)
def symbolic_i4_price(points: int = 5, seed: int = 0) -> tuple[Any, float]:
    r"""(C4) checked with Price's theorem: :math:`\partial_{C_{34}} I_4 = E[g'(u_1)g'(u_2)g'(u_3)g'(u_4)]
    = \frac{4}{\pi^2}\det(I + C)^{-1/2}`, the derivative taken symbolically and compared at ``points`` random
    positive-definite rational covariances (50 digits).

    Returns:
        (the symbolic derivative minus the Price form, the largest |difference| at the points).
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
