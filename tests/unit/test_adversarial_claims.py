"""The adv.* claims: they run, report, their power checks (the reversed statements) fail and their sensitivity
is measured; the simulation writes its tables beside the talk's and reads CIFAR-10 from a user's folder."""

from __future__ import annotations

import numpy as np
import pytest

from proofs_checks import adv
from teachtheory.claims import CLAIMS, EFFECT, CheckContext, measure_sensitivity
from teachtheory.data import write_cifar_batch

IDS = ("adv.fullrank_spec", "adv.st_out_of_plane", "adv.lowrank_vulnerable", "adv.at_rises", "adv.logit_vs_label",
       "adv.label_eps", "adv.ccat_below", "adv.augment", "adv.image_logit_vs_label")


@pytest.fixture(scope="module")
def small_scale():
    """The quick scale shrunk so that the whole family trains in seconds."""
    saved, saved_image = adv.SETTINGS["quick"], adv.IMAGE["quick"]
    adv.SETTINGS["quick"] = {"runs": 12, "config": {"epochs": 20, "record_every": 5, "train_size": 600,
                                                   "eval_size": 300}}
    adv.IMAGE["quick"] = {"runs": 4, "oracle": {"epochs": 4, "finetune": 2}, "epochs": 4}
    adv._runs.cache_clear()
    adv._image_runs.cache_clear()
    yield
    adv.SETTINGS["quick"], adv.IMAGE["quick"] = saved, saved_image
    adv._runs.cache_clear()
    adv._image_runs.cache_clear()


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
    for cid in IDS:  # the reversed statement of a claim that holds must fail
        power = CLAIMS[cid].run(CheckContext(scale="quick", seed=0, power=True))
        assert power.verdict in ("holds", "fails"), (cid, power.message)
        if verdicts[cid].ok:
            assert power.verdict == "fails", (cid, power.message)


def test_sensitivity_is_measured_and_the_effect_mutation_flips(small_scale):
    """Every adv claim declares a mutation; for one that holds the effect mutation at its measured size flips it."""
    for cid in IDS:
        claim = CLAIMS[cid]
        assert claim.mutations == (("alignment",) if cid == "adv.fullrank_spec" else (EFFECT,)), cid
    claim = CLAIMS["adv.ccat_below"]
    ctx = CheckContext(scale="quick", seed=0)
    honest = claim.run(ctx)
    assert honest.ok, honest.message
    s = measure_sensitivity(claim, ctx, honest)
    found = s.smallest[EFFECT]
    assert found is not None and s.evaluations >= 2
    assert claim.run(ctx.mutated(EFFECT, found)).verdict == "fails"
    # the margin is (gap - z SE) / level: the found grid step lies within one step of it
    row = honest.details["comparisons"]["AT - CCAT"]
    margin = (row["difference"] - ctx.z * row["se"]) / row["level"]
    assert margin <= found < 1.78 * margin + 1e-9
    # the predicted correlation 1 of adv.fullrank_spec: a 10% error either way is caught (corr <= 1, tolerance 0.05)
    spec = CLAIMS["adv.fullrank_spec"]
    base = spec.run(ctx)
    if base.ok:
        for sign in (1, -1):
            assert spec.run(ctx.mutated("alignment", 0.1 * sign)).verdict == "fails"


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
    assert set(tables["ccat_by_rho"]) == {"5", "10", "20", "10 + augment", "AT logit"}
    text = (out / "tables.md").read_text()
    # the talk's numbers sit beside ours: ST logit at 300 epochs, AT at 300, CCAT rho = 10, AT in-plane/in-plane
    for talk in ("0.628", "0.868", "0.520", "0.889"):
        assert talk in text, talk
    assert "| AT logit |" in text and "Real-image oracle (digits) pruned to 6-4" in text
    assert set(tables["image_oracle"]["oracles"]) == {"augmentation off", "augmentation on"}
    (out / "robust_over_epochs.png").unlink()
    figures = sim.replot_adversarial_ts(out)
    assert (out / "robust_over_epochs.png").is_file() and len(figures) == 3
    with pytest.raises(ValueError, match="runs"):
        sim.run_adversarial_ts(tmp_path / "bad", runs=0)


def _fake_cifar(folder, n=40):
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_cifar_batch(folder / "data_batch_1", rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                      [i % 10 for i in range(n)])
    return folder


def test_simulation_reads_cifar10_from_a_folder_and_refuses_bad_ones(tmp_path, monkeypatch):
    from simulations import adversarial as sim

    folder = _fake_cifar(tmp_path / "cifar")
    images = sim._image_data("cifar10", folder)
    assert images["X"].shape == (40, 3072) and images["eps"] == pytest.approx(8 / 255)
    monkeypatch.setitem(sim.DIGITS, "widths", (4, 3))
    monkeypatch.setitem(sim.DIGITS, "runs", {"small": 2})
    monkeypatch.setitem(sim.DIGITS, "oracle", {"epochs": 1, "finetune": 1})
    rows = sim._image(images, "small", 1, 0, "cpu")
    assert rows["image"] == "cifar10" and set(rows["oracles"]) == {"augmentation off", "augmentation on"}
    for oracle in rows["oracles"].values():
        assert set(oracle["students"]) == {"ST", "ST label", "AT logit", "AT label"}
        assert 0 <= oracle["students"]["AT logit"]["robust_oracle"]["mean"] <= 1
    # clear errors, before any training
    with pytest.raises(ValueError, match="data_root"):
        sim._image_data("cifar10", None)
    with pytest.raises(ValueError, match="image must be one of"):
        sim._image_data("svhn", folder)
    with pytest.raises(ValueError, match="only with image='cifar10'"):
        sim._image_data("digits", folder)
    with pytest.raises(FileNotFoundError):
        sim.run_adversarial_ts(tmp_path / "out", image="cifar10", data_root=tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_1"):
        sim.run_adversarial_ts(tmp_path / "out", image="cifar10", data_root=tmp_path / "bad")
    monkeypatch.delenv(sim.CIFAR_ENV, raising=False)
    with pytest.raises(ValueError, match=sim.CIFAR_ENV):
        sim.run_cifar10(tmp_path / "out")
    monkeypatch.setenv(sim.CIFAR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        sim.run_cifar10(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before writing anything
    assert "cifar10" in sim.SIM.presets
