"""Hypothesis properties of the one-step LAST claims, over drawn dimensions, step sizes, radii and seeds.

Tensors are built inside each test from the drawn integer seed; the one-step distances are written
from the loss definitions (proofs_checks.last.labels.one_step_sq), not with the learners' gradients.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs_checks.last.labels import ONE_STEP_TOLERANCE, one_step_sq
from teachtheory.constraints import parse_label_set
from teachtheory.engine import teach
from teachtheory.learners import LeastSquares, Logistic, Softmax
from teachtheory.problems import Problem
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teachers import IMTTeacher, LASTTeacher, MixedTeacher, RandomTeacher, synthesize_labels
from teachtheory.theory import last as theory

SEEDS = st.integers(0, 2**31 - 1)
STEPS = st.floats(0.01, 5.0)
RADII = st.floats(0.05, 3.0)
RUNS = 16


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP waits on a busy machine (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _state(kind: str, d: int, K: int, seed: int, runs: int = RUNS):
    s = RunStreams(as_seeds(seed, runs))
    k_out = K if kind in ("lsr-vector", "softmax") else 1
    w, w_star, x = s.normal("w", 0, (d * k_out,)), s.normal("w_star", 0, (d * k_out,)), s.normal("x", 0, (d,))
    if kind == "lsr":
        y = (x * w_star).sum(-1) + s.normal("noise", 0, (1,))[:, 0]
    elif kind == "logistic":
        y = torch.where(s.uniform("y", 0, (1,))[:, 0] < 0.5, -1.0, 1.0).double()
    else:
        y = torch.nn.functional.one_hot(s.integers("y", 0, K, (1,))[:, 0], K).double()
    learner = {"lsr": lambda: LeastSquares(d), "lsr-vector": lambda: LeastSquares(d, K),
               "softmax": lambda: Softmax(d, K),
               "logistic": lambda: Logistic(d)}[kind]()
    return learner, w, w_star, x, y


def _spec(template: str, radius: float) -> str:
    return template.replace("R", f"{radius:.6g}")


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["lsr", "lsr-vector", "softmax", "logistic"]), d=st.integers(1, 6), K=st.integers(2, 4),
       lr=STEPS, radius=RADII, seed=SEEDS,
       template=st.sampled_from(["none", "ball-truth:R", "ball:R", "TRUTH-SET"]))
def test_greedy_label_never_loses_to_the_true_label(kind, d, K, lr, radius, seed, template):
    """last.one-step-monotone: if the true label is feasible, the greedy label's one-step distance is <= SGD's."""
    learner, w, w_star, x, y = _state(kind, d, K, seed)
    if template == "TRUTH-SET":  # a set built around the truth's type
        template = {"lsr": "box:-R:R+ball-truth:R", "lsr-vector": "simplex+ball-truth:R", "softmax": "onehot",
                    "logistic": "signs"}[kind]
    spec = _spec(template, radius)
    if kind == "lsr" and spec.startswith("box"):
        spec = (f"box:{-abs(float(y.abs().max())) - radius:.6g}:{float(y.abs().max()) + radius:.6g}"
                f"+ball-truth:{radius:.6g}")
    y_batch = y[:, None] if y.dim() == 1 else y[:, None, :]
    y_last = synthesize_labels(learner, w, w_star, x[:, None, :], y_batch, lr, spec)[:, 0]
    family = {"lsr-vector": "lsr"}.get(kind, kind)
    e2 = ((w - w_star) ** 2).sum(-1)
    gap = (one_step_sq(family, w, w_star, x, y_last, lr) - one_step_sq(family, w, w_star, x, y, lr)) / e2
    pred = learner.outputs(w, x[:, None, :])[:, 0]
    vec = (lambda t: t[:, None]) if y.dim() == 1 else (lambda t: t)
    feasible = parse_label_set(spec).contains(vec(y), prediction=vec(pred), truth=vec(y), atol=1e-12)
    assert bool(feasible.any()) or template.startswith("ball:")
    if feasible.any():
        assert float(gap[feasible].max()) <= ONE_STEP_TOLERANCE


def _pool_problem(kind: str, d: int, n: int, seed: int, noise: float) -> tuple[Problem, object]:
    s = RunStreams(as_seeds(seed, RUNS))
    X = s.normal("X", 0, (n, d))
    w_star = s.normal("w_star", 0, (d,))
    w0 = s.normal("w0", 0, (d,))
    m = (X * w_star[:, None, :]).sum(-1)
    if kind == "lsr":
        return Problem(X, m + noise * s.normal("noise", 0, (n,)), w_star, w0), LeastSquares(d)
    return Problem(X, torch.where(m >= 0, 1.0, -1.0).double(), w_star, w0), Logistic(d)


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(["lsr", "logistic"]), d=st.integers(1, 5), n=st.integers(1, 20), lr=STEPS,
       noise=st.floats(0.0, 1.0), seed=SEEDS, spec=st.sampled_from(["none", "ball-truth:0.5"]))
def test_engine_one_step_orders_mixed_imt_sgd(kind, d, n, lr, noise, seed, spec):
    """One engine step from the same state: mixed <= IMT <= SGD (same seed), and LAST <= SGD (same x)."""
    problem, learner = _pool_problem(kind, d, n, seed, noise)
    if kind == "logistic" and spec != "none":
        spec = "signs"

    def d1(teacher):
        return teach(problem, learner, teacher, 1, lr, seed=seed, record=("distance",))["distance"] ** 2

    sgd, imt, mixed, last = d1(RandomTeacher()), d1(IMTTeacher()), d1(MixedTeacher(spec)), d1(LASTTeacher(spec))
    scale = sgd[:, 0] * ONE_STEP_TOLERANCE + 1e-300
    assert np.all(imt[:, 1] - sgd[:, 1] <= scale)
    assert np.all(mixed[:, 1] - imt[:, 1] <= scale)
    assert np.all(last[:, 1] - sgd[:, 1] <= scale)


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 6), K=st.integers(1, 4), seed=SEEDS, kind=st.sampled_from(["lsr", "lr", "vector-lsr"]))
def test_label_rescales_the_gradient(d, K, seed, kind):
    """last.rescaling: grad l(w; x, y) = g(y) grad l(w; x, y_true) (column-wise for vector labels)."""
    s = RunStreams(as_seeds(seed, RUNS))
    k_out = max(K, 2) if kind == "vector-lsr" else 1  # LeastSquares(d, 1) has scalar labels
    learner = {"lsr": lambda: LeastSquares(d), "lr": lambda: Logistic(d),
               "vector-lsr": lambda: LeastSquares(d, k_out)}[kind]()
    w, x = s.normal("w", 0, (d * k_out,)), s.normal("x", 0, (1, d))
    m = learner.outputs(w, x)[:, 0]
    if kind == "lr":
        y_true = torch.where(s.uniform("yt", 0, (1,))[:, 0] < 0.5, -1.0, 1.0).double()
        y = 3 * s.normal("y", 0, (1,))[:, 0]
        g = theory.rescaling_lr(m, y, y_true)
    else:
        y_true = m + s.normal("yt", 0, (k_out,)).reshape(m.shape) + 0.1
        y = s.normal("y", 0, (k_out,)).reshape(m.shape)
        g = (theory.rescaling_lsr if kind == "lsr" else theory.rescaling_vector_lsr)(m, y, y_true)
    keep = ((m - y_true).abs() > 1e-3).reshape(RUNS, -1).all(-1)
    wrap = (lambda t: t[:, None]) if k_out == 1 else (lambda t: t[:, None, :])
    new = learner.grad(w, x, wrap(y))[:, 0].reshape(RUNS, d, k_out)
    old = learner.grad(w, x, wrap(y_true))[:, 0].reshape(RUNS, d, k_out)
    predicted = g.reshape(RUNS, 1, k_out) * old
    err = (new - predicted).flatten(1).norm(dim=-1) / new.flatten(1).norm(dim=-1).clamp_min(1e-300)
    assert float(torch.cat([err[keep], err.new_zeros(1)]).max()) <= 1e-10


def _check_plane_projection(d, K, lr, seed, spec):
    learner, w, w_star, x, y = _state("softmax", d, K, seed)
    y_lib = synthesize_labels(learner, w, w_star, x[:, None, :], y[:, None, :], lr, spec)[:, 0]
    a = lr * lr * (x * x).sum(-1)
    b = lr * torch.einsum("rd,rdk->rk", x, (w - w_star).reshape(RUNS, d, K))
    z = torch.einsum("rd,rdk->rk", x, w.reshape(RUNS, d, K))
    c = theory.softmax_plane_centre(torch.softmax(z, -1), b, a)
    # on the plane, G(y) - G(y') = a (||y - c||^2 - ||y' - c||^2) exactly
    g_lib = one_step_sq("softmax", w, w_star, x, y_lib, lr)
    g_truth = one_step_sq("softmax", w, w_star, x, y, lr)
    lhs = (g_lib - g_truth) / a
    rhs = ((y_lib - c) ** 2).sum(-1) - ((y - c) ** 2).sum(-1)
    assert torch.allclose(lhs, rhs, rtol=1e-8, atol=1e-8 * float(((y - c) ** 2).sum(-1).max()))
    assert float(rhs.max()) <= 1e-9 * float(((y - c) ** 2).sum(-1).max() + 1)  # the truth is feasible: not nearer
    if spec == "onehot":  # exact: the nearest one-hot to c is its argmax
        assert torch.equal(y_lib.argmax(-1), c.argmax(-1))


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 5), K=st.integers(2, 5), lr=STEPS, seed=SEEDS, spec=st.sampled_from(["simplex", "onehot"]))
def test_softmax_label_on_the_plane_is_a_projection(d, K, lr, seed, spec):
    """last.constraints: on {sum y = 1} the softmax objective is a ||y - c||^2 + const, c = s - b/a, so the
    greedy label over a subset of that plane is the feasible point nearest to c (checked through G)."""
    _check_plane_projection(d, K, lr, seed, spec)


@settings(max_examples=8, deadline=None)  # the library solves this set by FISTA with nested bisection: slow
@given(d=st.integers(1, 4), K=st.integers(2, 4), lr=STEPS, seed=SEEDS, radius=RADII)
def test_softmax_label_on_simplex_and_ball_is_a_projection(d, K, lr, seed, radius):
    _check_plane_projection(d, K, lr, seed, _spec("simplex+ball-truth:R", radius))


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 6), lr=STEPS, radius=RADII, seed=SEEDS, centre=st.sampled_from(["ball", "ball-truth"]))
def test_lsr_constrained_label_is_the_clipped_greedy_label(d, lr, radius, seed, centre):
    """last.constraints for scalar LSR: the constrained label is Eq. (3)'s label clipped to the interval."""
    learner, w, w_star, x, y = _state("lsr", d, 1, seed)
    y_lib = synthesize_labels(learner, w, w_star, x[:, None, :], y[:, None], lr, f"{centre}:{radius:.6g}")[:, 0]
    y_star = theory.greedy_label_lsr(w, w_star, x, lr)
    c = (w * x).sum(-1) if centre == "ball" else y
    r = float(f"{radius:.6g}")
    expected = torch.minimum(torch.maximum(y_star, c - r), c + r)
    assert torch.allclose(y_lib, expected, rtol=1e-12, atol=1e-12 * (1 + float(y_star.abs().max())))
    assert not math.isnan(float(y_lib.sum()))


