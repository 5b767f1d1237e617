"""The bilevel distillers (DD, SLDD, TDD, LD), the back-gradient unroll, their closed forms and claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import proofs_checks.distill  # noqa: F401 - registers the claims
from teachtheory.claims import CLAIMS, CheckContext
from teachtheory.distill import distill, load_dataset
from teachtheory.distill.dd import (
    dd,
    dd_poison,
    expected_excess_loss,
    one_step_exact_set,
    one_step_lower_bound,
    replay,
    step_chunks,
)
from teachtheory.distill.ld import ld, ridge_label_gradient, ridge_weights
from teachtheory.distill.sldd import distillation_ratio, distillation_size, sldd
from teachtheory.distill.tdd import load_token_files, make_text_task, nearest_tokens, tdd, text_dataset
from teachtheory.unroll import hypergradient

DT = torch.float64


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").subset(train_size=300, test_size=200)


@pytest.fixture(scope="module")
def text():
    return text_dataset(make_text_task(train=200, test=100))


def _quartic():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=g, dtype=DT)
    H = A @ A.T / 4 + torch.eye(4, dtype=DT)
    b = torch.randn(4, generator=g, dtype=DT)
    target = torch.randn(4, generator=g, dtype=DT)

    def train(theta, phi, i):
        w = theta[0]
        return 0.5 * w @ H @ w + 0.25 * (w**4).sum() - (b * phi[0]) @ w  # the quartic makes the Hessian vary

    def val(theta):
        return 0.5 * ((theta[0] - target) ** 2).sum()

    return train, val, (torch.zeros(4, dtype=DT),), (torch.ones(4, dtype=DT),)


def test_backgradient_error_vanishes_faster_than_the_step_size():
    train, val, theta0, phi = _quartic()
    errors = []
    for lr in (0.02, 0.01):
        exact = hypergradient(train, val, theta0, phi, 20, lr).grad_phi[0]
        back = hypergradient(train, val, theta0, phi, 20, lr, method="backgradient").grad_phi[0]
        errors.append(float((back - exact).norm() / exact.norm()))
    # each reversed step is off by O(lr^2): halving lr at fixed N must divide the relative error by more than 2
    # (a first-order error would only halve it; measured about 15 here)
    assert 0 < errors[1] < errors[0] < 1e-2
    assert errors[0] / errors[1] > 3


def test_backgradient_keeps_first_order_switch_and_rejects_autograd_without_hessian():
    train, val, theta0, phi = _quartic()
    a = hypergradient(train, val, theta0, phi, 5, 0.01, method="backgradient", hessian=False)
    b = hypergradient(train, val, theta0, phi, 5, 0.01, method="reverse", hessian=False)
    assert torch.allclose(a.grad_phi[0], b.grad_phi[0], rtol=1e-2)
    with pytest.raises(ValueError, match="hessian=False"):
        hypergradient(train, val, theta0, phi, 5, 0.01, method="autograd", hessian=False)


def test_step_chunks_split_each_class_and_refuse_empty_chunks():
    labels = torch.arange(3).repeat_interleave(4)
    chunks = step_chunks(labels, 2)
    assert [sorted(labels[c].tolist()) for c in chunks] == [[0, 0, 1, 1, 2, 2]] * 2
    with pytest.raises(ValueError, match="gd_steps"):
        step_chunks(labels, 5)


def test_least_squares_closed_forms():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(30, 3, generator=g, dtype=DT)
    H = X.T @ X / 30
    theta_star = torch.randn(3, generator=g, dtype=DT)
    Xs, ys = one_step_exact_set(theta_star, 4, 0.3, g)
    assert float(expected_excess_loss(Xs, ys, torch.tensor(0.3, dtype=DT), H, theta_star, 1.0)) < 1e-25
    assert float(one_step_lower_bound(H, 3, 1.0)) == 0.0
    assert math.isclose(float(one_step_lower_bound(H, 1, 2.0)), 2.0 * float(torch.linalg.eigvalsh(H)[:2].sum()))
    with pytest.raises(ValueError, match="at least d"):
        one_step_exact_set(theta_star, 2, 0.3)


def test_dd_runs_and_replays_with_learned_step_sizes(digits):
    syn = dd(digits, 2, steps=2, gd_steps=2, epochs=2, runs=2, width=8, batch_real=32)
    assert syn.images.shape == (20, 1, 8, 8) and not syn.soft
    lrs = syn.provenance["lrs"]
    assert len(lrs) == 4 and all(v > 0 for v in lrs) and len(set(lrs)) > 1  # not tied across steps/epochs
    res = replay(syn, digits, runs=3)
    assert res.accuracy.shape == (3,) and 0 <= res.mean <= 1
    fixed = dd(digits, 1, steps=1, init="fixed", width=8, batch_real=32)
    a, b = (replay(fixed, digits, runs=2, seed=s).accuracy for s in (0, 1))
    assert np.array_equal(a, b)  # the fixed network, whatever the seed
    with pytest.raises(ValueError, match="unroll"):
        dd(digits, 1, steps=1, unroll="nope")
    with pytest.raises(ValueError, match="init"):
        dd(digits, 1, steps=1, init="nope")


def test_dd_unroll_methods_agree_on_the_first_update(digits):
    sets = [dd(digits, 1, steps=1, width=8, batch_real=32, unroll=m, gd_steps=1, epochs=2) for m in
            ("reverse", "autograd")]
    assert torch.allclose(sets[0].images, sets[1].images, atol=1e-5)


def test_poisoning_reports_before_and_after(digits):
    syn, report = dd_poison(digits, attacked=1, target=7, steps=2, pool=3, held_out=2, runs=2, pretrain_epochs=1,
                            width=8, batch_real=32)
    assert syn.method == "dd-poison"
    for key in ("before_attacked_class", "after_attacked_class", "before_other_classes", "after_to_target"):
        assert 0 <= report[key]["mean"] <= 1
    with pytest.raises(ValueError, match="different"):
        dd_poison(digits, attacked=2, target=2)
    with pytest.raises(ValueError, match="attacked"):
        dd_poison(digits, attacked=10, target=2)


def test_sldd_fewer_images_than_classes_and_metrics(digits):
    syn = sldd(digits, 1, size=4, steps=2, width=8, runs=2, batch_real=32)
    assert syn.images.shape[0] == 4 and syn.soft
    assert torch.allclose(syn.labels.sum(1), torch.ones(4))
    assert (syn.labels > 0.01).sum() > 4  # images share classes
    assert distillation_ratio(0.45, 0.9) == pytest.approx(50.0)
    assert distillation_size([10, 1, 5], [0.8, 0.3, 0.6], 0.9, 60) == 5
    assert distillation_size([1], [0.1], 0.9, 90) is None
    with pytest.raises(ValueError, match="accuracy"):
        distillation_ratio(1.5, 0.9)
    with pytest.raises(ValueError, match="percent"):
        distillation_size([1], [0.5], 0.9, 0)


def test_text_task_embeds_and_decodes(text):
    assert text.image_shape == (1, 12, 12) and text.meta["kind"] == "text"
    tokens = nearest_tokens(text.x_train[:5], text)
    corpus = make_text_task(train=200, test=100)
    assert torch.equal(tokens, corpus.tokens_train[:5])


def test_tdd_distils_text_and_refuses_images(text, digits):
    syn = tdd(text, 1, steps=2, width=8, runs=2, batch_real=32)
    assert syn.method == "tdd" and len(syn.provenance["tokens"]) == 4
    with pytest.raises(ValueError, match="text sets"):
        tdd(digits, 1, steps=1)


def test_token_file_loader(tmp_path):
    (tmp_path / "train.txt").write_text("0\t1 2 3\n1\t4 5\n\n0\t2 2\n")
    (tmp_path / "test.txt").write_text("1\t5 4 1\n")
    corpus = load_token_files(tmp_path, embed_dim=4)
    assert corpus.tokens_train.shape == (3, 3) and corpus.tokens_test.tolist() == [[5, 4, 1]]
    data = text_dataset(corpus)
    assert data.num_classes == 2 and data.image_shape == (1, 3, 4)
    np.save(tmp_path / "embedding.npy", np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match="beyond the embedding"):
        load_token_files(tmp_path)
    (tmp_path / "embedding.npy").unlink()
    (tmp_path / "test.txt").write_text("1 5 4\n")
    with pytest.raises(ValueError, match="line 1"):
        load_token_files(tmp_path)
    (tmp_path / "test.txt").write_text("3\t1\n")
    with pytest.raises(ValueError, match="test label"):
        load_token_files(tmp_path)
    (tmp_path / "test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test.txt"):
        load_token_files(tmp_path)


def test_ridge_pseudo_gradient_closed_form_matches_autograd():
    g = torch.Generator().manual_seed(2)
    fs, ft = torch.randn(6, 5, generator=g, dtype=DT), torch.randn(9, 5, generator=g, dtype=DT)
    yt = torch.randint(3, (9,), generator=g)
    Y = torch.softmax(torch.randn(6, 3, generator=g, dtype=DT), -1).requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(ft @ ridge_weights(fs, Y, 0.2), yt)
    auto = torch.autograd.grad(loss, Y)[0]
    assert torch.allclose(ridge_label_gradient(fs, Y.detach(), ft, yt, 0.2), auto, atol=1e-12)


@pytest.mark.parametrize("mode", ["rr", "unroll"])
def test_ld_learns_labels_of_fixed_real_images(digits, mode):
    syn = ld(digits, 1, steps=3, mode=mode, width=8, batch_real=32, patience=1)
    base = distill("random", digits, 1, seed=0)
    assert torch.equal(syn.images, base.images) and syn.soft
    assert syn.provenance["resets"] >= 1  # patience 1: the model is reset
    with pytest.raises(ValueError, match="mode"):
        ld(digits, 1, steps=1, mode="nope")


def test_api_names_text_sets_and_checks_options():
    syn = distill("tdd", "text-synthetic", 1, steps=1, width=8, runs=1, batch_real=16)
    assert syn.dataset == "text-synthetic" and syn.provenance["method"] == "tdd"
    with pytest.raises(ValueError, match="does not take"):
        distill("dd", "digits", 1, steps=1, bogus=3)


EXACT = ("distill.dd-size-bound", "distill.dd-one-step", "distill.ld-ridge")


@pytest.mark.parametrize("cid", EXACT)
def test_exact_claims_hold_and_their_power_checks_fail(cid):
    claim = CLAIMS[cid]
    assert claim.mutations and not claim.statistical
    assert claim.run(CheckContext(scale="quick", seed=0)).verdict == "holds"
    assert claim.run(CheckContext(scale="quick", seed=0, power=True)).verdict == "fails"


@pytest.mark.parametrize("cid", EXACT)
def test_exact_claims_catch_a_ten_percent_mutation(cid):
    claim = CLAIMS[cid]
    ctx = CheckContext(scale="quick", seed=0)
    for name in claim.mutations:
        for eps in (0.1, -0.1):
            assert claim.run(ctx.mutated(name, eps)).verdict == "fails", (name, eps)


# quick verdicts of the statistical orderings (30-45 s each on one core)
ORDERINGS = {"distill.ld-beats-hard": "holds",
             # at 100 distillation steps the 5 soft-labelled images reach exactly 5 classes above chance
             "distill.sldd-fewer-than-classes": "fails"}


@pytest.mark.slow
@pytest.mark.parametrize("cid", list(ORDERINGS))
def test_ordering_claims_quick_verdict(cid):
    claim = CLAIMS[cid]
    assert claim.statistical and claim.sensitivity_reason
    v = claim.run(CheckContext(scale="quick", seed=0))
    assert v.verdict == ORDERINGS[cid], v.message
    assert claim.run(CheckContext(scale="quick", seed=0, power=True)).verdict == "fails"


@pytest.mark.slow  # every panel once: ~45 s on one shared core
def test_tiny_bilevel_simulation_writes_its_files(tmp_path, monkeypatch):
    import json

    import simulations.distill_bilevel as sim
    from teachtheory.io import result_folder

    monkeypatch.setitem(sim.SETTINGS, "small", {"sizes": (5, 10), "ld_ipcs": (1,), "epochs": 2,
                                                "unrolls": ((1, 1),)})
    with result_folder(tmp_path / "bilevel") as folder:
        result = sim.run_distill_bilevel(folder, runs=2, steps=1, width=4, ceiling_epochs=1, pretrain_epochs=1)
    out = tmp_path / "bilevel"
    for name in ("config.json", "metrics.json", "bilevel.md", "bilevel.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= {"dd", "poison", "sldd", "tdd", "ld"}
    assert "hard" in metrics["sldd"]["rows"]["10"] and "hard" not in metrics["sldd"]["rows"]["5"]
    assert result["figures"]
