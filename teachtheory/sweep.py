"""Sweeps: a simulation or a claim over a grid (or list) of settings times seeds, on one executor.

A sweep is described by a spec (a TOML or YAML file, or a dict)::

    simulation = "lsr"          # or: claim = "last.kaczmarz"
    seeds = [0, 1, 2, 3]        # or: seeds = 4  (0, 1, 2, 3)
    [fixed]                     # settings shared by every cell
    scale = "small"
    [grid]                      # the cartesian product of these
    steps = [100, 300]
    # or, instead of [grid]: [[settings]] tables, one per setting

Every (setting, seed) is a *cell*. A cell runs in a worker (local processes, Dask, Ray or SLURM via
submitit: :func:`make_executor`) and writes its own result folder as a transaction
(:func:`teachtheory.io.result_folder`), so a rerun skips the cells already finished (resume) and a
failed cell is reported with its error without stopping the others. :func:`merge` gathers the
cells into one labelled :class:`xarray.Dataset` (dims ``setting``, ``seed`` and, for teaching
simulations, ``teacher`` and ``step``), saved as NetCDF; :func:`summarize` gives mean ± standard
error over seeds per setting.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tomllib
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .io import atomic_write, check_writable_folder, result_folder, write_json

__all__ = [
    "SweepSpec", "Cell", "CellOutcome", "SweepResult", "load_spec", "make_executor", "run_cell", "sweep", "merge",
    "summarize", "summary_rows", "SIMULATION_SETTINGS", "CLAIM_SETTINGS", "EXECUTORS",
]

SIMULATION_SETTINGS = ("runs", "steps", "scale", "device")
CLAIM_SETTINGS = ("scale",)
EXECUTORS = ("local", "dask", "ray", "slurm", "submitit-local")
DATASET_FILE = "results.nc"


# -- the spec ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs: one simulation or one claim, the settings, and the seeds.

    Attributes:
        target: ``("simulation", name)`` or ``("claim", id)``.
        settings: one dict per setting (already expanded from a grid).
        seeds: the seeds every setting is run with.
    """

    kind: str
    target: str
    settings: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]

    def cells(self) -> list[Cell]:
        """Every (setting, seed) pair, settings outermost."""
        return [Cell(self.kind, self.target, i, setting_label(s), dict(s), seed)
                for i, s in enumerate(self.settings) for seed in self.seeds]

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON (kept in the sweep folder: a resumed sweep must be the same sweep)."""
        return {self.kind: self.target, "settings": [dict(s) for s in self.settings], "seeds": list(self.seeds)}


def setting_label(setting: Mapping[str, Any]) -> str:
    """A readable, file-safe label for a setting: ``steps=100,runs=8`` (``default`` when empty)."""
    if not setting:
        return "default"
    text = ",".join(f"{k}={setting[k]}" for k in sorted(setting))
    safe = "".join(c if c.isalnum() or c in "=,.-_" else "-" for c in text)
    return safe if len(safe) <= 80 else safe[:60] + "-" + hashlib.sha1(text.encode()).hexdigest()[:10]


def load_spec(spec: str | os.PathLike | Mapping[str, Any]) -> SweepSpec:
    """Read a sweep spec from a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file, or take a dict.

    Raises:
        ValueError: a malformed spec, naming the key at fault and what is accepted.
        FileNotFoundError: the file does not exist.

    Example:
        A grid of two settings, each run with two seeds:

        >>> spec = load_spec({"simulation": "lsr", "grid": {"steps": [10, 20]}, "seeds": [0, 1]})
        >>> spec.settings
        ({'steps': 10}, {'steps': 20})
        >>> [(cell.label, cell.seed) for cell in spec.cells()]
        [('steps=10', 0), ('steps=10', 1), ('steps=20', 0), ('steps=20', 1)]
    """
    where = "spec"
    if not isinstance(spec, Mapping):
        path = Path(spec)
        where = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"sweep spec {where!r} does not exist")
        text = path.read_text()
        if path.suffix == ".toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"sweep spec {where!r} is not valid TOML: {exc}") from None
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"sweep spec {where!r} is not valid YAML: {exc}") from None
        else:
            raise ValueError(f"sweep spec {where!r}: the file must end in .toml, .yaml or .yml")
    else:
        data = dict(spec)
    if not isinstance(data, Mapping):
        raise ValueError(f"sweep spec {where!r} must be a table of keys, got {type(data).__name__}")
    return _parse_spec(dict(data), where)


def _parse_spec(data: dict[str, Any], where: str) -> SweepSpec:
    known = {"simulation", "claim", "seeds", "grid", "settings", "fixed"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"sweep spec {where!r}: unknown key(s) {', '.join(unknown)}; "
                         f"accepted: {', '.join(sorted(known))}")
    if ("simulation" in data) == ("claim" in data):
        raise ValueError(f"sweep spec {where!r} needs exactly one of 'simulation' or 'claim'")
    kind = "simulation" if "simulation" in data else "claim"
    target = data[kind]
    if not isinstance(target, str) or not target:
        raise ValueError(f"sweep spec {where!r}: {kind!r} must be a name, got {target!r}")
    accepted = SIMULATION_SETTINGS if kind == "simulation" else CLAIM_SETTINGS
    fixed = data.get("fixed", {})
    if not isinstance(fixed, Mapping):
        raise ValueError(f"sweep spec {where!r}: 'fixed' must be a table of settings")
    if "grid" in data and "settings" in data:
        raise ValueError(f"sweep spec {where!r}: give either 'grid' or 'settings', not both")
    if "grid" in data:
        grid = data["grid"]
        if not isinstance(grid, Mapping) or not grid:
            raise ValueError(f"sweep spec {where!r}: 'grid' must be a non-empty table of lists")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"sweep spec {where!r}: grid.{key} must be a non-empty list, got {values!r}")
        keys = list(grid)
        settings = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    elif "settings" in data:
        settings = data["settings"]
        if not isinstance(settings, list) or not settings or not all(isinstance(s, Mapping) for s in settings):
            raise ValueError(f"sweep spec {where!r}: 'settings' must be a non-empty list of tables")
        settings = [dict(s) for s in settings]
    else:
        settings = [{}]
    settings = [{**fixed, **s} for s in settings]
    for s in settings:
        bad = sorted(set(s) - set(accepted))
        if bad:
            raise ValueError(f"sweep spec {where!r}: setting(s) {', '.join(bad)} not accepted for a {kind}; "
                             f"accepted: {', '.join(accepted)}")
        for key in ("runs", "steps"):
            if key in s and (not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < 1):
                raise ValueError(f"sweep spec {where!r}: {key} must be a positive integer, got {s[key]!r}")
    labels = [setting_label(s) for s in settings]
    if len(set(labels)) != len(labels):
        raise ValueError(f"sweep spec {where!r}: two settings are the same ({labels})")
    seeds = data.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"sweep spec {where!r}: seeds must be a positive count or a list of integers")
        seeds = list(range(seeds))
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**62 for s in seeds)):
        raise ValueError(f"sweep spec {where!r}: seeds must be a positive count or a list of integers in [0, 2^62)")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"sweep spec {where!r}: seeds repeat: {seeds}")
    return SweepSpec(kind, target, tuple(settings), tuple(seeds))


# -- cells -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One (setting, seed) of a sweep: what a worker runs."""

    kind: str
    target: str
    index: int
    label: str
    setting: dict[str, Any]
    seed: int

    def folder(self, root: Path) -> Path:
        """The cell's result folder under the sweep folder ``root``."""
        return Path(root) / "cells" / self.label / f"seed={self.seed}"