# -- the objective in output space: theory.last's pure functions against the definition ----------------------


@settings(max_examples=40, deadline=None)
@given(K=st.integers(1, 4), p=st.integers(1, 5), lr=STEPS, seed=SEEDS, c1=st.sampled_from([1.0, 0.3, 2.5]),
       iso=st.booleans(), two=st.booleans())
def test_residual_objective_is_the_one_step_change(K, p, lr, seed, c1, iso, two):
    """For g = sum_k J_k^T r over parameter blocks k (weights c1 and 1), r^T A r - 2 b^T r from residual_quadratic
    equals ||e - lr g||_c^2 - ||e||_c^2 formed explicitly (also with an isotropic block J_1 = a I given by its
    scalar Gram a^2); greedy_score agrees; a label-affine residual r0 + M y gives label_quadratic's quadratic up to
    a label-free constant."""
    dt = torch.float64
    gen = torch.Generator().manual_seed(seed)
    n = 6

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=dt)

    if iso:
        a = randn(n)
        blocks = [(a[:, None, None] * torch.eye(K, dtype=dt), a * a)]
    else:
        J = randn(n, K, p)
        blocks = [(J, J @ J.transpose(-1, -2))]
    if two:
        J = randn(n, K, p + 1)
        blocks.append((J, J @ J.transpose(-1, -2)))
    weights = [c1] + [1.0] * (len(blocks) - 1)
    es = [randn(n, J.shape[-1]) for J, _ in blocks]
    A, b = theory.residual_quadratic([(J @ e[..., None])[..., 0] for (J, _), e in zip(blocks, es)],
                                     [G for _, G in blocks], lr, weights)
    assert A.shape == ((n,) if iso and not two else (n, K, K)) and b.shape == (n, K)
    r = randn(n, K)
    gs = [(J.transpose(-1, -2) @ r[..., None])[..., 0] for J, _ in blocks]
    explicit = sum(c * theory.one_step_change(e, torch.zeros_like(e), g, lr) for c, e, g in zip(weights, es, gs))
    scale = 1.0 + float(explicit.abs().max())
    assert torch.allclose(theory.residual_objective(r, A, b), explicit, rtol=1e-10, atol=1e-10 * scale)
    inner = sum(c * (g * e).sum(-1) for c, e, g in zip(weights, es, gs))
    sqnorm = sum(c * (g * g).sum(-1) for c, g in zip(weights, gs))
    assert torch.allclose(theory.greedy_score(inner, sqnorm, lr), explicit, rtol=1e-10, atol=1e-10 * scale)
    # r(y) = r0 + M y: G(y) - (y^T H y - 2 q^T y) must not depend on y.
    r0, M = randn(n, K), randn(n, K, K)
    quad = theory.label_quadratic(A, b, r0, M)
    rest = []
    for _ in range(3):
        y = randn(n, K)
        G = theory.residual_objective(r0 + (M @ y[..., None])[..., 0], A, b)
        rest.append(G - ((y[..., None, :] @ quad.H @ y[..., None])[..., 0, 0] - 2.0 * (quad.q * y).sum(-1)))
    assert torch.allclose(rest[0], rest[1], rtol=1e-9, atol=1e-9 * scale)
    assert torch.allclose(rest[0], rest[2], rtol=1e-9, atol=1e-9 * scale)
    # The regression residual r = z - y (M = -I) through label_jacobian=None: the same quadratic, isotropic
    # exactly when A is.
    reg = theory.label_quadratic(A, b, r0)
    full = theory.label_quadratic(A, b, r0, -torch.eye(K, dtype=dt).expand(n, K, K))
    assert torch.allclose(reg.H, full.H, rtol=1e-12, atol=1e-12 * scale)
    assert torch.allclose(reg.q, full.q, rtol=1e-12, atol=1e-12 * scale)
    assert reg.isotropic == (iso and not two)


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 6), lr=STEPS, seed=SEEDS)
def test_greedy_lsr_change_is_the_kaczmarz_step(d, lr, seed):
    """With the greedy LSR label the one-step change is -<e, x>^2 / ||x||^2 for every step size."""
    _, w, w_star, x, _ = _state("lsr", d, 1, seed)
    label = theory.greedy_label_lsr(w, w_star, x, lr)
    grad = ((w * x).sum(-1) - label)[:, None] * x
    change = theory.one_step_change(w, w_star, grad, lr)
    expected = theory.greedy_lsr_change(((w - w_star) * x).sum(-1), (x * x).sum(-1))
    assert torch.allclose(change, expected, rtol=1e-8, atol=1e-8 * (1 + float(((w - w_star) ** 2).sum(-1).max())))
