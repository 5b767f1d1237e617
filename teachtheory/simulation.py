"""Simulations: one paper figure or table each, runnable at scale ``small`` or ``full``.

A simulation builds a problem, a learner and the teachers to compare, runs each through
:func:`teachtheory.teach` (all runs batched), and writes into its output folder:
``config.json``, ``metrics.json`` (per teacher and metric: per-step mean and standard error,
and final values), one ``.npz`` trajectory per teacher, and convergence figures.

Conventions of ``metrics.json``: non-finite numbers are the strings "inf", "-inf", "nan" (see
:mod:`teachtheory.io`); a ``null`` is never silent: the same object holds ``<key>_note`` saying
why (e.g. ``"se": null, "se_note": "one run: ..."``). Runs that diverged are counted per teacher
(``diverged_runs``, ``first_divergence_step``) and listed in ``run.json`` under ``warnings``.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .engine import Trajectory, teach
from .io import from_jsonable, result_folder, write_json
from .learners import Learner
from .plotting import convergence_figure, save_figure
from .problems import Problem
from .registry import load_entry_points
from .stats import mean_se
from .teachers import Teacher
from .validation import check_choice, check_device, check_memory, check_positive_int, check_seed

__all__ = [
    "FORMATS",
    "ONE_RUN_NOTE",
    "SCALES",
    "SIMULATIONS",
    "Setup",
    "Simulation",
    "check_run_arguments",
    "file_slug",
    "get_simulation",
    "load_simulations",
    "mean_se_entry",
    "non_finite_paths",
    "register",
    "replot",
    "run_simulation",
    "run_teaching",
    "split_timings",
    "teacher_summary",
    "write_metrics",
    "write_run_record",
]

SCALES = ("small", "full")
FORMATS = ("png", "svg", "pdf")
ONE_RUN_NOTE = "one run: a standard error needs at least two runs"


def mean_se_entry(values: Any, axis: int = 0) -> dict[str, Any]:
    """Mean and standard error over ``axis`` (the runs) as stored in metrics.json.

    With one run there is no standard error: ``se`` is None and ``se_note`` says why (never 0).
    """
    values = np.asarray(values, dtype=float)
    mean, se = mean_se(values, axis)
    if values.shape[axis] < 2:
        return {"mean": mean, "se": None, "se_note": ONE_RUN_NOTE}
    return {"mean": mean, "se": se}


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
        protocol: whose setup it runs (the paper's, the authors' code's, or the toolkit's own and how it differs);
            ``teachtheory list`` shows it beside the reference (where the reference does not already name it).
        defaults: per scale, the default runs and steps.
        minimum: the least runs and steps that give complete metrics ({"runs", "steps"}, or one such dict
            per scale); smaller sizes are refused, with ``minimum_reason`` in the message.
        memory_per_run, memory_per_run_step: bytes, for the memory estimate checked before a run.
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
    minimum: dict[str, int] = field(default_factory=lambda: {"runs": 1, "steps": 1})
    minimum_reason: str = ""
    memory_per_run: float = 4 * 2**20
    memory_per_run_step: float = 64.0

    def memory_estimate(self, runs: int, steps: int) -> float:
        """A rough upper estimate of the bytes a run of this size holds (checked before any work)."""
        return runs * self.memory_per_run + runs * (steps + 1) * self.memory_per_run_step

    def check_size(self, runs: int, steps: int, scale: str = "small") -> None:
        """Refuse sizes below the minimum that gives complete metrics (the message says the minimum).

        ``minimum`` is {"runs": .., "steps": ..}, or one such dict per scale.
        """
        minimum = self.minimum.get(scale, self.minimum) if scale in self.minimum else self.minimum
        for arg, value in (("runs", runs), ("steps", steps)):
            low = minimum.get(arg, 1)
            if value < low:
                why = f" ({self.minimum_reason})" if self.minimum_reason else ""
                raise ValueError(f"{self.name} needs {arg} >= {low} for complete metrics, got {value}{why}")
    presets: dict[str, Callable[..., dict]] = field(default_factory=dict)
    preset_defaults: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    protocol: str = ""

    @property
    def reproduces(self) -> str:
        """The reference with its protocol, as ``teachtheory list`` shows it."""
        return f"{self.reference}; protocol: {self.protocol}" if self.protocol else self.reference


SIMULATIONS: dict[str, Simulation] = {}


def register(sim: Simulation) -> Simulation:
    """Add ``sim`` to the registry (by name) and return it."""
    SIMULATIONS[sim.name] = sim
    return sim


def get_simulation(name: str) -> Simulation:
    """The registered simulation called ``name`` (ValueError listing the available ones otherwise)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a simulation name (a string), got {type(name).__name__}")
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

    Every argument (and the memory the size needs, and whether ``out`` can be written) is checked before
    any work. The result's ``warnings`` lists runs that diverged and non-finite values in metrics.json.

    Raises:
        TypeError, ValueError: a bad argument, a size below the simulation's minimum or beyond memory.
        FileExistsError: ``out`` is not empty (without ``force``), or another run wrote it meanwhile.
    """
    sim, runs, steps, seed, device, formats = check_run_arguments(name, scale, runs, steps, seed, device, formats,
                                                                  preset)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, got {type(progress).__name__}")
    if not isinstance(out, (str, Path)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}")
    runner = sim.presets[preset] if preset is not None else sim.runner
    final = Path(out)
    with result_folder(final, force=force) as partial:
        started = time.perf_counter()
        if runner is not None:
            result = runner(out=partial, scale=scale, runs=runs, steps=steps, seed=seed, device=device,
                            formats=formats, progress=progress)
        else:
            result = run_teaching(sim, partial, scale, runs, steps, seed, device, formats, progress)
        warnings_found = list(result.get("warnings", []))
        metrics_file = partial / "metrics.json"
        if metrics_file.exists():
            bad = non_finite_paths(from_jsonable(json.loads(metrics_file.read_text())))
            if bad:
                shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
                warnings_found.append(f"metrics.json holds non-finite values (written as \"inf\"/\"nan\") at {shown}")
        result["warnings"] = warnings_found
        write_run_record(partial, device=device, seconds=time.perf_counter() - started)
        if warnings_found:
            _update_run_record(partial, {"warnings": warnings_found})
    return _relocate(result, partial, final)


def check_run_arguments(name: str, scale: str = "small", runs: int | None = None, steps: int | None = None,
                        seed: int = 0, device: str = "cpu", formats: tuple[str, ...] = ("png",),
                        preset: str | None = None):
    """Check a simulation's arguments before any work; returns (simulation, runs, steps, seed, device, formats).

    Defaults of ``runs`` and ``steps`` come from the scale (and the preset, when one is named: it must be one
    of the simulation's ``presets``); sizes below the simulation's minimum, seeds
    outside [0, 2^63 - 1 - runs], devices this machine lacks, and sizes whose memory estimate exceeds the
    memory available are refused (ValueError or TypeError naming the argument).
    """
    sim = get_simulation(name)
    check_choice(scale, "scale", SCALES)
    defaults = sim.defaults
    if preset is not None:
        if preset not in sim.presets:
            known = ", ".join(sorted(sim.presets)) or "none"
            raise ValueError(f"simulation {name!r} has no preset {preset!r}; its presets: {known}")
        defaults = sim.preset_defaults.get(preset, sim.defaults)
    if runs is not None:
        runs = check_positive_int(runs, "runs")
    if steps is not None:
        steps = check_positive_int(steps, "steps")
    runs = defaults[scale]["runs"] if runs is None else runs
    steps = defaults[scale]["steps"] if steps is None else steps
    sim.check_size(runs, steps, scale)
    seed = check_seed(seed, "seed", runs=runs)
    device = str(check_device(device))
    if isinstance(formats, str) or not all(isinstance(f, str) and f in FORMATS for f in formats):
        raise ValueError(f"formats must be a sequence of {', '.join(FORMATS)} (empty: no figures); got {formats!r}")
    check_memory(sim.memory_estimate(runs, steps), f"{sim.name} with runs={runs}, steps={steps}")
    return sim, runs, steps, seed, device, tuple(formats)


def non_finite_paths(tree: Any, prefix: str = "") -> list[str]:
    """Where a metrics tree holds unexplained non-finite floats, as paths like ``teachers.SGD.distance.mean``.

    Lists are collapsed to their path; a value whose dict has a sibling ``<key>_note`` is explained (e.g. inf
    for "never happened") and not listed.
    """
    if isinstance(tree, dict):
        return [p for k, v in tree.items() if f"{k}_note" not in tree
                for p in non_finite_paths(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(tree, list):
        return next((non_finite_paths(v, prefix) for v in tree if non_finite_paths(v, prefix)), [])
    if isinstance(tree, float) and not math.isfinite(tree):
        return [prefix or "(top)"]
    return []


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


def run_teaching(sim: Simulation, out: Path, scale: str, runs: int, steps: int, seed: int, device: str,
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
                     seed=seed, record=setup.metrics, progress=report, device=device, on_divergence="ignore")
        traj.save(out / "trajectories" / f"{file_slug(label)}.npz")
        trajectories[label] = traj
    summary = {label: teacher_summary(traj) for label, traj in trajectories.items()}
    warnings_found = [f"{label}: {traj.divergence_message()}" for label, traj in trajectories.items()
                      if traj.divergence_message()]
    # every teacher runs the same steps with the same metrics, so they share one recording grid
    grid = next(iter(trajectories.values())).steps_recorded if trajectories else None
    write_metrics(out, {"simulation": sim.name, "runs": runs, "steps": setup.steps, "steps_recorded": grid,
                        "teachers": summary})
    fig = convergence_figure(trajectories, setup.metrics, title=f"{sim.name}: {sim.reference} (R={runs}, mean ± SE)")
    figures = save_figure(fig, out / "convergence", formats)
    return {"out": str(out), "figures": [str(f) for f in figures], "summary": summary, "trajectories": trajectories,
            "warnings": warnings_found}


def teacher_summary(traj: Trajectory) -> dict:
    """One teacher's entry of metrics.json: per metric the per-step mean and SE and the final values."""
    entry: dict[str, Any] = {}
    for metric in traj.metrics:
        s = traj.summary(metric)
        final = traj.final(metric)
        item: dict[str, Any] = {"mean": s["mean"], "se": s["se"]}
        if traj.runs < 2:  # no spread from one run: say so instead of writing 0 or NaN
            item.update(se=None, se_note=ONE_RUN_NOTE)
            final.update(std=None, std_note=ONE_RUN_NOTE, se=None, se_note=ONE_RUN_NOTE)
        item["final"] = final
        entry[metric] = item
    entry["diverged_runs"] = int(traj.diverged.sum())
    if traj.diverged.any():
        entry["first_divergence_step"] = int(traj.diverged_step[traj.diverged].min())
    entry["seconds"] = float(traj.seconds[-1])
    return entry


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
        path = folder / "trajectories" / f"{file_slug(label)}.npz"
        if not path.is_file():
            raise ValueError(f"RESULT_DIR {str(folder)!r} lacks {path.relative_to(folder)}")
        trajectories[label] = Trajectory.load(path)
    metrics = tuple(next(iter(trajectories.values())).metrics)
    reference = config.get("reference", sim.reference)  # a preset run's caption names its own protocol
    fig = convergence_figure(trajectories, metrics, title=f"{sim.name}: {reference} (R={config['runs']}, mean ± SE)")
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


def file_slug(label: str) -> str:
    """A label made safe as a file name: alphanumerics and ``-_.`` kept, the rest dashes, lower case."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-").lower()
