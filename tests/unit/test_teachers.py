"""Tests for teachtheory.teachers: IMT/LAST/mixed/DHT/policies/theorem teachers against brute force and scipy.

Every reference objective here is computed from scratch: the per-example loss is written from its
definition and differentiated by torch.autograd, and the one-step squared distance
||w - lr grad l(w; x, y) - w*||^2 is formed explicitly, per example, in Python loops.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar

from teachtheory.constraints import parse_label_set
from teachtheory.engine import teach
from teachtheory.learners import MLP, LeastSquares, Logistic, Softmax
from teachtheory.problems import Problem, linear_regression
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teachers import (
    ArmijoTeacher,
    DHTTeacher,
    DistillationTeacher,
    HessianTeacher,
    IMTTeacher,
    LabelSmoothingTeacher,
    LASTTeacher,
    MixedTeacher,
    RandomTeacher,
    ScaledGradientTeacher,
    SelfTrainingTeacher,
    TeachingContext,
    make_teacher,
    synthesize_labels,
)
from teachtheory.teachers.imt import pool_scores
from teachtheory.theory.last import greedy_label_lsr

DT = torch.float64
SETTINGS = settings(max_examples=20, deadline=None)
FEW = settings(max_examples=10, deadline=None)
FEW_FIXED = FEW  # the non-isotropic label solver paths (regression tests below) draw freely again
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
LRS = st.floats(min_value=0.02, max_value=2.0)


# ---------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------


def ref_loss(kind: str, learner, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One example's loss from its definition: w [p], x [d], y [] or [K]."""
    d = x.shape[0]
    if kind == "lsr":
        K = learner.output_dim
        return 0.5 * ((x @ w.reshape(d, K) - y.reshape(K)) ** 2).sum()
    if kind == "logistic":
        return torch.nn.functional.softplus(-y * (w * x).sum())
    if kind == "softmax":
        z = x @ w.reshape(d, learner.output_dim)
        return -(y * (z - torch.logsumexp(z, 0))).sum()
    if kind == "mlp":
        h, K = learner.hidden, learner.output_dim
        z = torch.relu(x @ w[: d * h].reshape(d, h)) @ w[d * h:].reshape(h, K)
        return -(y * (z - torch.logsumexp(z, 0))).sum()
    raise AssertionError(kind)


def ref_grad(kind, learner, w, x, y, create_graph=False):
    v = w if w.requires_grad else w.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(ref_loss(kind, learner, v, x, y), v, create_graph=create_graph)
    return g


def layer_weights(kind, learner, beta):
    """Per-parameter weights of the squared distance (LAST Eq. 4 weighs the MLP's first layer by beta)."""
    weights = torch.ones(learner.num_params, dtype=DT)
    if kind == "mlp":
        weights[: learner.input_dim * learner.hidden] = beta
    return weights


def one_step_score(kind, learner, w, w_star, x, y, lr, beta=1.0) -> float:
    """||w - lr g - w*||^2 - ||w - w*||^2 (weighted), computed without cancellation."""
    g = ref_grad(kind, learner, w, x, y)
    e = w - w_star
    c = layer_weights(kind, learner, beta)
    return float(lr * lr * (c * g * g).sum() - 2.0 * lr * (c * e * g).sum())


def one_step_distance(kind, learner, w, w_star, x, y, lr, beta=1.0) -> float:
    g = ref_grad(kind, learner, w, x, y)
    e = w - lr * g - w_star
    return float((layer_weights(kind, learner, beta) * e * e).sum())


def score_fn(kind, learner, w, w_star, x, lr, beta=1.0):
    """y (numpy) -> (score, d score / d y) by double backprop through the reference loss."""
    c = layer_weights(kind, learner, beta)
    e = w - w_star

    def f(y_np):
        y = torch.tensor(np.asarray(y_np, dtype=np.float64), dtype=DT, requires_grad=True)
        v = w.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(ref_loss(kind, learner, v, x, y), v, create_graph=True)
        s = lr * lr * (c * g * g).sum() - 2.0 * lr * (c * e * g).sum()
        (gy,) = torch.autograd.grad(s, y)
        return float(s.detach()), gy.detach().numpy()

    return f


