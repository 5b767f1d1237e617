"""Every simulation family on CUDA (runs wherever CUDA is present; skipped elsewhere).

Each simulation runs at a tiny size with ``device="cuda"`` and must write complete, finite metrics; the
teaching engine's run-batching contract is checked on the GPU too.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from teachtheory.simulation import load_simulations, run_simulation

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")

TINY = {"lsr": 20, "moons": 10, "digits35": 10, "mlp-digits35": 10, "specialization": 20,
        "specialization-deep": 20, "relu-dynamics": 20, "committee": 2000, "ssl-hltm": 40, "l2t-dln": 20,
        "agd-saddle": 200}


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, float):
        yield tree


@pytest.mark.parametrize("name", sorted(load_simulations()))
def test_simulation_runs_on_cuda(name, tmp_path):
    out = tmp_path / name
    run_simulation(name, out, runs=2, steps=TINY.get(name, 20), seed=0, device="cuda")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics and all(math.isfinite(x) for x in _numbers(metrics))
    assert json.loads((out / "run.json").read_text())["device"] == "cuda"


def test_cuda_batch_equals_single_runs():
    import teachtheory as tt
    from teachtheory.learners import LeastSquares
    from teachtheory.teachers import IMTTeacher

    batch = tt.problems.linear_regression(dim=5, pool_size=30, runs=3, seed=4, device="cuda")
    traj = tt.teach(batch, LeastSquares(5), IMTTeacher(), steps=20, lr=0.1, seed=4, device="cuda")
    for r in range(3):
        single = tt.problems.linear_regression(dim=5, pool_size=30, runs=1, seed=4 + r, device="cuda")
        one = tt.teach(single, LeastSquares(5), IMTTeacher(), steps=20, lr=0.1, seed=4 + r, device="cuda")
        torch.testing.assert_close(torch.as_tensor(traj["distance"][r]), torch.as_tensor(one["distance"][0]))


def test_bench_command_times_on_cuda(tmp_path):
    """`teachtheory bench --device cuda` times the teaching rows on the GPU and records the device in every row."""
    from teachtheory.cli import main

    out = tmp_path / "bench.json"
    code = main(["bench", "--device", "cuda", "--runs", "1,4", "--steps", "5", "--teachers", "sgd,imt",
                 "--committee-runs", "", "--ode-alpha", "0", "--repeats", "1", "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())
    assert rows and all(row["device"].startswith("cuda") and row["steps_per_second"] > 0 for row in rows)
