"""Generative DHT teachers (teachers/generative.py): VAE pre-training, GAN/VAE policies, training, teach()."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from teachtheory import problems
from teachtheory.engine import teach
from teachtheory.learners import Logistic
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teachers import RandomTeacher
from teachtheory.teachers.generative import (
    GenerativePolicy,
    GenerativeTeacher,
    data_box,
    input_direction,
    pretrain_vae,
    train_generative,
)


@pytest.fixture(scope="module")
def moons():
    problem = problems.moons(pool_size=60, runs=2, seed=0, test_size=20)
    return problem, Logistic(problem.dim)


@pytest.fixture(scope="module")
def vae_fit(moons):
    problem, learner = moons
    return pretrain_vae(problem, learner, latent=2, hidden=(16,), iterations=150, batch_size=16, lr=1e-2)


def test_vae_pretraining_lowers_the_negative_elbo(vae_fit):
    assert vae_fit.history.shape == (150, 2)
    assert (vae_fit.history[-20:].mean(0) < 0.5 * vae_fit.history[:5].mean(0)).all()


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_generated_inputs_stay_in_the_pool_box_and_keep_constant_coordinates(moons, vae_fit, kind):
    problem, learner = moons
    policy = GenerativePolicy(learner, kind=kind, latent=2, hidden=(16,))
    streams = RunStreams(as_seeds(0, 2))
    params = policy.init(streams)
    x, y = problem.X.expand(2, -1, -1)[:, :5].clone(), problem.y.expand(2, -1)[:, :5].clone()
    w = problem.w0
    noise = streams.normal("n", 0, (5, policy.noise_size))
    box = data_box(problem.X)
    out, kl = policy.generate(params, w, x, y, w - problem.w_star, noise * 10, box, vae_fit)
    lo, hi = box
    assert ((out >= lo[:, None] - 1e-12) & (out <= hi[:, None] + 1e-12)).all()
    assert torch.equal(out[..., -1], torch.ones_like(out[..., -1]))  # the bias feature
    assert (kl >= 0).all() and (kl.abs().sum() > 0) == (kind == "vae")


def test_input_direction_is_the_gradient_of_the_step_along_e(moons):
    problem, learner = moons
    x = problem.X.expand(2, -1, -1)[:, :3].clone()
    y = problem.y.expand(2, -1)[:, :3].clone()
    e = problem.w0 - problem.w_star
    got = input_direction(learner, problem.w0, x, y, e)
    x_var = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(torch.einsum("rp,rmp->", e, learner.grad(problem.w0, x_var, y)), x_var)
    assert torch.allclose(got, want)


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_trained_generative_teacher_runs_through_teach_and_records_samples(moons, vae_fit, kind):
    problem, learner = moons
    res = train_generative(GenerativePolicy(learner, kind=kind, latent=2, hidden=(16,)), problem, lr=0.05,
                           horizon=2, iterations=4, episode_steps=4, policy_lr=1e-2, aux_weight=1.0,
                           vae=vae_fit if kind == "vae" else None, real_batch=8, disc_hidden=(8,))
    assert res.history.shape == (4, 2) and np.isfinite(res.history).all()
    assert ("discriminator" in res.config) == (kind == "gan")
    teacher = res.teacher
    assert isinstance(teacher, GenerativeTeacher)
    traj = teach(problem, learner, teacher, 6, 0.05, seed=3, record=("distance",))
    assert np.isfinite(traj["distance"]).all()
    assert sorted(teacher.samples) == list(range(6)) and teacher.samples[0].shape == (1, problem.dim)
    assert teacher.labels[0].shape == (1,) and teacher.states[0].shape == (problem.dim,)


def test_generative_training_is_batched_over_runs(moons):
    """Run 1 of a two-run training equals a one-run training of run 1 alone (its own seed and w0)."""
    problem, learner = moons
    kwargs = {"lr": 0.05, "horizon": 2, "iterations": 3, "episode_steps": 4, "policy_lr": 1e-2, "aux_weight": 0.5,
              "real_batch": 4, "disc_hidden": (8,)}
    policy = GenerativePolicy(learner, kind="gan", hidden=(8,))
    both = train_generative(policy, problem, seed=[5, 6], **kwargs)
    alone = train_generative(policy, replace(problem, w0=problem.w0[1:]), seed=[6], **kwargs)
    for a, b in zip(both.params, alone.params):
        assert torch.allclose(a[1], b[0], atol=1e-10)


def test_generative_bad_input_is_named(moons, vae_fit):
    problem, learner = moons
    with pytest.raises(ValueError, match="kind must be one of"):
        GenerativePolicy(learner, kind="flow")
    with pytest.raises(ValueError, match="needs vae=VAEFit"):
        train_generative(GenerativePolicy(learner, kind="vae"), problem, lr=0.1, horizon=1, iterations=1)
    with pytest.raises(ValueError, match="must be omniscient"):
        train_generative(GenerativePolicy(learner, omniscient=False), problem, lr=0.1, horizon=1, iterations=1)
    with pytest.raises(ValueError, match="episode_steps=3 must be a multiple of horizon=2"):
        train_generative(GenerativePolicy(learner), problem, lr=0.1, horizon=2, iterations=1, episode_steps=3)
    with pytest.raises(ValueError, match="gan_weight must be a non-negative number"):
        train_generative(GenerativePolicy(learner), problem, lr=0.1, horizon=1, iterations=1, gan_weight=-1.0)
    with pytest.raises(TypeError, match="policy must be a GenerativePolicy"):
        GenerativeTeacher(RandomTeacher(), ())
    with pytest.raises(ValueError, match="needs vae=VAEFit"):
        policy = GenerativePolicy(learner, kind="vae", latent=2, hidden=(16,))
        GenerativeTeacher(policy, policy.init(RunStreams(as_seeds(0, 1))))
