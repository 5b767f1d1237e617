"""Tests for teachtheory.problems (generators, targets, validation) and teachtheory.random (RunStreams)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from teachtheory.learners import LeastSquares, Logistic, Softmax
from teachtheory.problems import (
    Problem,
    digits,
    digits35,
    fit_target,
    gaussian_clusters,
    init_weights,
    linear_regression,
    moons,
)
from teachtheory.random import RunStreams, as_seeds, stream_tag

DT = torch.float64


def _digit_counts(classes=None):
    from sklearn.datasets import load_digits

    target = load_digits().target
    n = int(np.isin(target, classes).sum()) if classes is not None else target.size
    n_test = round(0.3 * n)
    return n - n_test, n_test


# ---------------------------------------------------------------------------
# Generators: documented shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True])
def test_linear_regression_shapes(shared):
    p = linear_regression(dim=4, pool_size=15, runs=3, seed=2, test_size=6, shared_pool=shared, noise=0.1)
    Rp = 1 if shared else 3
    assert p.X.shape == (Rp, 15, 4) and p.y.shape == (Rp, 15)
    assert p.X_test.shape == (Rp, 6, 4) and p.y_test.shape == (Rp, 6)
    assert p.w_star.shape == (Rp, 4) and p.w0.shape == (3, 4)
    assert p.runs == 3 and p.pool_size == 15 and p.dim == 4 and p.has_test
    assert p.label_values is None
    assert all(t.dtype == DT for t in (p.X, p.y, p.w_star, p.w0, p.X_test, p.y_test))
    p.check_learner(LeastSquares(4))
    lo, hi = p.box()
    assert lo.shape == hi.shape == (Rp, 4)
    torch.testing.assert_close(lo, p.X.amin(1))
    none = linear_regression(dim=2, pool_size=5, runs=2, seed=0)
    assert none.X_test is None and not none.has_test


def test_linear_regression_noise_free_fitted_target_is_the_generator():
    fitted = linear_regression(dim=3, pool_size=20, runs=2, seed=4, noise=0.0, target="fitted")
    given_ = linear_regression(dim=3, pool_size=20, runs=2, seed=4, noise=0.0, target="given")
    torch.testing.assert_close(fitted.w_star, given_.w_star, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fitted.y, (fitted.X @ given_.w_star.unsqueeze(-1))[..., 0])
    noisy = linear_regression(dim=3, pool_size=20, runs=2, seed=4, noise=0.5, target="given")
    assert (noisy.y - fitted.y).abs().max() > 1e-3  # noise was added
    torch.testing.assert_close(noisy.X, fitted.X)  # ... on the same inputs


@pytest.mark.parametrize("learner, K", [("logistic", None), ("softmax", 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_gaussian_clusters_shapes(learner, K, bias):
    p = gaussian_clusters(pool_size=20, runs=3, seed=1, dim=3, test_size=7, learner=learner, bias=bias)
    d = 3 + int(bias)
    assert p.X.shape == (1, 20, d) and p.X_test.shape == (1, 7, d) and p.w0.shape[0] == 3
    if bias:
        assert (p.X[..., -1] == 1).all()
    if K is None:
        assert p.y.shape == (1, 20) and set(p.y.unique().tolist()) <= {-1.0, 1.0}
        torch.testing.assert_close(p.label_values, torch.tensor([-1.0, 1.0], dtype=DT))
        assert p.w_star.shape == (1, d)
    else:
        assert p.y.shape == (1, 20, 2) and (p.y.sum(-1) == 1).all()
        torch.testing.assert_close(p.label_values, torch.eye(2, dtype=DT))
        assert p.w_star.shape == (1, 2 * d)


def test_gaussian_clusters_separation_moves_the_classes():
    p = gaussian_clusters(pool_size=400, runs=1, seed=0, dim=2, separation=6.0, test_size=0, bias=False)
    pos, neg = p.X[0][p.y[0] > 0], p.X[0][p.y[0] < 0]
    assert pos[:, 0].mean() == pytest.approx(3.0, abs=0.3) and neg[:, 0].mean() == pytest.approx(-3.0, abs=0.3)
    assert abs(pos[:, 1].mean()) < 0.3


@pytest.mark.parametrize("bias", [True, False])
def test_moons_shapes(bias):
    p = moons(pool_size=30, runs=2, seed=0, test_size=10, bias=bias)
    d = 3 if bias else 2
    assert p.X.shape == (1, 30, d) and p.y.shape == (1, 30) and p.X_test.shape == (1, 10, d)
    assert p.w_star.shape == (1, d) and p.w0.shape == (2, d)
    assert p.X[0, :, :2].abs().max() < 2.5


@pytest.mark.parametrize("project_dim", [24, None])
def test_digits35_shapes(project_dim):
    n_train, n_test = _digit_counts([3, 5])
    p = digits35(runs=2, seed=0, project_dim=project_dim)
    d = 64 if project_dim is None else project_dim
    assert p.X.shape == (1, n_train, d) and p.y.shape == (1, n_train)
    assert p.X_test.shape == (1, n_test, d) and p.y_test.shape == (1, n_test)
    assert p.w_star.shape == (1, d) and p.w0.shape == (2, d)
    assert set(p.y.unique().tolist()) == {-1.0, 1.0}
    # Standardised features (over train and test together, before the split).
    allX = torch.cat([p.X[0], p.X_test[0]])
    informative = allX.std(0) > 1e-6
    torch.testing.assert_close(allX.mean(0), torch.zeros(d, dtype=DT), atol=1e-10, rtol=0)
    torch.testing.assert_close(allX.std(0)[informative], torch.ones(int(informative.sum()), dtype=DT))


def test_digits_shapes():
    # project_dim=8 keeps the Newton fit of the ten-class softmax target fast (p = 80).
    n_train, n_test = _digit_counts()
    p = digits(runs=2, seed=1, project_dim=8)
    assert p.X.shape == (1, n_train, 8) and p.y.shape == (1, n_train, 10)
    assert p.X_test.shape == (1, n_test, 8) and p.y_test.shape == (1, n_test, 10)
    assert p.w_star.shape == (1, 80) and p.w0.shape == (2, 80)
    assert (p.y.sum(-1) == 1).all()
    torch.testing.assert_close(p.label_values, torch.eye(10, dtype=DT))
    assert set(p.y.argmax(-1).unique().tolist()) == set(range(10))


# ---------------------------------------------------------------------------
# Shared pools, per-run seeding
# ---------------------------------------------------------------------------


def test_shared_pool_is_run_zeros_pool():
    shared = linear_regression(dim=3, pool_size=10, runs=4, seed=[8, 9, 10, 11], shared_pool=True, test_size=3)
    per_run = linear_regression(dim=3, pool_size=10, runs=4, seed=[8, 9, 10, 11], shared_pool=False, test_size=3)
    assert shared.X.shape[0] == 1 and per_run.X.shape[0] == 4
    torch.testing.assert_close(shared.X[0], per_run.X[0])
    torch.testing.assert_close(shared.y[0], per_run.y[0])
    torch.testing.assert_close(shared.X_test[0], per_run.X_test[0])
    assert not torch.allclose(per_run.X[0], per_run.X[1])  # per-run pools really differ
    torch.testing.assert_close(shared.w0, per_run.w0)  # initial weights are always per run
    assert not torch.allclose(shared.w0[0], shared.w0[1])


@pytest.mark.parametrize(
    "make",
    [
        lambda runs, seed: linear_regression(dim=3, pool_size=9, runs=runs, seed=seed, noise=0.2, test_size=4),
        lambda runs, seed: gaussian_clusters(pool_size=16, runs=runs, seed=seed, dim=2, test_size=5, shared_pool=False),
        lambda runs, seed: moons(pool_size=16, runs=runs, seed=seed, test_size=5, shared_pool=False),
    ],
    ids=["linear_regression", "gaussian_clusters", "moons"],
)
def test_run_r_of_a_batch_equals_a_single_run_with_its_seed(make):
    seeds = [5, 17, 2]
    batch = make(3, seeds)
    for r, s in enumerate(seeds):
        single = make(1, [s])
        for name in ("X", "y", "X_test", "y_test", "w0"):
            torch.testing.assert_close(getattr(single, name)[0], getattr(batch, name)[r], rtol=0, atol=0)
        # The fitted target is the same optimum (Newton may take a different number of steps in a batch).
        torch.testing.assert_close(single.w_star[0], batch.w_star[r], rtol=1e-9, atol=1e-9)
    # An int seed means seed + r.
    torch.testing.assert_close(make(3, 5).w0, make(3, [5, 6, 7]).w0)


def test_shared_pool_problems_share_w_star_and_differ_in_w0():
    p = gaussian_clusters(pool_size=16, runs=3, seed=[4, 5, 6], dim=2, test_size=0)
    q = gaussian_clusters(pool_size=16, runs=1, seed=[4], dim=2, test_size=0)
    torch.testing.assert_close(p.X, q.X)
    torch.testing.assert_close(p.w_star, q.w_star)
    torch.testing.assert_close(p.w0[:1], q.w0)
    for r, s in enumerate([4, 5, 6]):
        single = gaussian_clusters(pool_size=16, runs=1, seed=[s], dim=2, test_size=0)
        torch.testing.assert_close(single.w0[0], p.w0[r])


def test_init_weights_scale():
    streams = RunStreams(torch.arange(200))
    w = init_weights(LeastSquares(5), streams, "w0", 0.5, DT)
    assert w.shape == (200, 5)
    assert w.std().item() == pytest.approx(0.5, rel=0.1)


# ---------------------------------------------------------------------------
# Fitted targets are stationary points of the (regularised) training objective
# ---------------------------------------------------------------------------


def test_fitted_lsr_target_is_stationary():
    p = linear_regression(dim=5, pool_size=30, runs=3, seed=1, noise=0.7)
    assert p.meta["grad_norm"] < 1e-10
    X, y, w = p.X, p.y, p.w_star
    grad = (X.transpose(1, 2) @ ((X @ w.unsqueeze(-1))[..., 0] - y).unsqueeze(-1))[..., 0] / X.shape[1]
    assert grad.norm(dim=-1).max() < 1e-10
    # ... and differs from the generating weights because of the noise.
    given_ = linear_regression(dim=5, pool_size=30, runs=3, seed=1, noise=0.7, target="given")
    assert (given_.w_star - w).abs().max() > 1e-3


@pytest.mark.parametrize("l2", [1e-3, 0.1])
def test_fitted_logistic_target_is_stationary(l2):
    p = gaussian_clusters(pool_size=40, runs=1, seed=3, dim=2, test_size=0, l2=l2)
    fit = p.meta["target_fit"]
    assert fit["grad_norm"] < 1e-9 and fit["l2"] == l2
    X, y, w = p.X[0], p.y[0], p.w_star[0]
    m = X @ w
    # d/dw mean log(1 + exp(-y m)) + l2/2 ||w||^2 = mean(-y sigmoid(-y m) x) + l2 w
    grad = (X * (-y / (1.0 + torch.exp(y * m)))[:, None]).mean(0) + l2 * w
    assert grad.norm() < 1e-9
    assert w.norm() > 0.1


def test_fitted_softmax_target_is_stationary():
    p = gaussian_clusters(pool_size=40, runs=1, seed=3, dim=2, test_size=0, learner="softmax", l2=0.01)
    X, Y, w = p.X[0], p.y[0], p.w_star[0]
    W = w.reshape(X.shape[1], 2)
    P = torch.softmax(X @ W, -1)
    grad = (X.T @ (P - Y)) / X.shape[0] + 0.01 * W
    assert grad.norm() < 1e-9


def test_fit_target_errors():
    X = torch.randn(1, 5, 2, dtype=DT)
    y = torch.randn(1, 5, 2, dtype=DT).softmax(-1)
    from teachtheory.learners import MLP

    with pytest.raises(ValueError, match="init"):
        fit_target(MLP(2, 3, 2), X, y)
    from teachtheory.learners.linear import LinearLearner

    class Custom(LinearLearner):  # a learner that fit_target does not know
        name = "custom"

    with pytest.raises(TypeError, match="Custom"):
        fit_target(Custom(2, 2), X, y)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _parts(R=2, n=4, d=3):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(1, n, d, generator=gen, dtype=DT)
    y = torch.randn(1, n, generator=gen, dtype=DT)
    w = torch.randn(R, d, generator=gen, dtype=DT)
    return X, y, w


def test_valid_problem_and_to():
    X, y, w = _parts()
    p = Problem(X, y, w[:1], w, X_test=X, y_test=y)
    q = p.to(dtype=torch.float32)
    assert q.X.dtype == torch.float32 and q.w0.dtype == torch.float32 and q.y_test.dtype == torch.float32
    assert p.X.dtype == DT  # the original is untouched


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda X, y, w: Problem(X.clone().index_fill_(1, torch.tensor([1]), math.nan), y, w, w), r"^X contains NaN"),
        (lambda X, y, w: Problem(X, y.clone().fill_(math.inf), w, w), r"^y contains NaN"),
        (lambda X, y, w: Problem(X, y, w.clone().fill_(math.nan), w), r"^w_star contains NaN"),
        (lambda X, y, w: Problem(X, y, w, w, X_test=X.clone().fill_(math.nan), y_test=y), r"^X_test contains"),
        (lambda X, y, w: Problem(X[:, :0], y[:, :0], w, w), r"^X: the pool is empty"),
        (lambda X, y, w: Problem(X[0], y, w, w), r"^X must have shape"),
        (lambda X, y, w: Problem(X, y[:, :3], w, w), r"^y must have shape"),
        (lambda X, y, w: Problem(X, y[..., None, None], w, w), r"^y must have shape"),
        (lambda X, y, w: Problem(X.expand(3, -1, -1), y.expand(3, -1), w, w), r"^X has leading size 3"),
        (lambda X, y, w: Problem(X, y, torch.cat([w, w]), w), r"^w_star has leading size 4"),
        (lambda X, y, w: Problem(X, y, w[:, :2], w), r"^w_star must have shape"),
        (lambda X, y, w: Problem(X, y, w, w[0]), r"^w0 must have shape"),
        (lambda X, y, w: Problem(X, y, w, w, X_test=X), r"X_test and y_test"),
        (lambda X, y, w: Problem(X, y, w, w, y_test=y), r"X_test and y_test"),
    ],
)
def test_problem_validation_errors_name_the_argument(build, match):
    X, y, w = _parts()
    with pytest.raises(ValueError, match=match):
        build(X, y, w)


@pytest.mark.parametrize(
    "X_test, y_test",
    [
        (torch.zeros(1, 5, 3, dtype=DT), torch.zeros(1, 4, dtype=DT)),  # n differs
        (torch.zeros(1, 5, 3, dtype=DT), torch.zeros(1, 1, dtype=DT)),  # silently broadcastable
        (torch.zeros(1, 5, 7, dtype=DT), torch.zeros(1, 5, dtype=DT)),  # d differs from the pool's
        (torch.zeros(3, 5, 3, dtype=DT), torch.zeros(3, 5, dtype=DT)),  # leading size neither 1 nor runs=2
        (torch.zeros(5, 3, dtype=DT), torch.zeros(5, dtype=DT)),  # missing leading axis
    ],
    ids=["n", "broadcast", "d", "leading", "rank"],
)
def test_problem_rejects_mismatched_test_split(X_test, y_test):
    X, y, w = _parts()
    with pytest.raises(ValueError, match="X_test|y_test"):
        Problem(X, y, w, w, X_test=X_test, y_test=y_test)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: linear_regression(noise=-0.1), "noise"),
        (lambda: linear_regression(target="oracle"), "target"),
        (lambda: linear_regression(dim=0), "dim"),
        (lambda: linear_regression(pool_size=0), "pool_size"),
        (lambda: linear_regression(runs=0), "runs"),
        (lambda: gaussian_clusters(pool_size=10, learner="svm"), "learner"),
        (lambda: moons(pool_size=10, learner="tree"), "learner"),
        (lambda: gaussian_clusters(pool_size=-1), "pool_size"),
        (lambda: digits35(project_dim=0), "project_dim"),
        (lambda: digits35(test_fraction=1.0), "test_fraction"),
        (lambda: digits(learner="logistic", project_dim=4), "logistic"),
        (lambda: linear_regression(runs=2, seed=[1, 2, 3]), "seed"),
    ],
)
def test_generator_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: linear_regression(runs=True), "runs"),
        (lambda: linear_regression(dim=2.0), "dim"),
        (lambda: linear_regression(noise="0.1"), "noise"),
        (lambda: gaussian_clusters(pool_size=10, dtype=torch.int64), "dtype"),
    ],
)
def test_generator_type_errors(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_check_learner_errors():
    p = linear_regression(dim=3, pool_size=5, runs=1)
    p.check_learner(LeastSquares(3))
    with pytest.raises(ValueError, match="input_dim"):
        p.check_learner(LeastSquares(2))
    with pytest.raises(ValueError, match="parameters"):
        p.check_learner(Softmax(3, 2))
    c = gaussian_clusters(pool_size=10, runs=1, test_size=0)
    c.check_learner(Logistic(3))
    wrong = Problem(c.X, torch.nn.functional.one_hot((c.y > 0).long(), 3).to(DT), torch.zeros(1, 3, dtype=DT),
                    torch.zeros(1, 3, dtype=DT))
    with pytest.raises(ValueError, match="labels"):
        wrong.check_learner(Logistic(3))


# ---------------------------------------------------------------------------
# RunStreams
# ---------------------------------------------------------------------------


def test_uniform_moments_within_five_standard_errors():
    N = 400_000
    u = RunStreams(torch.tensor([3, 4])).uniform("test", 0, (N // 2,)).reshape(-1)
    assert u.min() >= 0 and u.max() < 1
    mean_se = math.sqrt(1 / 12 / N)
    var_se = math.sqrt((1 / 80 - (1 / 12) ** 2) / N)
    assert abs(u.mean().item() - 0.5) < 5 * mean_se
    assert abs(u.var().item() - 1 / 12) < 5 * var_se


def test_normal_moments_within_five_standard_errors():
    N = 400_000
    z = RunStreams(torch.tensor([9])).normal("test", 2, (N,)).reshape(-1)
    assert abs(z.mean().item()) < 5 * math.sqrt(1 / N)
    assert abs(z.var().item() - 1) < 5 * math.sqrt(2 / N)
    assert abs((z**3).mean().item()) < 5 * math.sqrt(15 / N)


def test_integers_are_uniform_over_their_range():
    N, high = 200_000, 7
    k = RunStreams(torch.tensor([1])).integers("ints", 0, high, (N,)).reshape(-1)
    assert k.dtype == torch.int64 and k.min() == 0 and k.max() == high - 1
    counts = torch.bincount(k, minlength=high).double()
    expected = N / high
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 30.0  # chi-square with 6 degrees of freedom: P(> 30) ~ 4e-5
    with pytest.raises(ValueError, match="high"):
        RunStreams(torch.tensor([1])).integers("ints", 0, 0, (3,))


@settings(max_examples=20, deadline=None)
@given(seeds=st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=6, unique=True),
       step=st.integers(0, 10**6), tag=st.text(min_size=1, max_size=8))
def test_runs_are_independent_of_batch_composition(seeds, step, tag):
    batch = RunStreams(torch.tensor(seeds))
    u = batch.uniform(tag, step, (3, 2))
    z = batch.normal(tag, step, (5,))
    b = batch.bits(tag, step, (4,))
    assert u.shape == (len(seeds), 3, 2) and z.shape == (len(seeds), 5)
    perm = list(reversed(range(len(seeds))))
    reversed_streams = RunStreams(torch.tensor([seeds[i] for i in perm]))
    torch.testing.assert_close(reversed_streams.uniform(tag, step, (3, 2)), u[perm], rtol=0, atol=0)
    for r, s in enumerate(seeds):
        alone = RunStreams(torch.tensor([s]))
        torch.testing.assert_close(alone.uniform(tag, step, (3, 2))[0], u[r], rtol=0, atol=0)
        torch.testing.assert_close(alone.normal(tag, step, (5,))[0], z[r], rtol=0, atol=0)
        assert torch.equal(alone.bits(tag, step, (4,))[0], b[r])
        assert torch.equal(batch.subset([r]).bits(tag, step, (4,))[0], b[r])


def test_streams_differ_by_seed_tag_and_step_and_are_uncorrelated():
    N = 100_000
    s = RunStreams(torch.tensor([0, 1]))
    u = s.uniform("a", 0, (N,))
    others = [u[1], s.uniform("b", 0, (N,))[0], s.uniform("a", 1, (N,))[0]]
    for v in others:
        assert not torch.equal(u[0], v)
        corr = float(torch.corrcoef(torch.stack([u[0], v]))[0, 1])
        assert abs(corr) < 5 / math.sqrt(N)
    assert stream_tag("a") == stream_tag("a") != stream_tag("b")


def test_generator_is_seeded_per_run():
    s = RunStreams(torch.tensor([10, 20]))
    a = torch.rand(4, generator=s.generator("g", 1), dtype=DT)
    b = torch.rand(4, generator=RunStreams(torch.tensor([20])).generator("g", 0), dtype=DT)
    torch.testing.assert_close(a, b)


def test_as_seeds():
    assert as_seeds(5, 3).tolist() == [5, 6, 7]
    assert as_seeds([4, 9]).tolist() == [4, 9]
    assert as_seeds(torch.tensor([[1, 2]])).tolist() == [1, 2]
    with pytest.raises(ValueError, match="runs"):
        as_seeds(5)
    with pytest.raises(ValueError, match="seed"):
        as_seeds([])
    with pytest.raises(ValueError, match="seed"):
        as_seeds([1, 2], runs=3)
    with pytest.raises(TypeError, match="seed"):
        as_seeds(1.5)


# ---------------------------------------------------------------------------
# Shared pools: seeded by pool_seed, independent of the batch size
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: linear_regression(dim=3, pool_size=9, noise=0.2, test_size=4, shared_pool=True, **kw),
        lambda **kw: gaussian_clusters(pool_size=16, dim=2, test_size=5, **kw),
        lambda **kw: moons(pool_size=16, test_size=5, **kw),
        lambda **kw: digits35(project_dim=6, **kw),
    ],
    ids=["linear_regression", "gaussian_clusters", "moons", "digits35"],
)
def test_shared_pool_run_r_equals_a_single_run_given_the_pool_seed(make):
    batch = make(runs=3, seed=5)
    for runs in (1, 4):  # the shared pool does not depend on the batch size
        other = make(runs=runs, seed=5)
        for name in ("X", "y", "X_test", "y_test"):
            torch.testing.assert_close(getattr(other, name), getattr(batch, name), rtol=0, atol=0)
    for r in range(3):
        single = make(runs=1, seed=5 + r, pool_seed=5)
        for name in ("X", "y", "X_test", "y_test", "w_star"):
            torch.testing.assert_close(getattr(single, name), getattr(batch, name), rtol=0, atol=0)
        torch.testing.assert_close(single.w0[0], batch.w0[r], rtol=0, atol=0)
    assert not torch.equal(make(runs=1, seed=6).X, batch.X)  # without pool_seed, seed 6 has its own pool


def test_teaching_run_r_of_a_shared_pool_batch_equals_a_single_run():
    from teachtheory.engine import teach
    from teachtheory.learners import Logistic
    from teachtheory.teachers import make_teacher

    batch = gaussian_clusters(pool_size=16, runs=3, seed=5, dim=2, test_size=5)
    traj = teach(batch, Logistic(3), make_teacher("imt"), 6, 0.1, seed=5, record=("distance", "test_accuracy"))
    for r in range(3):
        single = gaussian_clusters(pool_size=16, runs=1, seed=5 + r, dim=2, test_size=5, pool_seed=5)
        one = teach(single, Logistic(3), make_teacher("imt"), 6, 0.1, seed=5 + r, record=("distance", "test_accuracy"))
        for k in traj.metrics:
            np.testing.assert_array_equal(one.metrics[k][0], traj.metrics[k][r])


def test_pool_seed_only_for_shared_pools():
    with pytest.raises(ValueError, match="pool_seed"):
        linear_regression(runs=2, pool_seed=3)
    with pytest.raises(ValueError, match="pool_seed"):
        gaussian_clusters(pool_size=10, runs=2, pool_seed=-1)


def test_case_seeds_of_different_seeds_are_disjoint():
    from teachtheory.claims import CheckContext, case_seeds

    a, b = case_seeds(0, 64, "mc"), case_seeds(1, 64, "mc")
    assert len(set(a)) == 64 and not set(a) & set(b)  # seed + r would share 63 of 64 cases
    assert case_seeds(0, 64, "mc") == a and case_seeds(0, 8, "mc") == a[:8]  # deterministic, prefix-stable
    assert not set(a) & set(case_seeds(0, 64, "quad"))
    assert all(0 <= s < 2**62 for s in a + b)
    assert CheckContext(seed=3).case_seeds(4, "x") == case_seeds(3, 4, "x")


# ---------------------------------------------------------------------------
# Target fits that do not converge; numpy inputs and dtypes
# ---------------------------------------------------------------------------


def test_newton_that_stops_above_tol_raises():
    from teachtheory.learners import Logistic
    from teachtheory.validation import NonConvergenceError

    X = torch.tensor([[[2.0, 1.0], [-2.0, 1.0], [3.0, 1.0], [-1.0, 1.0]]], dtype=DT)
    y = torch.tensor([[1.0, -1.0, 1.0, -1.0]], dtype=DT)  # separable: no finite optimum without l2
    with pytest.raises(NonConvergenceError, match=r"Newton stopped after 3 iterations .* above tol"):
        fit_target(Logistic(2), X, y, l2=0.0, max_iter=3)
    _, info = fit_target(Logistic(2), X, y, l2=1e-2)
    assert info["converged"] and info["grad_norm"] < 1e-10
    with pytest.raises(ValueError, match="l2"):
        fit_target(Logistic(2), X, y, l2=-1e-3)


def test_lbfgs_mlp_target_records_and_warns_when_above_tol():
    from teachtheory.learners import MLP
    from teachtheory.validation import NonConvergenceWarning

    gen = torch.Generator().manual_seed(1)
    X = torch.randn(1, 30, 3, generator=gen, dtype=DT)
    y = torch.nn.functional.one_hot((X[..., 0] > 0).long(), 2).to(DT)
    init = 0.5 * torch.randn(1, MLP(3, 4, 2).num_params, generator=gen, dtype=DT)
    with pytest.warns(NonConvergenceWarning, match="L-BFGS stopped"):
        w, info = fit_target(MLP(3, 4, 2), X, y, init=init, max_iter=1)
    assert info["converged"] is False and info["grad_norm"] > 1e-10 and torch.isfinite(w).all()


def test_problem_accepts_numpy_and_integer_labels():
    X, y, w = _parts()
    p = Problem(X.numpy(), y.numpy(), w[:1].numpy(), w.numpy())
    assert isinstance(p.X, torch.Tensor) and p.X.dtype == DT and p.w0.dtype == DT
    labels = Problem(X, torch.tensor([[1, -1, 1, -1]]), w[:1], w)
    assert labels.y.dtype == DT  # integer labels take the pool's floating dtype
    with pytest.raises(TypeError, match="dtype"):
        Problem(X.float(), y, w[:1], w)