def np_project(spec: str, y: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Exact Euclidean projections onto the sets used below (written independently of the package)."""
    if spec == "none":
        return y
    if spec == "simplex":
        u = np.sort(y)[::-1]
        css = np.cumsum(u) - 1.0
        k = np.arange(1, y.size + 1)
        rho = np.nonzero(u - css / k > 0)[0][-1]
        return np.maximum(y - css[rho] / (rho + 1), 0.0)
    if spec.startswith("ball:") or spec.startswith("ball-truth:"):
        r = float(spec.split(":")[1])
        c = pred if spec.startswith("ball:") else truth
        n = np.linalg.norm(y - c)
        return y if n <= r else c + (y - c) * r / n
    if spec == "nonneg+ball-origin:2":
        z = np.maximum(y, 0.0)
        n = np.linalg.norm(z)
        return z if n <= 2.0 else z * 2.0 / n
    raise AssertionError(spec)


def scipy_constraints(spec: str, K: int, pred: np.ndarray, truth: np.ndarray):
    cons, bounds = [], None
    if spec == "simplex":
        cons = [{"type": "eq", "fun": lambda v: v.sum() - 1.0, "jac": lambda v: np.ones_like(v)}]
        bounds = [(0.0, None)] * K
    elif spec.startswith("ball:") or spec.startswith("ball-truth:"):
        r = float(spec.split(":")[1])
        c = pred if spec.startswith("ball:") else truth
        cons = [{"type": "ineq", "fun": lambda v: r * r - ((v - c) ** 2).sum(), "jac": lambda v: -2.0 * (v - c)}]
    elif spec == "nonneg+ball-origin:2":
        cons = [{"type": "ineq", "fun": lambda v: 4.0 - (v**2).sum(), "jac": lambda v: -2.0 * v}]
        bounds = [(0.0, None)] * K
    return cons, bounds


def scipy_best_label(f, spec, K, pred, truth, starts):
    """Best feasible value of the score over several SLSQP (or BFGS) runs; infeasibility is projected away."""
    cons, bounds = scipy_constraints(spec, K, pred, truth)
    best_val, best_y = math.inf, None
    for x0 in starts:
        x0 = np_project(spec, np.asarray(x0, dtype=np.float64), pred, truth)
        if spec == "none":
            res = minimize(f, x0, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 2000})
        else:
            res = minimize(f, x0, jac=True, method="SLSQP", constraints=cons, bounds=bounds,
                           options={"ftol": 1e-15, "maxiter": 1000})
        y = np_project(spec, res.x, pred, truth)
        val = f(y)[0]
        if val < best_val:
            best_val, best_y = val, y
    return best_val, best_y


def make_problem(kind: str, R: int, n: int, d: int, K: int, seed: int, *, shared: bool = False,
                 hidden: int = 3, w_scale: float = 1.0) -> tuple[Problem, object]:
    """A random problem (random target, random pool) and its learner, for R runs."""
    gen = torch.Generator().manual_seed(seed)
    learner = {"lsr": lambda: LeastSquares(d) if K == 1 else LeastSquares(d, K), "logistic": lambda: Logistic(d),
               "softmax": lambda: Softmax(d, K), "mlp": lambda: MLP(d, hidden, K)}[kind]()
    Rp = 1 if shared else R
    X = torch.randn(Rp, n, d, generator=gen, dtype=DT)
    label_values = None
    if kind == "lsr":
        y = torch.randn(Rp, n, generator=gen, dtype=DT) if K == 1 else torch.randn(Rp, n, K, generator=gen, dtype=DT)
    elif kind == "logistic":
        y = torch.where(torch.rand(Rp, n, generator=gen, dtype=DT) < 0.5, -1.0, 1.0).to(DT)
        label_values = torch.tensor([-1.0, 1.0], dtype=DT)
    else:
        y = torch.nn.functional.one_hot(torch.randint(0, K, (Rp, n), generator=gen), K).to(DT)
        label_values = torch.eye(K, dtype=DT)
    w0 = w_scale * torch.randn(R, learner.num_params, generator=gen, dtype=DT)
    w_star = torch.randn(R, learner.num_params, generator=gen, dtype=DT)
    return Problem(X, y, w_star, w0, label_values=label_values), learner


def make_ctx(problem, learner, lr, batch_size=1, seed=0):
    streams = RunStreams(as_seeds(seed, problem.runs))
    return TeachingContext(problem=problem, learner=learner, lr=lr, batch_size=batch_size, streams=streams)


# ---------------------------------------------------------------------------
# IMT: the chosen example is the brute-force argmin of the one-step distance
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lsr", "logistic", "softmax"])
@SETTINGS
@given(n=st.integers(2, 8), d=st.integers(1, 4), lr=LRS, seed=SEEDS, shared=st.booleans())
def test_imt_picks_the_brute_force_argmin(kind, n, d, lr, seed, shared):
    R = 2
    problem, learner = make_problem(kind, R, n, d, 3, seed, shared=shared)
    ctx = make_ctx(problem, learner, lr)
    w = problem.w0
    batch = IMTTeacher().teach(ctx, w, step=0)
    assert batch.index.shape == (R, 1) and batch.x.shape == (R, 1, d)
    X = problem.X.expand(R, -1, -1)
    Y = problem.y.expand(R, *problem.y.shape[1:])
    for r in range(R):
        dists = [one_step_distance(kind, learner, w[r], problem.w_star[r], X[r, i], Y[r, i], lr) for i in range(n)]
        chosen = int(batch.index[r, 0])
        scale = 1.0 + float(((w[r] - problem.w_star[r]) ** 2).sum())
        assert dists[chosen] <= min(dists) + 1e-11 * scale
        order = np.argsort(dists)
        if dists[order[1]] - dists[order[0]] > 1e-9 * scale:  # a clear winner must be picked exactly
            assert chosen == order[0]
        torch.testing.assert_close(batch.x[r, 0], X[r, chosen])
        torch.testing.assert_close(batch.y[r, 0], Y[r, chosen])


@FEW
@given(n=st.integers(3, 8), lr=LRS, seed=SEEDS, m=st.integers(2, 3))
def test_imt_minibatch_takes_the_m_best_examples(n, lr, seed, m):
    problem, learner = make_problem("lsr", 2, n, 3, 1, seed)
    ctx = make_ctx(problem, learner, lr, batch_size=m)
    batch = IMTTeacher().teach(ctx, problem.w0, step=0)
    assert batch.index.shape == (2, m)
    for r in range(2):
        dists = np.array([one_step_distance("lsr", learner, problem.w0[r], problem.w_star[r], problem.X[r, i],
                                            problem.y[r, i], lr) for i in range(n)])
        chosen = sorted(dists[batch.index[r].numpy()])
        np.testing.assert_allclose(chosen, np.sort(dists)[:m], rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------------------
# LAST, least squares with scalar labels
# ---------------------------------------------------------------------------


def _lsr_state(d, seed, lr):
    gen = torch.Generator().manual_seed(seed)
    w, ws = torch.randn(1, d, generator=gen, dtype=DT), torch.randn(1, d, generator=gen, dtype=DT)
    x = torch.randn(1, 1, d, generator=gen, dtype=DT)
    yt = torch.randn(1, 1, generator=gen, dtype=DT)
    learner = LeastSquares(d)

    def dist(y):
        return one_step_distance("lsr", learner, w[0], ws[0], x[0, 0], torch.tensor(float(y), dtype=DT), lr)

    return learner, w, ws, x, yt, dist


@SETTINGS
@given(d=st.integers(1, 5), lr=LRS, seed=SEEDS)
def test_last_lsr_unconstrained_matches_closed_form_and_scipy(d, lr, seed):
    learner, w, ws, x, yt, dist = _lsr_state(d, seed, lr)
    y = synthesize_labels(learner, w, ws, x, yt, lr)
    assert y.shape == yt.shape
    closed = greedy_label_lsr(w[:, None], ws[:, None], x, lr)
    torch.testing.assert_close(y, closed, rtol=1e-10, atol=1e-10)
    res = minimize_scalar(dist, method="brent", tol=1e-12)
    assert y.item() == pytest.approx(res.x, rel=1e-6, abs=1e-6)
    assert dist(y.item()) <= res.fun + 1e-10 * (1.0 + abs(res.fun))
    # LAST Eq. (3): the update is the Kaczmarz projection of the error onto x's orthogonal complement.
    e = (w - ws)[0]
    xv = x[0, 0]
    kaczmarz = e - (e @ xv) / (xv @ xv) * xv
    assert dist(y.item()) == pytest.approx(float(kaczmarz @ kaczmarz), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("spec", ["ball:0.3", "ball:2", "ball-truth:0.3", "ball-truth:1.5"])
@SETTINGS
@given(d=st.integers(1, 5), lr=LRS, seed=SEEDS)
def test_last_lsr_magnitude_constraint_matches_bounded_scipy(spec, d, lr, seed):
    learner, w, ws, x, yt, dist = _lsr_state(d, seed, lr)
    r = float(spec.split(":")[1])
    centre = float(x[0, 0] @ w[0]) if spec.startswith("ball:") else float(yt)
    y = synthesize_labels(learner, w, ws, x, yt, lr, spec).item()
    assert centre - r - 1e-12 <= y <= centre + r + 1e-12
    res = minimize_scalar(dist, bounds=(centre - r, centre + r), method="bounded", options={"xatol": 1e-10})
    ref = min(res.fun, dist(centre - r), dist(centre + r))
    assert dist(y) <= ref + 1e-10 * (1.0 + abs(ref))
    assert y == pytest.approx(res.x, abs=1e-6)  # the quadratic is strictly convex: unique minimiser


def test_last_teacher_lsr_through_teach_uses_sgd_sample_and_closed_form():
    problem, learner = make_problem("lsr", 3, 6, 4, 1, 9)
    ctx = make_ctx(problem, learner, 0.4, batch_size=2, seed=5)
    batch = LASTTeacher().teach(ctx, problem.w0, step=3)
    sgd = RandomTeacher().teach(ctx, problem.w0, step=3)
    torch.testing.assert_close(batch.index, sgd.index)
    torch.testing.assert_close(batch.x, sgd.x)
    closed = greedy_label_lsr(problem.w0[:, None], problem.w_star[:, None], batch.x, 0.4)
    torch.testing.assert_close(batch.y, closed)


# ---------------------------------------------------------------------------
# LAST, vector labels: least squares and softmax under constraints vs SLSQP / enumeration
# ---------------------------------------------------------------------------


VECTOR_SPECS = ["none", "simplex", "onehot", "ball:0.7", "nonneg+ball-origin:2"]


def _vector_case(kind, d, K, seed, lr, hidden=3, w_scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    learner = {"lsr": LeastSquares(d, K), "softmax": Softmax(d, K), "mlp": MLP(d, hidden, K)}[kind]
    w = w_scale * torch.randn(1, learner.num_params, generator=gen, dtype=DT)
    ws = torch.randn(1, learner.num_params, generator=gen, dtype=DT)
    x = torch.randn(1, 1, d, generator=gen, dtype=DT)
    truth = torch.nn.functional.one_hot(torch.randint(0, K, (1, 1), generator=gen), K).to(DT)
    return learner, w, ws, x, truth


def _check_vector_label(kind, spec, learner, w, ws, x, truth, lr, beta=1.0):
    K = learner.output_dim
    y = synthesize_labels(learner, w, ws, x, truth, lr, None if spec == "none" else spec, beta)
    assert y.shape == truth.shape
    y_np = y[0, 0].numpy()
    pred = learner.label_prediction(w, x)[0, 0].detach().numpy()
    tr = truth[0, 0].numpy()
    f = score_fn(kind, learner, w[0], ws[0], x[0, 0], lr, beta)
    mine = f(y_np)[0]
    # Independent check of the score function itself against the explicit distance.
    e2 = float((layer_weights(kind, learner, beta) * (w[0] - ws[0]) ** 2).sum())
    assert mine == pytest.approx(one_step_distance(kind, learner, w[0], ws[0], x[0, 0], y[0, 0], lr, beta) - e2,
                                 rel=1e-8, abs=1e-10 * (1 + e2))
    if spec == "onehot":
        values = [f(np.eye(K)[k])[0] for k in range(K)]
        assert np.allclose(y_np, np.eye(K)[int(np.argmin(values))])
        assert mine <= min(values) + 1e-12 * (1 + e2)
        return
    if spec != "none":
        feasible = parse_label_set(spec).contains(y, prediction=learner.label_prediction(w, x), truth=truth, atol=1e-9)
        assert bool(feasible.all()), (spec, y_np)
    rng = np.random.default_rng(0)
    starts = [tr, np.full(K, 1.0 / K), pred, rng.normal(size=K), rng.dirichlet(np.ones(K))]
    ref, ref_y = scipy_best_label(f, spec, K, pred, tr, starts)
    tol = 1e-9 * max(abs(ref), abs(mine)) + 1e-12 * (1.0 + e2)
    assert mine <= ref + tol, (spec, mine, ref, y_np, ref_y)


@pytest.mark.parametrize("spec", VECTOR_SPECS)
@pytest.mark.parametrize("kind", ["lsr", "softmax"])
@FEW_FIXED
@given(d=st.integers(1, 4), K=st.integers(2, 4), lr=LRS, seed=SEEDS)
def test_last_vector_labels_match_scipy(kind, spec, d, K, lr, seed):
    learner, w, ws, x, truth = _vector_case(kind, d, K, seed, lr)
    _check_vector_label(kind, spec, learner, w, ws, x, truth, lr)


@pytest.mark.parametrize("spec", ["none", "simplex", "onehot"])
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
@FEW_FIXED
@given(d=st.integers(1, 4), K=st.integers(2, 4), lr=LRS, seed=SEEDS)
def test_last_mlp_labels_match_scipy_on_eq4(spec, beta, d, K, lr, seed):
    learner, w, ws, x, truth = _vector_case("mlp", d, K, seed, lr, hidden=4)
    _check_vector_label("mlp", spec, learner, w, ws, x, truth, lr, beta)


def test_last_mlp_simplex_label_is_optimal_regression_early_stop():
    learner, w, ws, x, truth = _vector_case("mlp", 3, 4, 216137290, 1.0, hidden=4)
    _check_vector_label("mlp", "simplex", learner, w, ws, x, truth, 1.0, 2.0)


@pytest.mark.parametrize("seed, d, lr", [(4, 3, 1.0324285545724359), (37, 1, 1.3301040671888986)])
def test_last_mlp_nonneg_ball_label_is_optimal_regression_iteration_cap(seed, d, lr):
    learner, w, ws, x, truth = _vector_case("mlp", d, 4, seed, lr, hidden=4)
    _check_vector_label("mlp", "nonneg+ball-origin:2", learner, w, ws, x, truth, lr, 2.0)


def test_last_rejects_negative_beta():
    with pytest.raises(ValueError, match="beta"):
        LASTTeacher(beta=-1.0)


# ---------------------------------------------------------------------------
# LAST, logistic labels (not a quadratic in y) vs a dense grid + bounded Brent refinement
# ---------------------------------------------------------------------------


def _logistic_score_np(yv, m, a, b):
    """a r^2 - 2 b r with r = dl/dm = -y / (1 + exp(y m)) (the one-step score for logistic regression)."""
    from scipy.special import expit

    r = -yv * expit(-yv * m)
    return a * r * r - 2.0 * b * r


def _logistic_reference(spec, m, a, b, truth):
    f = lambda v: _logistic_score_np(v, m, a, b)  # noqa: E731
    if spec == "signs":
        return min(f(-1.0), f(1.0))
    if spec is None:
        big = 2.0 * abs(b / a) + 10.0 + 3.0 / max(abs(m), 1e-12)
        lo, hi = -big, big
    elif spec == "box:-1:1":
        lo, hi = -1.0, 1.0
    else:
        lo, hi = truth - 0.5, truth + 0.5
    grids = [np.linspace(lo, hi, 40001)]
    if spec is None:  # the minimiser may sit at the turning point 1.2785/m, far out when m is small
        grids.append(np.linspace(-30.0, 30.0, 40001))
    best = math.inf
    for grid in grids:
        vals = f(grid)
        k = int(np.argmin(vals))
        best = min(best, float(vals[k]))
        a_, b_ = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
        res = minimize_scalar(f, bounds=(a_, b_), method="bounded", options={"xatol": 1e-13 * max(1.0, abs(grid[k]))})
        best = min(best, float(res.fun))
    return best


@pytest.mark.parametrize("spec", [None, "box:-1:1", "signs", "ball-truth:0.5"])
@SETTINGS
@given(d=st.integers(1, 4), lr=LRS, seed=SEEDS, log_scale=st.floats(-4.0, 1.5), zero_w=st.booleans())
def test_last_logistic_label_matches_grid_search(spec, d, lr, seed, log_scale, zero_w):
    gen = torch.Generator().manual_seed(seed)
    w = (0.0 if zero_w else 10.0**log_scale) * torch.randn(1, d, generator=gen, dtype=DT)
    ws = 3.0 * torch.randn(1, d, generator=gen, dtype=DT)
    x = torch.randn(1, 1, d, generator=gen, dtype=DT)
    truth = torch.where(torch.rand(1, 1, generator=gen, dtype=DT) < 0.5, -1.0, 1.0).to(DT)
    learner = Logistic(d)
    y = synthesize_labels(learner, w, ws, x, truth, lr, spec)
    assert y.shape == truth.shape and torch.isfinite(y).all()
    yv, t = y.item(), truth.item()
    if spec == "signs":
        assert yv in (-1.0, 1.0)
    elif spec == "box:-1:1":
        assert -1.0 <= yv <= 1.0
    elif spec == "ball-truth:0.5":
        assert t - 0.5 - 1e-12 <= yv <= t + 0.5 + 1e-12
    xv = x[0, 0]
    m = float(w[0] @ xv)
    a = lr * lr * float(xv @ xv)
    b = lr * float((w[0] - ws[0]) @ xv)
    mine = _logistic_score_np(yv, m, a, b)
    # The numpy score is the explicit one-step distance (checked here against autograd).
    e2 = float(((w - ws) ** 2).sum())
    explicit = one_step_distance("logistic", learner, w[0], ws[0], xv, y[0, 0], lr) - e2
    assert mine == pytest.approx(explicit, rel=1e-7, abs=1e-9 * (1 + e2))
    ref = _logistic_reference(spec, m, a, b, t)
    magnitude = a + 2 * abs(b)
    assert mine <= ref + 1e-9 * abs(ref) + 1e-14 * magnitude, (spec, yv, mine, ref)


# ---------------------------------------------------------------------------
# Mixed teaching and the one-step monotonicity of LAST
# ---------------------------------------------------------------------------


def _batch_distances(kind, learner, problem, batch, lr, beta=1.0):
    out = []
    for r in range(problem.runs):
        out.append(sum(one_step_distance(kind, learner, problem.w0[r], problem.w_star[r], batch.x[r, j], batch.y[r, j],
                                         lr, beta) for j in range(batch.x.shape[1])))
    return np.array(out)


@pytest.mark.parametrize("kind, spec", [("lsr", None), ("lsr", "ball-truth:0.5"), ("logistic", None),
                                        ("logistic", "signs"), ("softmax", None), ("softmax", "simplex"),
                                        ("softmax", "onehot")])
@FEW
@given(n=st.integers(2, 7), d=st.integers(1, 4), lr=LRS, seed=SEEDS)
def test_mixed_is_no_worse_than_imt(kind, spec, n, d, lr, seed):
    problem, learner = make_problem(kind, 3, n, d, 3, seed, shared=True)
    ctx = make_ctx(problem, learner, lr)
    imt = IMTTeacher().teach(ctx, problem.w0, 0)
    mixed = MixedTeacher(spec).teach(ctx, problem.w0, 0)
    torch.testing.assert_close(mixed.index, imt.index)  # same x, labels re-synthesised
    d_imt = _batch_distances(kind, learner, problem, imt, lr)
    d_mixed = _batch_distances(kind, learner, problem, mixed, lr)
    scale = 1.0 + ((problem.w0 - problem.w_star) ** 2).sum(-1).numpy()
    assert (d_mixed <= d_imt + 1e-9 * scale).all()


@pytest.mark.parametrize("kind, spec", [("lsr", None), ("logistic", "box:-1:1"), ("softmax", "simplex"),
                                        ("mlp", "onehot")])
def test_mixed_equals_last_on_a_single_example_pool(kind, spec):
    """With n = 1 both teachers see the same x, so mixed must give exactly LAST's label and distance."""
    problem, learner = make_problem(kind, 2, 1, 3, 3, 4, shared=True)
    ctx = make_ctx(problem, learner, 0.5)
    last = LASTTeacher(spec).teach(ctx, problem.w0, 0)
    mixed = MixedTeacher(spec).teach(ctx, problem.w0, 0)
    torch.testing.assert_close(mixed.x, last.x)
    torch.testing.assert_close(mixed.y, last.y)


MONOTONE_CASES = [("lsr", None), ("lsr", "ball:0.5"), ("lsr", "ball-truth:0.2"), ("logistic", None),
                  ("logistic", "signs"), ("logistic", "box:-1:1"), ("logistic", "ball-truth:0.5"),
                  ("softmax", None), ("softmax", "onehot"), ("softmax", "simplex"),
                  ("softmax", "nonneg+ball-origin:2"), ("mlp", None), ("mlp", "onehot"), ("mlp", "simplex")]


@pytest.mark.parametrize("kind, spec", MONOTONE_CASES)
@FEW
@given(n=st.integers(1, 6), d=st.integers(1, 4), lr=LRS, seed=SEEDS, m=st.integers(1, 2))
def test_last_one_step_monotone_vs_sgd(kind, spec, n, d, lr, seed, m):
    """last.one-step-monotone: if the true label is feasible, LAST's step is no worse than SGD's on the same x."""
    problem, learner = make_problem(kind, 2, n, d, 3, seed, shared=False)
    ctx = make_ctx(problem, learner, lr, batch_size=m, seed=seed % 1000)
    sgd = RandomTeacher().teach(ctx, problem.w0, 2)
    last = LASTTeacher(spec).teach(ctx, problem.w0, 2)
    torch.testing.assert_close(last.x, sgd.x)
    if spec is not None and spec.startswith("ball:"):
        # the truth is feasible only when it lies within r of the prediction: keep those examples
        pred = learner.label_prediction(problem.w0, sgd.x)
        keep = (pred - sgd.y).reshape(2, m, -1).norm(dim=-1) <= float(spec.split(":")[1])
    else:
        keep = torch.ones(sgd.y.shape[:2], dtype=torch.bool)
    for r in range(2):
        for j in range(m):
            if not keep[r, j]:
                continue
            args = (learner, problem.w0[r], problem.w_star[r], sgd.x[r, j])
            d_sgd = one_step_distance(kind, *args, sgd.y[r, j], lr)
            d_last = one_step_distance(kind, *args, last.y[r, j], lr)
            assert d_last <= d_sgd + 1e-9 * (1.0 + d_sgd)


# ---------------------------------------------------------------------------
# DHT
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["logistic", "softmax"])
@FEW
@given(n=st.integers(2, 8), d=st.integers(1, 3), lr=LRS, seed=SEEDS, m=st.integers(1, 2))
def test_dht_stays_in_the_box_and_beats_the_pool(kind, n, d, lr, seed, m):
    problem, learner = make_problem(kind, 2, n, d, 3, seed, shared=True)
    ctx = make_ctx(problem, learner, lr, batch_size=m, seed=seed % 997)
    batch = DHTTeacher(iterations=15, restarts=2).teach(ctx, problem.w0, 1)
    assert batch.x.shape == (2, m, d) and batch.y.shape[:2] == (2, m)
    lo, hi = problem.X.amin(1), problem.X.amax(1)  # [1, d]
    assert (batch.x >= lo[:, None] - 1e-12).all() and (batch.x <= hi[:, None] + 1e-12).all()
    values = problem.label_values
    for r in range(2):
        for j in range(m):
            yj = batch.y[r, j]
            assert any(torch.equal(yj, v) for v in values)  # the label is drawn from the label space
            args = (kind, learner, problem.w0[r], problem.w_star[r])
            mine = one_step_score(*args, batch.x[r, j], yj, lr)
            pool = [one_step_score(*args, problem.X[0, i], problem.y[0, i], lr)
                    for i in range(n) if torch.equal(problem.y[0, i], yj)]
            if pool:
                assert mine <= min(pool) + 1e-10 * (1.0 + abs(min(pool)))


