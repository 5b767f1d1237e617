"""Smoke test of teachtheory.bench at toy size (well under a second)."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from teachtheory import bench
from teachtheory.engine import teach
from teachtheory.learners.linear import LeastSquares
from teachtheory.problems import linear_regression
from teachtheory.teachers import IMTTeacher

FIELDS = {"teacher", "runs", "steps", "steps_per_second", "loop_steps_per_second", "loop_ratio", "roofline_ratio",
          "loop_runs_timed", "seconds", "device", "dtype"}


def test_benchmark_rows_at_toy_size(tmp_path):
    seen = []
    rows = bench.run_benchmark(runs=(1, 3), steps=4, dim=5, pool_size=20, loop_runs=2, progress=seen.append,
                               repeats=1, warmup_steps=1, dht={"iterations": 2, "restarts": 1, "steps_fraction": 0.5},
                               matmul_seconds=0.01)
    assert len(seen) == bench.total_items((1, 3), ("sgd", "imt", "last", "dht"))
    assert [(r["teacher"], r["runs"]) for r in rows] == [(t, R) for R in (1, 3) for t in ("sgd", "imt", "last", "dht")]
    for row in rows:
        assert FIELDS <= row.keys()
        assert row["steps_per_second"] > 0 and row["loop_steps_per_second"] > 0 and row["seconds"] > 0
        assert math.isclose(row["loop_ratio"], row["steps_per_second"] / row["loop_steps_per_second"])
        assert row["loop_runs_timed"] == min(row["runs"], 2)
        assert row["dtype"] == "float32" and row["device"] == "cpu"
        assert (row["roofline_ratio"] is None) == (row["teacher"] != "imt")
        assert row["median_steps_per_second"] > 0 and row["median_loop_ratio"] > 0
    dht = [r for r in rows if r["teacher"] == "dht"]
    assert all(r["steps"] == 2 and r["iterations"] == 2 for r in dht)
    text = bench.format_rows(rows)
    assert "imt" in text and "GFLOP/s" in text
    path = bench.write_json(rows, tmp_path / "sub" / "bench.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(rows))
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]


def test_imt_loop_matches_batched_teach():
    problem = linear_regression(dim=6, pool_size=30, runs=2, seed=0, shared_pool=True, dtype=torch.float64)
    learner = LeastSquares(6)
    traj = teach(problem, learner, IMTTeacher(), steps=15, lr=0.05, record=("distance",))
    _, dist = bench.LOOPS["imt"](problem.X[0], problem.y[0][:, None], problem.w0[1], problem.w_star[0], 0.05, 15,
                                 random.Random(0), [], learner=learner)
    assert torch.allclose(dist, torch.as_tensor(traj["distance"][1]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("learner_name, classes", [("logistic", 2), ("softmax", 2), ("softmax", 4)])
def test_classifier_rows_and_imt_loop(learner_name, classes):
    """The classifier problems: the per-run IMT loop (learner residual + theory score) takes the batched
    teacher's steps, and every teacher's row is produced."""
    learner, problem = bench._bench_problem(learner_name, 5, 40, 3, 0, classes, torch.float64, "cpu")
    assert problem.label_values.shape[0] == (2 if learner_name == "logistic" else classes)
    traj = teach(problem, learner, IMTTeacher(), steps=12, lr=0.3, record=("distance",))
    Y = learner.label_vector(problem.y[0])
    for r in range(problem.runs):
        _, dist = bench.LOOPS["imt"](problem.X[0], Y, problem.w0[r], problem.w_star[0], 0.3, 12, random.Random(0), [],
                                     learner=learner)
        assert torch.allclose(dist, torch.as_tensor(traj["distance"][r]), rtol=1e-9, atol=1e-12)
    assert traj["distance"][:, -1].mean() < traj["distance"][:, 0].mean()  # the steps teach
    rows = bench.run_benchmark(runs=(2,), steps=4, dim=5, pool_size=20, loop_runs=1, repeats=1, warmup_steps=1,
                               dht={"iterations": 1, "restarts": 1, "steps_fraction": 0.5}, matmul_seconds=0.01,
                               learner=learner_name, classes=classes)
    assert [r["teacher"] for r in rows] == ["sgd", "imt", "last", "dht"]
    assert all(r["problem"] == learner_name and r["steps_per_second"] > 0 for r in rows)
    assert "GFLOP/s" in bench.format_rows(rows)


def test_benchmark_rejects_bad_learner():
    with pytest.raises(ValueError, match="learner"):
        bench.run_benchmark(runs=(1,), steps=1, learner="mlp")
    with pytest.raises(ValueError, match="classes"):
        bench.run_benchmark(runs=(1,), steps=1, learner="softmax", classes=1)
