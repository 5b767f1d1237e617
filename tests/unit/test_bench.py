"""Smoke tests of teachtheory.bench at toy size (a few seconds), and of its baselines' correctness."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from teachtheory import bench
from teachtheory.cli import main
from teachtheory.engine import teach
from teachtheory.learners.linear import LeastSquares
from teachtheory.problems import linear_regression
from teachtheory.teachers import IMTTeacher

FIELDS = {"teacher", "runs", "steps", "steps_per_second", "loop_steps_per_second", "loop_ratio", "roofline_ratio",
          "loop_runs_timed", "seconds", "device", "dtype"}
TOY = {"steps": 4, "dim": 5, "pool_size": 20, "loop_runs": 2, "repeats": 1, "warmup_steps": 1,
       "dht": {"iterations": 2, "restarts": 1, "steps_fraction": 0.5}, "matmul_seconds": 0.01,
       "committee_runs": (2, 3), "committee_dim": 20, "committee_steps": 10, "ode_alpha": 0.1}
COMMITTEE = {k: TOY[k] for k in ("committee_runs", "ode_alpha")}
NO_COMMITTEE = {**{k: v for k, v in TOY.items() if k not in COMMITTEE}, "committee_runs": (), "ode_alpha": None}


def test_benchmark_rows_at_toy_size(tmp_path):
    seen = []
    before = torch.get_num_threads()
    rows = bench.run_benchmark(runs=(1, 3), progress=seen.append, **TOY)
    assert torch.get_num_threads() == before  # the pinned thread count is restored
    assert len(seen) == bench.total_items((1, 3), ("sgd", "imt", "last", "dht"), **COMMITTEE)
    teaching = [r for r in rows if r["kind"] == "teaching"]
    assert [(r["teacher"], r["runs"]) for r in teaching] == [(t, R) for R in (1, 3) for t in bench.TEACHERS]
    for row in rows:
        assert FIELDS <= row.keys()
        assert row["threads"] == 1
    for row in teaching:
        assert row["steps_per_second"] > 0 and row["loop_steps_per_second"] > 0 and row["seconds"] > 0
        assert math.isclose(row["loop_ratio"], row["steps_per_second"] / row["loop_steps_per_second"])
        assert row["loop_runs_timed"] == min(row["runs"], 2)
        assert row["dtype"] == "float32" and row["device"] == "cpu"
        assert (row["roofline_ratio"] is None) == (row["teacher"] != "imt")
        assert row["median_steps_per_second"] > 0 and row["median_loop_ratio"] > 0
    for row in (r for r in teaching if r["teacher"] == "imt"):
        assert row["roofline_ratio"] >= 1.0 and row["median_roofline_ratio"] >= 1.0
        assert row["matmul_gflops"] >= row["matmul_gflops_measured"] > 0 and row["matmul_samples"] >= 3
        assert row["autograd_steps_per_second"] > 0 and row["autograd_steps_timed"] == 2
        assert math.isclose(row["autograd_ratio"], row["steps_per_second"] / row["autograd_steps_per_second"])
    dht = [r for r in teaching if r["teacher"] == "dht"]
    assert all(r["steps"] == 2 and r["iterations"] == 2 for r in dht)
    sgd = [r for r in rows if r["kind"] == "committee-sgd"]
    assert [r["runs"] for r in sgd] == [2, 3]
    for row in sgd:
        assert row["N"] == 20 and row["steps"] == 10 and row["alpha"] == 0.5
        assert math.isclose(row["steps_per_second"], row["runs"] * row["steps"] / row["seconds"])
    (ode,) = [r for r in rows if r["kind"] == "committee-ode"]
    assert ode["alpha"] == 0.1 and ode["seconds"] > 0 and ode["steps_per_second"] is None
    text = bench.format_rows(rows)
    assert "imt" in text and "GFLOP/s" in text and "committee-sgd" in text and "committee-ode" in text
    path = bench.write_json(rows, tmp_path / "sub" / "bench.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(rows))
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]


def test_rows_without_kind_still_format():
    """Rows written before ``kind`` existed are teaching rows."""
    rows = bench.run_benchmark(runs=(2,), teachers=("sgd",), committee_runs=(), ode_alpha=None,
                               **{k: v for k, v in TOY.items() if k not in ("committee_runs", "ode_alpha")})
    assert len(rows) == 1
    old = {k: v for k, v in rows[0].items() if k != "kind"}
    assert bench.format_rows([old]).splitlines()[:3] == bench.format_rows(rows).splitlines()[:3]


def test_threads_are_pinned_while_timing():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rows = bench.run_benchmark(runs=(1,), teachers=("sgd",), threads=1, committee_runs=(), ode_alpha=None,
                                   **{k: v for k, v in TOY.items() if k not in ("committee_runs", "ode_alpha")})
        assert rows[0]["threads"] == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


class _FixedRate:
    """A GemmRate stand-in with a fixed best rate (GFLOP/s), counting its samples."""

    def __init__(self, gflops: float) -> None:
        self.best, self.samples = gflops, 0

    def sample(self) -> float:
        self.samples += 1
        return self.best


def test_roofline_is_never_below_one():
    flops = 4e9  # 1 s at 4 GFLOP/s
    honest = bench._roofline(_FixedRate(4.0), flops, seconds=2.0, median_seconds=1.5, repeats=3)
    assert honest["roofline_ratio"] == pytest.approx(2.0) and honest["median_roofline_ratio"] == pytest.approx(1.5)
    assert not honest["roofline_clamped"] and honest["matmul_gflops"] == pytest.approx(4.0)
    # IMT ran faster than the bound: the rate was under-measured; it is sampled again, then IMT's own rate is used
    slow = _FixedRate(1.0)
    fast = bench._roofline(slow, flops, seconds=2.0, median_seconds=1.6, repeats=3)
    assert slow.samples == 9
    assert fast["roofline_clamped"] and fast["matmul_gflops_measured"] == 1.0
    assert fast["roofline_ratio"] == pytest.approx(2.0 / 1.6) and fast["median_roofline_ratio"] == pytest.approx(1.0)
    assert fast["matmul_gflops"] == pytest.approx(flops / 1.6 / 1e9)


def test_gemm_rate_keeps_the_best_sample():
    rate = bench.GemmRate(64, 8, (2, 4), block_seconds=0.001)
    first = rate.sample()
    assert first > 0 and rate.samples == 1
    assert rate.sample() >= first and rate.samples == 2
    assert rate.best == max(case["gflops"] for case in rate.cases)
    assert bench.matmul_rate(64, 8, 2, min_seconds=0.005, repeats=2) > 0


def test_imt_loop_matches_batched_teach():
    problem = linear_regression(dim=6, pool_size=30, runs=2, seed=0, shared_pool=True, dtype=torch.float64)
    learner = LeastSquares(6)
    traj = teach(problem, learner, IMTTeacher(), steps=15, lr=0.05, record=("distance",))
    _, dist = bench.LOOPS["imt"](problem.X[0], problem.y[0][:, None], problem.w0[1], problem.w_star[0], 0.05, 15,
                                 random.Random(0), [], learner=learner)
    assert torch.allclose(dist, torch.as_tensor(traj["distance"][1]), rtol=1e-9, atol=1e-12)


def test_autograd_imt_loop_matches_batched_teach():
    """The per-example autograd baseline teaches the same examples as the batched IMT teacher."""
    problem = linear_regression(dim=6, pool_size=30, runs=2, seed=1, shared_pool=True, dtype=torch.float64)
    learner = LeastSquares(6)
    traj = teach(problem, learner, IMTTeacher(), steps=8, lr=0.05, record=("distance",))
    stamps: list[float] = []
    with torch.no_grad():  # as the benchmark calls it; the loop turns gradients on itself
        _, dist = bench.AUTOGRAD_LOOPS["imt"](problem.X[0], problem.y[0][:, None], problem.w0[1], problem.w_star[0],
                                              0.05, 8, random.Random(0), stamps, learner=learner)
    assert len(stamps) == 8
    assert torch.allclose(dist, torch.as_tensor(traj["distance"][1]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("learner_name, classes", [("logistic", 2), ("softmax", 2), ("softmax", 4)])
def test_classifier_rows_and_imt_loops(learner_name, classes):
    """The classifier problems: the per-run IMT loop (learner residual + theory score) and the per-example
    autograd loop take the batched teacher's steps, and every teacher's row is produced."""
    learner, problem = bench._bench_problem(learner_name, 5, 40, 3, 0, classes, torch.float64, "cpu")
    assert problem.label_values.shape[0] == (2 if learner_name == "logistic" else classes)
    traj = teach(problem, learner, IMTTeacher(), steps=12, lr=0.3, record=("distance",))
    Y = learner.label_vector(problem.y[0])
    for r in range(problem.runs):
        _, dist = bench.LOOPS["imt"](problem.X[0], Y, problem.w0[r], problem.w_star[0], 0.3, 12, random.Random(0), [],
                                     learner=learner)
        assert torch.allclose(dist, torch.as_tensor(traj["distance"][r]), rtol=1e-9, atol=1e-12)
    with torch.no_grad():
        _, dist = bench.AUTOGRAD_LOOPS["imt"](problem.X[0], Y, problem.w0[2], problem.w_star[0], 0.3, 5,
                                              random.Random(0), [], learner=learner)
    assert torch.allclose(dist, torch.as_tensor(traj["distance"][2][:6]), rtol=1e-9, atol=1e-12)
    assert traj["distance"][:, -1].mean() < traj["distance"][:, 0].mean()  # the steps teach
    rows = bench.run_benchmark(runs=(2,), learner=learner_name, classes=classes,
                               **{**NO_COMMITTEE, "loop_runs": 1, "dht": {"iterations": 1, "restarts": 1,
                                                                         "steps_fraction": 0.5}})
    assert [r["teacher"] for r in rows] == ["sgd", "imt", "last", "dht"]
    K = classes if learner_name == "softmax" else 1
    assert all(r["problem"] == learner_name and r["classes"] == K and r["steps_per_second"] > 0 for r in rows)
    (imt,) = [r for r in rows if r["teacher"] == "imt"]
    assert imt["roofline_ratio"] >= 1.0 and imt["autograd_steps_per_second"] > 0
    text = bench.format_rows(rows)
    assert "GFLOP/s" in text and (f"softmax K={classes}" if learner_name == "softmax" else learner_name) in text


def test_gemm_rate_samples_the_imt_shapes(monkeypatch):
    """With K classes the GEMM rate is sampled at IMT's own shapes, [n, d] @ [d, R K] and [d, 2 R K]."""
    shapes = []

    class Recording(bench.GemmRate):
        def __init__(self, n, d, ks, **kwargs):
            shapes.append((n, d, tuple(ks)))
            super().__init__(n, d, ks, **kwargs)

    monkeypatch.setattr(bench, "GemmRate", Recording)
    rows = bench.run_benchmark(runs=(2, 3), teachers=("imt",), learner="softmax", classes=3, autograd_steps=0,
                               **NO_COMMITTEE)
    assert shapes == [(20, 5, (6, 12)), (20, 5, (9, 18))]
    assert [r["classes"] for r in rows] == [3, 3]
    for row in rows:  # the bound counts 4 n d R K flops per step
        flops = 4.0 * 20 * 5 * row["runs"] * 3 * row["steps"]
        assert row["matmul_seconds"] == pytest.approx(flops / (row["matmul_gflops"] * 1e9))


