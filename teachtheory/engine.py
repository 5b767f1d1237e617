"""The teaching loop GIT(m, v, M, Q) and its result, the Trajectory.

Every ``interval`` (v) steps the teacher sees the learner state w_t (and w* when omniscient)
and supplies the next v mini-batches of ``batch_size`` (m) examples, planning them greedily
against its own model of an SGD learner; the learner applies its update rule Q (SGD by
default, momentum or Adam as options) to each. All R runs advance together as one tensor
computation; the only Python loop is over time.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 5.2, Eq. (7).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .io import atomic_write
from .learners import Learner, make_update_rule
from .learners.updates import SGD, Adam, Momentum, UpdateRule
from .problems import Problem
from .random import RunStreams
from .teachers.base import Teacher, TeachingBatch, TeachingContext
from .validation import (
    DivergenceWarning,
    check_choice,
    check_device,
    check_instance,
    check_int,
    check_memory,
    check_names,
    check_positive,
    check_positive_int,
    check_seeds,
)

__all__ = ["AUTO_RECORD_POINTS", "BLOW_UP", "MAX_STEPS", "METRICS", "Trajectory", "apply_batch_gradient",
           "estimate_memory", "find_divergence", "recorded_steps", "teach"]

METRICS = ("distance", "loss", "test_accuracy", "test_loss")
BLOW_UP = 1e3  # a run has diverged when ||w_t - w*|| exceeds BLOW_UP x its start (floored at BLOW_UP_FLOOR)
BLOW_UP_FLOOR = 1e-3
MAX_STEPS = 10**9  # beyond this a run cannot finish in any reasonable time: refused rather than left running
AUTO_RECORD_POINTS = 1000  # record_every=None: about this many recorded steps once a run is longer
FINITE_CHECK_BLOCK = 256  # teach looks for the first non-finite weights once per this many steps


@dataclass
class Trajectory:
    """Metrics of R teaching runs at the recorded steps.

    Attributes:
        metrics: name -> array [R, S], column j measured after ``steps_recorded[j]`` updates
            (step 0 is the initial state). ``distance`` is ||w_t - w*||_2, ``loss`` the mean
            training loss on the pool with the true labels, ``test_accuracy`` / ``test_loss``
            on the held-out split.
        seconds: cumulative wall time [S] at the recorded steps (shared by the runs of the batch).
        final_w: parameters after the last step [R, p].
        config: what produced it (teacher, learner, lr, ...).
        diverged: per run, whether it diverged (bool [R]): non-finite weights or metrics, or the
            distance to w* grown beyond ``BLOW_UP`` times its start (see :func:`find_divergence`).
        diverged_step: per run, the first step at which it had diverged (int [R]; -1 where it did not).
        steps_recorded: the S recorded step indices, increasing, from 0 to T (default: every
            step, ``0 .. S - 1``).
    """

    metrics: dict[str, np.ndarray]
    seconds: np.ndarray
    final_w: np.ndarray
    config: dict = field(default_factory=dict)
    diverged: np.ndarray | None = None
    diverged_step: np.ndarray | None = None
    steps_recorded: np.ndarray | None = None

    def __post_init__(self) -> None:
        R = np.asarray(self.final_w).shape[0]
        if self.diverged is None:
            self.diverged = np.zeros(R, dtype=bool)
        if self.diverged_step is None:
            self.diverged_step = np.where(self.diverged, 0, -1).astype(np.int64)
        self.diverged = np.asarray(self.diverged, dtype=bool)
        self.diverged_step = np.asarray(self.diverged_step, dtype=np.int64)
        columns = {np.shape(v)[1] for v in self.metrics.values()} if self.metrics else {len(self.seconds)}
        if len(columns) != 1:
            raise ValueError(f"metrics: every metric needs the same number of recorded steps, got {sorted(columns)}")
        count = columns.pop()
        if self.steps_recorded is None:
            self.steps_recorded = np.arange(count, dtype=np.int64)
        self.steps_recorded = np.asarray(self.steps_recorded, dtype=np.int64)
        if self.steps_recorded.shape != (count,) or (count and self.steps_recorded[0] != 0) or (
                np.diff(self.steps_recorded) <= 0).any():
            raise ValueError(f"steps_recorded must be {count} increasing step indices from 0, "
                             f"got {self.steps_recorded.tolist()[:8]}")

    @property
    def runs(self) -> int:
        """Number of runs R."""
        return next(iter(self.metrics.values())).shape[0] if self.metrics else int(np.asarray(self.final_w).shape[0])

    @property
    def steps(self) -> int:
        """The number of learner updates T (the last recorded step)."""
        return int(self.steps_recorded[-1])

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.metrics:
            raise KeyError(f"metric {name!r} was not recorded; recorded: {', '.join(self.metrics)}")
        return self.metrics[name]

    def summary(self, name: str, quantiles: Sequence[float] = (0.1, 0.5, 0.9)) -> dict[str, np.ndarray]:
        """Mean, standard deviation, standard error of the mean and quantiles over runs, per recorded
        step (arrays [S], aligned with :attr:`steps_recorded`).

        With one run the standard deviation and error are undefined: NaN, never a misleading 0.
        """
        values = self[name]
        R = values.shape[0]
        std = values.std(axis=0, ddof=1) if R > 1 else np.full(values.shape[1], np.nan)
        out = {"mean": values.mean(axis=0), "std": std, "se": std / math.sqrt(R)}
        for q in quantiles:
            out[f"q{q:g}"] = np.quantile(values, q, axis=0)
        return out

    def final(self, name: str) -> dict[str, float]:
        """The :meth:`summary` statistics after the last step T."""
        s = self.summary(name)
        return {k: float(v[-1]) for k, v in s.items()}

    def divergence_message(self) -> str | None:
        """One line on the runs that diverged (how many, first step), or None when none did."""
        if not self.diverged.any():
            return None
        first = int(self.diverged_step[self.diverged].min())
        lr = self.config.get("lr")
        return (f"{int(self.diverged.sum())} of {self.runs} runs diverged (first at step {first})"
                + (f"; lower lr={lr:g}" if isinstance(lr, float) else ""))

    def save(self, path: str | os.PathLike) -> Path:
        """Write metrics, recorded steps and config to one .npz file, atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays = {f"metric_{k}": v for k, v in self.metrics.items()}
        arrays["seconds"], arrays["final_w"] = self.seconds, self.final_w
        arrays["diverged"], arrays["diverged_step"] = self.diverged, self.diverged_step
        arrays["steps_recorded"] = self.steps_recorded
        arrays["config_json"] = np.array(json.dumps(self.config))
        arrays["format"] = np.array(TRAJECTORY_FORMAT)
        atomic_write(path, lambda handle: np.savez(handle, **arrays))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectory:
        """Read a file written by :meth:`save` (files from before ``steps_recorded`` recorded every step).

        Raises:
            ValueError: naming the file, when it is missing, truncated, not a trajectory, or inconsistent
                (metrics of different shapes, a run count that does not match the final weights).
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                files = set(data.files)
                missing = {"seconds", "final_w", "config_json"} - files
                if missing:
                    raise ValueError(f"it lacks {', '.join(sorted(missing))}")
                metrics = {k[len("metric_"):]: np.asarray(data[k]) for k in data.files if k.startswith("metric_")}
                seconds, final_w = np.asarray(data["seconds"]), np.asarray(data["final_w"])
                config = json.loads(str(data["config_json"]))
                diverged = np.asarray(data["diverged"]) if "diverged" in files else None
                diverged_step = np.asarray(data["diverged_step"]) if "diverged_step" in files else None
                steps = np.asarray(data["steps_recorded"]) if "steps_recorded" in files else None
        except FileNotFoundError:
            raise ValueError(f"trajectory file {str(path)!r} does not exist") from None
        except IsADirectoryError:
            raise ValueError(f"trajectory file {str(path)!r} is a folder") from None
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise ValueError(f"{str(path)!r} is not a readable trajectory file (truncated or foreign): "
                             f"{' '.join(str(exc).split())}") from None
        problem = _inconsistency(metrics, seconds, final_w, config, diverged, diverged_step)
        if problem:
            raise ValueError(f"{str(path)!r} is not a consistent trajectory file: {problem}")
        try:
            return cls(metrics, seconds, final_w, config, diverged, diverged_step, steps_recorded=steps)
        except ValueError as exc:
            raise ValueError(f"{str(path)!r} is not a consistent trajectory file: {exc}") from None


TRAJECTORY_FORMAT = "teachtheory.Trajectory/1"


def _inconsistency(metrics, seconds, final_w, config, diverged, diverged_step) -> str | None:
    """What is wrong with loaded trajectory arrays, or None."""
    if not isinstance(config, dict):
        return "its config is not a JSON object"
    if final_w.ndim != 2:
        return f"final_w has shape {final_w.shape}, expected [runs, parameters]"
    if seconds.ndim != 1 or not np.issubdtype(seconds.dtype, np.floating):
        return f"seconds has shape {seconds.shape} and dtype {seconds.dtype}, expected a float vector"
    R = final_w.shape[0]
    for name, values in metrics.items():
        if values.shape != (R, seconds.shape[0]):
            return f"metric {name!r} has shape {values.shape}, expected (runs={R}, recorded steps={seconds.shape[0]})"
        if not np.issubdtype(values.dtype, np.number):
            return f"metric {name!r} has dtype {values.dtype}"
    for name, values in (("diverged", diverged), ("diverged_step", diverged_step)):
        if values is not None and values.shape != (R,):
            return f"{name} has shape {values.shape}, expected ({R},)"
    return None


def find_divergence(metrics: dict[str, np.ndarray], nonfinite_w_step: np.ndarray | None = None,
                    steps_recorded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Which runs diverged, and the first step at which each did (-1 where it did not).

    A run has diverged at step t when any recorded metric is non-finite at t, when its weights are
    non-finite at t (``nonfinite_w_step``: first such step per run, -1 if never), or when the distance
    to w* exceeds ``BLOW_UP`` times its start (the start floored at ``BLOW_UP_FLOOR``, so a run that
    begins at w* is not flagged for drifting by rounding).

    Args:
        metrics: name -> [R, S] at the recorded steps. nonfinite_w_step: int [R] or None.
        steps_recorded: the S step indices of the metric columns (default 0 .. S - 1).

    Returns:
        (diverged bool [R], first step int [R]).
    """
    arrays = list(metrics.values())
    if not arrays:
        R = 0 if nonfinite_w_step is None else len(nonfinite_w_step)
        bad = np.zeros((R, 1), dtype=bool)
    else:
        bad = np.zeros(arrays[0].shape, dtype=bool)
        for values in arrays:
            bad |= ~np.isfinite(values)
        if "distance" in metrics:
            d = metrics["distance"]
            with np.errstate(invalid="ignore", over="ignore"):
                bad |= d > BLOW_UP * np.maximum(d[:, :1], BLOW_UP_FLOOR)
    columns = np.arange(bad.shape[1]) if steps_recorded is None else np.asarray(steps_recorded)
    steps_hit = np.where(bad.any(1), columns[bad.argmax(1)], -1).astype(np.int64)
    if nonfinite_w_step is not None:
        w_step = np.asarray(nonfinite_w_step, dtype=np.int64)
        both = (steps_hit >= 0) & (w_step >= 0)
        steps_hit = np.where(both, np.minimum(steps_hit, w_step), np.maximum(steps_hit, w_step))
    return steps_hit >= 0, steps_hit


