"""Throughput benchmark: batched teaching (all R runs as one tensor computation) against per-run loops.

For each teacher (SGD, IMT, LAST, DHT) and each number of runs R, :func:`run_benchmark` times
``teach`` on a shared pool x ~ N(0, I_d): the least-squares problem ``linear_regression(dim, pool_size,
runs=R, shared_pool=True)`` (``learner="lsr"``, the default), or the same pool labelled by a random linear
classifier for the ``"logistic"`` and ``"softmax"`` (K classes) learners. Beside it run two baselines:

* a straightforward per-run implementation of the same algorithm (``for r in range(R): for t in
  range(T):`` on one run's 1-D/2-D tensors). It calls the same code for the teaching objective as the
  batched teachers (the learner's residual ``learner.residual`` and the closed forms of
  :mod:`teachtheory.theory.last`: IMT's score, LAST's greedy label, the teacher's own label solver), so
  the benchmark compares execution strategies, not two copies of the formulas;
* for IMT, the per-example autograd loop: how example selection for IMT is commonly written in
  research code. For every pool example, one at a time, the gradient of its loss by
  ``torch.autograd`` and the score ||w - eta g - w*||^2; the example with the least score is taught.
  It is timed on one run for a few steps (its cost per learner step does not depend on R).

The result is learner-steps per second (R * T / seconds) for each, their ratios, and for IMT the
distance from the matmul bound: IMT scores the whole pool with GEMMs ([n, d] @ [d, R K] for the
outputs X W and the same for X E, E = W - W*: 4 n d R K flops per step, K = 1 but for softmax), so the
time those take at this machine's GEMM rate is a lower bound on IMT's step time.

``roofline_ratio = measured IMT seconds / (T * 4 n d R K / GEMM rate)``; 1.0 means IMT runs at the
matmul bound. The GEMM rate is the best of many short measurements of [n, d] @ [d, R K] and
[n, d] @ [d, 2 R K] (the two products may run as one) taken between the timed runs, so it sees the same
load as they do. A measured IMT time below the bound means the rate was under-measured: it is sampled
again, and if IMT still beats it, the rate IMT itself achieved is taken as the rate (``roofline_clamped``
is then True), so the reported ratio is never below 1. SGD, LAST and DHT report ``None``: SGD and LAST do
O(R d K) work per step (no GEMM, the bound would be memory and per-op overhead), and DHT's cost is
dominated by its inner Adam iterations on small tensors rather than by a GEMM.

The per-run loop is timed on ``loop_runs`` runs (default ``min(R, 4)``) and extrapolated linearly
to R (it is embarrassingly serial, so linear extrapolation is exact up to noise); a measurement on
L runs is reused for every R with the same L. Every timed item is preceded by a warm-up, and each
time is the best of ``repeats`` measurements (the minimum is the least disturbed by other processes).

Torch runs on ``threads`` intra-op threads (1 by default) for the whole benchmark: with more threads
than free cores, OpenMP's parallel regions wait for descheduled threads and a loaded machine can
inflate times several-fold. Each row also carries ``median_*`` figures computed from the median wall
time of a single step (``teach``'s own per-step timestamps, and per-step timestamps in the loop),
which bursts of load disturb much less; on an idle machine they agree with the totals.

Two more kinds of rows time the soft committee machine (:mod:`teachtheory.committee`): online SGD on
the weights (``simulate_sgd``, learner-steps per second at several R) and the integration of its
order-parameter ODEs to ``alpha = ode_alpha`` (:func:`teachtheory.theory.committee.integrate_ode`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from .threads import intra_op_threads

__all__ = ["AUTOGRAD_LOOPS", "LEARNERS", "LOOPS", "GemmRate", "distill_rows", "format_rows", "matmul_rate",
           "run_benchmark",
           "total_items", "write_json"]

DEFAULT_LR = 0.005  # x ~ N(0, I_100): lr ||x||^2 ~ 0.5 < 2, so SGD is stable
DEFAULT_DHT = {"iterations": 10, "restarts": 4, "step_fraction": 0.05, "steps_fraction": 0.1}
DHT_LABEL_VALUES = (-1.0, 1.0)
TEACHERS = ("sgd", "imt", "last", "dht")
LEARNERS = ("lsr", "logistic", "softmax")


# -- timing helpers -----------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], object], repeats: int, device: torch.device,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Minimum time of ``repeats`` calls of ``fn`` (the caller does the warm-up)."""
    return _timed(fn, repeats, device, clock)[0]


def _timed(fn: Callable[[], list[float] | None], repeats: int, device: torch.device,
           clock: Callable[[], float] = time.perf_counter,
           between: Callable[[], object] | None = None) -> tuple[float, float | None]:
    """(minimum time by ``clock``, minimum median wall time of one step) over ``repeats`` calls of ``fn``.

    ``fn`` may return the durations of its individual steps; their median is a measure that
    other processes on the machine disturb much less than the total (None when ``fn`` returns
    nothing, and on CUDA, where per-step host timestamps do not time the device). ``between`` runs,
    untimed, before each call (the GEMM-rate samples, so they see the same load as the runs).
    """
    best, best_median = math.inf, math.inf
    for _ in range(max(1, repeats)):
        if between is not None:
            between()
        _sync(device)
        start = clock()
        durations = fn()
        _sync(device)
        best = min(best, clock() - start)
        if durations is not None and len(durations) and device.type == "cpu":
            best_median = min(best_median, statistics.median(durations))
    return best, (best_median if math.isfinite(best_median) else None)


