"""Simulations: one paper figure or table each, runnable at scale ``small`` or ``full``.

A simulation builds a problem, a learner and the teachers to compare, runs each through
:func:`teachtheory.teach` (all runs batched), and writes into its output folder:
``config.json``, ``metrics.json`` (per teacher and metric: per-step mean and standard error,
and final values), one ``.npz`` trajectory per teacher, and convergence figures.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .engine import Trajectory, teach
from .io import result_folder, write_json
from .learners import Learner
from .plotting import convergence_figure, save_figure
from .problems import Problem
from .registry import load_entry_points
from .teachers import Teacher

__all__ = [
    "SCALES",
    "SIMULATIONS",
    "Setup",
    "Simulation",
    "get_simulation",
    "load_simulations",
    "register",
    "replot",
    "run_simulation",
    "split_timings",
    "write_metrics",
    "write_run_record",
]

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
        replot: for runner simulations, (folder, formats) -> figure paths: redraws the figures from the
            saved files alone (teaching simulations are redrawn from their trajectories).
        presets: named alternative setups of a runner simulation (e.g. a paper's exact configuration):
            name -> runner with the same signature, chosen by ``run_simulation(..., preset=name)``; each
            preset has its own defaults in ``preset_defaults[name]`` (per scale, runs and steps).
    """

    name: str
    description: str
    reference: str
    defaults: dict[str, dict[str, int]]
    build: Callable[..., Setup] | None = None
    runner: Callable[..., dict] | None = None
    replot: Callable[[Path, tuple[str, ...]], list[Path]] | None = None
    presets: dict[str, Callable[..., dict]] = field(default_factory=dict)
    preset_defaults: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


SIMULATIONS: dict[str, Simulation] = {}


def register(sim: Simulation) -> Simulation:
    SIMULATIONS[sim.name] = sim
    return sim


def get_simulation(name: str) -> Simulation:
    load_simulations()
    if name not in SIMULATIONS:
        raise ValueError(f"unknown simulation {name!r}; available: {', '.join(sorted(SIMULATIONS))}")
    return SIMULATIONS[name]


SIMULATIONS_GROUP = "teachtheory.simulations"