def test_benchmark_rejects_bad_learner():
    with pytest.raises(ValueError, match="learner"):
        bench.run_benchmark(runs=(1,), steps=1, learner="mlp")
    with pytest.raises(ValueError, match="classes"):
        bench.run_benchmark(runs=(1,), steps=1, learner="softmax", classes=1)


@pytest.mark.parametrize("args, match", [
    (["--threads", "0"], "--threads"),
    (["--runs", "1,x"], "--runs"),
    (["--teachers", "sgd,nope"], "--teachers"),
    (["--committee-runs", "0"], "--committee-runs"),
    (["--ode-alpha", "-1"], "--ode-alpha"),
    (["--repeats", "0"], "--repeats"),
    (["--learner", "mlp"], "--learner"),
    (["--learner", "softmax", "--classes", "1"], "--classes"),
    (["--learner", "softmax", "--classes", "x"], "--classes"),
    (["--classes", "3"], "--classes"),
])
def test_cli_bench_rejects_bad_options(args, match, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1


def test_cli_bench_tiny_run_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code = main(["bench", "--runs", "2", "--steps", "3", "--teachers", "sgd", "--committee-runs", "", "--ode-alpha",
                 "0", "--repeats", "1", "--clock", "cpu", "--json", str(path)])
    assert code == 0
    rows = json.loads(path.read_text())
    assert [(r["teacher"], r["runs"], r["threads"], r["clock"]) for r in rows] == [("sgd", 2, 1, "process_time")]
    assert "sgd" in capsys.readouterr().out


def test_cli_bench_softmax_rows(tmp_path):
    path = tmp_path / "bench.json"
    code = main(["bench", "--runs", "2", "--steps", "3", "--teachers", "imt", "--learner", "softmax", "--classes", "3",
                 "--committee-runs", "", "--ode-alpha", "0", "--repeats", "1", "--json", str(path)])
    assert code == 0
    (row,) = json.loads(path.read_text())
    assert (row["teacher"], row["problem"], row["classes"], row["runs"]) == ("imt", "softmax", 3, 2)
