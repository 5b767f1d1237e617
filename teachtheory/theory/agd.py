r"""Alternating gradient descent (AGD) near a strict saddle: the linearised two-block map.

On the quadratic model :math:`e(v) = \tfrac12 v^\top \mathcal H v` with :math:`v = (v_1, v_2)` and

.. math:: \mathcal H = \begin{bmatrix} A & B \\ B^\top & C \end{bmatrix},\quad
          \mathcal H_u = \begin{bmatrix} A & B \\ 0 & C \end{bmatrix},\quad
          \mathcal H_l = \mathcal H - \mathcal H_u = \begin{bmatrix} 0 & 0 \\ B^\top & 0 \end{bmatrix},

one AGD sweep (update :math:`v_1`, then :math:`v_2` at the new :math:`v_1`) reads
:math:`M v^{k+1} = G v^k` with :math:`M = I + \eta \mathcal H_l`, :math:`G = I - \eta \mathcal H_u`
(L2T-DLN Eq. 10-13). Conclusion 1 of L2T-DLN (after Lu, Hong & Wang 2018) states: if
:math:`\lambda_{\min}(\mathcal H) \le -\gamma < 0` and :math:`\eta < 1/L_{\max}` then the eigenvalues
of :math:`M^{-1}G` are real and :math:`\lambda_{\max}(M^{-1}G) > 1 + \eta\gamma/(1 + L/L_{\max})`.

Constants (as in the paper, for the quadratic model): :math:`L = \|\mathcal H\|_2`, the Lipschitz
constant of :math:`\nabla e`; the block Lipschitz constants are those of :math:`\nabla_k e` in its
own block, :math:`\|A\|_2` and :math:`\|C\|_2`, and :math:`L_{\max} = \max(\|A\|_2, \|C\|_2) \le L`.

Derivation (re-done here; :func:`symbolic_agd_2x2` checks the algebra):

* For real :math:`\lambda > 0`, with :math:`D = \mathrm{diag}(\sqrt\lambda I, I)`,
  :math:`D(\mathcal H_u + \lambda \mathcal H_l)D^{-1} = S(\lambda) =
  \begin{bmatrix} A & \sqrt\lambda B \\ \sqrt\lambda B^\top & C\end{bmatrix}` (symmetric), so
  :math:`\det(G - \lambda M) = \det((1-\lambda)I - \eta S(\lambda))`: :math:`\lambda > 0` is an
  eigenvalue of :math:`M^{-1}G` iff :math:`(1-\lambda)/\eta` is an eigenvalue of :math:`S(\lambda)`.
* :math:`s \mapsto \mu_{\min}(\mathrm{diag}(A, C) + s\,[[0, B], [B^\top, 0]])` is concave (a minimum of
  functions linear in s) and even (conjugate by :math:`\mathrm{diag}(I, -I)`), hence non-increasing on
  :math:`s \ge 0`; at :math:`s = 1` it is :math:`\lambda_{\min}(\mathcal H) \le -\gamma`. Therefore
  :math:`f(\lambda) = (1-\lambda)/\eta - \mu_{\min}(S(\lambda)) > 0` on :math:`[1, 1 + \eta\gamma)` and
  :math:`f \to -\infty`: a real eigenvalue :math:`\lambda \ge 1 + \eta\gamma` exists **for every**
  :math:`\eta > 0` (sharp: equality when the negative-curvature direction lies in one block). Since
  :math:`L \ge L_{\max}`, the printed bound :math:`1 + \eta\gamma/(1 + L/L_{\max}) \le 1 + \eta\gamma/2` is
  true but loose by a factor of at least two in :math:`\lambda - 1`.
* Reality: with :math:`\lambda = \mu^2` and :math:`z = (v_1, v_2/\mu)`, :math:`Gv = \lambda M v` becomes the
  quadratic eigenproblem :math:`(\mu^2 I + \mu\eta\,[[0, B], [B^\top, 0]] - (I - \eta\,\mathrm{diag}(A, C)))z = 0`.
  When :math:`I - \eta\,\mathrm{diag}(A, C) \succ 0` it is hyperbolic
  (:math:`(z^*Kz)^2 + 4 z^*(I - \eta D_b)z > 0`), so every :math:`\mu` is real and every eigenvalue of
  :math:`M^{-1}G` is real and non-negative. The sharp condition is one-sided,
  :math:`\eta\max(\lambda_{\max}(A), \lambda_{\max}(C)) < 1`, which :math:`\eta < 1/L_{\max}` implies; beyond
  it complex pairs appear (:func:`complex_counterexample`).

References:
    Hai et al., "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023, Eq. (9)-(14),
    Conclusion 1. Lu, Hong & Wang, "On the sublinear convergence of randomly perturbed alternating
    gradient descent to second order stationary solutions", arXiv:1802.10418 (2018).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "split_hessian", "alternating_map", "block_constants", "printed_escape_bound", "sharp_escape_bound",
    "reality_threshold", "escape_eigenvalue", "complex_counterexample", "symbolic_agd_2x2",
]


def _check_hessian(H: torch.Tensor, split: int) -> int:
    if not isinstance(H, torch.Tensor):
        raise TypeError(f"H must be a torch.Tensor, got {type(H).__name__}")
    if H.dim() < 2 or H.shape[-1] != H.shape[-2]:
        raise ValueError(f"H must be a (batch of) square matrices [..., n, n], got shape {tuple(H.shape)}")
    n = H.shape[-1]
    if n < 2:
        raise ValueError(f"H must be at least 2 x 2 to have two blocks, got n={n}")
    if not torch.isfinite(H).all():
        raise ValueError("H contains NaN or infinite entries")
    scale = H.abs().amax().clamp_min(1.0)
    if (H - H.transpose(-1, -2)).abs().amax() > 1e-10 * scale:
        raise ValueError("H must be symmetric")
    if isinstance(split, bool) or not isinstance(split, int) or not 1 <= split <= n - 1:
        raise ValueError(f"split must be an integer in [1, {n - 1}] (the size of the first block), got {split!r}")
    return n


def _check_lr(lr, H: torch.Tensor) -> torch.Tensor:
    eta = torch.as_tensor(lr, dtype=H.dtype, device=H.device)
    if not torch.isfinite(eta).all() or (eta <= 0).any():
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    return eta


def split_hessian(H: torch.Tensor, split: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(H_u, H_l): the block upper part of H with its diagonal blocks, and H_l = H - H_u (L2T-DLN Eq. 10).

    Args:
        H: symmetric [..., n, n]; split: size of the first block (1 <= split <= n - 1).

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eq. (10).
    """
    _check_hessian(H, split)
    upper = H.clone()
    upper[..., split:, :split] = 0
    return upper, H - upper


