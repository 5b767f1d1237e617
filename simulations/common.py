"""What the simulation runners share: checking their arguments, progress reports, single-threaded CPU runs.

A runner is ``runner(out, scale, runs, steps, seed, device, formats, progress) -> dict``; it writes its
results into ``out`` (see :class:`teachtheory.simulation.Simulation`). This module registers no simulation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from teachtheory.threads import intra_op_threads

__all__ = ["Progress", "labelled_progress", "prepare_output", "single_threaded"]

Progress = Callable[[str, int, int], None] | None


def prepare_output(out, runs: int, steps: int, device: str) -> Path:
    """Check a runner's arguments and create its output folder.

    Raises:
        ValueError: ``runs`` or ``steps`` not a positive integer, or a CUDA device without CUDA.
    """
    for name, value in (("runs", runs), ("steps", steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def labelled_progress(progress: Progress, label: str, offset: int, total: int) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback for one part of a runner, reported as ``progress(label, offset + done, total)``."""
    def report(done: int, _total: int) -> None:
        if progress is not None:
            progress(label, offset + done, total)
    return report


def single_threaded(body: Callable[..., dict]) -> Callable[..., dict]:
    """A runner that calls ``body`` with one intra-op thread on CPU (tiny per-step tensors: one thread is
    fastest) and restores the caller's setting; ``runs``/``steps`` of None keep ``body``'s defaults."""

    @functools.wraps(body)
    def runner(out, scale: str = "small", runs: int | None = None, steps: int | None = None, seed: int = 0,
               device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
        kwargs = {k: v for k, v in (("runs", runs), ("steps", steps)) if v is not None}
        with intra_op_threads(1 if not str(device).startswith("cuda") else None):
            return body(out, scale=scale, seed=seed, device=device, formats=formats, progress=progress, **kwargs)

    runner.__name__ = runner.__qualname__ = body.__name__.lstrip("_")  # the public name of the runner
    return runner
