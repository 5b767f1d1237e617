r"""Perturbed alternating gradient descent (PA-GD) escaping a strict saddle, batched over runs.

Objective (a strict saddle at 0 with Hessian H, minimisers along the negative-curvature direction):

.. math:: f(v) = \tfrac12 v^\top H v + \tfrac{\rho}{4}\|v\|^4,\qquad
          \nabla f(v) = H v + \rho\|v\|^2 v,

with :math:`\lambda_{\min}(H) = -\gamma`: :math:`\min f = -\gamma^2/(4\rho)` at :math:`\|v\|^2 = \gamma/\rho`.
One AGD sweep updates block 1, then block 2 at the new block 1 (L2T-DLN Eq. 9); PA-GD adds a
uniform perturbation from a ball of radius r whenever :math:`\|\nabla f\| \le g_{th}` and no
perturbation happened in the last :math:`t_{th}` sweeps (Lu, Hong & Wang 2018, Algorithm 2). Near the
saddle the iterates follow :math:`v^{k+1} \approx M^{-1}G v^k`, so :math:`\|v^k\|` grows like
:math:`\lambda_{\max}(M^{-1}G)^k` (:mod:`teachtheory.theory.agd`).
"""

from __future__ import annotations

import math

import torch

from ..random import RunStreams, as_seeds
from ..theory import agd

__all__ = ["saddle_hessian", "perturbed_agd", "growth_rate"]


def saddle_hessian(dim: int, split: int, gamma: float, L: float, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    r"""H = Q diag(-gamma, spectrum in (0, L]) Q^T with a seeded random rotation Q (blocks coupled)."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
    if not (gamma > 0 and L > 0):
        raise ValueError(f"gamma and L must be positive, got gamma={gamma!r}, L={L!r}")
    streams = RunStreams(as_seeds([seed]))
    Q, _ = torch.linalg.qr(streams.normal("saddle/Q", 0, (dim, dim), dtype=dtype)[0])
    positive = torch.linspace(L / dim, L, dim - 1, dtype=dtype)
    spectrum = torch.cat([torch.tensor([-gamma], dtype=dtype), positive])
    H = Q @ torch.diag(spectrum) @ Q.T
    H = (H + H.T) / 2
    agd._check_hessian(H, split)
    return H


def _grad_block(H: torch.Tensor, v: torch.Tensor, rho: float, block: slice) -> torch.Tensor:
    return (v @ H[:, block]) + rho * (v * v).sum(-1, keepdim=True) * v[:, block]


def perturbed_agd(H: torch.Tensor, split: int, lr: float, steps: int, runs: int, *, rho: float = 1.0,
                  radius: float = 1e-6, grad_threshold: float = 1e-5, wait: int = 50, seed: int = 0,
                  perturb: bool = True) -> dict[str, torch.Tensor]:
    """Run PA-GD from the saddle v = 0 for R runs; returns distance [R, T+1], value [R, T+1] and the
    sweep at which each run was last perturbed [R]."""
    agd._check_hessian(H, split)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    n = H.shape[-1]
    streams = RunStreams(as_seeds(seed, runs))
    v = torch.zeros(runs, n, dtype=H.dtype)
    last = torch.full((runs,), -wait - 1, dtype=torch.int64)
    first = torch.full((runs,), -1, dtype=torch.int64)
    b1, b2 = slice(0, split), slice(split, n)
    dist, value = [v.norm(dim=-1)], [torch.zeros(runs, dtype=H.dtype)]
    for k in range(steps):
        if perturb:
            full_grad = v @ H + rho * (v * v).sum(-1, keepdim=True) * v
            due = (full_grad.norm(dim=-1) <= grad_threshold) & (k - last > wait)
            if due.any():
                direction = streams.normal("pagd/direction", k, (n,), dtype=H.dtype)
                direction = direction / direction.norm(dim=-1, keepdim=True)
                size = radius * streams.uniform("pagd/radius", k, (1,), dtype=H.dtype) ** (1.0 / n)
                v = torch.where(due[:, None], v + size * direction, v)
                first = torch.where(due & (first < 0), torch.full_like(first, k), first)
                last = torch.where(due, torch.full_like(last, k), last)
        v1 = v[:, b1] - lr * _grad_block(H, v, rho, b1)
        v = torch.cat([v1, v[:, b2]], dim=-1)
        v2 = v[:, b2] - lr * _grad_block(H, v, rho, b2)
        v = torch.cat([v[:, b1], v2], dim=-1)
        dist.append(v.norm(dim=-1))
        value.append(0.5 * ((v @ H) * v).sum(-1) + 0.25 * rho * (v * v).sum(-1) ** 2)
    return {"distance": torch.stack(dist, -1), "value": torch.stack(value, -1), "first_perturbation": first,
            "last_perturbation": last}


def growth_rate(distance: torch.Tensor, start: torch.Tensor, low: float, high: float,
                burn_in: int = 20) -> torch.Tensor:
    """Per-run least-squares slope of log ||v_k|| over sweeps k >= start + burn_in with low < ||v_k|| < high."""
    R, T = distance.shape
    k = torch.arange(T, dtype=distance.dtype).expand(R, T)
    mask = (k >= (start[:, None] + burn_in)) & (distance > low) & (distance < high)
    logd = torch.log(distance.clamp_min(1e-300))
    w = mask.to(distance.dtype)
    count = w.sum(-1).clamp_min(1)
    km, lm = (w * k).sum(-1) / count, (w * logd).sum(-1) / count
    cov = (w * (k - km[:, None]) * (logd - lm[:, None])).sum(-1)
    var = (w * (k - km[:, None]) ** 2).sum(-1)
    return torch.where(w.sum(-1) >= 3, cov / var.clamp_min(1e-300), torch.full_like(cov, float("nan")))
