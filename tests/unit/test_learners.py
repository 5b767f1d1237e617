"""Tests for teachtheory.learners: gradients, residuals and output Jacobians against autograd, stability, the
label quadratic built on them, update rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from teachtheory.learners import (
    LABEL_KINDS,
    MLP,
    SGD,
    Adam,
    Learner,
    LeastSquares,
    Logistic,
    Momentum,
    Softmax,
    UpdateRule,
    make_update_rule,
)
from teachtheory.teachers.last import greedy_label_quadratic

SETTINGS = settings(max_examples=25, deadline=None)
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
DIMS = st.integers(min_value=1, max_value=5)
CLASSES = st.integers(min_value=2, max_value=4)
POOL = st.integers(min_value=1, max_value=5)
RUNS = st.integers(min_value=1, max_value=3)
KINDS = ["lsr", "lsr-vector", "logistic", "softmax", "softmax-soft", "mlp"]

DT = torch.float64


# ---------------------------------------------------------------------------
# Independent reference: the per-example loss written from its definition, differentiated by torch.func
# ---------------------------------------------------------------------------


def reference_loss(kind: str, learner, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """l(w; x, y) for ONE example (w [p], x [d], y [] or [K]), written from the textbook formula."""
    d = x.shape[0]
    if kind in ("lsr", "lsr-vector"):
        K = learner.output_dim
        W = w.reshape(d, K)
        z = x @ W
        return 0.5 * ((z - y.reshape(K)) ** 2).sum()
    if kind == "logistic":
        m = (w * x).sum()
        return torch.log1p(torch.exp(-y * m))
    if kind in ("softmax", "softmax-soft"):
        K = learner.output_dim
        z = x @ w.reshape(d, K)
        return -(y * (z - torch.logsumexp(z, 0))).sum()
    if kind == "mlp":
        h, K = learner.hidden, learner.output_dim
        V = w[: d * h].reshape(d, h)
        W = w[d * h:].reshape(h, K)
        z = torch.clamp(x @ V, min=0.0) @ W
        return -(y * (z - torch.logsumexp(z, 0))).sum()
    raise AssertionError(kind)


def reference_grads(kind, learner, w, X, y) -> torch.Tensor:
    """Per-example gradients [R, n, p] by torch.func.grad over explicit loops on runs and examples."""
    R, n = w.shape[0], X.shape[1]
    Xe = X.expand(R, *X.shape[1:])
    ye = y.expand(R, *y.shape[1:])
    grad_fn = torch.func.grad(lambda v, xi, yi: reference_loss(kind, learner, v, xi, yi))
    out = torch.zeros(R, n, w.shape[1], dtype=w.dtype)
    for r in range(R):
        for i in range(n):
            out[r, i] = grad_fn(w[r], Xe[r, i], ye[r, i])
    return out


def make_case(kind: str, d: int, K: int, n: int, R: int, seed: int, shared: bool = False):
    """(learner, w [R, p], X [R|1, n, d], y [R|1, n(, K)]) with random but generic values."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "lsr":
        learner = LeastSquares(d)
    elif kind == "lsr-vector":
        learner = LeastSquares(d, K)
    elif kind == "logistic":
        learner = Logistic(d)
    elif kind in ("softmax", "softmax-soft"):
        learner = Softmax(d, K)
    else:
        learner = MLP(d, 3, K)
    Rp = 1 if shared else R
    w = torch.randn(R, learner.num_params, generator=gen, dtype=DT)
    X = torch.randn(Rp, n, d, generator=gen, dtype=DT)
    if kind == "lsr":
        y = torch.randn(Rp, n, generator=gen, dtype=DT)
    elif kind == "lsr-vector":
        y = torch.randn(Rp, n, K, generator=gen, dtype=DT)
    elif kind == "logistic":
        y = torch.where(torch.rand(Rp, n, generator=gen, dtype=DT) < 0.5, -1.0, 1.0).to(DT)
    elif kind == "softmax-soft":
        # Soft labels that do NOT sum to one (so dl/dz = softmax(z) sum(y) - y, not softmax(z) - y).
        y = 2.0 * torch.rand(Rp, n, K, generator=gen, dtype=DT)
    else:
        labels = torch.randint(0, K, (Rp, n), generator=gen)
        y = torch.nn.functional.one_hot(labels, K).to(DT)
    return learner, w, X, y


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(d=DIMS, K=CLASSES, n=POOL, R=RUNS, seed=SEEDS)
def test_per_example_grad_matches_autograd(kind, d, K, n, R, seed):
    learner, w, X, y = make_case(kind, d, K, n, R, seed)
    g = learner.grad(w, X, y)
    assert g.shape == (R, n, learner.num_params)
    ref = reference_grads(kind, learner, w, X, y)
    torch.testing.assert_close(g, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(d=DIMS, K=CLASSES, n=POOL, R=RUNS, seed=SEEDS)
def test_per_example_loss_matches_definition(kind, d, K, n, R, seed):
    learner, w, X, y = make_case(kind, d, K, n, R, seed)
    loss = learner.loss(w, X, y)
    assert loss.shape == (R, n)
    ref = torch.stack([
        torch.stack([reference_loss(kind, learner, w[r], X[r, i], y[r, i]) for i in range(n)]) for r in range(R)
    ])
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(d=DIMS, K=CLASSES, n=POOL, R=RUNS, seed=SEEDS)
def test_mean_grad_and_grad_stats_agree_with_grad(kind, d, K, n, R, seed):
    learner, w, X, y = make_case(kind, d, K, n, R, seed)
    g = learner.grad(w, X, y)
    torch.testing.assert_close(learner.mean_grad(w, X, y), g.mean(1), rtol=1e-10, atol=1e-12)
    e = torch.randn(R, learner.num_params, generator=torch.Generator().manual_seed(seed + 1), dtype=DT)
    inner, sqnorm = learner.grad_stats(w, e, X, y)
    assert inner.shape == sqnorm.shape == (R, n)
    ref_inner = torch.stack([torch.stack([torch.dot(e[r], g[r, i]) for i in range(n)]) for r in range(R)])
    ref_sq = torch.stack([torch.stack([torch.dot(g[r, i], g[r, i]) for i in range(n)]) for r in range(R)])
    torch.testing.assert_close(inner, ref_inner, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sqnorm, ref_sq, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(d=DIMS, K=CLASSES, n=POOL, R=st.integers(min_value=2, max_value=4), seed=SEEDS)
def test_shared_pool_equals_expanded_pool(kind, d, K, n, R, seed):
    learner, w, X, y = make_case(kind, d, K, n, R, seed, shared=True)
    assert X.shape[0] == 1 and y.shape[0] == 1
    Xe, ye = X.expand(R, *X.shape[1:]).clone(), y.expand(R, *y.shape[1:]).clone()
    e = torch.randn(R, learner.num_params, generator=torch.Generator().manual_seed(seed + 7), dtype=DT)
    tol = dict(rtol=1e-11, atol=1e-13)
    torch.testing.assert_close(learner.outputs(w, X), learner.outputs(w, Xe), **tol)
    torch.testing.assert_close(learner.loss(w, X, y), learner.loss(w, Xe, ye), **tol)
    torch.testing.assert_close(learner.grad(w, X, y), learner.grad(w, Xe, ye), **tol)
    torch.testing.assert_close(learner.mean_grad(w, X, y), learner.mean_grad(w, Xe, ye), **tol)
    for a, b in zip(learner.grad_stats(w, e, X, y), learner.grad_stats(w, e, Xe, ye)):
        torch.testing.assert_close(a, b, **tol)
    ja, jb = learner.output_jacobian(w, X, e), learner.output_jacobian(w, Xe, e)
    torch.testing.assert_close(ja.z, jb.z, **tol)
    for block in jb.jvp:
        torch.testing.assert_close(ja.jvp[block], jb.jvp[block], **tol)
        torch.testing.assert_close(ja.gram[block].expand_as(jb.gram[block]), jb.gram[block], **tol)
    if kind != "logistic":
        w_star = w + e
        qa = greedy_label_quadratic(learner, w, w_star, X, 0.3)
        qb = greedy_label_quadratic(learner, w, w_star, Xe, 0.3)
        torch.testing.assert_close(qa.H, qb.H, **tol)
        torch.testing.assert_close(qa.q, qb.q, **tol)


# ---------------------------------------------------------------------------
# The derivatives a teacher reads: residual dl/dz, its label Jacobian, the factored output Jacobian
# ---------------------------------------------------------------------------


def reference_output(kind, learner, w, x):
    """The model output z for ONE example (w [p], x [d]) as [K], from the definition."""
    d = x.shape[0]
    if kind == "mlp":
        h, K = learner.hidden, learner.output_dim
        return torch.clamp(x @ w[: d * h].reshape(d, h), min=0.0) @ w[d * h:].reshape(h, K)
    return x @ w.reshape(d, learner.output_dim)


def loss_of_output(kind, z, y):
    """l as a function of the output z [K] (labels in vector form [K])."""
    if kind in ("lsr", "lsr-vector"):
        return 0.5 * ((z - y) ** 2).sum()
    if kind == "logistic":
        return torch.log1p(torch.exp(-y[0] * z[0]))
    return -(y * (z - torch.logsumexp(z, 0))).sum()


EXPECTED_KIND = {"lsr": "real", "lsr-vector": "real", "logistic": "binary-logit", "softmax": "probabilities",
                 "softmax-soft": "probabilities", "mlp": "probabilities"}


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(d=DIMS, K=CLASSES, n=POOL, R=RUNS, seed=SEEDS, shared=st.booleans())
def test_output_jacobian_matches_autograd(kind, d, K, n, R, seed, shared):
    """z, J_k e_k and J_k J_k^T per parameter block against torch.func on the output's definition."""
    learner, w, X, _ = make_case(kind, d, K, n, R, seed, shared=shared)
    e = torch.randn(R, learner.num_params, generator=torch.Generator().manual_seed(seed + 5), dtype=DT)
    jac = learner.output_jacobian(w, X, e)
    assert set(jac.jvp) == set(jac.gram) == set(learner.param_blocks())
    Xe = X.expand(R, *X.shape[1:])
    Kl = learner.output_dim
    for r in range(R):
        for i in range(n):
            def f(v, r=r, i=i):
                return reference_output(kind, learner, v, Xe[r, i])

            J = torch.func.jacrev(f)(w[r])  # [K, p]
            torch.testing.assert_close(jac.z[r, i], f(w[r]), rtol=1e-12, atol=1e-12)
            for block, cols in learner.param_blocks().items():
                Jb = J[:, cols]
                torch.testing.assert_close(jac.jvp[block][r, i], Jb @ e[r, cols], rtol=1e-10, atol=1e-12)
                gram = jac.gram[block]
                G = gram[min(r, gram.shape[0] - 1), i]
                G = G * torch.eye(Kl, dtype=DT) if G.dim() == 0 else G
                torch.testing.assert_close(G, Jb @ Jb.T, rtol=1e-10, atol=1e-12)
    # Constants supplied by the caller give the same Jacobian.
    again = learner.output_jacobian(w, X, e, learner.pool_constants(X))
    for block in jac.gram:
        torch.testing.assert_close(again.gram[block], jac.gram[block], rtol=0, atol=0)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(d=DIMS, K=CLASSES, n=POOL, R=RUNS, seed=SEEDS)
def test_residual_and_its_label_jacobian_match_autograd(kind, d, K, n, R, seed):
    """residual = dl/dz and residual_label_jacobian = dr/dy by autograd on l(z, y); residual_ agrees."""
    learner, _, _, y = make_case(kind, d, K, n, R, seed)
    assert learner.label_kind == EXPECTED_KIND[kind] and learner.label_kind in LABEL_KINDS
    gen = torch.Generator().manual_seed(seed + 9)
    Kl = learner.output_dim
    z = 3.0 * torch.randn(R, n, Kl, generator=gen, dtype=DT)
    yv = learner.label_vector(y)
    if kind == "logistic":  # the synthesised labels of LAST are any reals
        yv = yv * (0.2 + 2.0 * torch.rand(yv.shape, generator=gen, dtype=DT))
    r = learner.residual(z, yv)
    M = learner.residual_label_jacobian(z, yv)
    assert r.shape == (R, n, Kl) and M.shape == (R, n, Kl, Kl)
    for a in range(R):
        for i in range(n):
            grad_z = torch.func.grad(lambda zz, a=a, i=i: loss_of_output(kind, zz, yv[a, i]))(z[a, i])
            torch.testing.assert_close(r[a, i], grad_z, rtol=1e-10, atol=1e-12)
            jac_y = torch.func.jacrev(
                lambda yy, a=a, i=i: torch.func.grad(lambda zz: loss_of_output(kind, zz, yy))(z[a, i])
            )(yv[a, i])
            torch.testing.assert_close(M[a, i], jac_y, rtol=1e-10, atol=1e-12)
    # The in-place variant gives the same values, also on a strided (class-major) view of z.
    def class_major():
        return z.transpose(1, 2).clone(memory_format=torch.contiguous_format).transpose(1, 2)

    torch.testing.assert_close(learner.residual(class_major(), yv), r, rtol=1e-12, atol=1e-14)
    consumed = class_major()
    torch.testing.assert_close(learner.residual_(consumed, yv), r, rtol=1e-12, atol=1e-14)


def test_learners_know_no_target():
    """The house rule: learners expose derivatives, not teaching scores, and never take w*."""
    import inspect

    for name in ("greedy_scores", "greedy_terms", "label_quadratic"):
        for cls in (Learner, LeastSquares, Logistic, Softmax, MLP):
            assert not hasattr(cls, name), f"{cls.__name__}.{name}"
    for cls in (LeastSquares, Logistic, Softmax, MLP):
        for attr, member in inspect.getmembers(cls, inspect.isfunction):
            assert "w_star" not in inspect.signature(member).parameters, f"{cls.__name__}.{attr}"


# ---------------------------------------------------------------------------
# Numerical stability
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [1000.0, -1000.0, 700.0, -745.0, 40.0, -40.0])
def test_logistic_loss_is_stable_for_huge_margins(margin):
    learner = Logistic(2)
    w = torch.tensor([[margin, 0.0]], dtype=DT)
    X = torch.tensor([[[1.0, 0.3]]], dtype=DT)
    for label in (1.0, -1.0):
        y = torch.tensor([[label]], dtype=DT)
        loss = learner.loss(w, X, y)
        u = -label * margin  # loss = log(1 + exp(u)) = softplus(u)
        exact = u + math.log1p(math.exp(-u)) if u > 0 else math.log1p(math.exp(u))
        assert torch.isfinite(loss).all()
        assert loss.item() == pytest.approx(exact, rel=1e-14, abs=1e-300)
        g = learner.grad(w, X, y)
        assert torch.isfinite(g).all()
        # dl/dm = -y sigmoid(-y m): magnitude 1 when the margin is badly wrong, ~0 when right.
        expected = -label * (1.0 / (1.0 + math.exp(-u)) if u > -700 else math.exp(u))
        assert g[0, 0, 0].item() == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    learner = Softmax(1, 3)
    w = torch.tensor([[1e4, 0.0, -1e4]], dtype=DT)  # logits (1e4, 0, -1e4) for x = 1
    X = torch.ones(1, 3, 1, dtype=DT)
    y = torch.eye(3, dtype=DT)[None]
    loss = learner.loss(w, X, y)
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss[0], torch.tensor([0.0, 1e4, 2e4], dtype=DT), rtol=1e-15, atol=1e-300)
    g = learner.grad(w, X, y)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g[0], torch.tensor([[0.0, 0, 0], [1, -1, 0], [1, 0, -1]], dtype=DT))
    # Soft label of total mass 2 on the same logits: loss = -sum y_k log p_k.
    ys = torch.tensor([[[0.5, 1.0, 0.5]]], dtype=DT)
    assert learner.loss(w, X[:, :1], ys).item() == pytest.approx(0.5 * 0 + 1.0 * 1e4 + 0.5 * 2e4, rel=1e-15)


