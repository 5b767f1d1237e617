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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .io import atomic_write
from .learners import Learner, make_update_rule
from .learners.updates import UpdateRule
from .problems import Problem
from .random import RunStreams, as_seeds
from .teachers.base import Teacher, TeachingBatch, TeachingContext

__all__ = ["AUTO_RECORD_POINTS", "METRICS", "Trajectory", "apply_batch_gradient", "recorded_steps", "teach"]

METRICS = ("distance", "loss", "test_accuracy", "test_loss")
AUTO_RECORD_POINTS = 1000  # record_every=None: about this many recorded steps once a run is longer


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
        steps_recorded: the S recorded step indices, increasing, from 0 to T (default: every
            step, ``0 .. S - 1``).
    """

    metrics: dict[str, np.ndarray]
    seconds: np.ndarray
    final_w: np.ndarray
    config: dict = field(default_factory=dict)
    steps_recorded: np.ndarray | None = None

    def __post_init__(self) -> None:
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
        """The number of runs R."""
        return next(iter(self.metrics.values())).shape[0]

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
        step (arrays [S], aligned with :attr:`steps_recorded`)."""
        values = self[name]
        R = values.shape[0]
        std = values.std(axis=0, ddof=1) if R > 1 else np.zeros(values.shape[1])
        out = {"mean": values.mean(axis=0), "std": std, "se": std / math.sqrt(R)}
        for q in quantiles:
            out[f"q{q:g}"] = np.quantile(values, q, axis=0)
        return out

    def final(self, name: str) -> dict[str, float]:
        """The :meth:`summary` statistics after the last step T."""
        s = self.summary(name)
        return {k: float(v[-1]) for k, v in s.items()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write metrics, recorded steps and config to one .npz file, atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays = {f"metric_{k}": v for k, v in self.metrics.items()}
        arrays["seconds"], arrays["final_w"] = self.seconds, self.final_w
        arrays["steps_recorded"] = self.steps_recorded
        arrays["config_json"] = np.array(json.dumps(self.config))
        atomic_write(path, lambda handle: np.savez(handle, **arrays))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectory:
        """Read a file written by :meth:`save` (files from before ``steps_recorded`` recorded every step)."""
        with np.load(Path(path), allow_pickle=False) as data:
            metrics = {k[len("metric_"):]: data[k] for k in data.files if k.startswith("metric_")}
            steps = data["steps_recorded"] if "steps_recorded" in data.files else None
            return cls(metrics, data["seconds"], data["final_w"], json.loads(str(data["config_json"])), steps)


def apply_batch_gradient(learner: Learner, w: torch.Tensor, batch: TeachingBatch) -> torch.Tensor:
    """The gradient the learner steps along: mean over the batch of g_i * grad l(w; x_i, y_i),
    optionally multiplied by the teacher's preconditioner."""
    if batch.grad_scale is None:
        grad = learner.mean_grad(w, batch.x, batch.y)
    else:
        per_example = learner.grad(w, batch.x, batch.y)
        grad = (batch.grad_scale.unsqueeze(-1) * per_example).mean(1)
    if batch.preconditioner is not None:
        grad = (batch.preconditioner @ grad.unsqueeze(-1))[..., 0]
    return grad


def _check_args(steps, lr, batch_size, interval, problem, teacher):
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size > problem.pool_size and getattr(teacher, "name", "") in ("imt", "mixed"):
        raise ValueError(f"batch_size={batch_size} exceeds the pool size {problem.pool_size} for selection teachers")
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ValueError(f"interval must be a positive integer, got {interval!r}")
    if not isinstance(teacher, Teacher):
        raise TypeError(f"teacher must be a Teacher, got {type(teacher).__name__}")


def _measure(learner, problem, w, record) -> dict[str, torch.Tensor]:
    out = {}
    if "distance" in record:
        out["distance"] = (w - problem.w_star).norm(dim=-1)
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
) -> Trajectory:
    """Run GIT(batch_size, interval) for ``steps`` learner updates on all runs of ``problem``.

    Args:
        problem: pool, target and initial weights for R runs.
        learner: the model (its size must match the problem).
        teacher: the teaching policy.
        steps: number of learner updates T.
        lr: step size eta > 0.
        batch_size: examples per update (m).
        interval: the teacher plans ``interval`` (v) updates each time it sees the learner.
        update: learner update rule Q: "sgd", "momentum", "adam" or an UpdateRule.
        seed: one int (run r uses seed + r) or one seed per run; same seed, same numbers.
        sampling: how sampling teachers draw pool examples: "uniform" (with replacement) or
            "sequential" (pool order; fresh i.i.d. samples when each run has its own i.i.d. pool).
        record: metrics to record, a subset of METRICS.
        record_every: measure them every this many steps (steps 0 and T always); None picks a cheap
            default (:func:`recorded_steps`): every step when T <= 1000 or only ``distance`` is
            recorded, else about 1000 evenly spaced steps. The recorded values do not depend on it.
        progress: called with the number of completed steps after each step.
        device, dtype: where and in which precision to run (default: the problem's).

    Returns:
        A :class:`Trajectory` with metrics of shape [R, S] at its ``steps_recorded`` (S = T + 1
        when every step is recorded).

    References:
        LAST (Liu et al., NeurIPS 2021), Sec. 5.2, Eq. (7).
    """
    _check_args(steps, lr, batch_size, interval, problem, teacher)
    unknown = set(record) - set(METRICS)
    if unknown:
        raise ValueError(f"record: unknown metric(s) {sorted(unknown)}; accepted: {', '.join(METRICS)}")
    recorded = recorded_steps(steps, record_every, record)
    if device is not None or dtype is not None:
        problem = problem.to(device=device, dtype=dtype)
    problem.check_learner(learner)
    if sampling not in ("uniform", "sequential"):
        raise ValueError(f"sampling must be 'uniform' or 'sequential', got {sampling!r}")
    rule = make_update_rule(update)
    R = problem.runs
    streams = RunStreams(as_seeds(seed, R), device=problem.X.device)
    ctx = TeachingContext(problem=problem, learner=learner, lr=float(lr), batch_size=batch_size, streams=streams,
                          sampling=sampling)

    w = problem.w0.clone()
    state = rule.init(w)
    history = {k: [v] for k, v in _measure(learner, problem, w, record).items()}
    seconds = [0.0]
    next_record = 1  # index into ``recorded`` of the next step to measure
    start = time.perf_counter()
    plan: list[TeachingBatch] = []
    with torch.no_grad():
        for t in range(steps):
            if t % interval == 0:
                plan = _plan(teacher, ctx, learner, w, t, min(interval, steps - t))
            batch = plan[t % interval]
            grad = apply_batch_gradient(learner, w, batch)
            w, state = rule.step(w, grad, ctx.lr, state, t)
            if t + 1 == recorded[next_record]:
                next_record += 1
                for k, v in _measure(learner, problem, w, record).items():
                    history[k].append(v)
                seconds.append(time.perf_counter() - start)
            if progress is not None:
                progress(t + 1)
    if not torch.isfinite(w).all():
        bad = int((~torch.isfinite(w).all(-1)).sum())
        raise FloatingPointError(f"{bad} of {R} runs diverged (non-finite weights); lower lr={lr}")
    metrics = {k: torch.stack(v, dim=1).detach().cpu().numpy() for k, v in history.items()}
    config = {
        "teacher": teacher.to_spec(), "learner": learner.to_spec(), "update": rule.to_spec(), "lr": float(lr),
        "batch_size": batch_size, "interval": interval, "sampling": sampling, "steps": steps, "runs": R, "problem": problem.name,
        "seeds": [int(s) for s in streams.seeds],
    }
    return Trajectory(metrics, np.asarray(seconds), w.detach().cpu().numpy(), config, recorded)


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
