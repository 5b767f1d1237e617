"""Simulations: one paper figure or table each, runnable at scale ``small`` or ``full``.

A simulation builds a problem, a learner and the teachers to compare, runs each through
:func:`teachtheory.teach` (all runs batched), and writes into its output folder:
``config.json``, ``metrics.json`` (per teacher and metric: per-step mean and standard error,
and final values), one ``.npz`` trajectory per teacher, and convergence figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..engine import Trajectory, teach
from ..io import write_json
from ..learners import Learner
from ..plotting import convergence_figure, save_figure
from ..problems import Problem
from ..teachers import Teacher

__all__ = ["Simulation", "Setup", "SIMULATIONS", "register", "get_simulation", "run_simulation", "SCALES"]

SCALES = ("small", "full")


@dataclass
class Setup:
    """What a simulation runs: one problem and learner, several labelled teachers, shared settings."""

    problem: Problem
    learner: Learner
    teachers: list[tuple[str, Teacher]]
    steps: int
    lr: float
    batch_size: int = 1
    metrics: tuple[str, ...] = ("distance", "loss")
    notes: dict = field(default_factory=dict)


@dataclass
class Simulation:
    """A registered experiment.

    Attributes:
        name: CLI name. description: one line. reference: paper and figure.
        defaults: per scale, the default runs and steps.
        build: (scale, runs, steps, seed, device) -> Setup, for teaching simulations run by teach().
        runner: for other simulations, (out, scale, runs, steps, seed, device, formats, progress) -> dict
            that writes its own results (then ``build`` is None).
    """

    name: str
    description: str
    reference: str
    defaults: dict[str, dict[str, int]]
    build: Callable[..., Setup] | None = None
    runner: Callable[..., dict] | None = None


SIMULATIONS: dict[str, Simulation] = {}


def register(sim: Simulation) -> Simulation:
    SIMULATIONS[sim.name] = sim
    return sim


def get_simulation(name: str) -> Simulation:
    _load_all()
    if name not in SIMULATIONS:
        raise ValueError(f"unknown simulation {name!r}; available: {', '.join(sorted(SIMULATIONS))}")
    return SIMULATIONS[name]


def _load_all() -> None:
    from . import committee, l2t, relu, ssl, teaching  # noqa: F401  (each registers on import)


def run_simulation(
    name: str,
    out: str | Path,
    *,
    scale: str = "small",
    runs: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    formats: tuple[str, ...] = ("png",),
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Run simulation ``name`` and write its results into ``out``; returns the metrics summary.

    ``progress(label, done, total)`` is called as steps complete (total = steps x teachers).
    """
    sim = get_simulation(name)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    for arg, value in (("runs", runs), ("steps", steps)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    runs = runs or sim.defaults[scale]["runs"]
    steps = steps or sim.defaults[scale]["steps"]
    if sim.runner is not None:
        return sim.runner(out=Path(out), scale=scale, runs=runs, steps=steps, seed=seed, device=device,
                          formats=formats, progress=progress)
    setup = sim.build(scale=scale, runs=runs, steps=steps, seed=seed, device=device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "simulation": sim.name, "reference": sim.reference, "scale": scale, "runs": runs, "steps": setup.steps,
        "seed": seed, "device": device, "lr": setup.lr, "batch_size": setup.batch_size,
        "problem": setup.problem.name, "problem_meta": setup.problem.meta, "learner": setup.learner.to_spec(),
        "teachers": {label: t.to_spec() for label, t in setup.teachers},
        "notes": setup.notes, "torch": torch.__version__,
    }
    write_json(out / "config.json", config)
    total = setup.steps * len(setup.teachers)
    trajectories: dict[str, Trajectory] = {}
    started = time.perf_counter()
    for i, (label, teacher) in enumerate(setup.teachers):
        offset = i * setup.steps

        def report(done: int, label=label, offset=offset) -> None:
            if progress is not None:
                progress(label, offset + done, total)

        traj = teach(setup.problem, setup.learner, teacher, setup.steps, setup.lr, setup.batch_size,
                     seed=seed, record=setup.metrics, progress=report, device=device)
        traj.save(out / "trajectories" / f"{_slug(label)}.npz")
        trajectories[label] = traj
    summary = {
        label: {
            metric: {
                "mean": traj.summary(metric)["mean"], "se": traj.summary(metric)["se"], "final": traj.final(metric),
            }
            for metric in traj.metrics
        } | {"seconds": float(traj.seconds[-1])}
        for label, traj in trajectories.items()
    }
    write_json(out / "metrics.json", {"simulation": sim.name, "runs": runs, "steps": setup.steps, "teachers": summary,
                                      "seconds": time.perf_counter() - started})
    fig = convergence_figure(trajectories, setup.metrics, title=f"{sim.name}: {sim.reference} (R={runs}, mean ± SE)")
    figures = save_figure(fig, out / "convergence", formats)
    return {"out": str(out), "figures": [str(f) for f in figures], "summary": summary, "trajectories": trajectories}


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-").lower()