def alternating_map(H: torch.Tensor, split: int, lr) -> torch.Tensor:
    r"""The linear map of one AGD sweep, :math:`M^{-1}G` with :math:`M = I + \eta\mathcal H_l`,
    :math:`G = I - \eta\mathcal H_u` (L2T-DLN Eq. 12-13), batched over leading dims.

    :math:`M` is unit lower triangular with :math:`M^{-1} = I - \eta\mathcal H_l`, so

    .. math:: M^{-1}G = \begin{bmatrix} I - \eta A & -\eta B \\ -\eta B^\top (I - \eta A) &
              I - \eta C + \eta^2 B^\top B \end{bmatrix}.

    Args:
        H: symmetric [..., n, n]. split: size of the first block. lr: step size eta > 0, a number or a
            tensor broadcasting against the leading dims of H.

    Returns:
        [..., n, n], same dtype and device as H.

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eq. (12)-(13).
    """
    n = _check_hessian(H, split)
    eta = _check_lr(lr, H)[..., None, None]
    upper, lower = split_hessian(H, split)
    eye = torch.eye(n, dtype=H.dtype, device=H.device)
    G = eye - eta * upper
    M_inv = eye - eta * lower  # (eta H_l)^2 = 0: the inverse of I + eta H_l is exact
    return M_inv @ G


