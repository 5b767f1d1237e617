"""What the simulation runners share: checking their arguments, progress reports, single-threaded CPU runs.

A runner is ``runner(out, scale, runs, steps, seed, device, formats, progress) -> dict``; it writes its
results into ``out`` (see :class:`teachtheory.simulation.Simulation`). This module registers no simulation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from teachtheory.simulation import mean_se_entry
from teachtheory.threads import intra_op_threads
from teachtheory.validation import check_device, check_positive_int

__all__ = ["TEACHING_MEMORY_PER_RUN_STEP", "Progress", "final_summary", "labelled_progress", "prepare_output",
           "single_threaded"]

# teaching simulations: metric histories of every teacher, kept while stacked and in the trajectories
# ((6 teachers x 2 metrics x 8 bytes) x 2 copies, with headroom), for the memory check before a run
TEACHING_MEMORY_PER_RUN_STEP = 512

Progress = Callable[[str, int, int], None] | None


def prepare_output(out, runs: int, steps: int, device: str) -> Path:
    """Check a runner's arguments and create its output folder.

    Raises:
        TypeError, ValueError: ``runs`` or ``steps`` not a positive integer, or a device this machine lacks.
    """
    check_positive_int(runs, "runs")
    check_positive_int(steps, "steps")
    check_device(device)
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


def final_summary(values) -> dict:
    """Mean and standard error over runs of per-run values; with one run the SE is None with a note."""
    out = mean_se_entry(np.asarray(values, float))
    out["mean"] = float(out["mean"])
    if out["se"] is not None:
        out["se"] = float(out["se"])
    return out
