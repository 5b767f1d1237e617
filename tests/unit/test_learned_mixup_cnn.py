"""Mixup teaching with the ConvNet learner (DHT Sec. 4.1): the learner's gradients, the problem, the cnn preset."""

from __future__ import annotations

import json

import pytest
import torch

import simulations.learned_teachers as sims
from teachtheory.engine import teach
from teachtheory.learners.convnet import ConvNet
from teachtheory.simulation import SIMULATIONS
from teachtheory.teachers.learned import MixupTeacher, TeachingPolicy

TINY_CNN = {"width": 2, "pool": 40, "test": 30, "lr": 1e-2, "batch": 2, "hidden": (4,),
            "horizon": 2, "unroll_iterations": 2, "episode_steps": 2, "pg_iterations": 1, "pg_episodes": 2,
            "pg_episode_steps": 2, "policy_lr": 1e-3, "pg_policy_lr": 1e-3, "aux_weight": 1.0}


@pytest.fixture(scope="module")
def small():
    learner = ConvNet((1, 8, 8), 10, width=3)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(2, 5, 64, generator=gen, dtype=torch.float64)
    y = torch.softmax(torch.randn(2, 5, 10, generator=gen, dtype=torch.float64), -1)
    return learner, learner.init(2, 0), X, y


def test_per_example_gradients_match_autograd(small):
    learner, w, X, y = small
    g = learner.grad(w, X, y)
    assert g.shape == (2, 5, learner.num_params)
    for r, i in ((0, 0), (1, 3)):
        wr = w[r:r + 1].clone().requires_grad_(True)
        (ref,) = torch.autograd.grad(learner.loss(wr, X[r:r + 1, i:i + 1], y[r:r + 1, i:i + 1]).sum(), wr)
        torch.testing.assert_close(g[r, i], ref[0])
    torch.testing.assert_close(learner.mean_grad(w, X, y), g.mean(1))


def test_shared_inputs_equal_per_run_inputs_and_runs_are_independent(small):
    learner, w, X, _ = small
    torch.testing.assert_close(learner.outputs(w, X[:1]), learner.outputs(w, X[:1].expand(2, -1, -1)))
    torch.testing.assert_close(learner.outputs(w[1:], X[1:]), learner.outputs(w, X)[1:])
    torch.testing.assert_close(learner.init(3, 5)[1], learner.init(1, 6)[0])  # run r's init depends on its seed


def test_mean_gradient_is_differentiable_in_the_labels(small):
    learner, w, X, y = small
    e = torch.randn(2, learner.num_params, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    yv = y.clone().requires_grad_(True)
    (d,) = torch.autograd.grad((e * learner.mean_grad(w, X, yv)).sum(), yv)
    t = torch.zeros_like(y)
    t[0, 2, 4] = 1.0
    h = 1e-5
    fd = ((e * learner.mean_grad(w, X, y + h * t)).sum() - (e * learner.mean_grad(w, X, y - h * t)).sum()) / (2 * h)
    torch.testing.assert_close(d[0, 2, 4], fd, rtol=1e-5, atol=1e-8)


def test_mixup_policy_state_and_teach_with_adam():
    problem, learner = sims.cnn_problem("digits", 2, 0, width=2, pool=40, test=30)
    assert problem.X.shape == (1, 40, 64) and problem.w0.shape == (2, learner.num_params)
    policy = TeachingPolicy(learner, kind="mixup", mode="discrete", omniscient=False, hidden=(4,))
    x, y = problem.X.expand(2, -1, -1)[:, :3].contiguous(), problem.y.expand(2, -1, -1)[:, :3].contiguous()
    feats = policy.state(problem.w0, x, y, learner.mean_grad(problem.w0, problem.X, problem.y), (x, y))
    assert feats.shape == (2, 3, policy.feature_dim) and torch.isfinite(feats).all()
    first = teach(problem, learner, MixupTeacher("beta"), 10, 1e-2, batch_size=4, update="adam", seed=1,
                  record=("loss", "test_accuracy"))
    assert first["loss"][:, -1].mean() < first["loss"][:, 0].mean()  # Adam on Mixup batches lowers the pool loss


def test_bad_input_is_named(monkeypatch):
    with pytest.raises(ValueError, match="image_shape"):
        ConvNet((8, 8), 10)
    with pytest.raises(ValueError, match="num_classes"):
        ConvNet((1, 8, 8), 1)
    with pytest.raises(ValueError, match="inputs must have 64"):
        learner = ConvNet((1, 8, 8), 10, width=2)
        learner.outputs(learner.init(1), torch.zeros(1, 2, 63))
    monkeypatch.delenv(sims.CIFAR_ENV, raising=False)
    with pytest.raises(ValueError, match=sims.CIFAR_ENV):
        sims.cnn_problem("cifar10", 2, 0)
    with pytest.raises(ValueError, match="dataset"):
        sims.cnn_problem("mnist", 2, 0)


@pytest.mark.slow  # about a minute on a loaded 2-core machine: five teachers, two policy trainings
def test_cnn_preset_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(sims.SETTINGS["small"], "cnn", TINY_CNN)
    sim = SIMULATIONS["dht-mixup"]
    assert {"cnn", "cifar10"} <= set(sim.presets)
    result = sim.presets["cnn"](out=tmp_path, scale="small", runs=2, steps=3, seed=0, device="cpu")
    case = json.loads((tmp_path / "metrics.json").read_text())["cases"]["mixup-cnn"]
    assert case["learner"]["name"] == "convnet" and len(case["teachers"]) == 5
    assert all(0 <= t["test_accuracy"]["mean"] <= 1 for t in result["cases"]["mixup-cnn"]["teachers"].values())