def matmul_rate(n: int, d: int, k: int, *, dtype=torch.float32, device="cpu", min_seconds: float = 0.3,
                repeats: int = 15, clock: Callable[[], float] = time.perf_counter) -> float:
    """Measured GEMM rate in GFLOP/s for [n, d] @ [d, k] (2 n d k flops), best of ``repeats`` blocks.

    Each block repeats the product until it has run for about ``min_seconds / repeats``; a few
    products are run first as a warm-up. The output is preallocated, so this is the rate of the
    product itself.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(n, d, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    B = torch.randn(d, k, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    out = torch.empty(n, k, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(A, B, out=out)
    _sync(device)
    start = clock()
    torch.mm(A, B, out=out)
    _sync(device)
    once = max(clock() - start, 1e-7)
    per_block = max(1, int(min_seconds / max(1, repeats) / once))

    def block():
        for _ in range(per_block):
            torch.mm(A, B, out=out)

    seconds = _best_time(block, repeats, device, clock) / per_block
    return 2.0 * n * d * k / seconds / 1e9



class GemmRate:
    """The best GEMM rate seen so far for [n, d] @ [d, k], k in ``ks``, sampled on demand.

    Each :meth:`sample` times one short block of products per k (about ``block_seconds`` each,
    the block length calibrated once after a warm-up). Calling it between timed runs, and keeping
    the maximum, measures the rate under the same load as the runs rather than once up front.
    The output is preallocated, so this is the rate of the product itself.
    """

    def __init__(self, n: int, d: int, ks: Sequence[int], *, dtype=torch.float32, device="cpu",
                 block_seconds: float = 0.005, clock: Callable[[], float] = time.perf_counter) -> None:
        self.n, self.d, self.device, self.clock = n, d, torch.device(device), clock
        gen = torch.Generator().manual_seed(0)
        self.A = torch.randn(n, d, generator=gen, dtype=torch.float64).to(device=self.device, dtype=dtype)
        self.cases: list[dict] = []
        for k in dict.fromkeys(int(k) for k in ks):
            B = torch.randn(d, k, generator=gen, dtype=torch.float64).to(device=self.device, dtype=dtype)
            out = torch.empty(n, k, device=self.device, dtype=dtype)
            for _ in range(3):
                torch.mm(self.A, B, out=out)
            _sync(self.device)
            start = clock()
            torch.mm(self.A, B, out=out)
            _sync(self.device)
            once = max(clock() - start, 1e-7)
            self.cases.append({"k": k, "B": B, "out": out, "per_block": max(1, int(block_seconds / once)),
                               "gflops": 0.0})
        self.samples = 0

    def sample(self) -> float:
        """Time one block per k; returns the best rate so far (GFLOP/s, 2 n d k flops per product)."""
        for case in self.cases:
            B, out, count = case["B"], case["out"], case["per_block"]
            _sync(self.device)
            start = self.clock()
            for _ in range(count):
                torch.mm(self.A, B, out=out)
            _sync(self.device)
            seconds = max(self.clock() - start, 1e-9)
            case["gflops"] = max(case["gflops"], 2.0 * self.n * self.d * case["k"] * count / seconds / 1e9)
        self.samples += 1
        return self.best

    @property
    def best(self) -> float:
        """The highest rate measured over all samples and shapes (GFLOP/s)."""
        return max(case["gflops"] for case in self.cases)


# -- per-run loop implementations ------------------------------------------------------------
#
# Each takes one run's data as plain tensors (X [n, d], labels in vector form Y [n, K], w0 [p], w_star [p]),
# keeps the weights as a matrix W [d, K] and runs T steps, recording ||w - w*|| after every step as
# ``teach`` does with record=("distance",). The learner supplies only dl/dz (``learner.residual``); the
# teaching objective comes from teachtheory.theory.last, as in the batched teachers.


def _start(w0, w_star, d, steps):
    W = w0.reshape(d, -1).clone()
    W_star = w_star.reshape(d, -1)
    dist = torch.empty(steps + 1, dtype=W.dtype, device=W.device)
    dist[0] = (W - W_star).norm()
    return W, W_star, dist


def _loop_sgd(X, Y, w0, w_star, lr, steps, rng, stamps, *, learner, **_):
    n, d = X.shape
    W, W_star, dist = _start(w0, w_star, d, steps)
    for t in range(steps):
        i = rng.randrange(n)
        x = X[i]
        W.addr_(x, learner.residual(x @ W, Y[i]), alpha=-lr)  # W -= lr x r^T
        dist[t + 1] = (W - W_star).norm()
        stamps.append(time.perf_counter())
    return W.reshape(-1), dist


def _loop_imt(X, Y, w0, w_star, lr, steps, rng, stamps, *, learner, **_):
    from .theory.last import greedy_score_linear

    d = X.shape[1]
    W, W_star, dist = _start(w0, w_star, d, steps)
    sqnorm = (X * X).sum(1, keepdim=True)  # ||x_i||^2, a constant of the pool
    for t in range(steps):
        r = learner.residual(X @ W, Y)  # dl/dz of every pool example, [n, K]
        scores = greedy_score_linear(r, X @ (W - W_star), sqnorm, lr).sum(1)
        i = int(scores.argmin())
        W.addr_(X[i], r[i], alpha=-lr)
        dist[t + 1] = (W - W_star).norm()
        stamps.append(time.perf_counter())
    return W.reshape(-1), dist


def _loop_last(X, Y, w0, w_star, lr, steps, rng, stamps, *, learner, **_):
    from .teachers.last import synthesize_labels
    from .theory.last import greedy_label_lsr

    n, d = X.shape
    W, W_star, dist = _start(w0, w_star, d, steps)
    closed_form = learner.label_kind == "real" and W.shape[1] == 1
    for t in range(steps):
        i = rng.randrange(n)
        x = X[i]
        if closed_form:  # LAST Eq. (3)
            label = greedy_label_lsr(W[:, 0], W_star[:, 0], x, lr)
        else:  # the teacher's own solver, on this one run
            y_true = Y[i, 0] if learner.scalar_labels else Y[i]
            label = synthesize_labels(learner, W.reshape(1, -1), W_star.reshape(1, -1), x[None, None],
                                      y_true[None, None], lr)[0, 0]
            label = learner.label_vector(label)
        W.addr_(x, learner.residual(x @ W, label), alpha=-lr)
        dist[t + 1] = (W - W_star).norm()
        stamps.append(time.perf_counter())
    return W.reshape(-1), dist


def _loop_dht(X, Y, w0, w_star, lr, steps, rng, stamps, *, learner, label_values, iterations, restarts,
              step_fraction, **_):
    """DHT (greedy hallucination, projected Adam in box coordinates) for one run."""
    from .teachers.dht import box_search
    from .theory.last import greedy_score, greedy_score_linear

    d = X.shape[1]
    lo, hi = X.amin(0), X.amax(0)
    width = (hi - lo).clamp_min(1e-12)
    sqnorm = (X * X).sum(1, keepdim=True)
    values = learner.label_vector(label_values)  # [C, K]
    gen = torch.Generator(device="cpu").manual_seed(rng.randrange(2**62))
    W, W_star, dist = _start(w0, w_star, d, steps)
    for t in range(steps):
        label = values[rng.randrange(values.shape[0])]
        E = W - W_star
        # Start 0: the best pool example carrying this label, or the best pool example overall.
        scores = greedy_score_linear(learner.residual(X @ W, label), X @ E, sqnorm, lr).sum(1)
        same = (Y == label).all(1)
        pool_scores = torch.where(same, scores, torch.inf) if bool(same.any()) else scores
        start0 = X[int(pool_scores.argmin())]
        randoms = lo + width * torch.rand(restarts, d, generator=gen, dtype=X.dtype).to(X.device)
        starts = torch.cat([start0[None], randoms], 0)  # [S, d]

        def objective(points, W=W, E=E, label=label):
            r = learner.residual(points @ W, label)
            return greedy_score(((points @ E) * r).sum(1), (points * points).sum(1) * (r * r).sum(1), lr)

        best_x, best_val = box_search(objective, starts, lo, width, iterations=iterations,
                                      step_fraction=step_fraction)
        x = best_x[int(best_val.argmin())]
        W.addr_(x, learner.residual(x @ W, label), alpha=-lr)
        dist[t + 1] = (W - W_star).norm()
        stamps.append(time.perf_counter())
    return W.reshape(-1), dist


LOOPS: dict[str, Callable] = {"sgd": _loop_sgd, "imt": _loop_imt, "last": _loop_last, "dht": _loop_dht}


def _loop_imt_autograd(X, Y, w0, w_star, lr, steps, rng, stamps, *, learner, **_):
    """IMT for one run as example selection is commonly written: for every pool example, one at a time,
    the gradient of its loss (``learner.loss``) by ``torch.autograd`` and the score ||w - lr g - w*||^2;
    teach the least."""
    n = X.shape[0]
    w = w0.clone()
    dist = torch.empty(steps + 1, dtype=X.dtype, device=X.device)
    dist[0] = (w - w_star).norm()
    labels = Y[:, 0] if learner.scalar_labels else Y  # the learner's own label form
    with torch.enable_grad():
        for t in range(steps):
            best_score, best_g = math.inf, None
            for i in range(n):
                w_var = w.detach().clone().requires_grad_(True)
                loss = learner.loss(w_var[None], X[i][None, None], labels[i][None, None]).sum()
                (g,) = torch.autograd.grad(loss, w_var)
                score = float(((w - lr * g - w_star) ** 2).sum())
                if score < best_score:
                    best_score, best_g = score, g
            w = (w - lr * best_g).detach()
            dist[t + 1] = (w - w_star).norm()
            stamps.append(time.perf_counter())
    return w, dist


AUTOGRAD_LOOPS: dict[str, Callable] = {"imt": _loop_imt_autograd}


# -- the benchmark ---------------------------------------------------------------------------


def _make_teacher(name: str, dht: dict):
    from .teachers import DHTTeacher, IMTTeacher, LASTTeacher, RandomTeacher

    if name == "sgd":
        return RandomTeacher()
    if name == "imt":
        return IMTTeacher()
    if name == "last":
        return LASTTeacher()
    if name == "dht":
        return DHTTeacher(iterations=dht["iterations"], restarts=dht["restarts"], step_fraction=dht["step_fraction"])
    raise ValueError(f"teachers: unknown teacher {name!r}; accepted: {', '.join(LOOPS)}")


def _bench_problem(learner_name: str, dim: int, pool_size: int, runs: int, seed: int, classes: int, dtype, device):
    """(learner, problem): the shared least-squares pool; for the classifiers the same inputs labelled by a
    random linear target W* ~ N(0, I/d), with w0 = w* + N(0, I/d) per run (so lr = DEFAULT_LR is stable)."""
    from .learners import LeastSquares, Logistic, Softmax
    from .problems import Problem, linear_regression
    from .random import RunStreams, as_seeds

    base = linear_regression(dim=dim, pool_size=pool_size, runs=runs, seed=seed, shared_pool=True, dtype=dtype,
                             device=device)
    if learner_name == "lsr":
        return LeastSquares(dim), replace(base, label_values=torch.tensor(DHT_LABEL_VALUES, dtype=dtype, device=device))
    learner = Logistic(dim) if learner_name == "logistic" else Softmax(dim, classes)
    p = learner.num_params
    streams = RunStreams(as_seeds(seed, runs))
    scale = 1.0 / math.sqrt(dim)
    w_star = (scale * streams.subset(slice(0, 1)).normal("bench-target", 0, (p,), dtype=dtype)).to(device)
    w0 = w_star + (scale * streams.normal("bench-start", 0, (p,), dtype=dtype)).to(device)
    z = learner.outputs(w_star, base.X)
    if learner_name == "logistic":
        y = torch.where(z >= 0, 1.0, -1.0).to(dtype)
        values = torch.tensor(DHT_LABEL_VALUES, dtype=dtype, device=device)
    else:
        y = torch.nn.functional.one_hot(z.argmax(-1), classes).to(dtype)
        values = torch.eye(classes, dtype=dtype, device=device)
    return learner, Problem(base.X, y, w_star, w0, label_values=values,
                            name=f"bench-{learner_name}(d={dim}, n={pool_size})")


def _teacher_steps(name: str, steps: int, dht: dict) -> int:
    if name == "dht":
        return max(1, round(steps * dht["steps_fraction"]))
    return steps


def total_items(runs: Sequence[int] = (1, 64, 256), teachers: Sequence[str] = TEACHERS, *,
                autograd_steps: int = 2, committee_runs: Sequence[int] = (16, 64),
                ode_alpha: float | None = 200.0, distill: bool | dict = False) -> int:
    """How many times :func:`run_benchmark` calls ``progress`` (for a progress bar's total)."""
    per_r = 2 * len(teachers) + (1 if "imt" in teachers else 0)
    autograd = 1 if "imt" in teachers and autograd_steps > 0 else 0
    cases = (distill.get("cases", DISTILL_CASES) if isinstance(distill, dict) else DISTILL_CASES) if distill else ()
    return (per_r * len(tuple(runs)) + autograd + len(tuple(committee_runs)) + (1 if ode_alpha else 0)
            + 2 * len(cases))


def run_benchmark(
    runs: Sequence[int] = (1, 64, 256),
    steps: int = 1000,
    dim: int = 100,
    pool_size: int = 2000,
    teachers: Sequence[str] = TEACHERS,
    loop_runs: int | None = None,
    progress: Callable[[str], None] | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    *,
    lr: float = DEFAULT_LR,
    repeats: int = 3,
    warmup_steps: int = 20,
    seed: int = 0,
    dht: dict | None = None,
    clock: Callable[[], float] = time.perf_counter,
    matmul_seconds: float = 0.3,
    threads: int | None = 1,
    autograd_steps: int = 2,
    committee_runs: Sequence[int] = (16, 64),
    committee_dim: int = 500,
    committee_steps: int = 500,
    ode_alpha: float | None = 200.0,
    learner: str = "lsr",
    classes: int = 2,
    distill: bool | dict = False,
) -> list[dict]:
    """Learner-steps per second of ``teach`` against per-run loops, per teacher and run count, and the
    committee rows.

    Args:
        runs: the run counts R to benchmark.
        steps: learner steps T per timed ``teach`` call (DHT uses ``dht["steps_fraction"] * T``).
        dim, pool_size: the problem's d and n (shared pool, x ~ N(0, I_d)).
        teachers: any of "sgd", "imt", "last", "dht".
        loop_runs: runs on which the per-run loop is timed before extrapolating to R
            (default ``min(R, 4)``).
        progress: called with a description before each timed item.
        dtype, device: precision and device of both implementations.
        lr: the learner's step size (0.005 keeps SGD stable for d = 100).
        repeats: each time is the best (minimum) of this many measurements.
        warmup_steps: steps of each implementation run untimed before timing.
        seed: the problem's and the runs' seed.
        dht: DHT settings, merged over ``{"iterations": 10, "restarts": 4, "step_fraction": 0.05,
            "steps_fraction": 0.1}`` (DHT's Adam inner loop makes each step ~100x costlier).
        clock: the timer of the totals (wall time by default). ``time.process_time`` gives CPU
            time, which other processes do not inflate when torch runs on one thread; the
            ``median_*`` figures always use wall time.
        matmul_seconds: about how long the GEMM-rate samples run in all, per R.
        threads: torch intra-op threads for the whole benchmark (restored afterwards); None leaves
            the current setting.
        autograd_steps: learner steps of the per-example autograd IMT loop, timed on one run
            (0 skips it).
        committee_runs: run counts of the committee online-SGD rows (empty skips them).
        committee_dim, committee_steps: input size N and SGD steps of those rows (the plateau problem
            of :func:`teachtheory.committee.plateau_problem`).
        ode_alpha: integrate the committee ODEs (``ode_check_problem``) to this alpha (None skips it).
        learner: "lsr" (least squares on ``linear_regression``), "logistic" or "softmax" (the same pool
            labelled by a random linear classifier; DHT draws labels from {-1, +1} or the one-hot classes).
        classes: K for the softmax learner (the other learners have K = 1).
        matmul_seconds: about how long the GEMM-rate measurement runs per R.
        distill: also append the dataset-distillation evaluation rows (:func:`distill_rows`; a dict passes
            its keyword arguments).

    Returns:
        A list of rows, one dict per teacher and R, with the fields kind ("teaching"), teacher, runs, steps,
        steps_per_second, loop_steps_per_second, loop_ratio, roofline_ratio, loop_runs_timed, seconds, loop_seconds
        (extrapolated to R), device, dtype; the median-step figures median_steps_per_second,
        loop_median_steps_per_second, median_loop_ratio, median_roofline_ratio (None on CUDA);
        and the settings (problem, classes, dim, pool_size, lr, threads, repeats, warmup_steps; for IMT
        matmul_gflops, matmul_gflops_measured, matmul_samples, matmul_seconds, roofline_clamped and
        the autograd baseline autograd_steps_per_second, autograd_ratio, autograd_steps_timed,
        autograd_seconds; iterations, restarts, step_fraction and label_values for DHT). Then
        one row per committee R (kind "committee-sgd", teacher "committee-sgd", N, alpha) and one
        for the ODE (kind "committee-ode", alpha, seconds); their loop fields are None.
    """
    runs = tuple(int(r) for r in runs)
    if not runs or any(r < 1 for r in runs):
        raise ValueError(f"runs must be positive integers, got {runs}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if loop_runs is not None and loop_runs < 1:
        raise ValueError(f"loop_runs must be a positive integer, got {loop_runs!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if not isinstance(autograd_steps, int) or autograd_steps < 0:
        raise ValueError(f"autograd_steps must be a non-negative integer, got {autograd_steps!r}")
    committee_runs = tuple(int(r) for r in committee_runs)
    if any(r < 1 for r in committee_runs):
        raise ValueError(f"committee_runs must be positive integers, got {committee_runs}")
    if ode_alpha is not None and not (isinstance(ode_alpha, (int, float)) and ode_alpha >= 0):
        raise ValueError(f"ode_alpha must be a non-negative number or None, got {ode_alpha!r}")
    for name in teachers:
        if name not in LOOPS:
            raise ValueError(f"teachers: unknown teacher {name!r}; accepted: {', '.join(LOOPS)}")
    if learner not in LEARNERS:
        raise ValueError(f"learner: unknown learner {learner!r}; accepted: {', '.join(LEARNERS)}")
    if learner == "softmax" and (not isinstance(classes, int) or isinstance(classes, bool) or classes < 2):
        raise ValueError(f"classes must be an integer >= 2 for the softmax learner, got {classes!r}")
    settings = {"runs": runs, "steps": steps, "dim": dim, "pool_size": pool_size, "teachers": tuple(teachers),
                "loop_runs": loop_runs, "say": progress or (lambda text: None), "dtype": dtype,
                "device": torch.device(device), "lr": lr, "repeats": repeats, "warmup_steps": warmup_steps,
                "seed": seed, "dht": {**DEFAULT_DHT, **(dht or {})}, "clock": clock,
                "matmul_seconds": matmul_seconds, "autograd_steps": autograd_steps, "learner": learner,
                "classes": classes}
    with intra_op_threads(None if torch.device(device).type == "cuda" else threads):
        rows = _teaching_rows(**settings)
        rows += _committee_rows(committee_runs, committee_dim, committee_steps, ode_alpha, settings)
        if distill:
            rows += distill_rows(progress=progress, clock=clock, device=device,
                                 **(distill if isinstance(distill, dict) else {}))
    return rows


def _teaching_rows(*, runs, steps, dim, pool_size, teachers, loop_runs, say, dtype, device, lr, repeats,
                   warmup_steps, seed, dht, clock, matmul_seconds, autograd_steps, learner, classes) -> list[dict]:
    """The teaching rows of :func:`run_benchmark` (its arguments, validated)."""
    from .engine import teach

    K = classes if learner == "softmax" else 1  # columns of W per run: the GEMMs are [n, d] @ [d, R K]
    threads = torch.get_num_threads()
    dtype_name = str(dtype).replace("torch.", "")
    loop_cache: dict[tuple[str, int], tuple[float, float | None]] = {}
    autograd = None
    rows: list[dict] = []
    for R in runs:
        model, problem = _bench_problem(learner, dim, pool_size, R, seed, classes, dtype, device)
        gemm = None
        if "imt" in teachers:
            say(f"matmul rate [{pool_size}, {dim}] @ [{dim}, {R * K} and {2 * R * K}]")
            # about matmul_seconds in all: one sample before each of the ~2 x teachers x repeats runs
            samples = 2 * len(teachers) * repeats + 2
            gemm = GemmRate(pool_size, dim, (R * K, 2 * R * K), dtype=dtype, device=device, clock=clock,
                            block_seconds=matmul_seconds / samples / 2)
            gemm.sample()
        between = None if gemm is None else gemm.sample
        for name in teachers:
            teacher = _make_teacher(name, dht)
            T = _teacher_steps(name, steps, dht)

            def batched(n_steps, teacher=teacher, problem=problem, model=model):
                return teach(problem, model, teacher, steps=n_steps, lr=lr, seed=seed, record=("distance",),
                             record_every=1)

            def timed_batched(T=T):
                stamps = batched(T).seconds  # cumulative wall time after each step
                return [float(b - a) for a, b in itertools.pairwise(stamps)]

            say(f"{name} R={R}: batched, {T} steps")
            batched(min(warmup_steps, T))
            seconds, median_step = _timed(timed_batched, repeats, device, clock, between)

            L = min(R, loop_runs if loop_runs is not None else 4)
            say(f"{name} R={R}: per-run loop on {L} of {R} runs")
            if (name, L) not in loop_cache:  # the loop's cost per run does not depend on R
                loop_cache[name, L] = _time_loop(LOOPS[name], model, problem, L, T, lr, seed, dht, repeats,
                                                 warmup_steps, device, clock, between)
            loop_seconds_timed, loop_median_step = loop_cache[name, L]
            loop_seconds = loop_seconds_timed * R / L

            sps = R * T / seconds
            loop_sps = L * T / loop_seconds_timed
            med_sps = None if median_step is None else R / median_step
            med_loop_sps = None if loop_median_step is None else 1.0 / loop_median_step
            row = {
                "kind": "teaching",
                "teacher": name, "runs": R, "steps": T, "steps_per_second": sps,
                "loop_steps_per_second": loop_sps, "loop_ratio": sps / loop_sps, "roofline_ratio": None,
                "loop_runs_timed": L, "seconds": seconds, "loop_seconds": loop_seconds,
                "device": str(device), "dtype": dtype_name,
                "median_steps_per_second": med_sps, "loop_median_steps_per_second": med_loop_sps,
                "median_loop_ratio": None if med_sps is None or med_loop_sps is None else med_sps / med_loop_sps,
                "median_roofline_ratio": None,
                "problem": learner, "classes": K, "dim": dim, "pool_size": pool_size, "lr": lr, "threads": threads,
                "repeats": repeats, "warmup_steps": warmup_steps, "clock": getattr(clock, "__name__", str(clock)),
            }
            if name == "imt":
                # X W and X E per step, 2 n d R K flops each
                row.update(_roofline(gemm, 4.0 * pool_size * dim * R * K * T, seconds,
                                     None if median_step is None else median_step * T, repeats))
                if autograd_steps > 0:
                    if autograd is None:
                        say(f"imt: per-example autograd loop, {autograd_steps} steps on 1 run")
                        autograd = _time_loop(AUTOGRAD_LOOPS["imt"], model, problem, 1, autograd_steps, lr, seed, dht,
                                              repeats, 1, device, clock)
                    autograd_sps = autograd_steps / autograd[0]
                    row.update(autograd_steps_per_second=autograd_sps, autograd_ratio=sps / autograd_sps,
                               autograd_steps_timed=autograd_steps, autograd_seconds=R * T / autograd_sps)
            if name == "dht":
                row.update(iterations=dht["iterations"], restarts=dht["restarts"],
                           step_fraction=dht["step_fraction"], label_values=problem.label_values.tolist())
            rows.append(row)
    return rows


def _roofline(gemm: GemmRate, flops: float, seconds: float, median_seconds: float | None, repeats: int) -> dict:
    """IMT's distance from the GEMM bound, never below 1: a run faster than the bound means the rate was
    under-measured, so sample it again, and failing that take the rate IMT achieved itself."""
    if flops / (gemm.best * 1e9) > min(seconds, median_seconds or math.inf):
        for _ in range(3 * repeats):
            gemm.sample()
    measured = gemm.best
    bound = min(flops / (measured * 1e9), seconds, median_seconds or math.inf)
    clamped = bound < flops / (measured * 1e9)
    # unclamped, the rate is the measured one exactly (flops / bound / 1e9 would differ from it by rounding)
    return {"roofline_ratio": seconds / bound, "matmul_gflops": flops / bound / 1e9 if clamped else measured,
            "matmul_gflops_measured": measured, "matmul_samples": gemm.samples, "matmul_seconds": bound,
            "roofline_clamped": clamped,
            "median_roofline_ratio": None if median_seconds is None else median_seconds / bound}


def _time_loop(loop, learner, problem, L, T, lr, seed, dht, repeats, warmup_steps, device, clock,
               between=None) -> tuple[float, float | None]:
    """(best seconds, best median step seconds) of a per-run ``loop`` over L runs of T steps each."""
    X = problem.X[0]
    Y = learner.label_vector(problem.y[0])
    options = {"learner": learner, "label_values": problem.label_values, "iterations": dht["iterations"],
               "restarts": dht["restarts"], "step_fraction": dht["step_fraction"]}

    def run_one(r, n_steps, stamps):
        w_star = problem.w_star[r if problem.w_star.shape[0] > 1 else 0]
        rng = random.Random(seed * 1_000_003 + r)
        stamps.append(time.perf_counter())
        loop(X, Y, problem.w0[r], w_star, lr, n_steps, rng, stamps, **options)

    with torch.no_grad():
        run_one(0, min(warmup_steps, T), [])

        def all_runs():
            durations = []
            for r in range(L):
                stamps: list[float] = []
                run_one(r, T, stamps)
                durations.extend(b - a for a, b in itertools.pairwise(stamps))
            return durations

        return _timed(all_runs, repeats, device, clock, between)


def _committee_rows(runs: Sequence[int], N: int, steps: int, ode_alpha: float | None, settings: dict) -> list[dict]:
    """Online SGD of the soft committee machine (learner-steps/s per R) and the time of its ODEs to ode_alpha."""
    if not runs and not ode_alpha:
        return []
    import numpy as np

    from .committee import online
    from .theory import committee as theory

    say, clock, repeats, seed = settings["say"], settings["clock"], settings["repeats"], settings["seed"]
    device = torch.device("cpu")
    common = {"kind": None, "teacher": None, "runs": None, "steps": None, "steps_per_second": None,
              "loop_steps_per_second": None, "loop_ratio": None, "roofline_ratio": None, "loop_runs_timed": None,
              "seconds": None, "loop_seconds": None, "device": "cpu", "dtype": "float32",
              "median_steps_per_second": None, "loop_median_steps_per_second": None, "median_loop_ratio": None,
              "median_roofline_ratio": None, "threads": torch.get_num_threads(), "repeats": repeats,
              "clock": getattr(clock, "__name__", str(clock))}
    rows = []
    problem = online.plateau_problem()
    for R in runs:
        say(f"committee SGD N={N} R={R}: {steps} steps")

        def simulate(n_steps, R=R):
            # threads=None: keep the benchmark's thread setting
            return online.simulate_sgd(problem, N, [0.0, n_steps / N], runs=R, seed=seed, threads=None)

        simulate(max(1, steps // 10))
        seconds, _ = _timed(lambda: _discard(simulate(steps)), repeats, device, clock)
        rows.append(common | {"kind": "committee-sgd", "teacher": "committee-sgd", "runs": R, "steps": steps,
                              "steps_per_second": R * steps / seconds, "seconds": seconds, "N": N,
                              "alpha": steps / N, "problem": "committee plateau (K=M=2)"})
    if ode_alpha:
        check = online.ode_check_problem()
        alphas = np.linspace(0.0, float(ode_alpha), 201)
        say(f"committee ODE to alpha={ode_alpha:g}")

        def integrate(grid):
            return theory.integrate_ode(check.Q0, check.R0, check.T, check.v0, check.v_star, grid, check.lr,
                                        lr_v=check.lr_v, train_second_layer=check.train_second_layer,
                                        noise_var=check.noise_std**2)

        integrate(alphas[:3])  # warm-up (imports, first calls)
        start = clock()
        integrate(alphas)
        seconds = clock() - start
        rows.append(common | {"kind": "committee-ode", "teacher": "committee-ode", "runs": 1, "seconds": seconds,
                              "dtype": "float64", "repeats": 1, "alpha": float(ode_alpha),
                              "problem": "committee ode_check_problem (K=M=2)"})
    return rows


def _discard(_result) -> None:
    """Return nothing (a timed function that returns no per-step durations)."""


# -- dataset distillation: R evaluation networks at once against R trainings one after another --------

DISTILL_CASES = (("digits", "convnet", 1), ("digits", "convnet", 10), ("mnist1d", "convnet", 10),
                 ("digits", "mlp", 10))


def distill_rows(runs: int = 8, epochs: int = 40, width: int = 32, cases=DISTILL_CASES, repeats: int = 2,
                 progress: Callable[[str], None] | None = None, clock: Callable[[], float] = time.perf_counter,
                 device: str | torch.device = "cpu") -> list[dict]:
    """The evaluation protocol of :mod:`teachtheory.distill`: ``runs`` networks trained at once on a synthetic
    set (random real images, ``ipc`` per class) against the same ``runs`` trainings one after another.

    Each case is (data set, network, ipc); a row's ``steps`` are one network's SGD steps, ``steps_per_second``
    counts runs x steps per second, and ``loop_ratio`` is the speed-up of training all at once. "At once" is
    :func:`teachtheory.distill.evaluate`'s default: all networks together, except on the CPU, where they train in
    cache-sized chunks (:func:`teachtheory.distill.evaluate.default_chunk`; the label then says ``chunks of c``);
    "one after another" is the same code at R = 1, R times, and trains the same networks (same streams). Best of
    ``repeats`` by ``clock`` after one warm-up epoch each. Cases whose data set cannot be loaded (MNIST-1D
    without the ``mnist1d`` package) are left out.
    """
    from .distill import distill as make_set
    from .distill import evaluate, load_dataset
    from .distill.evaluate import BATCH_SIZE, default_chunk
    from .distill.nets import make_net

    say = progress or (lambda text: None)
    rows = []
    for dataset, net, ipc in cases:
        try:
            data = load_dataset(dataset, device=device)
        except ValueError:
            continue
        syn = make_set("random", data, ipc, device=device)
        options = {"net": net, "width": width if net == "convnet" else None, "runs": runs, "curve_points": 1,
                   "device": device}
        seconds = {}
        for sequential in (False, True):
            say(f"distill-eval {dataset} {net} ipc={ipc}: {'one after another' if sequential else 'at once'}")

            def train(n_epochs, sequential=sequential, syn=syn, data=data, options=options) -> None:
                evaluate(syn, data, epochs=n_epochs, sequential=sequential, **options)

            train(1)  # warm-up
            seconds[sequential] = _best_time(lambda train=train: train(epochs), repeats, torch.device(device), clock)
        steps = epochs * max(1, -(-syn.size // BATCH_SIZE))
        sps, loop_sps = runs * steps / seconds[False], runs * steps / seconds[True]
        spec = make_net(net, data.image_shape, data.num_classes, width=options["width"])
        chunk = default_chunk(spec, min(BATCH_SIZE, syn.size), runs, device)
        rows.append({
            "teacher": f"distill-eval {dataset} {net}{'-w' + str(width) if net == 'convnet' else ''} ipc={ipc}"
                       + (f" chunks of {chunk}" if chunk < runs else ""), "chunk": chunk,
            "runs": runs, "steps": steps, "steps_per_second": sps, "loop_steps_per_second": loop_sps,
            "loop_ratio": sps / loop_sps, "roofline_ratio": None, "loop_runs_timed": runs, "seconds": seconds[False],
            "loop_seconds": seconds[True], "device": str(device), "dtype": "float32", "median_steps_per_second": None,
            "loop_median_steps_per_second": None, "median_loop_ratio": None, "median_roofline_ratio": None,
            "problem": f"distill-eval {dataset}", "epochs": epochs, "ipc": ipc, "width": width,
            "threads": torch.get_num_threads(), "repeats": repeats, "clock": getattr(clock, "__name__", str(clock)),
        })
    return rows


# -- output ----------------------------------------------------------------------------------


def _fmt(value, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, spec)


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(b, widths))))
    return lines


def _problem_label(row: dict) -> str:
    """The problem of a row for the table's notes ("LSR", "logistic", "softmax K=3")."""
    name = str(row.get("problem", "lsr"))
    if name == "softmax":
        return f"softmax K={row.get('classes')}"
    return name.upper() if name == "lsr" else name


def format_rows(rows: Sequence[dict]) -> str:
    """Plain-text tables of benchmark rows (teaching, then committee), with the GEMM rates below."""
    teaching = [row for row in rows if row.get("kind", "teaching") == "teaching"]
    committee = [row for row in rows if row.get("kind", "teaching") != "teaching"]
    header = ("teacher", "R", "T", "steps/s", "loop steps/s", "loop ratio", "autograd ratio", "roofline", "seconds",
              "loop runs", "median: steps/s", "loop ratio", "roofline")
    body = [
        (
            str(row["teacher"]), str(row["runs"]), str(row["steps"]), _fmt(row["steps_per_second"], ",.0f"),
            _fmt(row["loop_steps_per_second"], ",.0f"), _fmt(row["loop_ratio"], ".1f"),
            _fmt(row.get("autograd_ratio"), ",.0f"),
            _fmt(row.get("roofline_ratio"), ".2f"), _fmt(row["seconds"], ".3f"), str(row["loop_runs_timed"]),
            _fmt(row.get("median_steps_per_second"), ",.0f"), _fmt(row.get("median_loop_ratio"), ".1f"),
            _fmt(row.get("median_roofline_ratio"), ".2f"),
        )
        for row in teaching
    ]
    lines = _table(header, body) if teaching else []
    notes = []
    for row in teaching:
        if row.get("matmul_gflops") is not None:
            clamped = " (IMT's own rate: above every measured one)" if row.get("roofline_clamped") else ""
            notes.append(f"R={row['runs']}: {row['matmul_gflops']:.1f} GFLOP/s{clamped}")
    if teaching:
        first = teaching[0]
        lines.append("")
        lines.append(f"device {first['device']}, {first['dtype']}, {first.get('threads', '?')} threads; "
                     f"{_problem_label(first)} d={first.get('dim')}, n={first.get('pool_size')}, lr={first.get('lr')}; "
                     "steps/s = learner steps (runs x steps) per second, best of "
                     f"{first.get('repeats', '?')} by {first.get('clock', 'perf_counter')}; "
                     "median: from the median wall time of one step")
        if notes:
            samples = max(row.get("matmul_samples", 0) for row in teaching)
            lines.append("matmul rate [n, d] @ [d, R K or 2 R K], best of up to "
                         f"{samples} samples between the runs: " + ", ".join(notes)
                         + "; roofline = IMT time / time of its GEMMs (4 n d R K flops per step) at that rate")
        auto = [row for row in teaching if row.get("autograd_steps_per_second") is not None]
        if auto:
            lines.append(f"autograd ratio = batched IMT / per-example autograd IMT loop "
                         f"({auto[0]['autograd_steps_per_second']:.2f} learner-steps/s, "
                         f"timed on {auto[0]['autograd_steps_timed']} steps of 1 run)")
        if any(str(row.get("problem", "")).startswith("distill-eval") for row in teaching):
            lines.append("distill-eval: R evaluation networks trained at once against the same R trainings one after "
                         "another (the same code at R = 1); T = one network's SGD steps. On a CPU, training at once "
                         "saves per-call overhead only: where one network's step is already its own arithmetic and "
                         "memory traffic (ConvNet at ipc 10), the ratio stays near 1")
        dht_rows = [row for row in teaching if row["teacher"] == "dht"]
        if dht_rows:
            row = dht_rows[0]
            lines.append(f"dht: {row['steps']} steps, {row['iterations']} Adam iterations, {row['restarts']} restarts, "
                         f"labels {row['label_values']}")
    if committee:
        if lines:
            lines.append("")
        body = [(str(row["teacher"]), str(row["runs"]), str(row.get("N", "-")), _fmt(row.get("steps"), "d"),
                 _fmt(row.get("alpha"), "g"), _fmt(row.get("steps_per_second"), ",.0f"), _fmt(row["seconds"], ".3f"))
                for row in committee]
        lines += _table(("committee", "R", "N", "steps", "alpha", "learner-steps/s", "seconds"), body)
        lines.append("committee-sgd: online SGD on the weights (plateau problem); committee-ode: integrate_ode "
                     "from the ode_check problem to alpha")
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write the rows as a JSON list, atomically (:func:`teachtheory.io.atomic_write`)."""
    from .io import atomic_write

    text = json.dumps(_json_safe(list(rows)), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
