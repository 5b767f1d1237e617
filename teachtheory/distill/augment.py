"""Differentiable siamese augmentation (DSA; Zhao & Bilen, ICML 2021).

Each call applies one transformation, drawn at random from the strategy (colour, crop, cutout, flip,
scale, rotate), and is differentiable with respect to the images, so gradients reach synthetic
images through it. Parameters are drawn per *group* of samples: in a siamese pair (the real and the
synthetic batch of one class) both batches use the same :class:`AugmentParams`, each sample taking
the parameters of its group (its class); at evaluation every sample is its own group.

* colour: brightness ``x + (u - 1/2)``, saturation ``m_c + 2u (x - m_c)`` (``m_c`` the channel mean
  at each pixel; no effect on one channel), contrast ``m + (u + 1/2)(x - m)`` (``m`` the image mean).
* crop: a translation by up to 1/8 of the size (whole pixels, zero padding).
* cutout: a square (interval for signals) of half the size set to zero.
* flip: horizontal mirror with probability 1/2 (left out of the digit strategies).
* scale: factors in [1/1.2, 1.2] per axis; rotate: angles in +-15 degrees (images only).

Geometric transformations share one affine resampling (bilinear, zero padding); a whole-pixel crop
samples pixel centres exactly, so it moves values without blurring them. Signals ``[C, L]`` are
resampled as ``[C, 1, L]`` images with only the horizontal part of each transformation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..random import RunStreams

__all__ = ["OPERATIONS", "AugmentParams", "apply", "augment", "augment_runs", "default_strategy", "sample_params"]

OPERATIONS = ("color", "crop", "cutout", "flip", "scale", "rotate")
CROP_RATIO, CUTOUT_RATIO, SCALE_RATIO, ROTATE_DEGREES = 0.125, 0.5, 1.2, 15.0


def default_strategy(dataset: str, spatial: tuple[int, ...]) -> tuple[str, ...]:
    """DSA's strategy: all operations, without flips for digits (a mirrored 2 is no 2), without rotation for signals."""
    ops = list(OPERATIONS)
    if dataset in ("digits", "mnist", "mnist1d") or len(spatial) == 1:
        ops.remove("flip")
    if len(spatial) == 1:
        ops.remove("rotate")
    return tuple(ops)


@dataclass
class AugmentParams:
    """One drawn transformation: its name and per-group parameters (tensors with first axis = groups)."""

    op: str
    values: dict[str, torch.Tensor]
    groups: int


def _check_strategy(strategy) -> tuple[str, ...]:
    strategy = tuple(strategy)
    bad = [s for s in strategy if s not in OPERATIONS]
    if not strategy or bad:
        raise ValueError(f"strategy must be a non-empty selection of {', '.join(OPERATIONS)}; got {strategy!r}")
    return strategy


def sample_params(strategy, groups: int, spatial: tuple[int, ...], generator: torch.Generator,
                  op: str | None = None) -> AugmentParams:
    """Draw one operation from ``strategy`` (unless ``op`` is given) and its parameters for ``groups`` groups.

    Drawn on the CPU.
    """
    strategy = _check_strategy(strategy)
    if op is None:
        op = strategy[int(torch.randint(len(strategy), (1,), generator=generator))]

    def u(*shape):
        """Uniform [0, 1) draws of shape ``[groups, *shape]`` from ``generator``."""
        return torch.rand(groups, *shape, generator=generator)

    return AugmentParams(op, _draw(op, u, spatial), groups)


