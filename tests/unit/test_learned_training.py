"""The unrolled trainer's objective (DHT Sec. 3.3.1's auxiliary term as printed) and the learner's Adam inside the
policy trainers (functional Adam in teachtheory.unroll)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from teachtheory import problems
from teachtheory.learners import LeastSquares, Logistic
from teachtheory.learners.updates import Adam
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teachers.base import gather_pool
from teachtheory.teachers.learned import TeachingPolicy
from teachtheory.teachers.training import TRAIN_STREAM, train_reinforce, train_unrolled, unrolled_objective
from teachtheory.unroll import LearnerOptimizer, adam_step, central_difference, rollout


@pytest.fixture(scope="module")
def clusters():
    problem = problems.gaussian_clusters(pool_size=40, runs=3, seed=1, dim=3, test_size=0)
    return problem, Logistic(problem.dim)


def _examples(problem, streams, i, m=1):
    return gather_pool(problem.X, problem.y, streams.integers(TRAIN_STREAM, i, problem.pool_size, (m,)))


def test_aux_weight_zero_is_the_main_term_alone(clusters):
    """aux_weight = 0 trains on ||w_v - w*||^2 only: the same parameters as a hand-written unroll with Adam."""
    problem, learner = clusters
    policy = TeachingPolicy(learner, kind="input", bound=0.5, hidden=(6,))
    lr, v, iterations, seed = 0.3, 2, 3, [4, 5, 6]
    res = train_unrolled(policy, problem, lr=lr, horizon=v, iterations=iterations, policy_lr=1e-2, aux_weight=0.0,
                         seed=seed)
    streams = RunStreams(as_seeds(seed, problem.runs))
    theta = tuple(p.clone().requires_grad_(True) for p in policy.init(streams))
    opt = torch.optim.Adam(theta, lr=1e-2)
    w_star = problem.w_star.expand_as(problem.w0)
    for it in range(iterations):
        with torch.enable_grad():
            w = problem.w0
            for k in range(v):
                x, y = _examples(problem, streams, it * v + k)
                x2, y2 = policy.apply(theta, w, x, y, w - w_star)
                w = w - lr * learner.mean_grad(w, x2, y2)
            opt.zero_grad()
            ((w - w_star) ** 2).sum().backward()
        opt.step()
    for a, b in zip(res.params, theta):
        torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["input", "both"])
def test_aux_gradient_is_the_printed_term_with_stop_gradient(clusters, kind):
    """d/dtheta of lambda sum_i l(pi_theta(x_i, y_i, w_i^SG, w*); y_i | w_i^SG) on a 2-step toy, built by hand."""
    problem, learner = clusters
    policy = TeachingPolicy(learner, kind=kind, bound=0.5, hidden=(6,))
    streams = RunStreams(as_seeds(7, problem.runs))
    theta = tuple(p.requires_grad_(True) for p in policy.init(streams, last_gain=1.0))
    lr, m = 0.4, 2
    _, aux = unrolled_objective(policy, problem, theta, lr=lr, horizon=2, batch_size=m, seed=7)
    (auto,) = [torch.autograd.grad(aux.sum(), theta)]
    w_star = problem.w_star.expand_as(problem.w0)

    def hand(stop: bool):
        with torch.enable_grad():
            w, total = problem.w0, 0.0
            for i in range(2):
                x2, y2 = policy.apply(theta, w, *_examples(problem, streams, i, m), w - w_star)
                at = w.detach() if stop else w
                x, y = _examples(problem, streams, i, m)
                xs, _ = policy.apply(theta, at, x, y, at - w_star)
                total = total + learner.loss(at, xs, y).mean(-1).sum()  # the transformed input, the sampled label
                w = w - lr * learner.mean_grad(w, x2, y2)
            return torch.autograd.grad(total, theta)

    for a, b in zip(auto, hand(stop=True)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    # power: without the stop-gradient the hand-built gradient differs, so the comparison above can fail
    leaky = hand(stop=False)
    assert max(float((a - b).abs().max()) for a, b in zip(auto, leaky)) > 1e-6


def test_aux_term_of_a_label_policy_does_not_depend_on_theta(clusters):
    """The printed term scores the policy's input against the sampled label: a label-only policy leaves it fixed."""
    problem, learner = clusters
    policy = TeachingPolicy(learner, hidden=(6,))
    theta = tuple(p.requires_grad_(True) for p in policy.init(RunStreams(as_seeds(2, problem.runs)), last_gain=1.0))
    main, aux = unrolled_objective(policy, problem, theta, lr=0.4, horizon=2, seed=2)
    assert not aux.requires_grad  # no path from theta to the term at all
    assert any(g.abs().max() > 0 for g in torch.autograd.grad(main.sum(), theta))


def test_aux_term_lowers_the_learner_loss_of_the_teaching_examples():
    """Training with lambda > 0 lowers sum_i l(x'_i, y_i | w_i) on fresh examples, paired over runs (> 3 SE)."""
    problem = problems.gaussian_clusters(pool_size=60, runs=8, seed=2, dim=3, test_size=0)
    learner = Logistic(problem.dim)
    policy = TeachingPolicy(learner, kind="input", bound=0.5, hidden=(8,))
    kw = {"lr": 0.3, "horizon": 2, "iterations": 40, "episode_steps": 10, "policy_lr": 2e-2, "seed": 3}
    measured = []
    for weight in (0.0, 1.0):
        res = train_unrolled(policy, problem, aux_weight=weight, **kw)
        with torch.no_grad():
            _, aux = unrolled_objective(policy, problem, res.params, lr=0.3, horizon=10, seed=99)
        measured.append(aux.numpy())
    d = measured[0] - measured[1]
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert d.mean() > 3 * se, (d.mean(), se)


