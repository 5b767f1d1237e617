"""Functional, run-batched building blocks: every parameter has a leading run axis R.

A network is a tuple of tensors (W1 [R, in, out], b1 [R, out], ...); forward passes use einsum, so R
independent runs train at once and run r's numbers depend only on its own seed (initial values are
drawn from :class:`teachtheory.random.RunStreams`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..random import RunStreams

__all__ = ["ACTIVATIONS", "activation", "init_linear_stack", "linear", "mlp_forward", "count"]

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "smooth_leaky_relu", "softplus")
LEAKY_SLOPE = 0.01


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """relu, leaky_relu (slope 0.01), tanh, softplus, or smooth_leaky_relu: a x + (1 - a) softplus(10 x)/10,
    a C-infinity stand-in for LeakyReLU used where finite differences must see a smooth function."""
    if name == "relu":
        return torch.relu(x)
    if name == "leaky_relu":
        return F.leaky_relu(x, LEAKY_SLOPE)
    if name == "tanh":
        return torch.tanh(x)
    if name == "softplus":
        return F.softplus(x)
    if name == "smooth_leaky_relu":
        return LEAKY_SLOPE * x + (1.0 - LEAKY_SLOPE) * F.softplus(10.0 * x) / 10.0
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")


def _gain(name: str) -> float:
    if name in ("relu", "softplus"):
        return math.sqrt(2.0)
    if name in ("leaky_relu", "smooth_leaky_relu"):
        return math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2))
    return 1.0  # tanh: LeCun normal


def init_linear_stack(
    sizes: Sequence[int], streams: RunStreams, tag: str, act: str, *, dtype=torch.float32, device="cpu",
    last_gain: float | None = None,
) -> tuple[torch.Tensor, ...]:
    """Kaiming-normal weights (std = gain / sqrt(fan_in), gain for ``act``) and zero biases, per run.

    Returns (W1, b1, ..., WL, bL) with W_l [R, sizes[l], sizes[l+1]], b_l [R, sizes[l+1]].
    """
    if len(sizes) < 2 or any((not isinstance(s, int)) or s < 1 for s in sizes):
        raise ValueError(f"sizes must be at least two positive integers, got {list(sizes)!r}")
    params: list[torch.Tensor] = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        gain = _gain(act) if (layer < len(sizes) - 2 or last_gain is None) else last_gain
        W = streams.normal(f"{tag}/W{layer}", 0, (fan_in, fan_out)) * (gain / math.sqrt(fan_in))
        params += [W.to(dtype=dtype, device=device), torch.zeros(streams.runs, fan_out, dtype=dtype, device=device)]
    return tuple(params)


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x [R, ..., in] times W [R, in, out] plus b [R, out] -> [R, ..., out] (one batched matmul)."""
    R = W.shape[0]
    if x.dim() < 2 or x.shape[0] != R or x.shape[-1] != W.shape[1]:
        raise ValueError(f"input of shape {tuple(x.shape)} does not fit weights {tuple(W.shape)} (runs first)")
    out = torch.baddbmm(b[:, None, :], x.reshape(R, -1, x.shape[-1]), W)
    return out.reshape(*x.shape[:-1], W.shape[-1])


def mlp_forward(params: Sequence[torch.Tensor], x: torch.Tensor, act: str, *, return_features: bool = False):
    """Stack of linear layers with ``act`` between them (none after the last)."""
    n_layers = len(params) // 2
    h = x
    features = x
    for layer in range(n_layers):
        W, b = params[2 * layer], params[2 * layer + 1]
        h = linear(h, W, b)
        if layer < n_layers - 1:
            h = activation(act, h)
            features = h
    return (h, features) if return_features else h


def count(params: Sequence[torch.Tensor]) -> int:
    """Parameters per run."""
    return sum(p[0].numel() for p in params)