def apply_batch_gradient(learner: Learner, w: torch.Tensor, batch: TeachingBatch) -> torch.Tensor:
    """The gradient the learner steps along: mean over the batch of g_i * grad l(w; x_i, y_i),
    optionally multiplied by the teacher's preconditioner."""
    if batch.grad_scale is None:
        outputs = batch.outputs
        if outputs is not None and outputs[0] is w and outputs[1] == w._version and outputs[2] is batch.x:
            grad = learner.mean_grad(w, batch.x, batch.y, outputs=outputs[3])  # z of this x at this very w
        else:
            grad = learner.mean_grad(w, batch.x, batch.y)
    else:
        per_example = learner.grad(w, batch.x, batch.y)
        grad = (batch.grad_scale.unsqueeze(-1) * per_example).mean(1)
    if batch.preconditioner is not None:
        grad = (batch.preconditioner @ grad.unsqueeze(-1))[..., 0]
    return grad


def _check_args(problem, learner, teacher, steps, lr, batch_size, interval, update, sampling, record):
    """Check teach()'s arguments before any work; returns (steps, lr, batch_size, interval, record)."""
    check_instance(problem, "problem", Problem, "teachtheory Problem")
    check_instance(learner, "learner", Learner, "teachtheory Learner")
    check_instance(teacher, "teacher", Teacher, "teachtheory Teacher (see teachtheory.teachers.make_teacher)")
    steps = check_int(steps, "steps", min=0)
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be at most {MAX_STEPS:,} (one Python iteration per step runs at about 1e4-1e6 "
                         f"steps per second, so {steps:,} steps would not finish); got {steps}")
    lr = check_positive(lr, "lr")
    batch_size = check_positive_int(batch_size, "batch_size")
    interval = check_positive_int(interval, "interval")
    if batch_size > problem.pool_size and getattr(teacher, "name", "") in ("imt", "mixed"):
        raise ValueError(f"batch_size={batch_size} exceeds the pool size {problem.pool_size} for selection teachers")
    if not isinstance(update, UpdateRule):
        check_choice(update, "update", ("sgd", "momentum", "adam"))
    check_choice(sampling, "sampling", ("uniform", "sequential"))
    record = check_names(record, "record", METRICS)
    for owner in (teacher, *(v for v in vars(teacher).values() if isinstance(v, Teacher))):
        beta = getattr(owner, "beta", None)
        if beta is not None and (not math.isfinite(beta) or beta < 0):
            raise ValueError(f"teacher {getattr(owner, 'name', '?')!r}: beta must be a finite non-negative number, "
                             f"got {beta}")
    return steps, lr, batch_size, interval, record


