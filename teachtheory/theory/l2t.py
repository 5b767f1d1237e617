r"""Closed forms of L2T-DLN's one-step hypergradient (Eq. 7) and the mean-value form of its AGD recursion (Eqs. 9-13).

One student step (Eq. 2, N = 1):
:math:`\theta^1 = \theta^0 - \eta w\,\partial L_\phi(S_{\theta^0}(x), y)/\partial\theta^0
= \theta^0 - \eta w\,J^\top \ell'_\phi`,
with :math:`J = \partial S^0/\partial\theta^0` (the student's output on the
training batch) and :math:`\ell'_\phi = \partial L_\phi/\partial S^0`. The chain rule gives

.. math:: \nabla\phi^0 = \frac{d\,e_{val}(\theta^1)}{d\phi^0}
          = -\eta w\,\frac{\partial}{\partial\phi}\big\langle \ell'_\phi,\ J\,\nabla\theta^1\big\rangle,
          \qquad \nabla\theta^1 = \partial e_{val}/\partial\theta^1,

which is Eq. (6) at N = 1 (its mixed term :math:`\partial^2 L/\partial\theta\partial\phi\,\nabla\theta^1` is
:math:`\partial_\phi\langle\ell'_\phi, J\nabla\theta^1\rangle`). The printed Eq. (7) reads
:math:`+\eta w\,\frac{\partial e}{\partial S^1}\frac{\partial S^1}{\partial\theta^1}
\big(\frac{\partial\theta^1}{\partial\ell'}\frac{\partial\ell'}{\partial\phi}\big)
\frac{\partial S^0}{\partial\theta^0}`.
Two readings: (i) literal, with the true :math:`\partial\theta^1/\partial\ell' = -\eta w J^\top` (the trailing
:math:`\partial S^0/\partial\theta^0` being part of it), gives :math:`\eta w` times the true gradient (the factor
:math:`\eta w` twice); (ii) with :math:`\partial\theta^1/\partial\ell'` read as the bare :math:`J^\top` (the factor
:math:`\eta w` pulled out), gives minus the true gradient (the sign). Either way the printed form is not the
gradient; the corrected form is the display above.

AGD near a saddle v* = 0 of e (Eqs. 9-13): one sweep :math:`v_1^{k+1} = v_1^k - \eta\nabla_1 e(v^k)`,
:math:`v_2^{k+1} = v_2^k - \eta\nabla_2 e(v_1^{k+1}, v_2^k)`. With :math:`\bar H(v) = \int_0^1 \nabla^2 e(tv)\,dt`
(so :math:`\nabla e(v) = \bar H(v) v` when :math:`\nabla e(0) = 0`), :math:`\tilde v = (v_1^{k+1}, v_2^k)`,
:math:`\mathcal H_u^k` = block rows 1 of :math:`\bar H(v^k)` and the (2, 2) block of :math:`\bar H(\tilde v)`,
:math:`\mathcal H_l^k` = the (2, 1) block of :math:`\bar H(\tilde v)`, the sweep is exactly
:math:`v^{k+1} = v^k - \eta\mathcal H_u^k v^k - \eta\mathcal H_l^k v^{k+1}` (Eq. 9), hence Eq. 11 with
:math:`\Delta_{u,l}^k = \mathcal H_{u,l}^k - \mathcal H_{u,l}` and Eq. 13 after multiplying by :math:`M^{-1}`.

References:
    Hai et al., "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023, Eqs. (2), (6), (7), (9)-(13).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["mean_value_hessian", "n1_hypergradient", "recursion_terms"]


def _tuple(x) -> tuple[torch.Tensor, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _dot(a, b) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def _grad(output: torch.Tensor, inputs, **keywords) -> tuple[torch.Tensor, ...]:
    """autograd.grad with zeros for inputs the output does not depend on (e.g. the DLN's output bias, which
    shifts L by a constant and so drops out of every derivative in theta)."""
    grads = torch.autograd.grad(output, inputs, allow_unused=True, **keywords)
    return tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs))


def n1_hypergradient(logits: Callable, dln_loss: Callable, val_loss: Callable, theta0, phi, lr: float,
                     weight: float = 1.0) -> dict[str, tuple[torch.Tensor, ...]]:
    r"""The N = 1 hypergradient of L2T-DLN in the forms of Eqs. (6) and (7) (module docstring).

    Args:
        logits: theta -> S_theta(x_train) (a tensor). dln_loss: (phi, S) -> scalar training loss L_phi.
        val_loss: theta -> scalar e_val. theta0, phi: tensors or tuples. lr: eta. weight: w.

    Returns:
        dict of tuples shaped like phi: ``eq6`` (-eta w d^2L/(dtheta dphi) grad theta^1, Eq. 6 at N = 1),
        ``corrected`` (-eta w d/dphi <l'_phi, J grad theta^1>, the chain rule through S), ``printed_literal``
        (Eq. 7 with the true d theta^1 / d l'), ``printed_bare`` (Eq. 7 with d theta^1/d l' read as J^T).

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eqs. (2), (6), (7).
    """
    theta0 = tuple(t.detach() for t in _tuple(theta0))
    phi = tuple(p.detach() for p in _tuple(phi))
    c = lr * weight
    with torch.enable_grad():
        th = tuple(t.clone().requires_grad_(True) for t in theta0)
        ph = tuple(p.clone().requires_grad_(True) for p in phi)
        grads = torch.autograd.grad(dln_loss(ph, logits(th)), th)
        theta1 = tuple((t - c * g).detach().requires_grad_(True) for t, g in zip(theta0, grads))
        g1 = torch.autograd.grad(val_loss(theta1), theta1)  # grad theta^1 (Eq. 4)
        # Eq. 6 at N = 1: the mixed second derivative of L in (theta, phi) applied to grad theta^1
        grad_theta = torch.autograd.grad(dln_loss(ph, logits(th)), th, create_graph=True)
        eq6 = _grad(_dot(grad_theta, g1), ph)
        # through the output S: J grad theta^1 (a forward-mode product), and l'_phi = dL/dS
        _, Jg = torch.autograd.functional.jvp(lambda *t: logits(t), theta0, g1)
        S0 = logits(theta0).detach().requires_grad_(True)
        ell = torch.autograd.grad(dln_loss(ph, S0), S0, create_graph=True)[0]
        through_S = _grad((ell * Jg).sum(), ph)
        # d theta^1 / d l' by autograd: theta^1(l) = theta^0 - eta w J^T l; its transpose applied to grad theta^1
        free = torch.zeros_like(S0, requires_grad=True)
        th_for_J = tuple(t.clone().requires_grad_(True) for t in theta0)
        JT_l = torch.autograd.grad((logits(th_for_J) * free).sum(), th_for_J, create_graph=True)
        theta1_of_l = tuple(t - c * j for t, j in zip(theta0, JT_l))
        vjp = torch.autograd.grad(_dot(theta1_of_l, g1), free)[0]  # = -eta w J grad theta^1
        ell2 = torch.autograd.grad(dln_loss(ph, S0), S0, create_graph=True)[0]
        literal_inner = _grad((ell2 * vjp).sum(), ph)
    return {"eq6": tuple(-c * e for e in eq6), "corrected": tuple(-c * t for t in through_S),
            "printed_literal": tuple(c * t for t in literal_inner), "printed_bare": tuple(c * t for t in through_S)}


def mean_value_hessian(hessian: Callable, v: torch.Tensor, nodes: int = 6) -> torch.Tensor:
    r""":math:`\bar H(v) = \int_0^1 \nabla^2 e(tv)\,dt` by Gauss-Legendre quadrature with ``nodes`` points (exact for
    a Hessian polynomial in t of degree < 2 nodes), batched over the leading dims of v [..., n].

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eqs. (9) and (11) (the mean-value integrals).
    """
    t, w = np.polynomial.legendre.leggauss(nodes)
    t, w = (t + 1) / 2, w / 2
    return sum(float(wi) * hessian(float(ti) * v) for ti, wi in zip(t, w))


def recursion_terms(gradient: Callable, hessian: Callable, v: torch.Tensor, split: int, lr: float,
                    nodes: int = 6) -> dict[str, torch.Tensor]:
    r"""One exact AGD sweep from v [..., n] and the terms of Eqs. (9)-(13) around the saddle at 0.

    Args:
        gradient: v -> grad e(v) [..., n] (with grad e(0) = 0). hessian: v -> Hessian [..., n, n].
        v: current iterate v^k. split: size of block 1. lr: eta, a number or a tensor of v's leading shape (one step
            per case). nodes: quadrature points for the mean values.

    Returns:
        dict: ``next`` (the exact sweep v^{k+1}), ``H_u``, ``H_l`` (at the saddle, Eq. 10), ``H_u_k``, ``H_l_k``
        (mean-value matrices of Eq. 9), ``Delta_u``, ``Delta_l`` (Eq. 11), ``M``, ``G`` (Eq. 12).

    References:
        Hai et al., NeurIPS 2023 (L2T-DLN), Eqs. (9)-(13).
    """
    n = v.shape[-1]
    if isinstance(split, bool) or not isinstance(split, int) or not 1 <= split < n:
        raise ValueError(f"split must be an integer in [1, {n - 1}], got {split!r}")
    b1, b2 = slice(0, split), slice(split, n)
    eta = torch.as_tensor(lr, dtype=v.dtype)
    step = eta[..., None]
    v1 = v[..., b1] - step * gradient(v)[..., b1]
    tilde = torch.cat([v1, v[..., b2]], -1)
    v2 = v[..., b2] - step * gradient(tilde)[..., b2]
    nxt = torch.cat([v1, v2], -1)
    Hk, Ht = mean_value_hessian(hessian, v, nodes), mean_value_hessian(hessian, tilde, nodes)
    H0 = hessian(torch.zeros_like(v))
    H_u_k = torch.zeros_like(Hk)
    H_u_k[..., b1, :] = Hk[..., b1, :]
    H_u_k[..., b2, b2] = Ht[..., b2, b2]
    H_l_k = torch.zeros_like(Hk)
    H_l_k[..., b2, b1] = Ht[..., b2, b1]
    H_u, H_l = H0.clone(), torch.zeros_like(H0)
    H_u[..., b2, b1] = 0
    H_l[..., b2, b1] = H0[..., b2, b1]
    eye = torch.eye(n, dtype=v.dtype, device=v.device)
    return {"next": nxt, "H_u": H_u, "H_l": H_l, "H_u_k": H_u_k, "H_l_k": H_l_k, "Delta_u": H_u_k - H_u,
            "Delta_l": H_l_k - H_l, "M": eye + step[..., None] * H_l, "G": eye - step[..., None] * H_u}