def test_mlp_cross_entropy_is_stable_for_huge_logits():
    learner = MLP(1, 1, 2)
    w = torch.tensor([[1.0, 1e4, -1e4]], dtype=DT)  # V = 1, W = (1e4, -1e4): logits (1e4, -1e4) at x = 1
    X = torch.ones(1, 1, 1, dtype=DT)
    y = torch.tensor([[[0.0, 1.0]]], dtype=DT)
    assert learner.loss(w, X, y).item() == pytest.approx(2e4, rel=1e-15)
    assert torch.isfinite(learner.grad(w, X, y)).all()


# ---------------------------------------------------------------------------
# The label quadratic: G(y) = y^T H y - 2 q^T y equals the one-step squared distance up to a constant
# ---------------------------------------------------------------------------


def one_step_distance(kind, learner, w, w_star, x, y, lr, beta=1.0) -> float:
    """||w - lr grad l(w; x, y) - w*||^2 (beta-weighted first layer for the MLP), via autograd."""
    v = w.clone().requires_grad_(True)
    loss = reference_loss(kind, learner, v, x, y)
    (g,) = torch.autograd.grad(loss, v)
    e = (w - lr * g - w_star).detach()
    if kind == "mlp":
        split = learner.input_dim * learner.hidden
        return float(beta * (e[:split] ** 2).sum() + (e[split:] ** 2).sum())
    return float((e * e).sum())