def test_rollout_aux_runs_at_the_detached_state():
    w = torch.ones(1, 2, dtype=torch.float64, requires_grad=True)
    seen = []
    out = rollout(lambda t, i: (2.0 * t[0],), (w,), 3, aux=lambda t, i: seen.append(t[0].requires_grad) or t[0].sum())
    assert [float(a) for a in out.aux] == [2.0, 4.0, 8.0] and seen == [False] * 3 and out.greedy == []
    with pytest.raises(TypeError, match="aux"):
        rollout(lambda t, i: t, (w,), 1, aux=3)


# -- the learner's Adam ----------------------------------------------------------------------------------------
def test_adam_step_equals_torch_adam_and_the_engine_rule():
    torch.manual_seed(0)
    w0 = torch.randn(3, 5, dtype=torch.float64)
    grads = [torch.randn(3, 5, dtype=torch.float64) for _ in range(4)]
    grads[1][0, 2] = 0.0
    betas, eps, lr = (0.8, 0.99), 1e-6, 0.05
    ref = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=lr, betas=betas, eps=eps)
    w, m, v = w0, torch.zeros_like(w0), torch.zeros_like(w0)
    rule, state, w_rule = Adam(*betas, eps), Adam(*betas, eps).init(w0), w0
    for t, g in enumerate(grads):
        ref.grad = g.clone()
        opt.step()
        w, m, v = adam_step(w, g, m, v, t, lr, betas, eps)
        w_rule, state = rule.step(w_rule, g, lr, state, t)
        torch.testing.assert_close(w, ref.detach(), rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(w, w_rule, rtol=1e-13, atol=1e-15)  # the rule teach(update="adam") applies
    opt_state = opt.state[ref]
    torch.testing.assert_close(m, opt_state["exp_avg"], rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(v, opt_state["exp_avg_sq"], rtol=1e-13, atol=1e-15)


def test_adam_step_is_differentiable_where_a_gradient_is_zero():
    g = torch.tensor([[0.0, 0.5]], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, 2, dtype=torch.float64)
    w, _, _ = adam_step(zero, g, zero, zero, 0, 0.1)
    (dg,) = torch.autograd.grad(w.sum(), g)
    assert torch.isfinite(dg).all()


def test_unrolled_hypergradient_through_three_adam_steps_matches_finite_differences():
    problem = problems.linear_regression(dim=4, pool_size=30, runs=2, seed=5)
    learner = LeastSquares(4)
    policy = TeachingPolicy(learner, hidden=(6,))
    params = tuple(p.requires_grad_(True) for p in policy.init(RunStreams(as_seeds(8, 2)), last_gain=0.5))
    kw = {"lr": 0.05, "horizon": 3, "batch_size": 2, "learner_optimizer": LearnerOptimizer("adam", (0.9, 0.99), 1e-6),
          "seed": 4}
    main, _ = unrolled_objective(policy, problem, params, **kw)
    grads = torch.autograd.grad(main.sum(), params)
    gen = torch.Generator().manual_seed(1)
    direction = tuple(torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params)
    analytic = float(sum((g * d).sum() for g, d in zip(grads, direction)))
    numeric = central_difference(lambda p: unrolled_objective(policy, problem, p, **kw)[0].sum(), params, direction,
                                 1e-5)
    assert abs(analytic - numeric) <= 1e-6 * abs(numeric), (analytic, numeric)
    # power: the same policy unrolled through SGD gives a different objective
    sgd, _ = unrolled_objective(policy, problem, params, **{**kw, "learner_optimizer": "sgd"})
    assert not torch.allclose(sgd, main)


def test_trainers_run_with_the_learner_adam(clusters):
    problem, learner = clusters
    res = train_unrolled(TeachingPolicy(learner, hidden=(6,)), problem, lr=0.05, horizon=2, iterations=4,
                         episode_steps=4, aux_weight=0.5, learner_optimizer="adam", seed=1)
    assert res.config["learner_optimizer"] == {"name": "adam", "betas": [0.9, 0.999], "eps": 1e-8}
    assert np.isfinite(res.history).all()
    policy = TeachingPolicy(learner, mode="discrete", hidden=(6,))
    pg = train_reinforce(policy, problem, lr=0.05, episode_steps=3, iterations=2, episodes=2,
                         learner_optimizer=LearnerOptimizer("adam", (0.5, 0.9), 1e-6), seed=1)
    assert pg.config["learner_optimizer"]["betas"] == [0.5, 0.9] and np.isfinite(pg.history).all()


def test_learner_optimizer_errors(clusters):
    problem, learner = clusters
    policy = TeachingPolicy(learner, hidden=(6,))
    with pytest.raises(ValueError, match="learner_optimizer must be one of sgd, adam"):
        train_unrolled(policy, problem, lr=0.1, horizon=1, iterations=1, learner_optimizer="rmsprop")
    with pytest.raises(TypeError, match="learner_optimizer"):
        train_unrolled(policy, problem, lr=0.1, horizon=1, iterations=1, learner_optimizer=3)
    with pytest.raises(ValueError, match="learner_betas"):
        LearnerOptimizer("adam", (0.9, 1.0))
    with pytest.raises(ValueError, match="learner_eps"):
        LearnerOptimizer("adam", eps=0.0)