def cell_done(cell: Cell, root: Path) -> bool:
    """A cell is finished when its folder exists: it is only ever renamed into place complete."""
    return (cell.folder(root) / ("metrics.json" if cell.kind == "simulation" else "verdict.json")).is_file()


def run_cell(cell: Cell, root: str | os.PathLike, threads: int = 1) -> str:
    """Run one cell in this process and write its result folder (transactionally); returns the folder.

    Executed by the workers of every executor, so it takes and returns plain picklable values.
    """
    import torch

    torch.set_num_threads(threads)  # many cells share the machine: one thread each unless told otherwise
    folder = cell.folder(Path(root))
    if cell.kind == "simulation":
        from .simulation import run_simulation

        s = cell.setting
        run_simulation(cell.target, folder, scale=s.get("scale", "small"), runs=s.get("runs"), steps=s.get("steps"),
                       seed=cell.seed, device=s.get("device", "cpu"))
    else:
        from .claims import CheckContext, select_claims

        claims = select_claims([cell.target])
        if len(claims) != 1:
            raise ValueError(f"claim {cell.target!r} selects {len(claims)} claims; a sweep runs exactly one")
        with result_folder(folder) as partial:
            verdict = claims[0].run(CheckContext(scale=cell.setting.get("scale", "quick"), seed=cell.seed))
            record = verdict.to_json()
            seconds = record.pop("seconds")
            write_json(partial / "verdict.json", record)
            write_json(partial / "run.json", {"seconds": seconds})
    return str(folder)


