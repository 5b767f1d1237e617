"""The adv.* claims: they run, report, and their power checks (the reversed statements) fail."""

from __future__ import annotations

import pytest

from proofs_checks import adv
from teachtheory.claims import CLAIMS, CheckContext

IDS = ("adv.fullrank_spec", "adv.st_out_of_plane", "adv.lowrank_vulnerable", "adv.at_rises", "adv.logit_vs_label",
       "adv.label_eps", "adv.ccat_below", "adv.augment")


@pytest.fixture(scope="module")
def small_scale():
    """The quick scale shrunk so that the whole family trains in seconds."""
    saved = adv.SETTINGS["quick"]
    adv.SETTINGS["quick"] = {"runs": 12, "config": {"epochs": 20, "record_every": 5, "train_size": 600,
                                                   "eval_size": 300}}
    adv._runs.cache_clear()
    yield
    adv.SETTINGS["quick"] = saved
    adv._runs.cache_clear()


def test_every_claim_is_registered_with_a_source():
    for cid in IDS:
        claim = CLAIMS[cid]
        assert "AISTATS 2021" in claim.source and claim.statistical and claim.assumptions


def test_claims_run_and_power_checks_fail(small_scale, tmp_path):
    verdicts = {cid: CLAIMS[cid].run(CheckContext(scale="quick", seed=0, plots_dir=tmp_path)) for cid in IDS}
    for cid, v in verdicts.items():
        assert v.verdict in ("holds", "fails"), (cid, v.message, v.details.get("traceback"))
        assert v.statistic is not None and v.message
    # the robust effects reproduce even at this size
    for cid in ("adv.st_out_of_plane", "adv.lowrank_vulnerable", "adv.ccat_below"):
        assert verdicts[cid].ok, (cid, verdicts[cid].message)
    assert verdicts["adv.st_out_of_plane"].details["premise_out_of_plane_frozen"] < 1e-5
    assert verdicts["adv.at_rises"].figure is not None
    for cid in IDS:
        power = CLAIMS[cid].run(CheckContext(scale="quick", seed=0, power=True))
        assert power.verdict == "fails", (cid, power.message)


def test_simulation_writes_tables_and_replots(tmp_path):
    from simulations import adversarial as sim

    saved, saved_digits = sim.SIZES["small"], dict(sim.DIGITS)
    sim.SIZES["small"] = {"train_size": 100, "eval_size": 60}
    sim.DIGITS.update(widths=(6, 4), runs={"small": 2}, oracle={"epochs": 1, "finetune": 1})
    try:
        result = sim.run_adversarial_ts(tmp_path / "out", runs=2, steps=2)
    finally:
        sim.SIZES["small"] = saved
        sim.DIGITS.clear()
        sim.DIGITS.update(saved_digits)
    out = tmp_path / "out"
    for name in ("config.json", "metrics.json", "tables.md", "arrays.npz", "robust_over_epochs.png"):
        assert (out / name).is_file(), name
    tables = result["tables"]
    assert set(tables["attack_matrix"]) == set(sim.MATRIX_ROWS)
    assert set(tables["ccat_by_rho"]) == {"1", "10", "50", "10 + augment"}
    text = (out / "tables.md").read_text()
    assert "0.628" in text and "| AT logit |" in text and "Digits oracle pruned to 6-4" in text
    assert set(tables["digits_oracle"]) == {"augmentation off", "augmentation on"}
    (out / "robust_over_epochs.png").unlink()
    figures = sim.replot_adversarial_ts(out)
    assert (out / "robust_over_epochs.png").is_file() and len(figures) == 3
    with pytest.raises(ValueError, match="runs"):
        sim.run_adversarial_ts(tmp_path / "bad", runs=0)
