r"""Infinite-width kernels of fully connected ReLU networks (arc-cosine recursions), kernel ridge regression,
and KIP's Label Solve.

A network with ``depth`` hidden ReLU layers in the NTK parameterisation,
:math:`h^1 = \sigma_w W^1 x/\sqrt{d} + \sigma_b b^1`, :math:`h^{l+1} = \sigma_w W^{l+1}\phi(h^l)/\sqrt{n} + \sigma_b
b^{l+1}` with standard normal weights and biases, has at infinite width the NNGP kernel :math:`\Sigma` and the
neural tangent kernel :math:`\Theta` of its output :math:`h^{L+1}` (Neal 1996; Lee et al., ICLR 2018; Jacot
et al., NeurIPS 2018), with the ReLU expectations in closed form (Cho & Saul, NeurIPS 2009):

.. math::
    \Sigma^1 = \sigma_w^2\, x\cdot x'/d + \sigma_b^2,\qquad
    \Sigma^{l+1} = \sigma_w^2\, \frac{\sqrt{\Sigma_{xx}\Sigma_{x'x'}}}{2\pi}\,(\sin\theta + (\pi-\theta)\cos\theta)
                   + \sigma_b^2,\\
    \Theta^1 = \Sigma^1,\qquad \Theta^{l+1} = \Sigma^{l+1} + \sigma_w^2\,\frac{\pi - \theta}{2\pi}\,\Theta^l,
    \qquad \cos\theta = \Sigma^l_{xx'}/\sqrt{\Sigma^l_{xx}\Sigma^l_{x'x'}}.

Kernel ridge regression predicts :math:`K_{ts}(K_{ss} + \lambda I)^{-1} y_s` with :math:`\lambda = r\,
\mathrm{tr}(K_{ss})/M` (KIP's relative regulariser); :func:`label_solve` gives the labels :math:`y_s`
that minimise the squared error on a target set in closed form (Nguyen, Chen & Lee, ICLR 2021, Sec. 3).
All computations are in float64.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "DEFAULT_REG",
    "DEFAULT_SIGMA_B2",
    "DEFAULT_SIGMA_W2",
    "KERNELS",
    "empirical_kernels",
    "krr_loss",
    "krr_predict",
    "label_solve",
    "relu_kernels",
]

KERNELS = ("nngp", "ntk")
DEFAULT_SIGMA_W2, DEFAULT_SIGMA_B2, DEFAULT_REG = 2.0, 0.01, 1e-6
_CLAMP = 1e-12  # keeps arccos' derivative finite where x = x' (cos = 1)


def _check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be a non-negative integer (hidden layers), got {depth!r}")
    return depth


def relu_kernels(x1: torch.Tensor, x2: torch.Tensor | None = None, *, depth: int = 1,
                 sigma_w2: float = DEFAULT_SIGMA_W2, sigma_b2: float = DEFAULT_SIGMA_B2,
                 normaliser: float = 2 * math.pi) -> tuple[torch.Tensor, torch.Tensor]:
    r"""NNGP and NTK matrices ``[n1, n2]`` of a ``depth``-hidden-layer ReLU network (inputs flattened).

    ``normaliser`` is the :math:`2\pi` of the ReLU expectations; it exists for the claims' power checks
    (a deliberately wrong constant) and must otherwise be left alone.
    """
    depth = _check_depth(depth)
    a = x1.flatten(1).double()
    b = a if x2 is None else x2.flatten(1).double()
    d = a.shape[1]
    if b.shape[1] != d:
        raise ValueError(f"x1 and x2 must have the same number of features, got {a.shape[1]} and {b.shape[1]}")
    cross = sigma_w2 * (a @ b.T) / d + sigma_b2
    diag1 = sigma_w2 * (a * a).sum(1) / d + sigma_b2
    diag2 = diag1 if x2 is None else sigma_w2 * (b * b).sum(1) / d + sigma_b2
    ntk = cross
    for _ in range(depth):
        norms = torch.sqrt(diag1[:, None] * diag2[None, :])
        cos = (cross / norms).clamp(-1 + _CLAMP, 1 - _CLAMP)
        theta = torch.arccos(cos)
        j1 = (torch.sqrt(1 - cos * cos) + (math.pi - theta) * cos) / normaliser  # E[relu(u) relu(v)] / norms
        j0 = (math.pi - theta) / normaliser  # E[relu'(u) relu'(v)]
        cross = sigma_w2 * norms * j1 + sigma_b2
        ntk = cross + sigma_w2 * j0 * ntk
        half = math.pi / normaliser  # j1 = j0 = 1/2 on the diagonal (theta = 0)
        diag1 = sigma_w2 * diag1 * half + sigma_b2
        diag2 = diag1 if x2 is None else sigma_w2 * diag2 * half + sigma_b2
    return cross, ntk


def empirical_kernels(x: torch.Tensor, *, width: int, depth: int, networks: int, generator: torch.Generator,
                      sigma_w2: float = DEFAULT_SIGMA_W2, sigma_b2: float = DEFAULT_SIGMA_B2,
                      chunk_bytes: int = 256 * 2**20) -> tuple[torch.Tensor, torch.Tensor]:
    """NNGP and NTK of ``networks`` random finite networks of ``width`` units, ``[networks, n, n]`` each.

    The NNGP estimate of one network is its readout feature kernel :math:`\\sigma_w^2 \\phi(h^L)\\cdot\\phi(h^L)'/n
    + \\sigma_b^2` (the covariance of the output given the hidden layers); the NTK estimate is the inner
    product of the output's parameter gradients (NTK parameterisation), computed layer by layer in
    closed form (back-propagated signals times forward activations), batched over networks. The networks are
    drawn in chunks whose largest weight tensor stays under ``chunk_bytes`` (1,500 networks of width 2,048
    would need 50 GB at once); one chunk when they all fit, so the draws do not depend on the chunking then.
    """
    depth = _check_depth(depth)
    if depth < 1:
        raise ValueError("empirical kernels need at least one hidden layer")
    per_network = 8 * width * max(width if depth > 1 else 0, x.flatten(1).shape[1])
    chunk = max(1, min(networks, chunk_bytes // per_network))
    parts = [_empirical_kernels(x, width, depth, min(chunk, networks - start), generator, sigma_w2, sigma_b2)
             for start in range(0, networks, chunk)]
    if len(parts) == 1:
        return parts[0]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def _empirical_kernels(x, width, depth, networks, generator, sigma_w2, sigma_b2):
    """:func:`empirical_kernels` for one chunk of networks (drawn from ``generator`` in this order)."""
    x = x.flatten(1).double()
    n_pts, d = x.shape
    sw, sb = math.sqrt(sigma_w2), math.sqrt(sigma_b2)
    weights, pre, acts = [], [], [x.expand(networks, n_pts, d)]
    fan = d
    for _ in range(depth):
        W = torch.randn(networks, fan, width, generator=generator, dtype=torch.float64)
        bias = torch.randn(networks, 1, width, generator=generator, dtype=torch.float64)
        h = sw * acts[-1] @ W / math.sqrt(fan) + sb * bias
        weights.append(W)
        pre.append(h)
        acts.append(torch.relu(h))
        fan = width
    readout = torch.randn(networks, width, 1, generator=generator, dtype=torch.float64)
    top = acts[-1]
    nngp = sigma_w2 * top @ top.transpose(1, 2) / width + sigma_b2
    # NTK: sum over layers of <d out/d W^l, .> + <d out/d b^l, .>; the readout layer contributes the NNGP term.
    ntk = nngp.clone()
    delta = sw * readout.transpose(1, 2) / math.sqrt(width) * (pre[-1] > 0)  # d out / d h^L  [N, n, width]
    for layer in range(depth - 1, -1, -1):
        below = acts[layer]
        fan_in = below.shape[-1]
        ntk = ntk + (delta @ delta.transpose(1, 2)) * (sigma_w2 * below @ below.transpose(1, 2) / fan_in + sigma_b2)
        if layer > 0:
            delta = sw * (delta @ weights[layer].transpose(1, 2)) / math.sqrt(fan_in) * (pre[layer - 1] > 0)
    return nngp, ntk


def _regularised(k_ss: torch.Tensor, reg: float) -> torch.Tensor:
    M = k_ss.shape[0]
    lam = reg * torch.diagonal(k_ss).sum() / M
    return k_ss + lam * torch.eye(M, dtype=k_ss.dtype, device=k_ss.device)


def krr_predict(k_ts: torch.Tensor, k_ss: torch.Tensor, y_s: torch.Tensor, reg: float = DEFAULT_REG) -> torch.Tensor:
    """Kernel ridge regression prediction ``K_ts (K_ss + lambda I)^-1 y_s``, lambda = reg tr(K_ss)/M."""
    return k_ts @ torch.linalg.solve(_regularised(k_ss, reg), y_s.to(k_ss.dtype))


def krr_loss(k_ts: torch.Tensor, k_ss: torch.Tensor, y_s: torch.Tensor, y_t: torch.Tensor,
             reg: float = DEFAULT_REG) -> torch.Tensor:
    """KIP's loss: half the mean over targets of the squared error of the KRR prediction."""
    pred = krr_predict(k_ts, k_ss, y_s, reg)
    return 0.5 * ((pred - y_t.to(pred.dtype)) ** 2).sum(-1).mean()


def label_solve(k_ts: torch.Tensor, k_ss: torch.Tensor, y_t: torch.Tensor, reg: float = DEFAULT_REG) -> torch.Tensor:
    """Label Solve: the support labels minimising :func:`krr_loss` for a fixed support set.

    The prediction is linear in the labels, ``A y_s`` with ``A = K_ts (K_ss + lambda I)^-1``, so the
    minimiser is the least-squares solution ``A^+ y_t`` (the minimum-norm one when A is rank deficient).
    """
    A = torch.linalg.solve(_regularised(k_ss, reg), k_ts.T).T  # K_ss is symmetric: (K^-1 K_st)^T = K_ts K^-1
    return torch.linalg.pinv(A) @ y_t.to(A.dtype)
