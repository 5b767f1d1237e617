"""Counter-based random streams, one per run.

Every stochastic computation in teachtheory draws its numbers from a hash of
``(seed of the run, stream tag, step, position)``. Run ``r`` therefore sees the
same numbers whether it is simulated alone or inside a batch of ``R`` runs, and
there is no global or sequential generator state: a batch of runs is exactly
the concatenation of the single runs with the same seeds.

The hash is SplitMix64 (Steele, Lea & Flood 2014), evaluated elementwise on
int64 tensors; torch's int64 arithmetic wraps modulo 2^64, and the logical
right shifts are emulated by masking.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import torch

__all__ = ["RunStreams", "as_seeds", "stream_tag"]

_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as signed int64
_MIX1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_MIX2 = -7723592293110705685  # 0x94D049BB133111EB


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 by k bits."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def _splitmix64(x: torch.Tensor) -> torch.Tensor:
    z = x + _GOLDEN
    z = (z ^ _srl(z, 30)) * _MIX1
    z = (z ^ _srl(z, 27)) * _MIX2
    return z ^ _srl(z, 31)


def stream_tag(name: str) -> int:
    """A stable integer for a stream name (so streams never collide by accident)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def as_seeds(seed: int | Sequence[int] | torch.Tensor, runs: int | None = None) -> torch.Tensor:
    """Per-run seeds as an int64 tensor of shape [R].

    Args:
        seed: one integer (then run r gets ``seed + r``), or one seed per run.
        runs: number of runs R when ``seed`` is a single integer.
    """
    if isinstance(seed, torch.Tensor):
        seeds = seed.to(torch.int64).reshape(-1).cpu()
    elif isinstance(seed, (int,)) and not isinstance(seed, bool):
        if runs is None or runs < 1:
            raise ValueError(f"runs must be a positive integer when seed is an int, got {runs!r}")
        seeds = torch.arange(runs, dtype=torch.int64) + int(seed)
    else:
        try:
            seeds = torch.tensor([int(s) for s in seed], dtype=torch.int64)
        except TypeError as exc:
            raise TypeError(f"seed must be an int or a sequence of ints, got {type(seed).__name__}") from exc
    if seeds.numel() == 0:
        raise ValueError("seed: at least one run is needed, got an empty sequence")
    if runs is not None and seeds.numel() != runs:
        raise ValueError(f"seed has {seeds.numel()} entries but runs={runs}")
    return seeds


class RunStreams:
    """Independent random streams for R runs, addressed by (tag, step).

    ``streams.uniform("imt", step, (n,))`` returns a tensor of shape ``[R, n]`` whose
    row r depends only on ``seeds[r]``, the tag, the step and the position.

    Args:
        seeds: int64 tensor [R] of per-run seeds (see :func:`as_seeds`).
        device: where the returned tensors live.
    """

    def __init__(self, seeds: torch.Tensor, device: torch.device | str = "cpu") -> None:
        self.seeds = as_seeds(seeds)
        self.device = torch.device(device)
        # Hash the seed once so that nearby seeds give unrelated streams.
        self._keys = _splitmix64(_splitmix64(self.seeds)).to(self.device)

    @property
    def runs(self) -> int:
        return int(self.seeds.numel())

    def subset(self, index: slice | Sequence[int]) -> "RunStreams":
        return RunStreams(self.seeds[index], self.device)

    def bits(self, tag: str | int, step: int, shape: Sequence[int]) -> torch.Tensor:
        """Raw 64-bit words, int64 tensor of shape [R, *shape]."""
        tag_value = stream_tag(tag) if isinstance(tag, str) else int(tag)
        count = math.prod(shape)
        base = _splitmix64(self._keys ^ _splitmix64(torch.tensor(tag_value * 1_000_003 + 17, dtype=torch.int64)))
        base = _splitmix64(base + int(step) * 0x2545F491)
        position = torch.arange(count, dtype=torch.int64, device=self.device)
        words = _splitmix64(base[:, None] + _splitmix64(position)[None, :])
        return words.reshape(self.runs, *shape)

    def uniform(
        self, tag: str | int, step: int, shape: Sequence[int], dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Uniform numbers in [0, 1), shape [R, *shape]."""
        top53 = _srl(self.bits(tag, step, shape), 11)
        return (top53.to(torch.float64) * 2.0**-53).to(dtype)

    def normal(
        self, tag: str | int, step: int, shape: Sequence[int], dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Standard normal numbers (Box-Muller), shape [R, *shape]."""
        count = math.prod(shape)
        u = self.uniform(tag, step, (2, count))
        u1 = 1.0 - u[:, 0]  # in (0, 1]
        z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u[:, 1])
        return z.reshape(self.runs, *shape).to(dtype)

    def integers(self, tag: str | int, step: int, high: int, shape: Sequence[int]) -> torch.Tensor:
        """Uniform integers in [0, high), int64 tensor of shape [R, *shape]."""
        if high < 1:
            raise ValueError(f"high must be at least 1, got {high}")
        u = self.uniform(tag, step, shape)
        return torch.clamp((u * high).to(torch.int64), max=high - 1)

    def generator(self, tag: str | int, run: int) -> torch.Generator:
        """A torch.Generator for one run, for code that needs torch's samplers."""
        word = int(self.bits(tag, 0, (1,))[run, 0])
        return torch.Generator().manual_seed(word & 0x7FFF_FFFF_FFFF_FFFF)
