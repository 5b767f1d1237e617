"""Properties of the committee closed forms, ODEs and engines on drawn shapes, scales and seeds."""

from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from teachtheory import committee as eng
from teachtheory.random import RunStreams, as_seeds
from teachtheory.theory import committee as th

D = torch.float64
seeds = st.integers(0, 2**31 - 1)


def psd(seed: int, n: int, scale: float, rank: int | None = None) -> torch.Tensor:
    """A PSD n x n matrix from the seed (rank ``rank`` if given)."""
    A = RunStreams(as_seeds(seed, 1)).normal("cov", 0, (n, rank or n + 1))[0]
    return scale * A @ A.T / A.shape[1]


@given(seed=seeds, scale=st.floats(0.05, 5.0), singular=st.booleans())
def test_averages_are_finite_bounded_and_symmetric(seed, scale, singular):
    C2, C3, C4 = (psd(seed + n, n, scale, rank=n - 1 if singular else None) for n in (2, 3, 4))
    values = [th.I2(C2), th.J2(C2), th.I3(C3), th.I4(C4)]
    assert all(bool(torch.isfinite(v)) for v in values)
    assert abs(float(values[0])) <= 1.0 and 0 < float(values[1]) <= 2 / math.pi
    swap2 = torch.tensor([1, 0])
    assert torch.allclose(th.I2(C2[swap2][:, swap2]), values[0], atol=1e-14)
    assert torch.allclose(th.J2(C2[swap2][:, swap2]), values[1], atol=1e-14)
    for perm in ([1, 0, 2, 3], [0, 1, 3, 2]):  # I4 is symmetric in (1, 2) and in (3, 4)
        p = torch.tensor(perm)
        assert torch.allclose(th.I4(C4[p][:, p]), values[3], atol=1e-13)


@given(seed=seeds, scale=st.floats(0.05, 5.0), a=st.floats(-3.0, 3.0))
def test_i3_is_linear_in_its_bare_field(seed, scale, a):
    C = psd(seed, 3, scale)
    S = torch.diag(torch.tensor([1.0, a, 1.0], dtype=D))
    assert torch.allclose(th.I3(S @ C @ S), a * th.I3(C), atol=1e-13)


@given(seed=seeds, scale=st.floats(0.05, 3.0))
def test_price_theorem_dI2_dC12_equals_J2(seed, scale):
    C = psd(seed, 2, scale) + 0.05 * torch.eye(2, dtype=D)
    h = 1e-6
    E = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=D)
    derivative = (th.I2(C + h * E) - th.I2(C - h * E)) / (2 * h)
    assert torch.allclose(derivative, th.J2(C), rtol=1e-6, atol=1e-8)


@given(seed=seeds, K=st.integers(1, 3), M=st.integers(1, 3), scale=st.floats(0.1, 3.0))
def test_generalisation_error_nonnegative_and_zero_at_the_teacher(seed, K, M, scale):
    omega = psd(seed, K + M, scale)
    streams = RunStreams(as_seeds(seed, 1))
    v, v_star = streams.normal("v", 0, (K,))[0], streams.normal("vs", 0, (M,))[0]
    eps = th.generalisation_error(omega[:K, :K], omega[:K, K:], omega[K:, K:], v, v_star)
    assert float(eps) >= -1e-12
    T = omega[K:, K:]
    assert abs(float(th.generalisation_error(T, T, T, v_star, v_star))) < 1e-12