@dataclass
class CellOutcome:
    """What became of a cell: ``done`` (ran now), ``skipped`` (finished earlier) or ``failed`` (with the error)."""

    cell: Cell
    status: str
    error: str = ""


@dataclass
class SweepResult:
    """A finished sweep: the folder, each cell's outcome, and the merged dataset (None if no cell finished)."""

    folder: Path
    outcomes: list[CellOutcome]
    dataset: Any = None
    dataset_path: Path | None = None

    @property
    def failed(self) -> list[CellOutcome]:
        """The cells that failed, with their errors."""
        return [o for o in self.outcomes if o.status == "failed"]


# -- executors ---------------------------------------------------------------------------------


class Executor:
    """Runs cells somewhere; yields ``(cell, error or None)`` as cells complete. Subclasses: one per backend."""

    name = "executor"

    def run(self, cells: Sequence[Cell], root: Path) -> Iterator[tuple[Cell, str | None]]:
        """Run ``cells`` (writing under ``root``) and yield each with its error text (None when it succeeded)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor started (clusters, pools)."""


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class LocalExecutor(Executor):
    """Local worker processes, started with ``spawn`` so that each worker imports torch cleanly."""

    name = "local"

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        self.workers = workers or 1
        self.threads = threads

    def run(self, cells, root):
        """Run the cells in a process pool (in this process when there is one worker)."""
        if self.workers == 1:
            for cell in cells:
                try:
                    run_cell(cell, root, self.threads)
                except Exception as exc:  # a failed cell is reported, the others go on
                    yield cell, _error_text(exc) + "\n" + traceback.format_exc(limit=4)
                else:
                    yield cell, None
            return
        import multiprocessing

        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_cell, cell, str(root), self.threads): cell for cell in cells}
            for future in as_completed(futures):
                exc = future.exception()
                yield futures[future], None if exc is None else _error_text(exc)


class DaskExecutor(Executor):
    """Dask: a scheduler at ``address`` (``tcp://HOST:PORT``), or a :class:`distributed.LocalCluster`."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--executor dask needs dask's distributed scheduler: pip install 'teachtheory[dask]'") \
                from None
        self.threads = threads
        self.cluster = None
        if address:
            self.client = Client(address)
        else:
            self.cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)

    def run(self, cells, root):
        """Submit every cell to the Dask scheduler and yield them as they complete."""
        from distributed import as_completed as dask_completed

        futures = {self.client.submit(run_cell, cell, str(root), self.threads, pure=False): cell for cell in cells}
        for future in dask_completed(list(futures)):
            cell = futures[future]
            if future.status == "error":
                yield cell, _error_text(future.exception())
            else:
                yield cell, None

    def close(self):
        """Close the client and the local cluster (if this executor started one)."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class RayExecutor(Executor):
    """Ray: a cluster at ``address`` (``ray://HOST:PORT`` or ``auto``), or a local Ray instance."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--executor ray needs Ray: pip install 'teachtheory[ray]'") from None
        self.ray = ray
        self.threads = threads
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=address, num_cpus=None if address else (workers or 1), include_dashboard=False,
                     log_to_driver=False)
        self.remote = ray.remote(num_cpus=1)(run_cell)

    def run(self, cells, root):
        """Launch every cell as a Ray task and yield them as they complete."""
        pending = {self.remote.remote(cell, str(root), self.threads): cell for cell in cells}
        while pending:
            ready, _ = self.ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                self.ray.get(ready[0])
            except Exception as exc:  # a failed task raises its error here
                yield cell, _error_text(exc)
            else:
                yield cell, None

    def close(self):
        """Shut Ray down if this executor started it."""
        if self.started:
            self.ray.shutdown()


class SubmititExecutor(Executor):
    """SLURM through submitit (a job array), or submitit's local executor (``submitit-local``) to try it out."""

    name = "slurm"

    def __init__(self, root: Path, *, local: bool = False, partition: str | None = None, time_min: int = 60,
                 gpus: int = 0, cpus: int = 1, mem_gb: float | None = None, threads: int = 1) -> None:
        try:
            import submitit
        except ImportError:
            raise ValueError("--executor slurm needs submitit: pip install 'teachtheory[slurm]'") from None
        self.threads = threads
        self.executor = submitit.AutoExecutor(folder=Path(root) / "submitit", cluster="local" if local else "slurm")
        params: dict[str, Any] = {"timeout_min": time_min, "cpus_per_task": cpus}
        if gpus:
            params["gpus_per_node"] = gpus
        if mem_gb:
            params["mem_gb"] = mem_gb
        if partition and not local:
            params["slurm_partition"] = partition
        self.executor.update_parameters(**params)

    def run(self, cells, root):
        """Submit the cells as one job array and yield them as their jobs finish."""
        cells = list(cells)
        if not cells:
            return
        jobs = self.executor.map_array(run_cell, cells, [str(root)] * len(cells), [self.threads] * len(cells))
        pending = dict(zip(jobs, cells))
        import time

        while pending:
            finished = [job for job in pending if job.done()]
            if not finished:
                time.sleep(0.5)
                continue
            for job in finished:
                cell = pending.pop(job)
                try:
                    job.result()
                except Exception as exc:  # submitit re-raises the job's error (or its failure) here
                    yield cell, _error_text(exc)
                else:
                    yield cell, None