def _first_nonfinite(bad_w_step: torch.Tensor, flags: torch.Tensor, first_step: int) -> torch.Tensor:
    """``bad_w_step`` [R] with, where still -1, the first step first_step + i whose flag row i [B, R] is NaN."""
    nan = torch.isnan(flags)
    step = first_step + nan.to(torch.uint8).argmax(0)  # argmax: the first of equal maxima
    return torch.where((bad_w_step < 0) & nan.any(0), step, bad_w_step)


def estimate_memory(runs: int, steps: int, metrics: int, itemsize: int = 8) -> int:
    """Bytes teach() holds for its metric histories: runs x (steps + 1) x metrics values, kept twice while stacked."""
    return 2 * int(runs) * (int(steps) + 1) * max(1, int(metrics)) * itemsize


def _measure(learner, problem, w, record, ctx: TeachingContext | None = None) -> dict[str, torch.Tensor]:
    """The recorded metrics at w, each [R]; ``ctx`` shares w - w* with an omniscient teacher's next step."""
    out = {}
    if "distance" in record:
        e = w - problem.w_star if ctx is None else ctx.direction(w)
        out["distance"] = torch.linalg.vector_norm(e, dim=-1)  # = .norm(dim=-1), one call less
    if "loss" in record:
        out["loss"] = learner.loss(w, problem.X, problem.y).mean(-1)
    if problem.has_test:
        if "test_accuracy" in record and learner.classification:
            out["test_accuracy"] = learner.accuracy(w, problem.X_test, problem.y_test)
        if "test_loss" in record:
            out["test_loss"] = learner.loss(w, problem.X_test, problem.y_test).mean(-1)
    return out