@given(seed=seeds, K=st.integers(1, 3), M=st.integers(1, 3), lr=st.floats(0.05, 3.0), noise=st.floats(0.0, 0.5))
def test_ode_rhs_symmetry_permutation_and_learning_rate_structure(seed, K, M, lr, noise):
    omega = psd(seed, K + M, 1.0)
    Q, R, T = omega[:K, :K], omega[:K, K:], omega[K:, K:]
    streams = RunStreams(as_seeds(seed, 1))
    v, v_star = streams.normal("v", 0, (K,))[0], streams.normal("vs", 0, (M,))[0]
    dQ, dR, dv = th.ode_rhs(Q, R, T, v, v_star, lr, noise_var=noise**2)
    assert torch.allclose(dQ, dQ.T, atol=1e-13)
    # relabelling the student nodes relabels the equations
    perm = torch.arange(K).flip(0)
    pQ, pR, pv = th.ode_rhs(Q[perm][:, perm], R[perm], T, v[perm], v_star, lr, noise_var=noise**2)
    assert torch.allclose(pQ, dQ[perm][:, perm], atol=1e-12) and torch.allclose(pR, dR[perm], atol=1e-12)
    assert torch.allclose(pv, dv[perm], atol=1e-12)
    # dR, dv are linear in the learning rate; dQ = eta A + eta^2 B
    dQ2, dR2, dv2 = th.ode_rhs(Q, R, T, v, v_star, 2 * lr, noise_var=noise**2)
    dQ3, _, _ = th.ode_rhs(Q, R, T, v, v_star, 3 * lr, noise_var=noise**2)
    assert torch.allclose(dR2, 2 * dR, atol=1e-12) and torch.allclose(dv2, 2 * dv, atol=1e-12)
    assert torch.allclose(dQ3 - 3 * dQ2 + 3 * dQ, torch.zeros_like(dQ), atol=1e-11)  # 2nd difference of a quadratic


@given(seed=seeds, K=st.integers(1, 3), M=st.integers(1, 3), extra=st.integers(0, 20), rank_drop=st.booleans())
def test_weights_realise_drawn_order_parameters(seed, K, M, extra, rank_drop):
    P = K + M
    omega = psd(seed, P, 1.0, rank=max(1, P - 1) if rank_drop else None)
    N = P + extra
    W, Ws = eng.weights_from_order_parameters(omega[:K, :K], omega[:K, K:], omega[K:, K:], N, seed=seed, runs=2)
    Q, R, T = eng.order_parameters(W, Ws)
    assert torch.allclose(Q, omega[:K, :K].expand_as(Q), atol=1e-11)
    assert torch.allclose(R, omega[:K, K:].expand_as(R), atol=1e-11)
    assert torch.allclose(T, omega[K:, K:].expand_as(T), atol=1e-11)


@given(seed=st.integers(0, 10_000), K=st.integers(1, 3), M=st.integers(1, 2), lr=st.floats(0.1, 2.0))
def test_order_parameter_engine_batch_equals_single(seed, K, M, lr):
    omega = psd(seed, K + M, 0.5) + 0.1 * torch.eye(K + M, dtype=D)
    problem = eng.CommitteeProblem(Q0=omega[:K, :K], R0=omega[:K, K:], T=omega[K:, K:], v0=torch.ones(K),
                                   v_star=torch.ones(M), lr=lr)
    batch = eng.simulate_order_parameters(problem, 20, [0.0, 1.0], seed=[seed, seed + 7])
    single = eng.simulate_order_parameters(problem, 20, [0.0, 1.0], seed=[seed + 7])
    assert torch.allclose(batch.Q[1], single.Q[0], atol=1e-12) and torch.allclose(batch.eps[1], single.eps[0])


@given(seed=seeds, K=st.integers(1, 4), M=st.integers(1, 3), batch=st.integers(1, 4), second=st.booleans(),
       noise=st.floats(0.0, 0.5))
def test_ode_rhs_batch_equals_each_problem_alone(seed, K, M, batch, second, noise):
    """The vectorised right-hand side treats leading dims as independent problems (tensor and numpy inputs)."""
    omegas = torch.stack([psd(seed + b, K + M, 1.0 + b) for b in range(batch)])
    streams = RunStreams(as_seeds(seed, 1))
    v, v_star = streams.normal("v", 0, (batch, K))[0], streams.normal("vs", 0, (M,))[0]
    Q, R, T = omegas[:, :K, :K], omegas[:, :K, K:], omegas[:, K:, K:]
    together = th.ode_rhs(Q, R, T, v, v_star, 0.9, lr_v=0.3, train_second_layer=second, noise_var=noise**2)
    arrays = th._rhs(Q.numpy(), R.numpy(), T.numpy(), v.numpy(), v_star.numpy(), 0.9, 0.3, second, noise**2)
    for b in range(batch):
        alone = th.ode_rhs(Q[b], R[b], T[b], v[b], v_star, 0.9, lr_v=0.3, train_second_layer=second,
                           noise_var=noise**2)
        for x, y, z in zip(together, alone, arrays):
            assert x.shape[0] == batch and torch.allclose(x[b], y, rtol=0, atol=1e-13)
            assert torch.allclose(x[b], torch.from_numpy(z[b]), rtol=0, atol=1e-13)