def test_dht_labels_cover_the_label_space_and_synthesis_is_feasible():
    problem, learner = make_problem("softmax", 4, 6, 2, 3, 2, shared=True)
    ctx = make_ctx(problem, learner, 0.3, batch_size=3, seed=1)
    drawn = torch.cat([DHTTeacher(iterations=2, restarts=1).teach(ctx, problem.w0, s).y.reshape(-1, 3)
                       for s in range(6)])
    assert set(drawn.argmax(-1).tolist()) == {0, 1, 2}
    batch = DHTTeacher(iterations=3, restarts=1, synthesize="nonneg+ball-origin:2").teach(ctx, problem.w0, 0)
    assert (batch.y >= -1e-12).all() and (batch.y.norm(dim=-1) <= 2.0 + 1e-9).all()


def test_dht_needs_label_values():
    problem, learner = make_problem("lsr", 1, 4, 2, 1, 0)
    with pytest.raises(ValueError, match="label"):
        DHTTeacher().teach(make_ctx(problem, learner, 0.1), problem.w0, 0)


# ---------------------------------------------------------------------------
# Soft-label policies
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lsr", "logistic", "softmax", "mlp"])
def test_label_policies_shapes_and_ranges(kind):
    K = 1 if kind in ("lsr", "logistic") else 3
    problem, learner = make_problem(kind, 3, 7, 2, K, 12)
    ctx = make_ctx(problem, learner, 0.2, batch_size=4, seed=3)
    w = problem.w0
    sgd = RandomTeacher().teach(ctx, w, 5)
    shape = sgd.y.shape
    for temperature in (0.5, 1.0, 4.0):
        b = DistillationTeacher(temperature).teach(ctx, w, 5)
        torch.testing.assert_close(b.x, sgd.x)
        assert b.y.shape == shape
        z = learner.outputs(problem.w_star, b.x)
        if kind == "softmax" or kind == "mlp":
            assert ((b.y > 0) & (b.y < 1)).all()
            torch.testing.assert_close(b.y.sum(-1), torch.ones(shape[:2], dtype=DT))
            torch.testing.assert_close(b.y, torch.softmax(z / temperature, -1))
        elif kind == "logistic":
            assert (b.y.abs() < 1).all()
            # E[y] under p(y=1) = sigmoid(m/T): 2 sigmoid(m/T) - 1
            torch.testing.assert_close(b.y, 2 * torch.sigmoid(z / temperature) - 1)
        else:
            torch.testing.assert_close(b.y, z)
    teacher_w = torch.zeros(1, learner.num_params, dtype=DT)
    b = DistillationTeacher(1.0, teacher_w=teacher_w).teach(ctx, w, 5)
    assert not DistillationTeacher(1.0, teacher_w=teacher_w).omniscient
    if kind in ("softmax", "mlp"):
        torch.testing.assert_close(b.y, torch.full(shape, 1.0 / K, dtype=DT))
    else:
        torch.testing.assert_close(b.y, torch.zeros(shape, dtype=DT))

    for mu in (0.0, 0.7, 1.0):
        b = LabelSmoothingTeacher(mu).teach(ctx, w, 5)
        assert b.y.shape == shape
        if sgd.y.dim() == 3:
            torch.testing.assert_close(b.y, mu * sgd.y + (1 - mu) / K)
            torch.testing.assert_close(b.y.sum(-1), torch.ones(shape[:2], dtype=DT))
            assert (b.y >= 0).all()
        else:
            torch.testing.assert_close(b.y, mu * sgd.y)

    soft = SelfTrainingTeacher().teach(ctx, w, 5)
    hard = SelfTrainingTeacher(hard=True).teach(ctx, w, 5)
    assert soft.y.shape == shape and hard.y.shape == shape
    z = learner.outputs(w, sgd.x)
    if kind in ("softmax", "mlp"):
        torch.testing.assert_close(soft.y, torch.softmax(z, -1))
        torch.testing.assert_close(hard.y, torch.nn.functional.one_hot(z.argmax(-1), K).to(DT))
    elif kind == "logistic":
        assert (soft.y.abs() < 1).all()
        torch.testing.assert_close(hard.y, torch.where(z >= 0, 1.0, -1.0).to(DT))
    else:
        torch.testing.assert_close(soft.y, z)
        torch.testing.assert_close(hard.y, z)