def make_executor(spec: str = "local", *, root: Path | None = None, workers: int | None = None, threads: int = 1,
                  partition: str | None = None, time_min: int = 60, gpus: int = 0) -> Executor:
    """An executor from its spec: ``local``, ``dask`` or ``dask://HOST:PORT`` (``tcp://`` is implied),
    ``ray`` or ``ray://HOST:PORT``, ``slurm`` (SLURM via submitit; ``partition``, ``time_min``, ``gpus``)
    or ``submitit-local``.

    Raises:
        ValueError: an unknown spec (the message lists the accepted ones) or a backend that is not installed.
    """
    if not isinstance(spec, str):
        raise TypeError(f"executor must be a string such as 'local' or 'dask://host:8786', got {spec!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    scheme, _, rest = spec.partition("://")
    if scheme == "local" and not rest:
        return LocalExecutor(workers, threads)
    if scheme == "dask":
        return DaskExecutor(f"tcp://{rest}" if rest else None, workers, threads)
    if scheme == "ray":
        return RayExecutor(f"ray://{rest}" if rest else None, workers, threads)
    if scheme in ("slurm", "submitit-local") and not rest:
        if root is None:
            raise ValueError("the slurm executor needs the sweep folder (for its logs)")
        return SubmititExecutor(root, local=scheme == "submitit-local", partition=partition, time_min=time_min,
                                gpus=gpus, threads=threads)
    raise ValueError(f"executor {spec!r} not understood; accepted: local, dask, dask://HOST:PORT, ray, "
                     "ray://HOST:PORT, slurm, submitit-local")


# -- the sweep ---------------------------------------------------------------------------------


def _check_target(spec: SweepSpec) -> None:
    if spec.kind == "simulation":
        from .simulation import get_simulation

        get_simulation(spec.target)
    else:
        from .claims import select_claims

        if len(select_claims([spec.target])) != 1:
            raise ValueError(f"claim {spec.target!r} must name exactly one claim (a full id such as last.kaczmarz)")


def _check_same_sweep(root: Path, spec: SweepSpec) -> None:
    """A sweep folder belongs to one spec: resuming with another spec would mix results."""
    saved = root / "sweep.json"
    if saved.is_file():
        before = json.loads(saved.read_text())
        if before != spec.to_json():
            raise ValueError(f"--out {str(root)!r} holds a different sweep ({saved}); use another folder or --force")


def sweep(
    spec: str | os.PathLike | Mapping[str, Any] | SweepSpec,
    out: str | os.PathLike,
    *,
    executor: str | Executor = "local",
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[CellOutcome, int, int], None] | None = None,
    **executor_options: Any,
) -> SweepResult:
    """Run every cell of ``spec`` not finished yet, then merge all finished cells into ``out/results.nc``.

    Args:
        spec: a spec file (TOML/YAML), a dict, or a :class:`SweepSpec`.
        out: the sweep folder (cells under ``out/cells/SETTING/seed=S``).
        executor: ``local`` (default), ``dask[://HOST:PORT]``, ``ray[://HOST:PORT]``, ``slurm``,
            ``submitit-local``, or an :class:`Executor`.
        workers: parallel workers for local processes and local Dask/Ray clusters.
        force: start over: remove the folder's earlier cells.
        progress: ``progress(outcome, done, total)`` after each cell.
        executor_options: ``partition``, ``time_min``, ``gpus``, ``threads`` for :func:`make_executor`.

    Returns:
        A :class:`SweepResult`; failed cells are listed there (and in ``out/failures.json``), never raised.
    """
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    root = check_writable_folder(out)
    if force and root.exists():
        import shutil

        for name in ("cells", "sweep.json", "failures.json", DATASET_FILE):
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    _check_target(spec)
    root.mkdir(parents=True, exist_ok=True)
    _check_same_sweep(root, spec)
    write_json(root / "sweep.json", spec.to_json())
    cells = spec.cells()
    finished = [cell_done(c, root) for c in cells]
    todo = [c for c, f in zip(cells, finished) if not f]
    outcomes = [CellOutcome(c, "skipped") for c, f in zip(cells, finished) if f]
    done = len(outcomes)
    for outcome in outcomes:
        if progress is not None:
            progress(outcome, done, len(cells))
    runner = executor if isinstance(executor, Executor) else make_executor(
        executor, root=root, workers=workers, **executor_options)
    try:
        for cell, error in runner.run(todo, root):
            outcome = CellOutcome(cell, "failed" if error else "done", error or "")
            outcomes.append(outcome)
            done += 1
            if progress is not None:
                progress(outcome, done, len(cells))
    finally:
        runner.close()
    failures = [{"setting": o.cell.label, "seed": o.cell.seed, "error": o.error}
                for o in outcomes if o.status == "failed"]
    failures_path = root / "failures.json"
    if failures:
        write_json(failures_path, failures)
    elif failures_path.exists():
        failures_path.unlink()
    dataset, path = None, None
    if any(cell_done(c, root) for c in cells):
        dataset = merge(root, spec)
        path = root / DATASET_FILE
        _write_dataset(dataset, path)
        if "step" in dataset.dims:
            from .plotting import save_figure, sweep_figure

            save_figure(sweep_figure(dataset, title=f"sweep of {spec.target}: mean ± SE over seeds"), root / "sweep")
    outcomes.sort(key=lambda o: (o.cell.index, spec.seeds.index(o.cell.seed)))
    return SweepResult(root, outcomes, dataset, path)