def block_constants(H: torch.Tensor, split: int) -> dict[str, torch.Tensor]:
    r"""The constants of Conclusion 1 for the quadratic model, batched.

    Returns a dict of [...] tensors: ``gamma`` = -lambda_min(H) (the largest admissible gamma),
    ``L`` = ||H||_2, ``L_max`` = max(||A||_2, ||C||_2) (largest diagonal-block Lipschitz constant),
    ``top`` = max(lambda_max(A), lambda_max(C)) (what the reality condition really needs).

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Conclusion 1 (the constants gamma, L and L_max).
    """
    _check_hessian(H, split)
    A, C = H[..., :split, :split], H[..., split:, split:]
    eig_a, eig_c = torch.linalg.eigvalsh(A), torch.linalg.eigvalsh(C)
    L_max = torch.maximum(eig_a.abs().amax(-1), eig_c.abs().amax(-1))
    eig = torch.linalg.eigvalsh(H)
    return {"gamma": -eig[..., 0], "L": eig.abs().amax(-1), "L_max": L_max,
            "top": torch.maximum(eig_a[..., -1], eig_c[..., -1])}


def printed_escape_bound(lr, gamma, L, L_max):
    r"""The printed lower bound of Conclusion 1 (Eq. 14): :math:`1 + \eta\gamma / (1 + L/L_{\max})`.

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eq. (14) and Conclusion 1.
    """
    return 1.0 + lr * gamma / (1.0 + L / L_max)


def sharp_escape_bound(lr, gamma):
    r"""The derived sharp bound :math:`\lambda_{\max}(M^{-1}G) \ge 1 + \eta\gamma` (every eta > 0; equality
    when the negative-curvature eigenvector of H lies in one block).

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Conclusion 1 and Eq. (14) (the printed bound this one sharpens;
        derivation in the module docstring).
    """
    return 1.0 + lr * gamma


def reality_threshold(H: torch.Tensor, split: int) -> torch.Tensor:
    r"""The step size below which every eigenvalue of :math:`M^{-1}G` is real (and >= 0):
    :math:`1/\max(\lambda_{\max}(A), \lambda_{\max}(C))` (inf when both blocks are negative semidefinite).
    It is at least :math:`1/L_{\max}`.

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Conclusion 1 (the claim that the eigenvalues are real; derivation in
        the module docstring).
    """
    top = block_constants(H, split)["top"]
    return torch.where(top > 0, 1.0 / top.clamp_min(torch.finfo(H.dtype).tiny), torch.full_like(top, math.inf))


def escape_eigenvalue(H: torch.Tensor, split: int, lr) -> dict[str, torch.Tensor]:
    r"""Eigen-summary of :math:`M^{-1}G`: ``lambda_max`` (largest real part), ``max_imag`` (largest
    :math:`|\mathrm{Im}\lambda|`), ``radius`` (spectral radius), ``scale`` (:math:`\|M^{-1}G\|_2`), batched.

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eq. (12)-(14).
    """
    T = alternating_map(H, split, lr)
    ev = torch.linalg.eigvals(T)
    return {"lambda_max": ev.real.amax(-1), "max_imag": ev.imag.abs().amax(-1), "radius": ev.abs().amax(-1),
            "scale": torch.linalg.matrix_norm(T, 2)}