def label_objective(H, q, y):
    return float(y @ H @ y - 2.0 * q @ y)


@pytest.mark.parametrize("kind", ["lsr", "lsr-vector", "softmax", "mlp"])
@SETTINGS
@given(d=DIMS, K=CLASSES, n=POOL, seed=SEEDS, lr=st.floats(0.01, 3.0), beta=st.sampled_from([0.5, 1.0, 2.0]))
def test_label_quadratic_is_the_one_step_distance(kind, d, K, n, seed, lr, beta):
    R = 2
    learner, w, X, _ = make_case(kind, d, K, n, R, seed)
    gen = torch.Generator().manual_seed(seed + 3)
    w_star = w + torch.randn(w.shape, generator=gen, dtype=DT)
    beta = beta if kind == "mlp" else 1.0
    quad = greedy_label_quadratic(learner, w, w_star, X, lr, beta)
    Kl = learner.output_dim
    assert quad.H.shape == (R, n, Kl, Kl) and quad.q.shape == (R, n, Kl)
    torch.testing.assert_close(quad.H, quad.H.transpose(-1, -2), rtol=1e-12, atol=1e-14)
    assert (torch.linalg.eigvalsh(quad.H) >= -1e-10 * (1 + quad.H.abs().amax())).all()
    if quad.isotropic:
        torch.testing.assert_close(quad.H, quad.H[..., :1, :1] * torch.eye(Kl, dtype=DT))
    for r in range(R):
        e = w[r] - w_star[r]
        if kind == "mlp":
            split = learner.input_dim * learner.hidden
            e_sq = float(beta * (e[:split] ** 2).sum() + (e[split:] ** 2).sum())
        else:
            e_sq = float((e * e).sum())
        for i in range(n):
            H, q = quad.H[r, i], quad.q[r, i]
            consts = []
            for _ in range(4):
                y = 3.0 * torch.randn(Kl, generator=gen, dtype=DT)
                y_arg = y[0] if kind == "lsr" else y
                dist = one_step_distance(kind, learner, w[r], w_star[r], X[r, i], y_arg, lr, beta)
                consts.append(dist - label_objective(H, q, y))
            scale = 1.0 + abs(e_sq) + max(abs(c) for c in consts)
            # The remainder must not depend on y ...
            assert max(consts) - min(consts) <= 1e-10 * scale
            if kind in ("softmax", "mlp"):
                # ... and equals ||e||^2 exactly when the gradient is linear (not just affine) in y.
                assert consts[0] == pytest.approx(e_sq, rel=1e-10, abs=1e-10 * scale)
            else:
                # Least squares: r = z - y is affine, the constant is ||e||^2 + a||z||^2 - 2 b.z.
                xi = X[r, i]
                a = lr**2 * float(xi @ xi)
                z = learner.outputs(w[r:r + 1], X[r:r + 1, i:i + 1]).reshape(-1)
                b = lr * (xi @ e.reshape(d, Kl))
                expected = e_sq + a * float(z @ z) - 2.0 * float(b @ z)
                assert consts[0] == pytest.approx(expected, rel=1e-10, abs=1e-10 * scale)