# -- merging -----------------------------------------------------------------------------------


def _xarray():
    try:
        import xarray
    except ImportError:
        raise ValueError("merging a sweep needs xarray: pip install 'teachtheory[sweep]'") from None
    return xarray


def _scalar_leaves(tree: Any, prefix: str = "") -> dict[str, float]:
    """Every numeric scalar of a JSON tree, by its slash-joined path."""
    out: dict[str, float] = {}
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            out.update(_scalar_leaves(value, f"{prefix}/{key}" if prefix else str(key)))
    elif isinstance(tree, bool):
        out[prefix] = float(tree)
    elif isinstance(tree, (int, float)):
        out[prefix] = float(tree)
    elif isinstance(tree, str) and tree in ("inf", "-inf", "nan"):
        out[prefix] = float(tree)
    return out


def merge(root: str | os.PathLike, spec: SweepSpec | None = None):
    """The finished cells of the sweep folder ``root`` as one :class:`xarray.Dataset`.

    Teaching simulations give, per metric, ``METRIC`` (mean over the cell's runs) and ``METRIC_se``
    with dims ``(setting, seed, teacher, step)``; other simulations and claims give every numeric
    scalar of their metrics (or verdict) with dims ``(setting, seed)``. Cells not finished are NaN.
    """
    import numpy as np

    xr = _xarray()
    root = Path(root)
    spec = spec or load_spec(json.loads((root / "sweep.json").read_text()))
    labels = [setting_label(s) for s in spec.settings]
    seeds = list(spec.seeds)
    records: dict[tuple[int, int], dict] = {}
    for cell in spec.cells():
        if cell_done(cell, root):
            name = "metrics.json" if cell.kind == "simulation" else "verdict.json"
            records[(cell.index, seeds.index(cell.seed))] = json.loads((cell.folder(root) / name).read_text())
    coords: dict[str, Any] = {"setting": labels, "seed": seeds}
    for key in sorted({k for s in spec.settings for k in s}):
        coords[key] = ("setting", [str(s.get(key, "")) for s in spec.settings])
    attrs = {spec.kind: spec.target, "spec": json.dumps(spec.to_json())}
    teaching = records and all("teachers" in r for r in records.values())
    if teaching:
        teachers = list(dict.fromkeys(t for r in records.values() for t in r["teachers"]))
        metrics = list(dict.fromkeys(m for r in records.values() for entry in r["teachers"].values() for m in entry
                                     if isinstance(entry[m], Mapping) and "mean" in entry[m]))
        length = max(len(entry[m]["mean"]) for r in records.values() for entry in r["teachers"].values()
                     for m in metrics if m in entry)
        data = {}
        for metric in metrics:
            for suffix, key in (("", "mean"), ("_se", "se")):
                array = np.full((len(labels), len(seeds), len(teachers), length), np.nan)
                for (i, j), r in records.items():
                    for k, teacher in enumerate(teachers):
                        values = r["teachers"].get(teacher, {}).get(metric, {}).get(key)
                        if values is not None:
                            array[i, j, k, :len(values)] = [np.nan if v is None else float(v) for v in values]
                data[metric + suffix] = (("setting", "seed", "teacher", "step"), array)
        coords.update(teacher=teachers, step=np.arange(length))
        return xr.Dataset(data, coords=coords, attrs=attrs)
    leaves = {key: _scalar_leaves(r) for key, r in records.items()}
    names = sorted({n for leaf in leaves.values() for n in leaf})
    data = {}
    for n in names:
        array = np.full((len(labels), len(seeds)), np.nan)
        for (i, j), leaf in leaves.items():
            array[i, j] = leaf.get(n, math.nan)
        data[n.replace("/", ".")] = (("setting", "seed"), array)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _write_dataset(dataset, path: Path) -> Path:
    """NetCDF, written atomically (through a temporary file beside ``path``)."""
    payload = dataset.to_netcdf(engine="scipy")  # NetCDF3 bytes; scipy is a core dependency
    return atomic_write(path, lambda handle: handle.write(bytes(payload)))


