"""The distill-table simulation: a tiny run writes its table, and the ordering report compares rankings correctly."""

import json

import pytest

from simulations.distill_table import PUBLISHED_MNIST, ordering_report, run_distill_table
from teachtheory.io import result_folder


def test_ordering_report_counts_agreeing_and_disagreeing_pairs():
    published = {m: {"mean": PUBLISHED_MNIST[m][0] / 100, "se": 0.0} for m in ("random", "dc", "dm", "mtt")}
    same = ordering_report({"digits ipc=1": published})["digits ipc=1"]
    assert same["kendall_tau"] == pytest.approx(1.0) and not same["disagree"]
    reversed_ = {m: {"mean": 1 - v["mean"], "se": 0.0} for m, v in published.items()}
    opposite = ordering_report({"digits ipc=1": reversed_})["digits ipc=1"]
    assert opposite["kendall_tau"] == pytest.approx(-1.0) and len(opposite["disagree"]) == 6
    assert opposite["learned_above_random"] == {"dc": False, "dm": False, "mtt": False}
    # at ipc 10 the published column is the second one: DM 97.5 > DC 97.4 > MTT 97.3 > random 95.1
    ten = ordering_report({"digits ipc=10": published})["digits ipc=10"]
    assert ten["published_mnist"] == ["dm", "dc", "mtt", "random"]


def test_tiny_table_run_writes_its_files(tmp_path):
    with result_folder(tmp_path / "table") as folder:
        result = run_distill_table(folder, runs=2, steps=2, datasets=("digits",), methods=("random", "kmeans", "dm"),
                                   ipcs=(1,), width=4, epochs=2, ceiling_epochs=1, seeds=2, dc_iterations={1: 3})
    out = tmp_path / "table"
    for name in ("config.json", "metrics.json", "table.md", "table.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["table"]["digits ipc=1"]) == {"random", "kmeans", "dm"}
    assert 0 <= metrics["ceilings"]["digits"] <= 1
    assert (out / "sets" / "digits-ipc1-dm-seed1.npz").is_file()
    cell = metrics["table"]["digits ipc=1"]["dm"]
    assert cell["seeds"] == 2 and cell["networks"] == 4 and cell["se_networks"] >= 0
    config = json.loads((out / "config.json").read_text())
    assert config["seeds"] == [0, 1] and "dm ipc=1" in config["method_options"]
    assert "distillation seeds" in (out / "table.md").read_text()
    assert "digits ipc=1" in result["table"] and "published MNIST" in (out / "table.md").read_text()
