"""What the simulation runners share: checking their arguments, progress reports, single-threaded CPU runs.

A runner is ``runner(out, scale, runs, steps, seed, device, formats, progress) -> dict``; it writes its
results into ``out`` (see :class:`teachtheory.simulation.Simulation`). This module registers no simulation.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from teachtheory.plotting import convergence_figure, save_figure
from teachtheory.simulation import (
    Setup,
    file_slug,
    get_simulation,
    mean_se_entry,
    run_teaching,
    teacher_summary,
    write_metrics,
)
from teachtheory.teachers import Teacher
from teachtheory.threads import intra_op_threads
from teachtheory.validation import check_device, check_positive_int

__all__ = ["TEACHING_MEMORY_PER_RUN_STEP", "Progress", "StateRecorder", "final_summary", "labelled_progress",
           "prepare_output", "single_threaded", "teaching_preset"]

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


StateMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class StateRecorder(Teacher):
    """A teacher that measures ``metric(w, w_star)`` [R] on the learner's state each time it is asked to teach,
    then delegates to ``inner`` (with one update per teaching call, this is the state before every step).

    It lets a simulation record a metric the engine does not know (e.g. a paper's own distance) without
    changing what is taught: the batches are ``inner``'s.
    """

    def __init__(self, inner: Teacher, metric: StateMetric) -> None:
        self.inner, self.metric, self.values = inner, metric, []
        self.name, self.omniscient = inner.name, inner.omniscient

    def teach(self, ctx, w: torch.Tensor, step: int):
        """Record the metric at ``w``, then return ``inner``'s batch."""
        self.values.append(self.metric(w, ctx.w_star).detach().cpu().numpy())
        return self.inner.teach(ctx, w, step)

    def history(self, final_w, w_star: torch.Tensor) -> np.ndarray:
        """The recorded values with the metric at the final weights appended, [R, T + 1]."""
        final = self.metric(torch.as_tensor(final_w, dtype=w_star.dtype), w_star).detach().cpu().numpy()
        return np.stack([*self.values, final], 1)

    def to_spec(self) -> dict:
        """The wrapped teacher's specification (recording does not change the teaching)."""
        return self.inner.to_spec()


def teaching_preset(name: str, reference: str, build: Callable[..., Setup],
                    extra: tuple[str, StateMetric] | None = None,
                    paper: Callable[[dict], dict] | None = None) -> Callable[..., dict]:
    """A preset runner for the teaching simulation ``name``: ``build`` replaces its setup and ``reference`` its
    caption (which protocol the figure shows); an ``extra`` metric (name, metric(w, w_star) -> [R]) is recorded
    at every step beside the engine's metrics, in metrics.json, the trajectories and the figure.

    With ``extra``, the setup must teach one example per update (batch size 1) so every state is seen.
    ``paper(summary) -> dict`` sets the run beside the paper's published result (the numbers, and whether the
    paper's ordering appears); its dict goes to metrics.json and the result under ``"paper"``.
    """

    @single_threaded
    def _preset(out, scale: str, runs: int, steps: int, seed: int, device: str, formats, progress) -> dict:
        recorders: dict[str, StateRecorder] = {}
        targets: list[torch.Tensor] = []

        def recorded_build(**kwargs) -> Setup:
            setup = build(**kwargs)
            if extra is not None:
                recorders.update({label: StateRecorder(t, extra[1]) for label, t in setup.teachers})
                setup.teachers = [(label, recorders[label]) for label, _ in setup.teachers]
                targets.append(setup.problem.w_star.cpu())
            return setup

        sim = dataclasses.replace(get_simulation(name), build=recorded_build, reference=reference)
        out = Path(out)
        result = run_teaching(sim, out, scale, runs, steps, seed, device, formats, progress)
        result["reference"] = reference
        if extra is None:
            return result
        trajectories = result["trajectories"]
        for label, traj in trajectories.items():
            traj.metrics[extra[0]] = recorders[label].history(traj.final_w, targets[0])[:, traj.steps_recorded]
            traj.save(out / "trajectories" / f"{file_slug(label)}.npz")
        summary = {label: teacher_summary(traj) for label, traj in trajectories.items()}
        grid = next(iter(trajectories.values())).steps_recorded
        metrics = {"simulation": sim.name, "runs": runs, "steps": steps, "steps_recorded": grid, "teachers": summary}
        if paper is not None:
            metrics["paper"] = result["paper"] = paper(summary)
        write_metrics(out, metrics)
        fig = convergence_figure(trajectories, tuple(next(iter(trajectories.values())).metrics),
                                 title=f"{sim.name}: {reference} (R={runs}, mean ± SE)")
        result["figures"] = [str(f) for f in save_figure(fig, out / "convergence", formats)]
        result["summary"] = summary
        return result

    return _preset
