"""The learned-teacher simulations run end to end at a tiny size (runner, metrics, trajectories, replot)."""

from __future__ import annotations

import json

import pytest

import simulations.learned_teachers as sims
from teachtheory.engine import Trajectory
from teachtheory.simulation import SIMULATIONS

TINY = {"hidden": (4,), "horizon": 2, "unroll_iterations": 2, "pg_iterations": 1, "pg_episodes": 2,
        "pg_episode_steps": 2, "policy_lr": 1e-3, "pg_policy_lr": 1e-3, "aux_weight": 1.0, "lsr_dim": 3,
        "lsr_pool": 10, "mlp_hidden": 3, "dht_iterations": 1, "dht_restarts": 0, "input_bound": 0.5,
        "mixup_dim": 8, "mixup_batch": 2, "gen_hidden": (4,), "gen_iterations": 1, "gen_policy_lr": 1e-3,
        "gen_aux_weight": 1.0, "vae_iterations": 2, "vae_latent": 2}


@pytest.mark.parametrize("name", ["last-parameterized", "blast", "dht-transform", "dht-mixup", "dht-generative"])
def test_simulation_runs(name, tmp_path, monkeypatch):
    monkeypatch.setitem(sims.SETTINGS, "small", TINY)
    assert name in SIMULATIONS
    out = tmp_path / name
    # the runner itself: run_simulation would also import every installed entry point
    result = SIMULATIONS[name].runner(out=out, scale="small", runs=2, steps=4, seed=0, device="cpu")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["cases"]) == set(result["cases"])
    for case in result["cases"].values():
        for label, summary in case["teachers"].items():
            files = list(out.glob(f"{case['case']}__*.npz"))
            assert files, label
            assert all(Trajectory.load(f).steps == 4 for f in files)
            assert all(s["se"] >= 0 for m, s in summary.items() if isinstance(s, dict) and "se" in s)
    assert SIMULATIONS[name].replot(out, ("png",))
    if name == "dht-generative":  # the synthesized samples: saved, drawn, and redrawn from the folder
        for case in ("gen-digits", "gen-moons"):
            assert (out / f"{case}.samples.npz").exists() and (out / f"{case}__samples.png").exists()
        assert any(p.name == "gen-digits__samples.png" for p in SIMULATIONS[name].replot(out, ("png",)))


def test_unknown_case_is_named():
    with pytest.raises(ValueError, match="case must be one of"):
        sims.build_case("gan", TINY, 1, 1, 0, "cpu")


def test_claim_families_register_their_ids():
    import proofs_checks.blast
    import proofs_checks.dht.mixup
    import proofs_checks.dht.policies
    import proofs_checks.last.parameterized  # noqa: F401
    from teachtheory.claims import CLAIMS

    expected = {"last.parameterized.v1-greedy", "last.parameterized.horizon", "last.parameterized.beats-sgd",
                "blast.unrolled", "blast.policy-gradient", "dht.policies.transform", "dht.policies.blackbox",
                "dht.policies.gan-vs-vae", "dht.mixup"}
    assert expected <= set(CLAIMS)
    assert all(CLAIMS[c].statement and CLAIMS[c].method for c in expected)