@pytest.mark.parametrize("factory, match", [
    (lambda: DistillationTeacher(0.0), "temperature"),
    (lambda: LabelSmoothingTeacher(1.5), "mu"),
    (lambda: ScaledGradientTeacher(0.0), "c1"),
    (lambda: HessianTeacher(alpha=2.0), "alpha"),
    (lambda: HessianTeacher(damping=-1.0), "damping"),
    (lambda: DHTTeacher(step_fraction=0.0), "step_fraction"),
    (lambda: make_teacher("oracle"), "teacher"),
    (lambda: make_teacher("last", nonsense=1), "last"),
])
def test_teacher_validation(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


# ---------------------------------------------------------------------------
# Theorem teachers
# ---------------------------------------------------------------------------


def test_scaled_gradient_teacher_sets_the_scale():
    problem, learner = make_problem("lsr", 4, 6, 3, 1, 21)
    ctx = make_ctx(problem, learner, 0.1, batch_size=3)
    batch = ScaledGradientTeacher(0.7).teach(ctx, problem.w0, 0)
    expected = 0.7 * torch.linalg.vector_norm(problem.w0 - problem.w_star, dim=-1)
    assert batch.grad_scale.shape == (4, 3)
    torch.testing.assert_close(batch.grad_scale, expected[:, None].expand(4, 3))
    torch.testing.assert_close(batch.x, RandomTeacher().teach(ctx, problem.w0, 0).x)


@pytest.mark.parametrize("kind", ["lsr", "logistic", "softmax"])
@FEW
@given(seed=SEEDS, lr=st.floats(0.05, 1.0), c2=st.floats(0.1, 0.9))
def test_armijo_scale_satisfies_armijo_and_is_the_largest_on_the_grid(kind, seed, lr, c2):
    problem, learner = make_problem(kind, 2, 5, 3, 3, seed, w_scale=2.0)
    ctx = make_ctx(problem, learner, lr, batch_size=2, seed=seed % 101)
    teacher = ArmijoTeacher(g_max=8.0, c2=c2, shrink=0.5, max_halvings=30)
    batch = teacher.teach(ctx, problem.w0, 0)
    assert batch.grad_scale.shape == (2, 2)
    for r in range(2):
        for j in range(2):
            x, y, w = batch.x[r, j], batch.y[r, j], problem.w0[r]
            g = ref_grad(kind, learner, w, x, y)
            sq = float(g @ g)
            scale = float(batch.grad_scale[r, j])

            def armijo(s):
                lhs = float(ref_loss(kind, learner, w - lr * s * g, x, y))
                rhs = float(ref_loss(kind, learner, w, x, y)) - c2 * lr * s * sq
                return lhs <= rhs + 1e-12 * (1 + abs(rhs))

            assert armijo(scale)
            grid = [8.0 * 0.5**k for k in range(30)]
            assert any(math.isclose(scale, v, rel_tol=1e-12) for v in grid)
            if scale < 8.0 * (1 - 1e-12):
                assert not armijo(scale / 0.5)  # the next larger grid value fails


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("lr", [0.05, 1.0])
def test_hessian_teacher_on_lsr_reaches_the_fitted_target_in_one_step(alpha, lr):
    problem = linear_regression(dim=4, pool_size=12, runs=3, seed=3, noise=0.5)
    learner = LeastSquares(4)
    traj = teach(problem, learner, HessianTeacher(alpha=alpha), steps=1, lr=lr, seed=0)
    dist = traj["distance"]
    assert (dist[:, 0] > 0.1).all()
    np.testing.assert_allclose(dist[:, 1], 0.0, atol=1e-10 * dist[:, 0].max())
    np.testing.assert_allclose(traj.final_w, problem.w_star.numpy(), rtol=0, atol=1e-10)
    assert HessianTeacher(alpha=0.0).omniscient is False and HessianTeacher(alpha=0.5).omniscient is True


def test_theorem_teachers_run_in_the_engine():
    problem = linear_regression(dim=3, pool_size=10, runs=2, seed=1)
    learner = LeastSquares(3)
    for teacher in (ScaledGradientTeacher(0.5), ArmijoTeacher(), HessianTeacher(alpha=1.0, damping=1e-3)):
        traj = teach(problem, learner, teacher, steps=5, lr=0.1, seed=0)
        assert traj["distance"].shape == (2, 6)
        assert np.isfinite(traj["distance"]).all()
        assert (traj["distance"][:, -1] < traj["distance"][:, 0]).all()


# ---------------------------------------------------------------------------
# Regression: the IMT scores and picks and the LAST labels are those of the former implementation, where the
# objective lived in the learners (greedy_scores / label_quadratic). A condensed private copy of that code.
# ---------------------------------------------------------------------------


def _former_terms(learner, w, w_star, X, lr):
    """(a, b, z) of the former LinearLearner.greedy_terms: a = lr^2 ||x||^2, b = lr E^T x, z = W^T x."""
    d, K = learner.input_dim, learner.output_dim
    W, E = w.reshape(-1, d, K), (w - w_star).reshape(-1, d, K)
    z = torch.matmul(X, W)
    return (lr * lr) * (X * X).sum(-1).expand(z.shape[:2]), lr * torch.matmul(X, E), z


def _former_scores(kind, learner, w, w_star, X, y, lr):
    """The former IMT scores lr^2 ||g||^2 - 2 lr <w - w*, g>: linear learners through (x, r), the MLP through its
    per-example gradients."""
    if kind == "mlp":
        g = learner.grad(w, X, y)
        inner, sq = torch.einsum("rp,rnp->rn", w - w_star, g), (g * g).sum(-1)
    else:
        a, b, z = _former_terms(learner, w, w_star, X, 1.0)
        yv = y[..., None] if learner.scalar_labels else y
        if kind == "lsr":
            r = z - yv
        elif kind == "logistic":
            r = -yv * torch.sigmoid(-yv * z)
        else:
            r = torch.softmax(z, -1) * yv.sum(-1, keepdim=True) - yv
        inner, sq = (b * r).sum(-1), a * (r * r).sum(-1)
    return lr * lr * sq - 2.0 * lr * inner


def _former_quadratic(kind, learner, w, w_star, x, lr, beta):
    """(H, q, isotropic) of the former Learner.label_quadratic."""
    K = learner.output_dim
    eye = torch.eye(K, dtype=DT)
    if kind == "mlp":
        W = learner.split(w)[1]
        EV, EW = learner.split(w - w_star)
        U, P, z = learner.forward(w, x)
        mask = (U > 0).to(DT)
        DW = mask.unsqueeze(-1) * W.unsqueeze(1)
        sq_p, sq_x = (P * P).sum(-1), (x * x).sum(-1)
        A = (lr * lr) * (sq_p[..., None, None] * eye + beta * sq_x[..., None, None] * DW.transpose(-1, -2) @ DW)
        c = lr * (torch.matmul(P, EW) + beta * (DW.transpose(-1, -2) @ torch.matmul(x, EV).unsqueeze(-1))[..., 0])
        M = torch.softmax(z, -1)[..., :, None] - eye
        return M.transpose(-1, -2) @ A @ M, (M.transpose(-1, -2) @ c.unsqueeze(-1))[..., 0], False
    a, b, z = _former_terms(learner, w, w_star, x, lr)
    if kind == "lsr":
        return a[..., None, None] * eye, a[..., None] * z - b, True
    M = torch.softmax(z, -1)[..., :, None] - eye
    return a[..., None, None] * M.transpose(-1, -2) @ M, (M.transpose(-1, -2) @ b[..., None])[..., 0], False


def _former_labels(kind, learner, w, w_star, x, y_true, lr, spec, beta):
    """The former synthesize_labels (the solvers themselves are unchanged and shared)."""
    from teachtheory.teachers.last import _as_label_set, _sums_to_one, logistic_greedy_label, solve_label_quadratic

    label_set = _as_label_set(spec)
    if kind == "logistic":
        a, b, z = _former_terms(learner, w, w_star, x, lr)
        return logistic_greedy_label(a, b[..., 0], z[..., 0], y_true, label_set)
    truth = y_true.unsqueeze(-1) if learner.scalar_labels else y_true
    prediction = learner.label_prediction(w, x)
    prediction = prediction.unsqueeze(-1) if learner.scalar_labels else prediction
    if kind == "softmax" and _sums_to_one(label_set):
        a, b, _ = _former_terms(learner, w, w_star, x, lr)
        centre = prediction - b / a.clamp_min(torch.finfo(DT).tiny).unsqueeze(-1)
        return label_set.project(centre, prediction=prediction, truth=truth)
    H, q, iso = _former_quadratic(kind, learner, w, w_star, x, lr, beta)
    y = solve_label_quadratic(H, q, label_set, isotropic=iso, prediction=prediction, truth=truth)
    return y[..., 0] if learner.scalar_labels else y


FORMER_CASES = [
    ("lsr", 1, (None, "ball-truth:0.5", "ball:0.3")),
    ("lsr", 3, (None, "ball:0.7", "simplex", "onehot")),
    ("logistic", 1, (None, "signs", "box:-1:1", "ball-truth:0.5")),
    ("softmax", 3, (None, "simplex", "onehot", "ball:0.7", "nonneg+ball-origin:2")),
    ("mlp", 3, (None, "simplex", "onehot")),
]


@pytest.mark.parametrize("kind, K, specs", FORMER_CASES)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_imt_scores_and_last_labels_equal_the_former_implementation(kind, K, specs, shared, seed):
    R, n, d, lr = 4, 12, 3, 0.4
    problem, learner = make_problem(kind, R, n, d, K, 1000 + seed, shared=shared)
    w, w_star = problem.w0, problem.w_star
    ctx = make_ctx(problem, learner, lr)
    new = pool_scores(ctx, w)
    old = _former_scores(kind, learner, w, w_star, problem.X, problem.y, lr)
    scale = old.abs().amax(-1, keepdim=True)
    torch.testing.assert_close(new, old, rtol=1e-12, atol=1e-12 * float(scale.max()))
    assert torch.equal(new.argmin(-1), old.argmin(-1))
    # The pool constants are computed once per pool tensor and reused.
    assert ctx.pool_constants() is ctx.pool_constants()
    assert torch.equal(IMTTeacher().teach(ctx, w, 0).index[:, 0], old.argmin(-1))
    # LAST labels for every pool example at once (the solvers see the same objective).
    x = problem.X.expand(R, n, d)
    y_true = problem.y.expand(R, *problem.y.shape[1:])
    for spec in specs:
        for beta in ((0.5, 2.0) if kind == "mlp" else (1.0,)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # iteration caps hit alike in both
                y_new = synthesize_labels(learner, w, w_star, x, y_true, lr, spec, beta)
                y_old = _former_labels(kind, learner, w, w_star, x, y_true, lr, spec, beta)
            assert y_new.shape == y_old.shape == y_true.shape
            if spec in ("onehot", "signs"):
                assert torch.equal(y_new, y_old), (spec, beta)
            else:
                torch.testing.assert_close(y_new, y_old, rtol=1e-7, atol=1e-8, msg=f"{kind} {spec} beta={beta}")


# ---------------------------------------------------------------------------
# Joint greedy teaching (LSR) and the pool constants of the context
# ---------------------------------------------------------------------------


@FEW
@given(n=st.integers(2, 8), d=st.integers(1, 4), lr=LRS, seed=SEEDS)
def test_joint_greedy_lsr_is_the_brute_force_joint_optimum(n, d, lr, seed):
    """Over every pool x and a fine label grid around the greedy label, no pair beats the teacher's one step."""
    problem, learner = make_problem("lsr", 2, n, d, 1, seed, shared=True)
    ctx = make_ctx(problem, learner, lr)
    batch = make_teacher("joint-greedy").teach(ctx, problem.w0, 0)
    mixed = MixedTeacher().teach(ctx, problem.w0, 0)
    for r in range(2):
        w, ws = problem.w0[r], problem.w_star[r]
        mine = one_step_distance("lsr", learner, w, ws, batch.x[r, 0], batch.y[r, 0], lr)
        for i in range(n):
            x = problem.X[0, i]
            y_star = float(greedy_label_lsr(w, ws, x, lr))
            for y in np.linspace(y_star - 2.0, y_star + 2.0, 21):
                other = one_step_distance("lsr", learner, w, ws, x, torch.tensor(y, dtype=DT), lr)
                assert mine <= other + 1e-10 * (1.0 + other)
        assert mine <= one_step_distance("lsr", learner, w, ws, mixed.x[r, 0], mixed.y[r, 0], lr) + 1e-10


def test_joint_greedy_needs_scalar_least_squares():
    problem, learner = make_problem("logistic", 1, 4, 2, 1, 0)
    with pytest.raises(ValueError, match="scalar least squares"):
        make_teacher("joint-greedy").teach(make_ctx(problem, learner, 0.1), problem.w0, 0)


def test_pool_constants_are_memoised_per_pool_tensor():
    problem, learner = make_problem("softmax", 2, 5, 3, 3, 0, shared=True)
    ctx = make_ctx(problem, learner, 0.1)
    first = ctx.pool_constants()
    assert ctx.pool_constants() is first
    torch.testing.assert_close(first["sqnorm"], (problem.X * problem.X).sum(-1), rtol=0, atol=0)
    other, _ = make_problem("softmax", 2, 5, 3, 3, 1, shared=True)
    ctx.problem = other  # a new pool tensor: recomputed, not stale
    torch.testing.assert_close(ctx.pool_constants()["sqnorm"], (other.X * other.X).sum(-1), rtol=0, atol=0)
