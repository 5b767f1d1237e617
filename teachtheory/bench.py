"""Throughput benchmark: batched teaching (all R runs as one tensor computation) against a per-run loop.

For each teacher (SGD, IMT, LAST, DHT) and each number of runs R, :func:`run_benchmark` times
``teach`` on the least-squares problem ``linear_regression(dim, pool_size, runs=R, shared_pool=True)``
and, beside it, a straightforward per-run implementation of the same algorithm (``for r in range(R):
for t in range(T):`` on 1-D tensors). The result is learner-steps per second (R * T / seconds) for
both, their ratio, and for IMT the distance from the matmul bound: IMT scores the whole pool with two
GEMMs per step ([n, d] @ [d, R] for the predictions X W and the same for X E, E = W - W*), so the
time those take at this machine's measured GEMM rate is a lower bound on IMT's step time.

``roofline_ratio = measured IMT seconds / (T * 4 n d R / measured GEMM rate)``; 1.0 means IMT runs
at the matmul bound. SGD, LAST and DHT report ``None``: SGD and LAST do O(R d) work per step (no
GEMM, the bound would be memory and per-op overhead), and DHT's cost is dominated by its inner
Adam iterations on small tensors rather than by a GEMM.

The per-run loop is timed on ``loop_runs`` runs (default ``min(R, 8)``) and extrapolated linearly
to R (it is embarrassingly serial, so linear extrapolation is exact up to noise). Every timed item
is preceded by a warm-up, and each time is the best of ``repeats`` measurements (the minimum is the
least disturbed by other processes on the machine).

On a busy machine even the minimum total can be inflated several times (with all cores taken,
OpenMP's parallel regions wait for descheduled threads). Each row therefore also carries
``median_*`` figures computed from the median wall time of a single step (``teach``'s own
per-step timestamps, and per-step timestamps in the loop), which bursts of load disturb much less;
on an idle machine they agree with the totals.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

__all__ = ["LOOPS", "distill_rows", "format_rows", "matmul_rate", "run_benchmark", "total_items", "write_json"]

DEFAULT_LR = 0.005  # x ~ N(0, I_100): lr ||x||^2 ~ 0.5 < 2, so SGD is stable
DEFAULT_DHT = {"iterations": 10, "restarts": 4, "step_fraction": 0.05, "steps_fraction": 0.1}
DHT_LABEL_VALUES = (-1.0, 1.0)


# -- timing helpers -----------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], object], repeats: int, device: torch.device,
               clock: Callable[[], float] = time.perf_counter) -> float:
    """Minimum time of ``repeats`` calls of ``fn`` (the caller does the warm-up)."""
    return _timed(fn, repeats, device, clock)[0]


def _timed(fn: Callable[[], "list[float] | None"], repeats: int, device: torch.device,
           clock: Callable[[], float] = time.perf_counter) -> tuple[float, float | None]:
    """(minimum time by ``clock``, minimum median wall time of one step) over ``repeats`` calls of ``fn``.

    ``fn`` may return the durations of its individual steps; their median is a measure that
    other processes on the machine disturb much less than the total (None when ``fn`` returns
    nothing, and on CUDA, where per-step host timestamps do not time the device).
    """
    best, best_median = math.inf, math.inf
    for _ in range(max(1, repeats)):
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


# -- per-run loop implementations ------------------------------------------------------------
#
# Each takes one run's data as plain tensors (X [n, d], y [n], w0 [d], w_star [d]) and runs T steps,
# recording ||w - w*|| after every step as ``teach`` does with record=("distance",).


def _loop_sgd(X, y, w0, w_star, lr, steps, rng, stamps, **_):
    n = X.shape[0]
    w = w0.clone()
    dist = torch.empty(steps + 1, dtype=X.dtype, device=X.device)
    dist[0] = (w - w_star).norm()
    for t in range(steps):
        i = rng.randrange(n)
        x = X[i]
        w = w - lr * (x @ w - y[i]) * x
        dist[t + 1] = (w - w_star).norm()
        stamps.append(time.perf_counter())
    return w, dist


def _loop_imt(X, y, w0, w_star, lr, steps, rng, stamps, **_):
    w = w0.clone()
    sqnorm = (X * X).sum(1)  # ||x_i||^2, a constant of the pool
    dist = torch.empty(steps + 1, dtype=X.dtype, device=X.device)
    dist[0] = (w - w_star).norm()
    for t in range(steps):
        r = X @ w - y  # residual of every pool example
        inner = X @ (w - w_star)
        scores = lr * lr * sqnorm * r * r - 2.0 * lr * inner * r
        i = int(scores.argmin())
        x = X[i]
        w = w - lr * (x @ w - y[i]) * x
        dist[t + 1] = (w - w_star).norm()
        stamps.append(time.perf_counter())
    return w, dist


def _loop_last(X, y, w0, w_star, lr, steps, rng, stamps, **_):
    from .theory.last import greedy_label_lsr

    n = X.shape[0]
    w = w0.clone()
    dist = torch.empty(steps + 1, dtype=X.dtype, device=X.device)
    dist[0] = (w - w_star).norm()
    for t in range(steps):
        x = X[rng.randrange(n)]
        label = greedy_label_lsr(w, w_star, x, lr)
        w = w - lr * (x @ w - label) * x
        dist[t + 1] = (w - w_star).norm()
        stamps.append(time.perf_counter())
    return w, dist


def _loop_dht(X, y, w0, w_star, lr, steps, rng, stamps, *, label_values, iterations, restarts, step_fraction, **_):
    """DHT (greedy hallucination, projected Adam in box coordinates) for one run."""
    n, d = X.shape
    lo, hi = X.amin(0), X.amax(0)
    width = (hi - lo).clamp_min(1e-12)
    sqnorm = (X * X).sum(1)
    gen = torch.Generator(device="cpu").manual_seed(rng.randrange(2**62))
    w = w0.clone()
    dist = torch.empty(steps + 1, dtype=X.dtype, device=X.device)
    dist[0] = (w - w_star).norm()
    for t in range(steps):
        label = label_values[rng.randrange(label_values.shape[0])]
        e = w - w_star
        # Start 0: the best pool example carrying this label, or the best pool example overall.
        r = X @ w - label
        scores = lr * lr * sqnorm * r * r - 2.0 * lr * (X @ e) * r
        same = y == label
        pool_scores = torch.where(same, scores, torch.inf) if bool(same.any()) else scores
        start0 = X[int(pool_scores.argmin())]
        randoms = lo + width * torch.rand(restarts, d, generator=gen, dtype=X.dtype).to(X.device)
        starts = torch.cat([start0[None], randoms], 0)  # [S, d]

        def objective(points):
            res = points @ w - label
            return lr * lr * (points * points).sum(1) * res * res - 2.0 * lr * (points @ e) * res

        best_x, best_val = starts.clone(), objective(starts)
        u = ((starts - lo) / width).clone().requires_grad_(True)
        opt = torch.optim.Adam([u], lr=step_fraction)
        with torch.enable_grad():
            for k in range(iterations + 1):
                opt.zero_grad()
                current = lo + width * u
                value = objective(current)
                improved = value.detach() < best_val
                best_val = torch.where(improved, value.detach(), best_val)
                best_x = torch.where(improved[:, None], current.detach(), best_x)
                if k == iterations:
                    break
                value.sum().backward()
                opt.step()
                with torch.no_grad():
                    u.clamp_(0.0, 1.0)
        x = best_x[int(best_val.argmin())]
        w = w - lr * (x @ w - label) * x
        dist[t + 1] = (w - w_star).norm()
        stamps.append(time.perf_counter())
    return w, dist


LOOPS: dict[str, Callable] = {"sgd": _loop_sgd, "imt": _loop_imt, "last": _loop_last, "dht": _loop_dht}


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


def _teacher_steps(name: str, steps: int, dht: dict) -> int:
    if name == "dht":
        return max(1, int(round(steps * dht["steps_fraction"])))
    return steps


def total_items(runs: Sequence[int] = (1, 64, 256), teachers: Sequence[str] = ("sgd", "imt", "last", "dht"),
                distill: bool | dict = False) -> int:
    """How many times :func:`run_benchmark` calls ``progress`` (for a progress bar's total)."""
    per_r = 2 * len(teachers) + (1 if "imt" in teachers else 0)
    cases = (distill.get("cases", DISTILL_CASES) if isinstance(distill, dict) else DISTILL_CASES) if distill else ()
    return per_r * len(tuple(runs)) + 2 * len(cases)


def run_benchmark(
    runs: Sequence[int] = (1, 64, 256),
    steps: int = 1000,
    dim: int = 100,
    pool_size: int = 2000,
    teachers: Sequence[str] = ("sgd", "imt", "last", "dht"),
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
    distill: bool | dict = False,
) -> list[dict]:
    """Learner-steps per second of ``teach`` against a per-run loop, per teacher and run count.

    Args:
        runs: the run counts R to benchmark.
        steps: learner steps T per timed ``teach`` call (DHT uses ``dht["steps_fraction"] * T``).
        dim, pool_size: the least-squares problem's d and n (shared pool, x ~ N(0, I_d)).
        teachers: any of "sgd", "imt", "last", "dht".
        loop_runs: runs on which the per-run loop is timed before extrapolating to R
            (default ``min(R, 8)``).
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
        matmul_seconds: about how long the GEMM-rate measurement runs per R.
        distill: also append the dataset-distillation evaluation rows (:func:`distill_rows`; a dict passes
            its keyword arguments).

    Returns:
        One dict per (teacher, R): teacher, runs, steps, steps_per_second, loop_steps_per_second,
        loop_ratio, roofline_ratio, loop_runs_timed, seconds, loop_seconds (extrapolated to R),
        device, dtype; the median-step figures median_steps_per_second,
        loop_median_steps_per_second, median_loop_ratio, median_roofline_ratio (None on CUDA);
        and the settings (problem, dim, pool_size, lr, threads, repeats, warmup_steps;
        matmul_gflops and matmul_seconds for IMT; iterations, restarts, step_fraction and
        label_values for DHT).
    """
    from .engine import teach
    from .learners.linear import LeastSquares
    from .problems import linear_regression

    runs = tuple(int(r) for r in runs)
    if not runs or any(r < 1 for r in runs):
        raise ValueError(f"runs must be positive integers, got {runs}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if loop_runs is not None and loop_runs < 1:
        raise ValueError(f"loop_runs must be a positive integer, got {loop_runs!r}")
    for name in teachers:
        if name not in LOOPS:
            raise ValueError(f"teachers: unknown teacher {name!r}; accepted: {', '.join(LOOPS)}")
    dht_settings = {**DEFAULT_DHT, **(dht or {})}
    device = torch.device(device)
    say = progress or (lambda text: None)
    learner = LeastSquares(dim)
    threads = torch.get_num_threads()
    dtype_name = str(dtype).replace("torch.", "")
    rows: list[dict] = []
    for R in runs:
        problem = linear_regression(dim=dim, pool_size=pool_size, runs=R, seed=seed, shared_pool=True,
                                    dtype=dtype, device=device)
        problem = replace(problem, label_values=torch.tensor(DHT_LABEL_VALUES, dtype=dtype, device=device))
        gflops = None
        if "imt" in teachers:
            say(f"matmul rate [{pool_size}, {dim}] @ [{dim}, {R}]")
            gflops = matmul_rate(pool_size, dim, R, dtype=dtype, device=device, clock=clock, min_seconds=matmul_seconds)
        for name in teachers:
            teacher = _make_teacher(name, dht_settings)
            T = _teacher_steps(name, steps, dht_settings)

            def batched(n_steps, teacher=teacher):
                return teach(problem, learner, teacher, steps=n_steps, lr=lr, seed=seed, record=("distance",))

            def timed_batched(T=T):
                stamps = batched(T).seconds  # cumulative wall time after each step
                return [float(b - a) for a, b in zip(stamps[:-1], stamps[1:])]

            say(f"{name} R={R}: batched, {T} steps")
            batched(min(warmup_steps, T))
            seconds, median_step = _timed(timed_batched, repeats, device, clock)

            L = min(R, loop_runs if loop_runs is not None else 8)
            say(f"{name} R={R}: per-run loop on {L} of {R} runs")
            loop_seconds_timed, loop_median_step = _time_loop(name, problem, L, T, lr, seed, dht_settings, repeats,
                                                              warmup_steps, device, clock)
            loop_seconds = loop_seconds_timed * R / L

            sps = R * T / seconds
            loop_sps = L * T / loop_seconds_timed
            med_sps = None if median_step is None else R / median_step
            med_loop_sps = None if loop_median_step is None else 1.0 / loop_median_step
            row = {
                "teacher": name, "runs": R, "steps": T, "steps_per_second": sps,
                "loop_steps_per_second": loop_sps, "loop_ratio": sps / loop_sps, "roofline_ratio": None,
                "loop_runs_timed": L, "seconds": seconds, "loop_seconds": loop_seconds,
                "device": str(device), "dtype": dtype_name,
                "median_steps_per_second": med_sps, "loop_median_steps_per_second": med_loop_sps,
                "median_loop_ratio": None if med_sps is None or med_loop_sps is None else med_sps / med_loop_sps,
                "median_roofline_ratio": None,
                "problem": "lsr", "dim": dim, "pool_size": pool_size, "lr": lr, "threads": threads,
                "repeats": repeats, "warmup_steps": warmup_steps, "clock": getattr(clock, "__name__", str(clock)),
            }
            if name == "imt":
                flops = 4.0 * pool_size * dim * R * T  # X W and X E per step, 2 n d R each
                matmul_seconds = flops / (gflops * 1e9)
                row.update(roofline_ratio=seconds / matmul_seconds, matmul_gflops=gflops,
                           matmul_seconds=matmul_seconds)
                if median_step is not None:
                    row["median_roofline_ratio"] = median_step * T / matmul_seconds
            if name == "dht":
                row.update(iterations=dht_settings["iterations"], restarts=dht_settings["restarts"],
                           step_fraction=dht_settings["step_fraction"], label_values=list(DHT_LABEL_VALUES))
            rows.append(row)
    if distill:
        rows.extend(distill_rows(progress=progress, clock=clock, device=device, **(distill if isinstance(distill, dict)
                                                                                   else {})))
    return rows


def _time_loop(name, problem, L, T, lr, seed, dht, repeats, warmup_steps, device, clock) -> tuple[float, float | None]:
    """(best seconds, best median step seconds) of the per-run loop over L runs of T steps each."""
    loop = LOOPS[name]
    X = problem.X[0]
    y = problem.y[0]
    options = dict(label_values=problem.label_values, iterations=dht["iterations"], restarts=dht["restarts"],
                   step_fraction=dht["step_fraction"])

    def run_one(r, n_steps, stamps):
        w_star = problem.w_star[r if problem.w_star.shape[0] > 1 else 0]
        rng = random.Random(seed * 1_000_003 + r)
        stamps.append(time.perf_counter())
        loop(X, y, problem.w0[r], w_star, lr, n_steps, rng, stamps, **options)

    with torch.no_grad():
        run_one(0, min(warmup_steps, T), [])

        def all_runs():
            durations = []
            for r in range(L):
                stamps: list[float] = []
                run_one(r, T, stamps)
                durations.extend(b - a for a, b in zip(stamps[:-1], stamps[1:]))
            return durations

        return _timed(all_runs, repeats, device, clock)


# -- dataset distillation: R evaluation networks at once against R trainings one after another --------

DISTILL_CASES = (("digits", "convnet", 1), ("digits", "convnet", 10), ("mnist1d", "convnet", 10),
                 ("digits", "mlp", 10))


def distill_rows(runs: int = 8, epochs: int = 40, width: int = 32, cases=DISTILL_CASES, repeats: int = 2,
                 progress: Callable[[str], None] | None = None, clock: Callable[[], float] = time.perf_counter,
                 device: str | torch.device = "cpu") -> list[dict]:
    """The evaluation protocol of :mod:`teachtheory.distill`: ``runs`` networks trained at once on a synthetic
    set (random real images, ``ipc`` per class) against the same ``runs`` trainings one after another.

    Each case is (data set, network, ipc); a row's ``steps`` are one network's SGD steps, ``steps_per_second``
    counts runs x steps per second, and ``loop_ratio`` is the speed-up of training all at once. Best of
    ``repeats`` by ``clock`` after one warm-up epoch each. Cases whose data set cannot be loaded (MNIST-1D
    without the ``mnist1d`` package) are left out.
    """
    from .distill import distill as make_set
    from .distill import evaluate, load_dataset

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
        steps = epochs * max(1, -(-syn.size // 256))
        sps, loop_sps = runs * steps / seconds[False], runs * steps / seconds[True]
        rows.append({
            "teacher": f"distill-eval {dataset} {net}{'-w' + str(width) if net == 'convnet' else ''} ipc={ipc}",
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


def format_rows(rows: Sequence[dict]) -> str:
    """A plain-text table of benchmark rows, with the measured GEMM rates below it."""
    header = ("teacher", "R", "T", "steps/s", "loop steps/s", "loop ratio", "roofline", "seconds", "loop runs",
              "median: steps/s", "loop ratio", "roofline")
    body = [
        (
            str(row["teacher"]), str(row["runs"]), str(row["steps"]), _fmt(row["steps_per_second"], ",.0f"),
            _fmt(row["loop_steps_per_second"], ",.0f"), _fmt(row["loop_ratio"], ".1f"),
            _fmt(row.get("roofline_ratio"), ".2f"), _fmt(row["seconds"], ".3f"), str(row["loop_runs_timed"]),
            _fmt(row.get("median_steps_per_second"), ",.0f"), _fmt(row.get("median_loop_ratio"), ".1f"),
            _fmt(row.get("median_roofline_ratio"), ".2f"),
        )
        for row in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(b, widths))))
    notes = []
    for row in rows:
        if row.get("matmul_gflops") is not None:
            notes.append(f"R={row['runs']}: {row['matmul_gflops']:.1f} GFLOP/s")
    if rows:
        first = rows[0]
        lines.append("")
        lines.append(f"device {first['device']}, {first['dtype']}, {first.get('threads', '?')} threads; "
                     f"LSR d={first.get('dim')}, n={first.get('pool_size')}, lr={first.get('lr')}; "
                     "steps/s = learner steps (runs x steps) per second, best of "
                     f"{first.get('repeats', '?')} by {first.get('clock', 'perf_counter')}; "
                     "median: from the median wall time of one step")
        if notes:
            lines.append("matmul rate [n, d] @ [d, R]: " + ", ".join(notes)
                         + "; roofline = IMT time / time of its 2 GEMMs per step at that rate")
        dht_rows = [row for row in rows if row["teacher"] == "dht"]
        if dht_rows:
            row = dht_rows[0]
            lines.append(f"dht: {row['steps']} steps, {row['iterations']} Adam iterations, {row['restarts']} restarts, "
                         f"labels {row['label_values']}")
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
    """Write the rows as a JSON list, atomically (temporary file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_json_safe(list(rows)), indent=2, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