def teach(
    problem: Problem,
    learner: Learner,
    teacher: Teacher,
    steps: int,
    lr: float,
    batch_size: int = 1,
    interval: int = 1,
    *,
    update: str | UpdateRule = "sgd",
    seed: int | Sequence[int] | torch.Tensor = 0,
    sampling: str = "uniform",
    record: Sequence[str] = ("distance", "loss", "test_accuracy"),
    record_every: int | None = None,
    progress: Callable[[int], None] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    on_divergence: str = "warn",
) -> Trajectory:
    """Run GIT(batch_size, interval) for ``steps`` learner updates on all runs of ``problem``.

    Example:
        Four runs of a 3-dimensional least-squares learner; in the same 50 steps the omniscient teacher
        (IMT) brings every run closer to w* than random sampling (SGD):

        >>> from teachtheory.learners import LeastSquares
        >>> from teachtheory.problems import linear_regression
        >>> from teachtheory.teachers import IMTTeacher, RandomTeacher
        >>> problem = linear_regression(dim=3, pool_size=20, runs=4, seed=0)
        >>> imt = teach(problem, LeastSquares(3), IMTTeacher(), steps=50, lr=0.1)
        >>> sgd = teach(problem, LeastSquares(3), RandomTeacher(), steps=50, lr=0.1)
        >>> imt.metrics["distance"].shape  # R runs x (T + 1) recorded steps
        (4, 51)
        >>> bool((imt.metrics["distance"][:, -1] < sgd.metrics["distance"][:, -1]).all())
        True

    Args:
        problem: pool, target and initial weights for R runs.
        learner: the model (its size and kind must match the problem: a classifier needs a
            classification problem).
        teacher: the teaching policy.
        steps: number of learner updates T.
        lr: step size eta > 0 (a Python, numpy or torch scalar).
        batch_size: examples per update (m).
        interval: the teacher plans ``interval`` (v) updates each time it sees the learner.
        update: learner update rule Q: "sgd", "momentum", "adam" or an UpdateRule.
        seed: one int (run r uses seed + r) or one seed per run, each in [0, 2^63 - 1]; same seed, same numbers.
        sampling: how sampling teachers draw pool examples: "uniform" (with replacement) or
            "sequential" (pool order; fresh i.i.d. samples when each run has its own i.i.d. pool).
        record: metrics to record, a subset of METRICS (a sequence of names, not one string).
        record_every: measure them every this many steps (steps 0 and T always); None picks a cheap
            default (:func:`recorded_steps`): every step when T <= 1000 or only ``distance`` is
            recorded, else about 1000 evenly spaced steps. The recorded values do not depend on it.
        progress: called with the number of completed steps after each step.
        device, dtype: where and in which precision to run (default: the problem's).
        on_divergence: what to do when runs diverge (see :func:`find_divergence`): "warn" (a
            :class:`~teachtheory.validation.DivergenceWarning` naming the step; the Trajectory flags the
            runs), "raise" (FloatingPointError) or "ignore" (flags only).

    Returns:
        A :class:`Trajectory` with metrics of shape [R, S] at its ``steps_recorded`` (S = T + 1
        when every step is recorded) and per-run divergence flags.

    Raises:
        TypeError, ValueError: a bad argument (the message names it); ValueError also when the metric
            histories would not fit in memory.

    References:
        LAST (Liu et al., NeurIPS 2021), Sec. 5.2, Eq. (7).
    """
    steps, lr, batch_size, interval, record = _check_args(problem, learner, teacher, steps, lr, batch_size, interval,
                                                          update, sampling, record)
    check_choice(on_divergence, "on_divergence", ("warn", "raise", "ignore"))
    if device is not None:
        device = check_device(device)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float64, got {dtype!r}")
    recorded = recorded_steps(steps, record_every, record)
    if device is not None or dtype is not None:
        problem = problem.to(device=device, dtype=dtype)
    problem.check_learner(learner)
    R = problem.runs
    seeds = check_seeds(seed, R)
    check_memory(estimate_memory(R, len(recorded) - 1, len(record)), f"teach(runs={R}, steps={steps})")
    rule = make_update_rule(update)
    streams = RunStreams(seeds, device=problem.X.device)
    ctx = TeachingContext(problem=problem, learner=learner, lr=lr, batch_size=batch_size, streams=streams,
                          sampling=sampling)

    w = problem.w0.clone()
    state = rule.init(w)
    history = {k: [v] for k, v in _measure(learner, problem, w, record, ctx).items()}
    # First step at which each run's weights stop being finite (-1: never). When the distance to w* is
    # recorded at every step the check is redundant (non-finite weights make that distance non-finite at
    # the same step, which find_divergence flags), so the loop skips it.
    track_w = not ("distance" in record and len(recorded) == steps + 1)
    bad_w_step = torch.where(torch.isfinite(w).all(-1), -1, 0).to(torch.int64)
    if track_w:
        # Per step, sum(w * 0) (0, or NaN exactly when a weight is not finite: no overflow) is written into a
        # buffer, two cheap calls; the buffer is searched for the first NaN once per FINITE_CHECK_BLOCK steps.
        zero = torch.zeros((), dtype=w.dtype, device=w.device)
        flags = torch.empty(min(FINITE_CHECK_BLOCK, max(steps, 1)), R, dtype=w.dtype, device=w.device)
        flag_rows, flagged = flags.unbind(0), 0
    seconds = [0.0]
    record_at = recorded.tolist()  # Python ints: compared at every step
    next_record = 1  # index into ``record_at`` of the next step to measure
    measure_distance = record == ("distance",)  # the common cheap case, without _measure's dispatch
    # The built-in rules take lr as a 0-dim tensor: the same numbers as the Python float (a CPU scalar either
    # way, rounded to the weights' dtype when the rule multiplies a tensor by it), without wrapping the float
    # into a tensor at every step. In the weights' own dtype (float32/64) it is not even cast at every step.
    fast_lr = type(rule) in (SGD, Momentum, Adam) and w.device.type in ("cpu", "cuda")  # MPS has no float64
    lr_dtype = w.dtype if w.dtype in (torch.float32, torch.float64) else torch.float64
    step_lr = torch.tensor(ctx.lr, dtype=lr_dtype) if fast_lr else ctx.lr
    clock = time.perf_counter
    start = clock()
    plan: list[TeachingBatch] = []
    with torch.no_grad():
        for t in range(steps):
            if interval == 1:
                batch = teacher.teach(ctx, w, t)
            else:
                if t % interval == 0:
                    plan = _plan(teacher, ctx, learner, w, t, min(interval, steps - t))
                batch = plan[t % interval]
            w, state = rule.step(w, apply_batch_gradient(learner, w, batch), step_lr, state, t)
            if track_w:
                torch.sum(w * zero, -1, out=flag_rows[flagged])
                flagged += 1
                if flagged == len(flag_rows) or t + 1 == steps:
                    bad_w_step = _first_nonfinite(bad_w_step, flags[:flagged], t + 2 - flagged)
                    flagged = 0
            if t + 1 == record_at[next_record]:
                next_record += 1
                if measure_distance:
                    history["distance"].append(torch.linalg.vector_norm(ctx.direction(w), dim=-1))
                else:
                    for k, v in _measure(learner, problem, w, record, ctx).items():
                        history[k].append(v)
                seconds.append(clock() - start)
            if progress is not None:
                progress(t + 1)
    metrics = {k: torch.stack(v, dim=1).detach().cpu().numpy() for k, v in history.items()}
    diverged, diverged_step = find_divergence(metrics, bad_w_step.cpu().numpy(), recorded)
    config = {
        "teacher": teacher.to_spec(), "learner": learner.to_spec(), "update": rule.to_spec(), "lr": lr,
        "batch_size": batch_size, "interval": interval, "sampling": sampling, "steps": steps, "runs": R,
        "problem": problem.name,
        "seeds": [int(s) for s in streams.seeds],
    }
    traj = Trajectory(metrics, np.asarray(seconds), w.detach().cpu().numpy(), config, diverged, diverged_step,
                      steps_recorded=recorded)
    message = traj.divergence_message()
    if message is not None:
        message = f"teacher {getattr(teacher, 'name', '?')!r}: {message}"
        if on_divergence == "raise":
            raise FloatingPointError(message)
        if on_divergence == "warn":
            warnings.warn(message, DivergenceWarning, stacklevel=2)
    return traj


