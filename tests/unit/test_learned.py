"""Learned teaching policies (teachers/learned.py, teachers/training.py) and unroll.rollout."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from teachtheory import problems
from teachtheory.engine import teach
from teachtheory.learners import MLP, LeastSquares, Logistic, Softmax
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teachers import RandomTeacher, TeachingContext, synthesize_labels
from teachtheory.teachers.learned import LearnedTeacher, MixupTeacher, TeachingPolicy, default_actions, sample_partner
from teachtheory.teachers.training import plan_labels, train_reinforce, train_unrolled
from teachtheory.theory.last import LOGISTIC_CRITICAL_MARGIN
from teachtheory.unroll import hypergradient, rollout


@pytest.fixture(scope="module")
def lsr():
    return problems.linear_regression(dim=5, pool_size=40, runs=3, seed=0), LeastSquares(5)


def _zero_last(params):
    params = list(params)
    params[-2] = torch.zeros_like(params[-2])
    params[-1] = torch.zeros_like(params[-1])
    return tuple(params)


def test_rollout_matches_autograd_hypergradient():
    torch.manual_seed(0)
    A = torch.randn(2, 4, 4, dtype=torch.float64)
    phi = torch.randn(2, 4, dtype=torch.float64)
    theta0 = torch.randn(2, 4, dtype=torch.float64)

    def train_loss(theta, ph, i):
        return (0.5 * (torch.einsum("rij,rj->ri", A, theta[0]) - ph[0]) ** 2).sum() / (i + 1)

    def val_loss(theta):
        return (theta[0] ** 2).sum()

    ref = hypergradient(train_loss, val_loss, theta0, phi, 4, 0.05, method="autograd")
    leaf = phi.clone().requires_grad_(True)

    def step(theta, i):
        t = theta[0].detach().requires_grad_(True) if not theta[0].requires_grad else theta[0]
        g = torch.autograd.grad(train_loss((t,), (leaf,), i), t, create_graph=True)[0]
        return (t - 0.05 * g,)

    with torch.enable_grad():
        out = rollout(step, (theta0.clone().requires_grad_(True),), 4)
        val = val_loss(out.iterates[-1])
        (g_phi,) = torch.autograd.grad(val, leaf)
    assert torch.allclose(val.detach(), ref.value)
    assert torch.allclose(g_phi, ref.grad_phi[0], rtol=1e-10, atol=1e-12)
    assert len(out.iterates) == 5 and out.greedy == []


def test_rollout_stop_gradient_steps_and_errors():
    w = torch.ones(1, 2, dtype=torch.float64, requires_grad=True)
    out = rollout(lambda t, i: (2.0 * t[0],), (w,), 3, stop_gradient_steps=True)
    assert [float(g[0][0, 0]) for g in out.greedy] == [2.0, 4.0, 8.0]
    assert all(not g[0].requires_grad for g in out.greedy)
    with pytest.raises(ValueError, match="steps"):
        rollout(lambda t, i: t, (w,), -1)
    with pytest.raises(ValueError, match="returned 2 tensors"):
        rollout(lambda t, i: (t[0], t[0]), (w,), 1)


def test_plan_labels_v1_batch_of_two_is_no_worse_than_greedy(lsr):
    problem, learner = lsr
    R = problem.runs
    streams = RunStreams(as_seeds(5, R))
    index = streams.integers("t", 0, problem.pool_size, (1, 2))  # [R, v=1, m=2]
    x = problem.X.expand(R, -1, -1).gather(1, index.reshape(R, 2, 1).expand(R, 2, 5)).reshape(R, 1, 2, 5)
    y = problem.y.expand(R, -1).gather(1, index.reshape(R, 2)).reshape(R, 1, 2)
    lr = 0.05
    w_star = problem.w_star.expand_as(problem.w0)
    greedy = synthesize_labels(learner, problem.w0, w_star, x[:, 0], y[:, 0], lr)
    planned, _ = plan_labels(learner, problem.w0, w_star, x, y, lr, iterations=3000, plan_lr=0.05)
    # With m = 2 the greedy teacher labels each example on its own; the joint plan can only do better.
    def one_step(labels):
        w1 = problem.w0 - lr * learner.mean_grad(problem.w0, x[:, 0], labels)
        return ((w1 - w_star) ** 2).sum(-1)

    assert (one_step(planned[:, 0]) <= one_step(greedy) + 1e-9).all()


def test_plan_labels_single_example_equals_greedy_label(lsr):
    problem, learner = lsr
    R = problem.runs
    x = problem.X.expand(R, -1, -1)[:, :1].reshape(R, 1, 1, 5)
    y = problem.y.expand(R, -1)[:, :1].reshape(R, 1, 1)
    w_star = problem.w_star.expand_as(problem.w0)
    greedy = synthesize_labels(learner, problem.w0, w_star, x[:, 0], y[:, 0], 0.05)
    planned, _ = plan_labels(learner, problem.w0, w_star, x, y, 0.05, iterations=3000, plan_lr=0.05)
    assert torch.allclose(planned[:, 0], greedy, rtol=1e-5, atol=1e-6)


def test_plan_labels_v3_beats_greedy_at_horizon(lsr):
    problem, learner = lsr
    R, lr, v = problem.runs, 0.05, 3
    w_star = problem.w_star.expand_as(problem.w0)
    x = problem.X.expand(R, -1, -1)[:, :v].reshape(R, v, 1, 5)
    y = problem.y.expand(R, -1)[:, :v].reshape(R, v, 1)
    w, greedy = problem.w0, []
    for i in range(v):  # the greedy teacher's labels on the same inputs
        g = synthesize_labels(learner, w, w_star, x[:, i], y[:, i], lr)
        greedy.append(g)
        w = w - lr * learner.mean_grad(w, x[:, i], g)
    greedy_value = ((w - w_star) ** 2).sum(-1)
    _, value = plan_labels(learner, problem.w0, w_star, x, torch.stack(greedy, 1), lr, iterations=300)
    assert (value < greedy_value * (1 - 1e-3)).all()


def test_zero_policy_is_sgd(lsr):
    problem, learner = lsr
    policy = TeachingPolicy(learner)
    params = _zero_last(policy.init(RunStreams(as_seeds(0, problem.runs))))
    learned = teach(problem, learner, LearnedTeacher(policy, params), 20, 0.05, seed=3)
    sgd = teach(problem, learner, RandomTeacher(), 20, 0.05, seed=3)
    np.testing.assert_array_equal(learned["distance"], sgd["distance"])


def test_unrolled_training_is_batched_over_runs(lsr):
    problem, learner = lsr
    policy = TeachingPolicy(learner, hidden=(8,))
    kw = {"lr": 0.05, "horizon": 2, "iterations": 3, "episode_steps": 4, "aux_weight": 0.5, "seed": [11, 12, 13]}
    together = train_unrolled(policy, problem, **kw)
    one = replace(problem, X=problem.X[1:2] if problem.X.shape[0] > 1 else problem.X, y=problem.y[1:2]
                  if problem.y.shape[0] > 1 else problem.y, w_star=problem.w_star[1:2] if problem.w_star.shape[0] > 1
                  else problem.w_star, w0=problem.w0[1:2])
    alone = train_unrolled(policy, one, **{**kw, "seed": [12]})
    for a, b in zip(together.params, alone.params):
        torch.testing.assert_close(a[1:2], b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(together.history[:, 1], alone.history[:, 0], rtol=1e-9)


def test_unrolled_policy_beats_sgd_and_approaches_greedy(lsr):
    problem, learner = lsr
    res = train_unrolled(TeachingPolicy(learner, hidden=(16,)), problem, lr=0.05, horizon=1, iterations=300,
                         episode_steps=60, policy_lr=1e-2)
    assert res.history[-20:].mean() < 0.1 * res.history[:5].mean()
    learned = teach(problem, learner, res.teacher, 60, 0.05, seed=1)
    sgd = teach(problem, learner, RandomTeacher(), 60, 0.05, seed=1)
    assert (learned["distance"][:, -1] < sgd["distance"][:, -1]).all()


def test_reinforce_improves_the_policy(lsr):
    problem, learner = lsr
    scale = float(problem.y.abs().max())
    policy = TeachingPolicy(learner, mode="discrete", hidden=(16,), actions=torch.linspace(-scale, scale, 7,
                                                                                            dtype=torch.float64))
    res = train_reinforce(policy, problem, lr=0.05, episode_steps=6, iterations=15, episodes=4, policy_lr=5e-2)
    assert res.history[-5:].mean() < res.history[:5].mean()
    traj = teach(problem, learner, res.teacher, 10, 0.05, seed=1)
    assert np.isfinite(traj["distance"]).all()


def test_black_box_teacher_never_reads_w_star():
    problem = problems.gaussian_clusters(pool_size=30, runs=2, seed=0, dim=2, test_size=0)
    learner = Logistic(problem.dim)
    policy = TeachingPolicy(learner, omniscient=False, hidden=(8,))
    res = train_unrolled(policy, problem, lr=0.5, horizon=2, iterations=2, objective="loss")
    moved = replace(problem, w_star=problem.w_star + 100.0)
    labels = []
    for p in (problem, moved):
        ctx = TeachingContext(problem=p, learner=learner, lr=0.5, batch_size=2, streams=RunStreams(as_seeds(0, 2)))
        labels.append(res.teacher.teach(ctx, problem.w0, 0).y)
    assert torch.equal(labels[0], labels[1])
    moved_training = train_unrolled(policy, moved, lr=0.5, horizon=2, iterations=2, objective="loss")
    for a, b in zip(res.params, moved_training.params):
        assert torch.equal(a, b)


def test_input_policy_stays_within_bound_and_mlp_learner():
    learner = MLP(3, 4, 2)
    streams = RunStreams(as_seeds(0, 2))
    X = streams.normal("x", 0, (30, 3))
    w_star = streams.normal("w*", 0, (learner.num_params,))
    y = torch.nn.functional.one_hot(learner.predict_labels(w_star, X), 2).to(X.dtype)
    problem = problems.Problem(X, y, w_star, 0.5 * streams.normal("w0", 0, (learner.num_params,)))
    policy = TeachingPolicy(learner, kind="input", bound=0.3, hidden=(8,))
    res = train_unrolled(policy, problem, lr=0.2, horizon=2, iterations=3, aux_weight=1.0)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.2, batch_size=4, streams=RunStreams(as_seeds(0, 2)))
    batch = res.teacher.teach(ctx, problem.w0, 0)
    plain = RandomTeacher().teach(ctx, problem.w0, 0)
    assert ((batch.x - plain.x).abs() <= 0.3 + 1e-12).all() and torch.equal(batch.y, plain.y)


def test_black_box_full_space_policy_changes_input_within_bound_and_label():
    problem = problems.gaussian_clusters(pool_size=30, runs=2, seed=0, dim=2, test_size=0)
    learner = Logistic(problem.dim)
    policy = TeachingPolicy(learner, kind="both", omniscient=False, bound=0.2, hidden=(8,))
    params = policy.init(RunStreams(as_seeds(0, 2)), last_gain=1.0)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.5, batch_size=3, streams=RunStreams(as_seeds(0, 2)))
    batch = LearnedTeacher(policy, params).teach(ctx, problem.w0, 0)
    plain = RandomTeacher().teach(ctx, problem.w0, 0)
    change = (batch.x - plain.x).abs()
    assert (change <= 0.2 + 1e-12).all() and (change > 0).any() and not torch.equal(batch.y, plain.y)
    assert batch.index is None


def test_mixup_policy_and_baselines_mix_pairs():
    problem = problems.gaussian_clusters(pool_size=30, runs=2, seed=0, dim=2, test_size=0, learner="softmax")
    learner = Softmax(problem.dim, 2)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.5, batch_size=4, streams=RunStreams(as_seeds(0, 2)))
    first = RandomTeacher().teach(ctx, problem.w0, 0)
    partner = sample_partner(ctx, 0)
    erm = MixupTeacher("erm").teach(ctx, problem.w0, 0)
    assert torch.equal(erm.x, first.x)
    for teacher in (MixupTeacher("beta", 0.5), MixupTeacher("discrete")):
        batch = teacher.teach(ctx, problem.w0, 0)
        # every mixed example lies on the segment between its pair, with the same lambda for x and y
        lam = ((batch.y - partner[1]) / (first.y - partner[1]))[..., 0]
        ok = (first.y[..., 0] != partner[1][..., 0])
        assert ((lam[ok] >= -1e-12) & (lam[ok] <= 1 + 1e-12)).all()
        torch.testing.assert_close(batch.x[ok], (lam[..., None] * first.x + (1 - lam[..., None]) * partner[0])[ok])
    discrete = MixupTeacher("discrete", values=(0.5,)).teach(ctx, problem.w0, 0)
    torch.testing.assert_close(discrete.x, 0.5 * (first.x + partner[0]))
    policy = TeachingPolicy(learner, kind="mixup", mode="discrete", omniscient=False, hidden=(4,))
    res = train_reinforce(policy, problem, lr=0.5, episode_steps=2, iterations=2, episodes=2, reward="accuracy",
                          batch_size=4)
    batch = res.teacher.teach(ctx, problem.w0, 0)
    assert batch.x.shape == first.x.shape and batch.index is None
    cont = TeachingPolicy(learner, kind="mixup", omniscient=False, hidden=(4,))
    res = train_unrolled(cont, problem, lr=0.5, horizon=2, iterations=2, objective="loss", batch_size=4)
    assert torch.isfinite(res.teacher.teach(ctx, problem.w0, 0).x).all()
    with pytest.raises(ValueError, match="mode"):
        MixupTeacher("cutmix")
    with pytest.raises(ValueError, match="coefficients"):
        TeachingPolicy(learner, kind="mixup", mode="discrete", actions=torch.tensor([2.0]))


def test_default_actions_shapes():
    assert default_actions(LeastSquares(3), 5).shape == (5,)
    assert default_actions(MLP(3, 4, 3), 4).shape == (12, 3)


def test_bad_input_is_named(lsr):
    problem, learner = lsr
    with pytest.raises(ValueError, match="kind"):
        TeachingPolicy(learner, kind="weights")
    with pytest.raises(ValueError, match="bound"):
        TeachingPolicy(learner, kind="input")
    with pytest.raises(ValueError, match="actions"):
        TeachingPolicy(learner, mode="discrete", actions=torch.zeros(3, 2))
    with pytest.raises(TypeError, match="learner"):
        TeachingPolicy("lsr")
    with pytest.raises(ValueError, match="objective='distance' needs w"):
        train_unrolled(TeachingPolicy(learner, omniscient=False), problem, lr=0.1, horizon=1, iterations=1)
    with pytest.raises(ValueError, match="episode_steps"):
        train_unrolled(TeachingPolicy(learner), problem, lr=0.1, horizon=2, iterations=1, episode_steps=3)
    with pytest.raises(ValueError, match="discrete"):
        train_reinforce(TeachingPolicy(learner), problem, lr=0.1, episode_steps=2, iterations=1)
    with pytest.raises(ValueError, match="episodes"):
        train_reinforce(TeachingPolicy(learner, mode="discrete"), problem, lr=0.1, episode_steps=2, iterations=1,
                        episodes=1)
    with pytest.raises(ValueError, match="accuracy"):
        train_reinforce(TeachingPolicy(learner, mode="discrete"), problem, lr=0.1, episode_steps=2, iterations=1,
                        reward="accuracy")


def test_logistic_greedy_label_is_the_global_minimum_of_the_one_step_objective():
    """The greedy logistic label beats every label on a dense grid, also where greedy + 1 lies in the other basin."""
    R, lr = 200, 0.1
    problem = problems.gaussian_clusters(pool_size=40, runs=R, seed=0, dim=3, test_size=0, init_scale=1.0)
    learner = Logistic(problem.dim)
    x, y = problem.X.expand(R, -1, -1)[:, :1], problem.y.expand(R, -1)[:, :1]
    w0, w_star = problem.w0, problem.w_star.expand_as(problem.w0)
    greedy = synthesize_labels(learner, w0, w_star, x, y, lr)

    def one_step(label):
        return ((w0 - lr * learner.mean_grad(w0, x, label) - w_star) ** 2).sum(-1)

    grid = torch.linspace(-40.0, 40.0, 8001, dtype=torch.float64)
    on_grid = torch.stack([one_step(g.expand(R, 1)) for g in grid]).min(0).values
    assert (one_step(greedy) <= on_grid + 1e-12).all()
    # the turning point of r(y) = -y sigmoid(-y m) at y = u0 / m splits y into two basins
    margin = (x[:, 0] * w0).sum(-1)
    turning = LOGISTIC_CRITICAL_MARGIN / margin
    other_side = (greedy[:, 0] - turning).sign() != (greedy[:, 0] + 1.0 - turning).sign()
    assert other_side.any()  # the draw that made the single-start plan miss the greedy label is still here


def test_v1_greedy_claim_holds_and_its_eta_mutation_is_caught():
    from proofs_checks.last.parameterized import check_v1_greedy
    from teachtheory.claims import CheckContext

    assert check_v1_greedy(CheckContext()).ok
    assert not check_v1_greedy(CheckContext().mutated("eta", 0.01)).ok