def load_simulations() -> dict[str, Simulation]:
    """Import every simulation module registered under the ``teachtheory.simulations`` entry-point group.

    The toolkit's experiments live in ``simulations/``; a user's package adds its own the same way.
    """
    load_entry_points(SIMULATIONS_GROUP)
    return SIMULATIONS


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
    force: bool = False,
    preset: str | None = None,
) -> dict:
    """Run simulation ``name`` and write its results into the folder ``out``; returns the metrics summary.

    ``preset`` picks one of the simulation's named setups (:attr:`Simulation.presets`) instead of its own.

    The folder is written as a transaction (:func:`teachtheory.io.result_folder`): it appears complete
    or not at all. A non-empty ``out`` is refused unless ``force``, which replaces it whole.
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
    runner, defaults = sim.runner, sim.defaults
    if preset is not None:
        if preset not in sim.presets:
            known = ", ".join(sorted(sim.presets)) or "none"
            raise ValueError(f"simulation {name!r} has no preset {preset!r}; its presets: {known}")
        runner, defaults = sim.presets[preset], sim.preset_defaults.get(preset, sim.defaults)
    runs = runs or defaults[scale]["runs"]
    steps = steps or defaults[scale]["steps"]
    final = Path(out)
    with result_folder(final, force=force) as partial:
        started = time.perf_counter()
        if runner is not None:
            result = runner(out=partial, scale=scale, runs=runs, steps=steps, seed=seed, device=device,
                                formats=formats, progress=progress)
        else:
            result = _run_teaching(sim, partial, scale, runs, steps, seed, device, formats, progress)
        write_run_record(partial, device=device, seconds=time.perf_counter() - started)
    return _relocate(result, partial, final)


def _relocate(value, partial: Path, final: Path):
    """Paths inside a result that point into the partial folder, pointed at the final one instead."""
    if isinstance(value, dict):
        return {k: _relocate(v, partial, final) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, partial, final) for v in value]
    if isinstance(value, (str, Path)) and str(value).startswith(str(partial)):
        moved = str(final) + str(value)[len(str(partial)):]
        return Path(moved) if isinstance(value, Path) else moved
    return value


TIMING_KEYS = ("seconds", "sgd_seconds", "ode_seconds", "seconds_per_round", "seconds_per_round_median", "s/round")


def split_timings(metrics: Any) -> tuple[Any, Any]:
    """Split wall-clock timings out of a metrics tree: (metrics without them, the timings at the same paths).

    Results must be byte-identical for a seed, so timings never go into ``metrics.json``; they go to
    ``run.json`` (see :func:`write_metrics`).
    """
    if isinstance(metrics, dict):
        kept, timings = {}, {}
        for key, value in metrics.items():
            if key in TIMING_KEYS:
                timings[key] = value
                continue
            k, tm = split_timings(value)
            kept[key] = k
            if tm not in (None, {}, []):
                timings[key] = tm
        return kept, timings
    if isinstance(metrics, list):
        pairs = [split_timings(v) for v in metrics]
        timings = [tm for _, tm in pairs]
        return [k for k, _ in pairs], (timings if any(tm not in (None, {}) for tm in timings) else None)
    return metrics, None


def write_metrics(folder: str | Path, metrics: dict) -> Path:
    """Write ``metrics.json`` (results only, byte-identical for a seed) and put its timings into ``run.json``."""
    folder = Path(folder)
    kept, timings = split_timings(metrics)
    path = write_json(folder / "metrics.json", kept)
    if timings:
        _update_run_record(folder, {"timings": timings})
    return path


def _update_run_record(folder: Path, entries: dict) -> None:
    path = folder / "run.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(entries)
    write_json(path, record)


def write_run_record(folder: str | Path, *, device: str, seconds: float) -> Path:
    """Write ``run.json``: what differs between two runs with one seed (wall time, versions, device, host)."""
    import numpy

    from . import __version__

    folder = Path(folder)
    _update_run_record(folder, {
        "seconds": seconds, "device": device,
        "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None,
        "host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "versions": {"teachtheory": __version__, "torch": torch.__version__, "numpy": numpy.__version__},
        "threads": torch.get_num_threads(),
    })
    return folder / "run.json"


def _run_teaching(sim: Simulation, out: Path, scale: str, runs: int, steps: int, seed: int, device: str,
                  formats: tuple[str, ...], progress) -> dict:
    """The generic runner of teaching simulations: each teacher through :func:`teachtheory.teach`."""
    setup = sim.build(scale=scale, runs=runs, steps=steps, seed=seed, device=device)
    config = {
        "simulation": sim.name, "reference": sim.reference, "scale": scale, "runs": runs, "steps": setup.steps,
        "seed": seed, "device": device, "lr": setup.lr, "batch_size": setup.batch_size,
        "problem": setup.problem.name, "problem_meta": setup.problem.meta, "learner": setup.learner.to_spec(),
        "teachers": {label: t.to_spec() for label, t in setup.teachers},
        "notes": setup.notes,
    }
    write_json(out / "config.json", config)
    total = setup.steps * len(setup.teachers)
    trajectories: dict[str, Trajectory] = {}
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
    write_metrics(out, {"simulation": sim.name, "runs": runs, "steps": setup.steps, "teachers": summary})
    fig = convergence_figure(trajectories, setup.metrics, title=f"{sim.name}: {sim.reference} (R={runs}, mean ± SE)")
    figures = save_figure(fig, out / "convergence", formats)
    return {"out": str(out), "figures": [str(f) for f in figures], "summary": summary, "trajectories": trajectories}


def replot(folder: str | Path, formats: tuple[str, ...] = ("png",), style: str = "default") -> list[Path]:
    """Redraw the figures of a saved simulation or sweep folder from its files (no rerun), in ``style``.

    Raises:
        ValueError: the folder holds no simulation or sweep result, or its simulation cannot be redrawn.
    """
    from .plotting import figure_style

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"RESULT_DIR {str(folder)!r} is not a folder")
    with figure_style(style):
        if (folder / "sweep.json").is_file():
            return _replot_sweep(folder, formats)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ValueError(f"RESULT_DIR {str(folder)!r} holds neither a simulation (config.json) nor a sweep "
                             "(sweep.json)")
        config = json.loads(config_path.read_text())
        sim = get_simulation(config.get("simulation", ""))
        if sim.build is not None:
            return _replot_teaching(sim, folder, config, formats)
        if sim.replot is None:
            raise ValueError(f"simulation {sim.name!r} cannot redraw its figures from saved files yet; rerun it")
        return sim.replot(folder, formats)


def _replot_teaching(sim: Simulation, folder: Path, config: dict, formats: tuple[str, ...]) -> list[Path]:
    trajectories = {}
    for label in config["teachers"]:
        path = folder / "trajectories" / f"{_slug(label)}.npz"
        if not path.is_file():
            raise ValueError(f"RESULT_DIR {str(folder)!r} lacks {path.relative_to(folder)}")
        trajectories[label] = Trajectory.load(path)
    metrics = tuple(next(iter(trajectories.values())).metrics)
    fig = convergence_figure(trajectories, metrics,
                             title=f"{sim.name}: {sim.reference} (R={config['runs']}, mean ± SE)")
    return save_figure(fig, folder / "convergence", formats)


def _replot_sweep(folder: Path, formats: tuple[str, ...]) -> list[Path]:
    import xarray

    from .plotting import sweep_figure

    path = folder / "results.nc"
    if not path.is_file():
        raise ValueError(f"sweep folder {str(folder)!r} has no results.nc yet (no cell finished)")
    with xarray.open_dataset(path, engine="scipy") as dataset:
        dataset = dataset.load()
    name = dataset.attrs.get("simulation") or dataset.attrs.get("claim", "sweep")
    fig = sweep_figure(dataset, title=f"sweep of {name}: mean ± SE over seeds")
    return save_figure(fig, folder / "sweep", formats)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-").lower()