def summarize(dataset, *, at: str = "final"):
    """Mean ± standard error over seeds, per setting (and teacher).

    For teaching sweeps ``at="final"`` first takes each cell's last recorded step (``at="all"`` keeps
    every step). Returns a Dataset with ``VAR_mean``, ``VAR_se`` and the seed count ``n``.
    """
    import numpy as np

    xr = _xarray()
    ds = dataset[[v for v in dataset.data_vars if not v.endswith("_se")]]
    if "step" in ds.dims and at == "final":
        last = {}
        for v in ds.data_vars:
            values = ds[v]
            valid = values.notnull()
            index = (valid * xr.DataArray(np.arange(values.sizes["step"]), dims="step")).max("step")
            last[v] = values.isel(step=index)
        ds = xr.Dataset(last)
    n = ds.notnull().sum("seed")
    mean = ds.mean("seed")
    se = ds.std("seed", ddof=1) / np.sqrt(n)
    out = xr.Dataset({**{f"{v}_mean": mean[v] for v in ds.data_vars}, **{f"{v}_se": se[v] for v in ds.data_vars}})
    out["n"] = n[next(iter(ds.data_vars))] if ds.data_vars else 0
    return out


def summary_rows(dataset) -> list[dict[str, Any]]:
    """The summary as table rows: setting (and teacher), then ``mean ± SE`` per variable."""
    s = summarize(dataset)
    names = [v[:-5] for v in s.data_vars if v.endswith("_mean")]
    rows = []
    index_dims = [d for d in ("setting", "teacher") if d in s.dims]
    for key in itertools.product(*(s[d].values for d in index_dims)):
        sel = dict(zip(index_dims, key))
        row: dict[str, Any] = {d: str(v) for d, v in sel.items()}
        for name in names:
            m, e = float(s[f"{name}_mean"].sel(sel)), float(s[f"{name}_se"].sel(sel))
            row[name] = f"{m:.4g} ± {e:.2g}" if math.isfinite(e) else (f"{m:.4g}" if math.isfinite(m) else "-")
        rows.append(row)
    return rows
