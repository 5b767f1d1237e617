"""The per-step fast paths of teach keep the numbers: pool samples drawn per block of steps, the learner's
constants gathered with them, lr as a 0-dim tensor, the K = 1 and few-example linear paths, the LAST
least-squares label, the class-major softmax residual, and run r of a batch equal to its single run bit
for bit where the step is elementwise (SGD, LAST)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from teachtheory.engine import find_divergence, teach
from teachtheory.learners import SGD, Adam, LeastSquares, Logistic, Momentum, Softmax, UpdateRule
from teachtheory.learners.base import binary_softmax_residual, softmax_residual, softmax_residual_
from teachtheory.problems import Problem
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teachers import make_teacher
from teachtheory.teachers.base import SAMPLE_STREAM, TeachingContext
from teachtheory.teachers.last import synthesize_labels
from teachtheory.theory.last import greedy_label_lsr


def _problem(kind: str, R: int, n: int, d: int, K: int, seed: int, shared: bool, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    learners = {"lsr": lambda: LeastSquares(d), "logistic": lambda: Logistic(d), "softmax": lambda: Softmax(d, K)}
    learner = learners[kind]()
    Rp = 1 if shared else R
    X = torch.randn(Rp, n, d, generator=gen, dtype=dtype)
    if kind == "lsr":
        y = torch.randn(Rp, n, generator=gen, dtype=dtype)
    elif kind == "logistic":
        y = torch.where(torch.rand(Rp, n, generator=gen, dtype=dtype) < 0.5, -1.0, 1.0).to(dtype)
    else:
        y = torch.nn.functional.one_hot(torch.randint(0, K, (Rp, n), generator=gen), K).to(dtype)
    w_star = torch.randn(R, learner.num_params, generator=gen, dtype=dtype) / d**0.5
    w0 = w_star + torch.randn(R, learner.num_params, generator=gen, dtype=dtype) / d**0.5
    return Problem(X, y, w_star, w0), learner


def _one_run(problem: Problem, r: int) -> Problem:
    def pick(t):
        return t if t.shape[0] == 1 else t[r:r + 1]

    return Problem(pick(problem.X), pick(problem.y), pick(problem.w_star), problem.w0[r:r + 1])


# -- pool samples per block ----------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("sampling", ["uniform", "sequential"])
@pytest.mark.parametrize("m", [1, 3])
def test_pool_samples_per_block_equal_one_draw_per_step(shared, sampling, m):
    problem, learner = _problem("softmax", 3, 11, 4, 3, 0, shared)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.1, batch_size=m,
                          streams=RunStreams(as_seeds(5, 3)), sampling=sampling)
    # in order (blocks growing), then out of order (a fresh block each time), then in order again
    for step in [*range(40), 7, 3, 1000, 1001, 2, *range(40, 45)]:
        index, x, y = ctx.pool_sample(step)
        if sampling == "uniform":
            expected = ctx.streams.integers(SAMPLE_STREAM, step, 11, (m,))
        else:
            expected = ((torch.arange(m) + step * m) % 11).expand(3, m)
        assert torch.equal(index, expected), step
        runs = torch.arange(3)[:, None]
        X = problem.X.expand(3, -1, -1)
        Y = problem.y.expand(3, -1, -1)
        assert torch.equal(x, X[runs, expected]) and torch.equal(y, Y[runs, expected])
        assert x.is_contiguous()
        constants = ctx.sample_constants(step)
        assert torch.equal(constants["sqnorm"], (x * x).sum(-1))  # the pool's, gathered: the same numbers
        assert "_pool_t" not in constants  # not a per-example constant


def test_pool_samples_follow_a_new_pool_or_batch_size():
    problem, learner = _problem("lsr", 2, 9, 3, 1, 1, True)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.1, batch_size=1, streams=RunStreams(as_seeds(0, 2)))
    ctx.pool_sample(0)
    other, _ = _problem("lsr", 2, 9, 3, 1, 2, True)
    ctx.problem = other
    _, x, _ = ctx.pool_sample(1)
    index = ctx.streams.integers(SAMPLE_STREAM, 1, 9, (1,))
    assert torch.equal(x, other.X[0][index])
    ctx.batch_size = 2
    index, x, _ = ctx.pool_sample(1)
    assert x.shape == (2, 2, 3) and torch.equal(index, ctx.streams.integers(SAMPLE_STREAM, 1, 9, (2,)))


def test_pool_samples_under_autograd_are_drawn_per_step():
    problem, learner = _problem("lsr", 2, 9, 3, 1, 3, True)
    X = problem.X.clone().requires_grad_(True)
    problem = Problem(X, problem.y, problem.w_star, problem.w0)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.1, batch_size=1, streams=RunStreams(as_seeds(0, 2)))
    for step in range(3):  # each step's graph is its own: backward through one leaves the next usable
        _, x, _ = ctx.pool_sample(step)
        (grad,) = torch.autograd.grad(x.sum(), X)
        assert grad.sum() == 2 * 3
    assert ctx.sample_constants(0) == {}


# -- teach: run r of a batch is its single run, bit for bit, where the step is elementwise --------------


@pytest.mark.parametrize("kind", ["lsr", "logistic", "softmax"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("teacher", ["sgd", "last"])
@pytest.mark.parametrize("batch_size", [1, 2])
def test_batch_rows_equal_single_runs_bit_for_bit(kind, dtype, teacher, batch_size):
    problem, learner = _problem(kind, 3, 40, 7, 3, 4, True, dtype)
    seeds = [8, 2, 5]
    options = {"steps": 25, "lr": 0.05, "batch_size": batch_size, "record": ("distance", "loss")}
    batch = teach(problem, learner, make_teacher(teacher), seed=seeds, **options)
    for r, seed in enumerate(seeds):
        single = teach(_one_run(problem, r), learner, make_teacher(teacher), seed=[seed], **options)
        assert np.array_equal(single.final_w[0], batch.final_w[r])
        assert np.array_equal(single["distance"][0], batch["distance"][r])
        # the pool loss is one GEMM for the batch, a matrix-vector product alone: equal up to rounding
        np.testing.assert_allclose(single["loss"][0], batch["loss"][r], rtol=1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("rule", [SGD(), Momentum(0.8), Adam()])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rules_take_lr_as_a_float_or_a_float64_scalar_tensor_alike(rule, dtype):
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 37, generator=gen, dtype=dtype)
    grad = torch.randn(3, 37, generator=gen, dtype=dtype)
    state = rule.init(w)
    a, state_a = rule.step(w, grad, 0.0123, state, 4)
    b, state_b = rule.step(w, grad, torch.tensor(0.0123, dtype=torch.float64), state, 4)
    assert a.dtype == b.dtype == dtype and torch.equal(a, b)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    c, state_c = rule.step(w, grad, torch.tensor(0.0123, dtype=dtype), state, 4)  # teach's: the weights' dtype
    assert c.dtype == dtype and torch.equal(a, c)
    assert all(torch.equal(state_a[k], state_c[k]) for k in state_a)


@pytest.mark.parametrize("kind", ["lsr", "softmax"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_imt_scores_with_cached_pool_constants_equal_the_closed_form(kind, dtype):
    """IMT keeps eta^2 ||x||^2 and -2 eta in the pool constants: the scores are greedy_score_linear's, bit for
    bit, at every call and after lr changes."""
    from teachtheory.teachers.imt import pool_scores
    from teachtheory.theory.last import greedy_score_linear

    problem, learner = _problem(kind, 3, 30, 5, 3, 6, True, dtype)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.07, batch_size=1, streams=RunStreams(as_seeds(0, 3)))
    w = problem.w0
    for lr in (0.07, 0.07, 0.3):
        ctx.lr = lr
        X, y = ctx.pool()
        jac = learner.output_jacobian(w, X, w - problem.w_star)  # as IMT scores, in the same layouts
        r = learner.residual_(jac.z, learner.label_vector(y))
        expected = greedy_score_linear(r, jac.jvp["all"], jac.gram["all"][..., None], lr).sum(-1)
        assert torch.equal(pool_scores(ctx, w), expected)
        assert ctx.pool_constants()["_linear_score"][0] == lr


def test_divergence_found_at_the_same_step_without_the_weight_check():
    """With the distance recorded at every step teach skips its weight-finiteness check; the first
    divergent step must not move."""
    problem, learner = _problem("lsr", 4, 20, 5, 1, 6, True)
    problem = Problem(problem.X * 3.0, problem.y, problem.w_star, problem.w0)
    options = {"steps": 60, "lr": 2.0, "seed": 0, "on_divergence": "ignore"}
    every = teach(problem, learner, make_teacher("sgd"), record=("distance",), **options)
    checked = teach(problem, learner, make_teacher("sgd"), record=("distance", "loss"), record_every=1, **options)
    assert every.diverged.any()
    np.testing.assert_array_equal(every.diverged_step, checked.diverged_step)
    np.testing.assert_array_equal(every.diverged_step, find_divergence({"distance": every["distance"]})[1])


# -- learner and teacher pieces ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lsr", "softmax"])
@pytest.mark.parametrize("n", [1, 3, 8, 9, 30])
def test_output_jacobian_few_examples_and_gemm_paths_agree(kind, n):
    problem, learner = _problem(kind, 4, n, 6, 3, 7, True)
    w, e = problem.w0, problem.w0 - problem.w_star
    shared = learner.output_jacobian(w, problem.X, e)
    per_run = learner.output_jacobian(w, problem.X.expand(4, -1, -1).contiguous(), e)
    W, E = learner.weights(w), learner.weights(e)
    z = torch.einsum("nd,rdk->rnk", problem.X[0], W)
    jvp = torch.einsum("nd,rdk->rnk", problem.X[0], E)
    for jac in (shared, per_run):
        torch.testing.assert_close(jac.z, z, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(jac.jvp["all"], jvp, rtol=1e-12, atol=1e-12)
    x, y = problem.X.expand(4, -1, -1)[:, :1], problem.y.expand(4, *problem.y.shape[1:])[:, :1]
    torch.testing.assert_close(learner.mean_grad(w, x, y), learner.grad(w, x, y)[:, 0], rtol=1e-12, atol=1e-12)


def test_last_least_squares_label_is_the_closed_form_and_keeps_the_truth_at_x_zero():
    problem, learner = _problem("lsr", 3, 5, 4, 1, 8, False)
    x, y = problem.X[:, :4].clone(), problem.y[:, :4]
    x[1, 2] = 0.0
    labels = synthesize_labels(learner, problem.w0, problem.w_star, x, y, 0.3)
    closed = greedy_label_lsr(problem.w0[:, None], problem.w_star[:, None], x, 0.3)
    mask = torch.ones_like(labels, dtype=torch.bool)
    mask[1, 2] = False
    torch.testing.assert_close(labels[mask], closed[mask], rtol=1e-12, atol=1e-12)
    assert labels[1, 2] == y[1, 2]
    ball = synthesize_labels(learner, problem.w0, problem.w_star, x, y, 0.3, "ball:0.25")
    assert ((ball - learner.outputs(problem.w0, x)).abs() <= 0.25 + 1e-12).all()


@pytest.mark.parametrize("K", [2, 4])
@pytest.mark.parametrize("shared_labels", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_residual_in_the_class_major_layout(K, shared_labels, dtype):
    R, n = 3, 50
    gen = torch.Generator().manual_seed(9)
    z_cm = torch.randn(R, K, n, generator=gen, dtype=dtype) * 3.0  # contiguous, classes outermost
    z = z_cm.transpose(-1, -2)  # [R, n, K], class-major
    y = torch.rand(1 if shared_labels else R, n, K, generator=gen, dtype=dtype)  # soft labels, any sum
    expected = torch.softmax(z.contiguous(), -1) * y.sum(-1, keepdim=True) - y
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(softmax_residual(z, y), expected, **tol)
    torch.testing.assert_close(softmax_residual_(z.clone().transpose(-1, -2).contiguous().transpose(-1, -2), y),
                               expected, **tol)
    z_grad = z_cm.clone().requires_grad_(True)
    r = softmax_residual(z_grad.transpose(-1, -2), y)  # under autograd: no in-place work on the softmax
    torch.testing.assert_close(r, expected, **tol)
    r.sum().backward()
    assert torch.isfinite(z_grad.grad).all()


@pytest.mark.parametrize("labels", ["one-hot", "soft"])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_two_class_softmax_scores_equal_the_sum_over_both_outputs(labels, shared, dtype):
    """K = 2: r_0 = -r_1 for any labels, so IMT scores one output (r_1, (E^T x)_1 - (E^T x)_0, 2 ||x||^2);
    the scores are the general sum over both outputs of greedy_score_linear, and so is the selection."""
    from teachtheory.teachers.imt import pool_scores
    from teachtheory.theory.last import greedy_score_linear

    problem, learner = _problem("softmax", 4, 40, 6, 2, 11, shared, dtype)
    if labels == "soft":  # any sum: the residual's multiply by sum_k y_k is exercised
        gen = torch.Generator().manual_seed(3)
        problem = Problem(problem.X, torch.rand(problem.y.shape, generator=gen, dtype=dtype) * 1.5,
                          problem.w_star, problem.w0)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.2, batch_size=1, streams=RunStreams(as_seeds(0, 4)))
    X, y = ctx.pool()
    w = problem.w0
    z = learner.outputs(w, X)
    r = softmax_residual(z.contiguous(), y)
    r1 = binary_softmax_residual(z, y)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(r1, r[..., 1], **tol)
    torch.testing.assert_close(-r1, r[..., 0], **tol)
    jvp = learner.output_jacobian(w, X, w - problem.w_star).jvp["all"].contiguous()
    expected = greedy_score_linear(r, jvp, (X * X).sum(-1)[..., None], 0.2).sum(-1)
    scores = pool_scores(ctx, w)
    torch.testing.assert_close(scores, expected, **tol)
    assert torch.equal(scores.argmin(-1), expected.argmin(-1))
    assert torch.equal(pool_scores(ctx, w), scores)  # with the cached constants: the same numbers


class _PoisonRule(UpdateRule):
    """SGD that makes one weight of run r NaN after step t, for each (r, t) in ``at``."""

    name = "poison"

    def __init__(self, at):
        self.at = at

    def step(self, w, grad, lr, state, t):
        """SGD, then the planted NaNs."""
        w = w - lr * grad
        for run, step in self.at:
            if t == step:
                w = w.clone()
                w[run, 0] = float("nan")
        return w, state


@pytest.mark.parametrize("record", [("loss",), ("distance",)])
def test_first_nonfinite_weights_found_across_check_blocks(record):
    """With sparse recording teach flags non-finite weights per step and searches the flags per block: the
    first bad step is exact on either side of a block boundary (FINITE_CHECK_BLOCK = 256)."""
    problem, learner = _problem("lsr", 4, 20, 5, 1, 10, True)
    rule = _PoisonRule([(1, 300), (2, 5), (3, 255)])
    traj = teach(problem, learner, make_teacher("sgd"), steps=400, lr=0.01, update=rule, record=record,
                 record_every=1000, on_divergence="ignore")
    np.testing.assert_array_equal(traj.steps_recorded, [0, 400])
    np.testing.assert_array_equal(traj.diverged_step, [-1, 301, 6, 256])


@pytest.mark.parametrize("kind", ["lsr", "softmax"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_imt_scoring_runs_in_groups_selects_as_all_at_once(kind, batch_size, monkeypatch):
    """select_examples scores many runs on a shared pool a group at a time: the same examples, the same run."""
    import teachtheory.teachers.imt as imt

    problem, learner = _problem(kind, 8, 50, 6, 3, 7, True, torch.float32)
    options = {"steps": 20, "lr": 0.05, "batch_size": batch_size, "record": ("distance",)}
    whole = teach(problem, learner, make_teacher("imt"), seed=1, **options)
    per_run = 2 * learner.output_dim * 50 * 4
    monkeypatch.setattr(imt, "SCORE_GROUP_BYTES", 3 * per_run)  # groups of 3, 3 and 2 runs
    monkeypatch.setattr(imt, "SCORE_GROUP_MIN_RUNS", 2)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.05, batch_size=batch_size,
                          streams=RunStreams(as_seeds(0, 8)))
    assert imt._run_group(ctx, problem.w0) == 3
    grouped = teach(problem, learner, make_teacher("imt"), seed=1, **options)
    assert np.array_equal(whole.final_w, grouped.final_w)
    assert np.array_equal(whole["distance"], grouped["distance"])
    monkeypatch.setattr(imt, "SCORE_GROUP_MIN_RUNS", 4)  # groups of 3 runs are too few: all at once
    assert imt._run_group(ctx, problem.w0) == 8


# -- per-step reuse: w - w*, the LAST divisors per block, the outputs z of the taught x ----------------------


def test_direction_is_computed_once_per_weights_and_follows_changes():
    problem, learner = _problem("lsr", 2, 9, 3, 1, 5, True)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.1, batch_size=1, streams=RunStreams(as_seeds(0, 2)))
    w = problem.w0.clone()
    e = ctx.direction(w)
    assert torch.equal(e, w - problem.w_star) and ctx.direction(w) is e
    w.add_(1.0)  # changed in place: its version moves on, the cached e is stale
    assert torch.equal(ctx.direction(w), w - problem.w_star)
    e = ctx.direction(w)
    e.mul_(2.0)  # a caller wrote into e: not handed out again
    assert torch.equal(ctx.direction(w), w - problem.w_star)
    ctx.problem = Problem(problem.X, problem.y, problem.w_star + 1.0, problem.w0)  # another target
    assert torch.equal(ctx.direction(w), w - ctx.problem.w_star)
    v = w.clone().requires_grad_(True)  # under autograd: always fresh, part of the graph
    first = ctx.direction(v)
    assert first.grad_fn is not None and ctx.direction(v) is not first


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("zero", [True, False])
def test_last_least_squares_labels_per_block_equal_labels_per_step(dtype, m, zero):
    problem, learner = _problem("lsr", 3, 12, 4, 1, 6, True, dtype)
    X = problem.X.clone()
    if zero:  # x = 0: the label stays the true one (the masked path; without a zero row, no mask)
        X[0, 5] = 0.0
    problem = Problem(X, problem.y, problem.w_star, problem.w0)
    teacher = make_teacher("last")
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.3, batch_size=m, streams=RunStreams(as_seeds(2, 3)))
    gen = torch.Generator().manual_seed(1)
    masked = 0
    for step in range(70):
        w = problem.w0 + 0.1 * torch.randn(problem.w0.shape, generator=gen, dtype=dtype)
        index, x, y = ctx.pool_sample(step)
        masked += int((index == 5).sum())
        batch = teacher.teach(ctx, w, step)
        assert torch.equal(batch.y, synthesize_labels(learner, w, problem.w_star, x, y, 0.3))
    assert masked > 0  # row 5 was drawn


def test_outputs_of_a_teacher_are_reused_only_at_their_own_weights():
    from teachtheory.engine import apply_batch_gradient

    problem, learner = _problem("lsr", 3, 12, 4, 1, 7, True)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.3, batch_size=1, streams=RunStreams(as_seeds(2, 3)))
    w = problem.w0.clone()
    batch = make_teacher("last").teach(ctx, w, 0)
    assert batch.outputs is not None and batch.outputs[0] is w
    expected = learner.mean_grad(w, batch.x, batch.y)
    assert torch.equal(apply_batch_gradient(learner, w, batch), expected)  # the same numbers as recomputing z
    w_other = w.clone()
    batch.outputs = (*batch.outputs[:3], batch.outputs[3] + 1.0)  # outputs that are not z: shows when they are read
    assert not torch.equal(apply_batch_gradient(learner, w, batch), expected)
    assert torch.equal(apply_batch_gradient(learner, w_other, batch), learner.mean_grad(w_other, batch.x, batch.y))
    w.add_(0.0)  # modified in place (a new version): no longer the weights they were computed at
    assert torch.equal(apply_batch_gradient(learner, w, batch), expected)


def test_pool_memo_is_made_once_per_pool():
    problem, learner = _problem("lsr", 2, 9, 3, 1, 9, True)
    ctx = TeachingContext(problem=problem, learner=learner, lr=0.1, batch_size=1, streams=RunStreams(as_seeds(0, 2)))
    calls = []

    def make():
        calls.append(1)
        return ctx.problem.X.amax(1)

    first = ctx.pool_memo("box", make)
    assert ctx.pool_memo("box", make) is first and len(calls) == 1
    other, _ = _problem("lsr", 2, 9, 3, 1, 10, True)
    ctx.problem = other  # another pool: made again, from it
    assert torch.equal(ctx.pool_memo("box", make), other.X.amax(1)) and len(calls) == 2