def test_logistic_has_no_label_quadratic():
    learner = Logistic(2)
    w = torch.zeros(1, 2, dtype=DT)
    with pytest.raises(ValueError, match="not affine in the label"):
        greedy_label_quadratic(learner, w, w, torch.zeros(1, 1, 2, dtype=DT), 0.1)
    with pytest.raises(ValueError, match="needs the label"):
        learner.residual_label_jacobian(torch.zeros(1, 1, 1, dtype=DT))


# ---------------------------------------------------------------------------
# Shapes, validation, accuracy
# ---------------------------------------------------------------------------


def test_sizes_and_label_shapes():
    assert LeastSquares(3).num_params == 3 and LeastSquares(3).label_shape() == ()
    assert LeastSquares(3, 2).num_params == 6 and LeastSquares(3, 2).label_shape() == (2,)
    assert Logistic(4).label_shape() == ()
    assert Softmax(3, 4).num_params == 12 and Softmax(3, 4).label_shape() == (4,)
    mlp = MLP(3, 5, 2)
    assert mlp.num_params == 3 * 5 + 5 * 2
    blocks = mlp.param_blocks()
    assert blocks["first"] == slice(0, 15) and blocks["output"] == slice(15, 25)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: LeastSquares(0), "input_dim"),
        (lambda: LeastSquares(2, 0), "output_dim"),
        (lambda: Softmax(2, 1), "num_classes"),
        (lambda: MLP(2, 0, 2), "hidden"),
        (lambda: MLP(2, 3, 1), "num_classes"),
    ],
)
def test_learner_validation(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_accuracy_and_predictions():
    learner = Logistic(1)
    w = torch.tensor([[1.0], [-1.0]], dtype=DT)
    X = torch.tensor([[[2.0], [-1.0], [0.5]]], dtype=DT)
    y = torch.tensor([[1.0, -1.0, -1.0]], dtype=DT)
    torch.testing.assert_close(learner.accuracy(w, X, y), torch.tensor([2 / 3, 1 / 3], dtype=DT))
    with pytest.raises(TypeError):
        LeastSquares(1).accuracy(w, X, y)
    sm = Softmax(1, 2)
    ws = torch.tensor([[1.0, -1.0]], dtype=DT)
    ys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]], dtype=DT)
    torch.testing.assert_close(sm.accuracy(ws, X, ys), torch.tensor([2 / 3], dtype=DT))