def complex_counterexample(a: float = 1.0, g: float = 0.5, b: float = 0.1, factor: float = 1.2,
                           dtype=torch.float64) -> dict:
    r"""An explicit H (3 x 3, blocks of size 2 and 1) where :math:`\eta = \text{factor}/L_{\max}` gives a
    complex pair.

    :math:`\mathcal H = [[a, 0, b], [0, -g, 0], [b, 0, a]]`, split 2: coordinates 0 and 2 form the scalar
    two-block case with :math:`p = q = 1 - \eta a`, :math:`r = \eta^2 b^2`, whose discriminant is
    :math:`(p - q)^2 + r^2 + 2r(p + q) = r(r + 4(1 - \eta a))`, negative when
    :math:`0 < \eta^2 b^2 < 4(\eta a - 1)`; coordinate 1 carries the strict saddle (:math:`\gamma = g`).

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Conclusion 1 (reality of the eigenvalues of the AGD map).
    """
    H = torch.tensor([[a, 0.0, b], [0.0, -g, 0.0], [b, 0.0, a]], dtype=dtype)
    consts = block_constants(H, 2)
    lr = factor / float(consts["L_max"])
    ev = torch.linalg.eigvals(alternating_map(H, 2, lr))
    r, p = (lr * b) ** 2, 1.0 - lr * a
    return {"H": H, "split": 2, "lr": lr, "factor": factor, "eigenvalues": ev,
            "discriminant": r * (r + 4.0 * p), "gamma": float(consts["gamma"]), "L": float(consts["L"]),
            "L_max": float(consts["L_max"])}


def symbolic_agd_2x2():
    r"""Sympy twin for scalar blocks :math:`\mathcal H = [[a, b], [b, c]]`.

    Returns a dict with: ``map`` (M^{-1}G), ``charpoly`` (in lambda), ``discriminant`` and the identity
    ``disc - [(p-q)^2 + r^2 + 2r(p+q)]`` (p = 1 - eta a, q = 1 - eta c, r = eta^2 b^2; must simplify to 0:
    real eigenvalues whenever p, q >= 0), ``similarity`` (det(G - lambda M) - det((1-lambda) I - eta S(lambda)),
    must be 0), ``at_sharp`` = charpoly at lambda = 1 + eta gamma with gamma = -lambda_min(H), and
    ``at_sharp_identity`` = at_sharp + eta^3 b^2 gamma (must be 0): the monic charpoly is <= 0 there, so the
    largest root is >= 1 + eta gamma, with equality iff b = 0.

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eq. (12)-(14) and Conclusion 1.
    """
    import sympy as sp

    a, c, lam = sp.symbols("a c lambda", real=True)
    b = sp.symbols("b", real=True)
    eta = sp.symbols("eta", positive=True)
    H = sp.Matrix([[a, b], [b, c]])
    Hu = sp.Matrix([[a, b], [0, c]])
    Hl = H - Hu
    M, G = sp.eye(2) + eta * Hl, sp.eye(2) - eta * Hu
    T = sp.simplify(M.inv() * G)
    charpoly = sp.expand((T - lam * sp.eye(2)).det())
    trace, det = T.trace(), T.det()
    disc = sp.expand(trace**2 - 4 * det)
    p, q, r = 1 - eta * a, 1 - eta * c, eta**2 * b**2
    identity = sp.simplify(disc - ((p - q) ** 2 + r**2 + 2 * r * (p + q)))
    s = sp.symbols("s", positive=True)  # s = sqrt(lambda)
    S = sp.Matrix([[a, s * b], [s * b, c]])
    similarity = sp.simplify((G - s**2 * M).det() - ((1 - s**2) * sp.eye(2) - eta * S).det())
    gamma = -(a + c) / 2 + sp.sqrt(((a - c) / 2) ** 2 + b**2)  # -lambda_min(H)
    at_sharp = sp.simplify(charpoly.subs(lam, 1 + eta * gamma))
    # the monic charpoly at 1 + eta gamma equals -eta^3 b^2 gamma <= 0 (must simplify to 0)
    at_sharp_identity = sp.simplify(at_sharp + eta**3 * b**2 * gamma)
    return {"map": T, "charpoly": charpoly, "discriminant": disc, "identity": identity, "similarity": similarity,
            "at_sharp": at_sharp, "at_sharp_identity": at_sharp_identity, "symbols": (a, b, c, eta, lam)}