def _draw(op: str, u, spatial: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The parameters of ``op`` from uniform draws ``u(*shape) -> [groups, *shape]``."""
    if op == "color":
        values = {"brightness": u(), "saturation": u(), "contrast": u()}
    elif op == "crop":
        shifts = [torch.round((u() * 2 - 1) * CROP_RATIO * s) for s in spatial]
        values = {"shift": torch.stack(shifts[::-1], -1)}  # (x, y) order, in pixels
    elif op == "cutout":
        values = {"centre": torch.stack([torch.floor(u() * s) for s in spatial], -1)}
    elif op == "flip":
        values = {"flip": (u() < 0.5).float()}
    elif op == "scale":
        values = {"scale": (u(2) * (SCALE_RATIO - 1 / SCALE_RATIO) + 1 / SCALE_RATIO)}
    else:
        values = {"angle": (u() * 2 - 1) * math.radians(ROTATE_DEGREES)}
    return values


def augment_runs(x: torch.Tensor, strategy, streams: RunStreams, step: int) -> torch.Tensor:
    """Augment per-run batches ``x [R, b, C, *spatial]`` (evaluation mode), each run from its own stream.

    Run r draws its operation and the parameters of each of its samples from ``streams`` (run r's
    stream, ``step``), so its augmentation is the same whether it trains alone or with other runs.
    Runs that drew the same operation are transformed together (a loop over operations, not runs).
    """
    strategy = _check_strategy(strategy)
    R, b = x.shape[:2]
    spatial = tuple(x.shape[3:])
    choice = streams.integers("dsa-op", step, len(strategy), (1,))[:, 0]
    out = torch.empty_like(x)
    for i, op in enumerate(strategy):
        runs = (choice == i).nonzero()[:, 0]
        if runs.numel() == 0:
            continue
        draws = iter(range(8))

        def u(*shape, op=op, draws=draws, runs=runs):
            """Uniforms ``[len(runs) * b, *shape]`` of the chosen runs (tagged by operation and draw)."""
            values = streams.uniform(f"dsa:{op}:{next(draws)}", step, (b, *shape), torch.float32)
            return values[runs].reshape(-1, *shape)

        params = AugmentParams(op, _draw(op, u, spatial), runs.numel() * b)
        index = runs.to(x.device)
        out[index] = apply(x[index].flatten(0, 1), params).view(runs.numel(), b, *x.shape[2:])
    return out


def apply(x: torch.Tensor, params: AugmentParams, group: torch.Tensor | None = None) -> torch.Tensor:
    """Apply ``params`` to images ``[N, C, *spatial]``; sample n takes the parameters of group ``group[n]``.

    ``group`` defaults to ``arange(N)`` (one group per sample) and must then have ``params.groups == N``.
    """
    N = x.shape[0]
    if group is None:
        if params.groups != N:
            raise ValueError(f"params drawn for {params.groups} groups cannot be applied one per sample to {N} images")
        group = torch.arange(N)
    group = group.to(torch.long).cpu()
    v = {k: t[group].to(device=x.device, dtype=x.dtype) for k, t in params.values.items()}
    spatial = tuple(x.shape[2:])
    bshape = (N,) + (1,) * (x.dim() - 1)
    if params.op == "color":
        x = x + (v["brightness"].view(bshape) - 0.5)
        channel_mean = x.mean(1, keepdim=True)
        x = channel_mean + (x - channel_mean) * (v["saturation"].view(bshape) * 2)
        image_mean = x.mean(tuple(range(1, x.dim())), keepdim=True)
        return image_mean + (x - image_mean) * (v["contrast"].view(bshape) + 0.5)
    if params.op == "cutout":
        keep = torch.ones_like(x[:, :1])
        hole = None
        for axis, size in enumerate(spatial):
            coord = torch.arange(size, device=x.device, dtype=x.dtype)
            half = max(1, int(size * CUTOUT_RATIO)) / 2
            start = v["centre"][:, axis, None] - half
            inside = (coord[None] >= start) & (coord[None] < start + 2 * half)  # [N, size]
            view = [N] + [1] * len(spatial)
            view[1 + axis] = size
            inside = inside.view(N, 1, *view[1:])
            hole = inside if hole is None else hole & inside
        return x * (keep - hole.to(x.dtype))
    return _affine(x, params.op, v)


def _affine(x: torch.Tensor, op: str, v: dict[str, torch.Tensor]) -> torch.Tensor:
    N = x.shape[0]
    signal = x.dim() == 3
    img = x[:, :, None, :] if signal else x
    H, W = img.shape[-2:]
    theta = torch.zeros(N, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    if op == "crop":
        # whole-pixel shift in normalised coordinates (2/size per pixel)
        theta[:, 0, 2] = -v["shift"][:, 0] * 2 / W
        if not signal:
            theta[:, 1, 2] = -v["shift"][:, 1] * 2 / H
    elif op == "flip":
        theta[:, 0, 0] = 1 - 2 * v["flip"]
    elif op == "scale":
        theta[:, 0, 0] = v["scale"][:, 0]
        if not signal:
            theta[:, 1, 1] = v["scale"][:, 1]
    elif op == "rotate":
        a = v["angle"]
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a), -torch.sin(a)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a), torch.cos(a)
    else:
        raise ValueError(f"unknown augmentation {op!r}; accepted: {', '.join(OPERATIONS)}")
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, :, 0, :] if signal else out


def augment(x: torch.Tensor, strategy, generator: torch.Generator) -> torch.Tensor:
    """Augment every sample of ``x`` independently with one operation drawn from ``strategy`` (evaluation mode)."""
    return apply(x, sample_params(strategy, x.shape[0], tuple(x.shape[2:]), generator))
