"""Faithful reproductions: DHT's feasible box, the papers' presets (qiu2023, liu2021, toolkit) and their metric.

References: Qiu, Liu et al., AISTATS 2023 (DHT), Sec. 5.1, Fig. 3; Liu et al., NeurIPS 2021 (LAST), Figs. 7-10.
"""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest
import torch

from simulations import classification, lsr
from teachtheory import problems
from teachtheory.engine import teach
from teachtheory.learners import Logistic, Softmax
from teachtheory.simulation import get_simulation, run_simulation
from teachtheory.teachers import DHTTeacher
from teachtheory.teachers.dht import feasible_box


def _pool_with_bias() -> torch.Tensor:
    X = torch.tensor([[[-1.0, 5.0, 1.0], [2.0, 0.5, 1.0], [0.0, 3.0, 1.0]]], dtype=torch.float64)
    return X


def test_global_box_spans_all_features_but_keeps_the_bias_fixed():
    lo, hi = feasible_box(_pool_with_bias(), "global")
    assert lo.tolist() == [[-1.0, -1.0, 1.0]] and hi.tolist() == [[5.0, 5.0, 1.0]]


def test_per_feature_box_is_each_features_range():
    lo, hi = feasible_box(_pool_with_bias(), "per-feature")
    assert lo.tolist() == [[-1.0, 0.5, 1.0]] and hi.tolist() == [[2.0, 5.0, 1.0]]


@pytest.mark.parametrize("box", ["global", "per-feature"])
def test_dht_inputs_stay_in_the_box_with_the_bias_column_untouched(box):
    problem = problems.moons(pool_size=40, runs=3, seed=1, noise=0.2, test_size=0)  # bias column of ones
    learner = Logistic(problem.dim)
    seen = []

    class Spy(DHTTeacher):
        def teach(self, ctx, w, step):
            batch = super().teach(ctx, w, step)
            seen.append(batch.x)
            return batch

    teach(problem, learner, Spy(iterations=10, restarts=2, box=box), 5, 0.1, seed=0, record=("distance",))
    x = torch.cat(seen, 1)
    lo, hi = feasible_box(problem.X, box)
    assert bool((x >= lo[:, None] - 1e-12).all() and (x <= hi[:, None] + 1e-12).all())
    assert bool((x[..., -1] == 1.0).all())  # the bias column is never optimised


def test_global_box_lets_dht_leave_the_per_feature_box():
    # moons: x2's range is narrower than x1's, so the global box is strictly larger on x2
    problem = problems.moons(pool_size=60, runs=2, seed=0, noise=0.2, test_size=0)
    lo_pf, hi_pf = feasible_box(problem.X, "per-feature")
    lo_g, hi_g = feasible_box(problem.X, "global")
    assert bool((lo_g[:, :2] <= lo_pf[:, :2]).all() and (hi_g[:, :2] >= hi_pf[:, :2]).all())
    assert bool((hi_g[:, 1] > hi_pf[:, 1]).all())


def test_bad_box_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="box must be one of"):
        DHTTeacher(box="cube")
    with pytest.raises(ValueError, match="box must be one of"):
        feasible_box(_pool_with_bias(), "cube")
    assert DHTTeacher(box="global").to_spec()["box"] == "global"


def test_direction_gap_is_the_squared_spectral_norm_of_normalised_weights():
    rng = np.random.default_rng(0)
    W, W_star = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    expected = [np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b), 2) ** 2 for a, b in zip(W, W_star)]
    got = classification.direction_gap(torch.tensor(W.reshape(3, -1)), torch.tensor(W_star.reshape(3, -1)))
    assert np.allclose(got.numpy(), expected, rtol=1e-12)
    assert np.allclose(classification.direction_gap(torch.tensor(2.5 * W.reshape(3, -1)),
                                                    torch.tensor(W.reshape(3, -1))).numpy(), 0.0, atol=1e-24)


def test_sgd_target_matches_a_plain_loop():
    learner = Softmax(2, 2)
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.normal(size=(1, 7, 2)))
    Y = torch.nn.functional.one_hot(torch.tensor(rng.integers(0, 2, size=(1, 7))), 2).double()
    w0 = torch.tensor(rng.normal(size=(2, 4)))
    got = classification.sgd_target(learner, X, Y, w0, lr=0.1, epochs=4, milestone=3)
    w = w0.clone()
    for epoch in range(1, 4):
        for i in range(7):
            w = w - (0.1 if epoch < 3 else 0.01) * learner.grad(w, X[:, i:i + 1], Y[:, i:i + 1])[:, 0]
    assert torch.allclose(got, w, rtol=0, atol=1e-14)