def recorded_steps(steps: int, record_every: int | None = None, record: Sequence[str] = ("distance",)) -> np.ndarray:
    """The steps at which :func:`teach` measures its metrics: 0, k, 2k, ... and always ``steps``.

    Args:
        steps: the number of learner updates T.
        record_every: k >= 1; None for the default: every step when T <= ``AUTO_RECORD_POINTS`` or
            when ``record`` holds only ``distance`` (an O(p) norm per run, no dearer than the update
            itself), else k = ceil(T / AUTO_RECORD_POINTS). The pool and test metrics cost a pass
            over the data per measurement, so a long run would otherwise spend its time measuring.
        record: the metrics to be recorded (only used by the default).

    Returns:
        Increasing int64 step indices from 0 to ``steps``.
    """
    if record_every is None:
        cheap = set(record) <= {"distance"}
        record_every = 1 if cheap or steps <= AUTO_RECORD_POINTS else -(-steps // AUTO_RECORD_POINTS)
    elif not isinstance(record_every, int) or isinstance(record_every, bool) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer or None, got {record_every!r}")
    grid = np.arange(0, steps + 1, record_every, dtype=np.int64)
    return grid if grid[-1] == steps else np.append(grid, np.int64(steps))


def _plan(teacher: Teacher, ctx: TeachingContext, learner: Learner, w: torch.Tensor, t: int, count: int):
    """The teacher's next ``count`` batches, planned against its own SGD model of the learner."""
    batches = []
    w_model = w
    for j in range(count):
        batch = teacher.teach(ctx, w_model, t + j)
        batches.append(batch)
        if j + 1 < count:
            w_model = w_model - ctx.lr * apply_batch_gradient(learner, w_model, batch)
    return batches