# ---------------------------------------------------------------------------
# Update rules against torch.optim
# ---------------------------------------------------------------------------


def _quadratic(R: int, p: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(R, p, p, generator=gen, dtype=DT)
    A = A @ A.transpose(1, 2) + 0.5 * torch.eye(p, dtype=DT)
    b = torch.randn(R, p, generator=gen, dtype=DT)
    w0 = torch.randn(R, p, generator=gen, dtype=DT)
    return A, b, w0


def _torch_optimizer(rule_name: str, params, lr: float):
    if rule_name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if rule_name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.7)
    return torch.optim.Adam(params, lr=lr, betas=(0.8, 0.95), eps=1e-7)


@pytest.mark.parametrize("rule_name", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("lr", [0.01, 0.1])
def test_update_rules_match_torch_optim(rule_name, lr):
    R, p, steps = 3, 4, 12
    A, b, w0 = _quadratic(R, p, 11)
    rule = {"sgd": SGD(), "momentum": Momentum(0.7), "adam": Adam(0.8, 0.95, 1e-7)}[rule_name]

    def gradient(w):  # f(w) = 1/2 w^T A w - b^T w per run
        return (A @ w.unsqueeze(-1))[..., 0] - b

    w = w0.clone()
    state = rule.init(w)
    ours = []
    for t in range(steps):
        w, state = rule.step(w, gradient(w), lr, state, t)
        ours.append(w.clone())

    for r in range(R):
        param = torch.nn.Parameter(w0[r].clone())
        opt = _torch_optimizer(rule_name, [param], lr)
        for t in range(steps):
            opt.zero_grad()
            loss = 0.5 * param @ A[r] @ param - b[r] @ param
            loss.backward()
            opt.step()
            torch.testing.assert_close(ours[t][r], param.detach(), rtol=1e-12, atol=1e-14)
    # The rules must actually move the weights (the comparison is not vacuous).
    assert (ours[-1] - w0).abs().max() > 1e-3


def test_update_rules_are_pure_functions_of_their_state():
    rule = Adam()
    w = torch.ones(2, 3, dtype=DT)
    state = rule.init(w)
    g = torch.full_like(w, 0.5)
    w1, s1 = rule.step(w, g, 0.1, state, 0)
    w1b, s1b = rule.step(w, g, 0.1, state, 0)
    torch.testing.assert_close(w1, w1b)
    assert state["m"].abs().max() == 0 and state["v"].abs().max() == 0  # the input state is not mutated
    # The first bias-corrected Adam step moves each coordinate by lr (up to eps).
    torch.testing.assert_close(w - w1, torch.full_like(w, 0.1), rtol=1e-6, atol=0)


def test_make_update_rule_names_and_errors():
    assert isinstance(make_update_rule("sgd"), SGD)
    assert isinstance(make_update_rule("momentum"), Momentum)
    assert isinstance(make_update_rule("adam"), Adam)
    custom = Momentum(0.5)
    assert make_update_rule(custom) is custom
    assert isinstance(custom, UpdateRule)
    assert [make_update_rule(n).to_spec()["name"] for n in ("sgd", "momentum", "adam")] == ["sgd", "momentum", "adam"]
    with pytest.raises(ValueError, match="update"):
        make_update_rule("rmsprop")
    with pytest.raises(ValueError, match="momentum"):
        Momentum(1.0)
    with pytest.raises(ValueError, match="beta1"):
        Adam(beta1=-0.1)
    with pytest.raises(ValueError, match="beta2"):
        Adam(beta2=1.0)
    with pytest.raises(ValueError, match="eps"):
        Adam(eps=0.0)


def test_reference_loss_is_independent_of_package_formulas():
    """Sanity check of the reference itself: finite differences of reference_loss equal torch.func.grad."""
    learner, w, X, y = make_case("mlp", 3, 3, 1, 1, 5)
    f = lambda v: float(reference_loss("mlp", learner, v, X[0, 0], y[0, 0]))  # noqa: E731
    g = torch.func.grad(lambda v: reference_loss("mlp", learner, v, X[0, 0], y[0, 0]))(w[0])
    h = 1e-6
    fd = np.array([(f(w[0] + h * torch.eye(w.shape[1], dtype=DT)[j])
                    - f(w[0] - h * torch.eye(w.shape[1], dtype=DT)[j])) / (2 * h)
                   for j in range(w.shape[1])])
    np.testing.assert_allclose(g.numpy(), fd, rtol=1e-6, atol=1e-8)