def test_qiu2023_moons_follows_the_authors_protocol():
    setup = classification.build_moons_qiu2023("small", 3, 10, 0, "cpu")
    p = setup.problem
    assert isinstance(setup.learner, Softmax) and p.dim == 2 and p.pool_size == 800 and p.X_test.shape[1] == 200
    assert setup.lr == 1e-3
    bound = 1 / math.sqrt(2)
    assert bool((p.w0.abs() <= bound).all()) and p.w0.shape == (3, 4)
    assert not torch.equal(p.w0[0], p.w0[1])  # each run its own w0, and its own SGD-trained w*
    assert not torch.allclose(p.w_star[0], p.w_star[1])
    # not centred: scikit-learn's layout has mean near (0.5, 0.25)
    assert abs(float(p.X[0, :, 0].mean()) - 0.5) < 0.15 and abs(float(p.X[0, :, 1].mean()) - 0.25) < 0.15
    labels = dict(setup.teachers)
    assert set(labels) == {"SGD", "IMT", "DHT", "SGD + label", "IMT + label", "DHT + label"}
    assert labels["DHT"].box == "global" and labels["DHT + label"].label_set.spec() == "nonneg+ball-origin:2.0"


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_loader_reads_threes_and_fives_in_minus_one_to_one(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28))
    labels = np.array([3, 5, 1] * 10)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    X, y = classification.load_mnist35(tmp_path)
    assert X.shape == (20, 784) and float(X.min()) >= -1 and float(X.max()) <= 1
    assert y.tolist() == [0, 1] * 10
    assert np.allclose(X[0].numpy(), images[0].reshape(-1) / 255 * 2 - 1)


def test_mnist_loader_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        classification.load_mnist35(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        classification.load_mnist35(tmp_path)


def test_lsr_liu2021_uses_the_generating_target():
    fitted = lsr.build_lsr("small", 2, 5, 0, "cpu").problem
    given = lsr.build_lsr_liu2021("small", 2, 5, 0, "cpu").problem
    assert torch.equal(fitted.X, given.X) and not torch.allclose(fitted.w_star, given.w_star)
    assert given.meta["target"] == "given"


@pytest.mark.parametrize("name", ["moons", "digits35", "lsr", "mlp-digits35"])
def test_every_reproduction_names_its_protocol(name):
    sim = get_simulation(name)
    assert "protocol" in sim.reference and {"toolkit", "liu2021"} <= set(sim.presets)


def test_qiu2023_preset_records_the_authors_metric(tmp_path):
    result = run_simulation("moons", tmp_path / "run", runs=2, steps=3, preset="qiu2023", formats=())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "qiu2023" in config["reference"] and config["notes"]["protocol"] == "qiu2023"
    for label, entry in metrics["teachers"].items():
        gap = np.asarray(entry["direction_gap"]["mean"])
        assert gap.shape == (4,) and bool(((gap >= 0) & (gap <= 4)).all()), label
    # step 0 is w0's gap, identical for every teacher (same w0)
    firsts = {entry["direction_gap"]["mean"][0] for entry in metrics["teachers"].values()}
    assert len(firsts) == 1
    traj = result["trajectories"]["SGD"]
    assert traj["direction_gap"].shape == (2, 4)
    # beside the paper: the published Fig. 3 values, and whether the paper's ordering appears in this run's means
    paper = metrics["paper"]
    assert {k: (v["mean"], v["se"]) for k, v in paper["published"].items()} == classification.QIU2023_PUBLISHED["moons"]
    final = {label: entry["direction_gap"]["final"]["mean"] for label, entry in metrics["teachers"].items()}
    expected = (final["DHT"] < min(final["SGD"], final["IMT"])
                and all(final["DHT + label"] <= v for v in final.values()))
    assert paper["ordering_shown"] is expected and result["paper"] == paper


def test_qiu2023_ordering_is_reported_either_way():
    def summary(**finals):
        return {label.replace("_", " + "): {"direction_gap": {"final": {"mean": v}}} for label, v in finals.items()}

    paper_order = summary(SGD=2.0, IMT=1.4, DHT=0.8, SGD_label=1.7, IMT_label=1.0, DHT_label=0.6)
    assert classification.qiu2023_beside_paper("moons", paper_order)["ordering_shown"] is True
    dht_behind_imt = summary(SGD=2.0, IMT=0.7, DHT=0.8, SGD_label=1.7, IMT_label=1.0, DHT_label=0.6)
    assert classification.qiu2023_beside_paper("moons", dht_behind_imt)["ordering_shown"] is False
    label_not_fastest = summary(SGD=2.0, IMT=1.4, DHT=0.8, SGD_label=1.7, IMT_label=0.5, DHT_label=0.6)
    assert classification.qiu2023_beside_paper("digits35", label_not_fastest)["ordering_shown"] is False


def test_cli_prints_the_preset_caption_and_the_published_numbers(tmp_path, capsys):
    from teachtheory.cli import main

    assert main(["simulate", "moons", "--preset", "qiu2023", "--runs", "2", "--steps", "3", "--out",
                 str(tmp_path / "m")]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "authors' protocol (qiu2023)" in text and "toolkit protocol" not in text
    assert "published" in text and "the paper's ordering" in text


def test_cli_simulate_lsr_with_the_paper_preset(tmp_path):
    from teachtheory.cli import main

    out = tmp_path / "lsr-liu2021"
    assert main(["simulate", "lsr", "--preset", "liu2021", "--runs", "2", "--steps", "5", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["notes"]["protocol"] == "liu2021" and "liu2021" in config["reference"]
    assert config["problem_meta"]["target"] == "given" and (out / "convergence.png").is_file()
    with pytest.raises(ValueError, match="no preset 'qiu2023'"):
        run_simulation("lsr", tmp_path / "x", runs=2, steps=2, preset="qiu2023")
