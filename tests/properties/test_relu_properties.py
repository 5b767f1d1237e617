"""Property tests (hypothesis) for the ReLU teacher-student closed forms and the simulation's metrics.

Hypothesis draws dimensions, scales and integer seeds; tensors are built inside the test from the seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from teachtheory.teacher_student import (
    TeacherStudentConfig,
    activation_correlations,
    train_teacher_student,
)
from teachtheory.theory import relu as T
from teachtheory.threads import intra_op_threads

DT = torch.float64
SETTINGS = settings(max_examples=30, deadline=None)


@pytest.fixture(autouse=True)
def _one_thread():
    with intra_op_threads(1):
        yield


def _vectors(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


@SETTINGS
@given(d=st.integers(1, 8), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 10.0))
def test_gradient_is_autograd_of_the_loss_and_positively_homogeneous(d, seed, scale):
    w, ws = _vectors(seed, 2, d).unbind(0)
    wg = w.clone().requires_grad_(True)
    T.population_loss(wg, ws).backward()
    g = T.population_gradient(w, ws)
    torch.testing.assert_close(wg.grad, g, rtol=1e-9, atol=1e-12)
    # E grad J(c w, c w*) = c E grad J(w, w*) for c > 0 (J is 2-homogeneous)
    torch.testing.assert_close(T.population_gradient(scale * w, scale * ws), scale * g, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(d=st.integers(2, 6), seed=st.integers(0, 2**31 - 1))
def test_gradient_is_rotation_equivariant(d, seed):
    w, ws, m = _vectors(seed, 3, d, d)[0, :2], _vectors(seed + 1, d), _vectors(seed + 2, d, d)
    w = w[0]
    Q, _ = torch.linalg.qr(m)
    torch.testing.assert_close(T.population_gradient(Q @ w, Q @ ws), Q @ T.population_gradient(w, ws),
                               rtol=1e-9, atol=1e-12)


@SETTINGS
@given(d=st.integers(1, 6), seed=st.integers(0, 2**31 - 1), shrink=st.floats(0.0, 0.999))
def test_lyapunov_product_positive_inside_omega(d, seed, shrink):
    ws, u = _vectors(seed, 2, d).unbind(0)
    w = ws + shrink * ws.norm() * u / u.norm()  # ||w - w*|| < ||w*||
    if w.norm() < 1e-9 or (w - ws).norm() < 1e-6 * ws.norm():
        return
    assert bool(T.in_omega(w, ws)) or shrink == 0.0
    assert float(T.lyapunov_inner(w, ws)) >= 0.0
    if shrink > 0:
        assert float(T.lyapunov_inner(w, ws)) > 0.2 * float(((w - ws) ** 2).sum())  # infimum of the ratio is 1/4


@SETTINGS
@given(d=st.integers(1, 3000), eps=st.floats(0.001, 1.0))
def test_init_probability_is_a_probability_above_the_bound(d, eps):
    rho = T.init_radius(d, eps)
    p = T.init_in_omega_probability(d, rho)
    assert 0.0 <= p <= 0.5 + 1e-12
    assert p >= (1 - eps) / 2 - 1e-12
    assert T.init_in_omega_probability(d, rho * 1.1) <= p + 1e-12  # a larger ball reaches further outside Omega


@SETTINGS
@given(K=st.integers(1, 4), M=st.integers(1, 4), d=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_k_node_gradient_permutation_equivariant_and_autograd(K, M, d, seed):
    W, Ws = _vectors(seed, K, d), _vectors(seed + 1, M, d)
    a, a_s = _vectors(seed + 2, K), _vectors(seed + 3, M)
    gW, ga = T.population_gradient_k(W, a, Ws, a_s)
    perm = torch.randperm(K, generator=torch.Generator().manual_seed(seed))
    gWp, gap = T.population_gradient_k(W[perm], a[perm], Ws, a_s)
    torch.testing.assert_close(gWp, gW[perm], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gap, ga[perm], rtol=1e-10, atol=1e-12)
    Wg, ag = W.clone().requires_grad_(True), a.clone().requires_grad_(True)
    T.population_loss_k(Wg, ag, Ws, a_s).backward()
    torch.testing.assert_close(Wg.grad, gW, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(ag.grad, ga, rtol=1e-8, atol=1e-10)


@SETTINGS
@given(K=st.integers(1, 12))
def test_symmetric_fixed_point_is_critical_for_every_K(K):
    x = T.symmetric_fixed_point(K)
    gW, _ = T.population_gradient_k(T.symmetric_start(K, x, x), None, torch.eye(K, dtype=DT), None)
    assert float(gW.abs().max()) < 1e-12
    assert 0 < x <= 1


@SETTINGS
@given(n=st.integers(3, 40), m=st.integers(1, 4), k=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
       scale=st.floats(0.01, 100.0))
def test_activation_correlations_bounded_and_scale_invariant(n, m, k, seed, scale):
    a = torch.relu(_vectors(seed, 2, n, m))
    b = torch.relu(_vectors(seed + 1, 2, n, k))
    rho = activation_correlations(a, b)
    assert rho.shape == (2, m, k)
    assert bool((rho.abs() <= 1 + 1e-12).all())
    torch.testing.assert_close(activation_correlations(scale * a, b), rho, rtol=1e-9, atol=1e-12)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), runs=st.integers(2, 3), p=st.sampled_from([0.0, 1.5]))
def test_teacher_student_run_r_equals_single_run(seed, runs, p):
    cfg = TeacherStudentConfig(input_dim=4, teacher_widths=(2,), output_dim=2, multi=2, train_size=50, eval_size=40,
                               batch_size=8, steps=8, record_every=4, strength_decay=p, grad_samples=8)
    seeds = [seed + 7 * r for r in range(runs)]
    batched = train_teacher_student(cfg, seed=seeds, dtype=DT)
    r = runs - 1
    single = train_teacher_student(cfg, seed=[seeds[r]], dtype=DT)
    np.testing.assert_allclose(single.eval_loss[0], batched.eval_loss[r], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(single.best_corr[0][0], batched.best_corr[0][r], rtol=1e-9, atol=1e-12)
    assert math.isfinite(float(batched.g1_inf.max()))
