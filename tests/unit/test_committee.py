"""Tests for the soft committee machine: closed forms, ODEs, SGD engines, claims scm.integrals and scm.ode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from teachtheory import committee as eng
from teachtheory.claims import CLAIMS, CheckContext, load_claims
from teachtheory.theory import committee as th

D = torch.float64
Z = 5.0


def _cov(entries):
    return torch.tensor(entries, dtype=D)


def _gauss2(C):
    """Density of N(0, C) for 2x2 C (numpy), for dblquad."""
    det = C[0, 0] * C[1, 1] - C[0, 1] ** 2
    inv = np.linalg.inv(C)

    def pdf(a, b):
        q = inv[0, 0] * a * a + 2 * inv[0, 1] * a * b + inv[1, 1] * b * b
        return math.exp(-0.5 * q) / (2 * math.pi * math.sqrt(det))

    return pdf


def _erf(x):
    return math.erf(x / math.sqrt(2))


def _erf_prime(x):
    return math.sqrt(2 / math.pi) * math.exp(-0.5 * x * x)


COVS2 = [[[1.0, 0.3], [0.3, 0.5]], [[0.2, -0.1], [-0.1, 0.3]], [[2.0, 1.2], [1.2, 1.0]]]


# -- closed forms ------------------------------------------------------------------------------


@pytest.mark.parametrize("C", COVS2)
def test_i2_and_j2_match_dblquad(C):
    C = np.array(C)
    pdf = _gauss2(C)
    lim = 9 * math.sqrt(C.max())
    i2, _ = integrate.dblquad(lambda b, a: _erf(a) * _erf(b) * pdf(a, b), -lim, lim, -lim, lim, epsabs=1e-10)
    j2, _ = integrate.dblquad(lambda b, a: _erf_prime(a) * _erf_prime(b) * pdf(a, b), -lim, lim, -lim, lim,
                              epsabs=1e-10)
    assert float(th.I2(torch.tensor(C))) == pytest.approx(i2, abs=1e-7)
    assert float(th.J2(torch.tensor(C))) == pytest.approx(j2, abs=1e-7)


def test_i3_matches_dblquad_by_conditioning():
    # E[g'(u1) u2 g(u3)] = E_{u1,u3}[g'(u1) g(u3) E(u2 | u1, u3)], E(u2 | u1, u3) = C_{2,(13)} C_{(13)}^{-1} (u1, u3)
    C = np.array([[1.0, 0.4, 0.3], [0.4, 0.8, -0.2], [0.3, -0.2, 0.6]])
    sub = C[np.ix_([0, 2], [0, 2])]
    coef = C[1, [0, 2]] @ np.linalg.inv(sub)
    pdf = _gauss2(sub)
    lim = 9.0
    value, _ = integrate.dblquad(lambda b, a: _erf_prime(a) * (coef[0] * a + coef[1] * b) * _erf(b) * pdf(a, b),
                                 -lim, lim, -lim, lim, epsabs=1e-10)
    assert float(th.I3(torch.tensor(C))) == pytest.approx(value, abs=1e-7)


def test_i4_matches_monte_carlo():
    A = torch.tensor([[1.0, 0.2, 0.0, 0.3, 0.1], [0.1, 0.9, 0.4, 0.0, 0.2], [0.3, 0.1, 1.1, 0.2, 0.0],
                      [0.0, 0.5, 0.2, 0.7, 0.3]], dtype=D)
    C = A @ A.T / 2
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(1_000_000, 4, generator=gen, dtype=D) @ torch.linalg.cholesky(C).T
    vals = th.g_prime(u[:, 0]) * th.g_prime(u[:, 1]) * th.g(u[:, 2]) * th.g(u[:, 3])
    se = float(vals.std()) / 1000.0
    assert abs(float(vals.mean()) - float(th.I4(C))) <= Z * se


def test_closed_forms_batch_and_degenerate_fields():
    # I4 with repeated fields equals the lower-dimensional average it reduces to: I4(a, a, b, b) = E[g'(a)^2 g(b)^2]
    C2 = _cov([[0.7, 0.3], [0.3, 0.9]])
    idx = [0, 0, 1, 1]
    C4 = C2[idx][:, idx]
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(800_000, 2, generator=gen, dtype=D) @ torch.linalg.cholesky(C2).T
    vals = th.g_prime(u[:, 0]) ** 2 * th.g(u[:, 1]) ** 2
    assert abs(float(vals.mean()) - float(th.I4(C4))) <= Z * float(vals.std()) / math.sqrt(u.shape[0])
    batch = torch.stack([C4, 2 * C4, 0.5 * C4])
    out = th.I4(batch)
    assert out.shape == (3,)
    assert torch.allclose(out[1], th.I4(2 * C4))


@pytest.mark.parametrize("fn,n", [(th.I2, 2), (th.J2, 2), (th.I3, 3), (th.I4, 4)])
def test_closed_forms_reject_bad_covariances(fn, n):
    with pytest.raises(ValueError, match="C must have shape"):
        fn(torch.eye(n + 1, dtype=D))
    bad = torch.eye(n, dtype=D)
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match="C must be positive semi-definite"):
        fn(bad)
    asym = torch.eye(n, dtype=D)
    asym[0, 1] = 0.5
    with pytest.raises(ValueError, match="C must be symmetric"):
        fn(asym)
    nan = torch.eye(n, dtype=D)
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="C contains NaN"):
        fn(nan)


def test_symbolic_twins():
    assert th.symbolic_i2()[2] == 0
    assert th.symbolic_j2()[2] == 0
    assert th.symbolic_i3()[2] == 0
    assert th.symbolic_i4_price()[1] < 1e-30


# -- generalisation error and ODEs -------------------------------------------------------------


def _problem(**kw):
    base = {"Q0": [[0.5, 0.1], [0.1, 0.4]], "R0": [[0.3, 0.05], [0.0, 0.2]], "T": [[1.0, 0.2], [0.2, 0.8]],
            "v0": [0.5, 0.3], "v_star": [1.0, 0.7], "lr": 0.9}
    return eng.CommitteeProblem(**(base | kw))


def test_generalisation_error_matches_weights_monte_carlo():
    p = _problem()
    W, Ws = eng.weights_from_order_parameters(p.Q0, p.R0, p.T, 60, seed=4, runs=1)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(400_000, 60, generator=gen, dtype=D)
    phi = th.g(x @ W[0].T / math.sqrt(60)) @ p.v0
    phi_star = th.g(x @ Ws[0].T / math.sqrt(60)) @ p.v_star
    vals = 0.5 * (phi - phi_star) ** 2
    assert abs(float(vals.mean()) - p.generalisation_error()) <= Z * float(vals.std()) / math.sqrt(x.shape[0])
    # zero at the teacher
    T = p.T
    assert float(th.generalisation_error(T, T, T, p.v_star, p.v_star)) == pytest.approx(0.0, abs=1e-14)


def test_ode_rhs_vanishes_at_the_teacher():
    T = _cov([[1.0, 0.2], [0.2, 0.8]])
    v = _cov([1.0, 0.7])
    dQ, dR, dv = th.ode_rhs(T, T, T, v, v, 0.7)
    assert max(float(dQ.abs().max()), float(dR.abs().max()), float(dv.abs().max())) < 1e-13
    # with output noise only Q moves (the eta^2 sigma^2 J2 term)
    dQ, dR, _ = th.ode_rhs(T, T, T, v, v, 0.7, noise_var=0.04)
    assert float(dR.abs().max()) < 1e-13
    expected = 0.49 * 0.04 * v[:, None] * v[None, :] * th.j2_entries(T.diagonal()[:, None], T, T.diagonal()[None, :])
    assert torch.allclose(dQ, expected, atol=1e-14)


@pytest.mark.parametrize("second_layer,noise", [(True, 0.0), (False, 0.3)])
def test_ode_rhs_equals_expected_sgd_step(second_layer, noise):
    """N E[one SGD step of (Q, R, v)] with ||x||^2 = N (the large-N limit) is the ODE right-hand side."""
    p = _problem(train_second_layer=second_layer, noise_std=noise)
    S, N = 400_000, 1000
    omega = th.field_covariance(p.Q0, p.R0, p.T)
    gen = torch.Generator().manual_seed(7)
    u = torch.randn(S, 4, generator=gen, dtype=D) @ torch.linalg.cholesky(omega).T
    zeta = torch.randn(S, generator=gen, dtype=D)

    def rep(t):
        return t.expand(S, *t.shape)

    Q1, R1, v1 = eng.order_parameter_step(rep(p.Q0), rep(p.R0), rep(p.v0), rep(p.v_star), u[:, :2], u[:, 2:],
                                          torch.full((S,), float(N), dtype=D), N, p.lr, p.effective_lr_v, zeta=zeta,
                                          noise_std=noise, train_second_layer=second_layer)
    dQ, dR, dv = th.ode_rhs(p.Q0, p.R0, p.T, p.v0, p.v_star, p.lr, train_second_layer=second_layer,
                            noise_var=noise**2)
    for sample, rhs in ((N * (Q1 - p.Q0), dQ), (N * (R1 - p.R0), dR), (N * (v1 - p.v0), dv)):
        mean, se = sample.mean(0), sample.std(0) / math.sqrt(S)
        assert torch.all((mean - rhs).abs() <= Z * se + 1e-12), (mean, rhs, se)


def _reference_rhs(Q, R, T, v, v_star, lr, *, lr_v=None, train_second_layer=True, noise_var=0.0):
    """(C6)-(C8) written as the sums they are, one average at a time (explicit loops over k, l, c, d; one problem,
    no leading dims). The reference for the package's vectorised right-hand side."""
    K, M = Q.shape[-1], T.shape[-1]
    P = K + M
    C = torch.zeros(P, P, dtype=D)
    C[:K, :K], C[:K, K:], C[K:, :K], C[K:, K:] = Q, R, R.T, T
    s = [-float(x) for x in v] + [float(x) for x in v_star]

    def i2(a, b):
        return float(th.i2_entries(C[a, a], C[a, b], C[b, b]))

    def i3(k, b, c):
        return float(th.i3_entries(C[k, k], C[k, b], C[k, c], C[b, c], C[c, c]))

    def i4(k, l, c, d):
        return float(th.i4_entries(C[k, k], C[k, l], C[k, c], C[k, d], C[l, l], C[l, c], C[l, d], C[c, c], C[c, d],
                                   C[d, d]))

    dQ, dR, dv = torch.zeros(K, K, dtype=D), torch.zeros(K, M, dtype=D), torch.zeros(K, dtype=D)
    for k in range(K):
        for n in range(M):
            dR[k, n] = lr * float(v[k]) * sum(s[c] * i3(k, K + n, c) for c in range(P))
        for l in range(K):
            quad = sum(s[c] * s[d] * i4(k, l, c, d) for c in range(P) for d in range(P))
            noise = noise_var * float(th.j2_entries(C[k, k], C[k, l], C[l, l]))
            dQ[k, l] = (lr * float(v[k]) * sum(s[c] * i3(k, l, c) for c in range(P))
                        + lr * float(v[l]) * sum(s[c] * i3(l, k, c) for c in range(P))
                        + lr**2 * float(v[k]) * float(v[l]) * (quad + noise))
        if train_second_layer:
            dv[k] = (lr if lr_v is None else lr_v) * sum(s[c] * i2(k, c) for c in range(P))
    return dQ, dR, dv


def _drawn_order_parameters(gen, K, M, batch, scale, rank):
    A = torch.randn(*batch, K + M, rank, generator=gen, dtype=D)
    omega = scale * A @ A.transpose(-1, -2) / rank
    v = torch.randn(*batch, K, generator=gen, dtype=D)
    v_star = torch.randn(M, generator=gen, dtype=D)  # shared by the batch: broadcasting is exercised
    return omega[..., :K, :K], omega[..., :K, K:], omega[..., K:, K:], v, v_star


def test_vectorised_rhs_equals_the_loop_reference():
    """The vectorised (C6)-(C8) equals the term-by-term sums to 1e-13 on drawn order parameters: K up to 4, M up
    to 3, full-rank and singular field covariances, student fields copying teacher fields, with a batch."""
    gen = torch.Generator().manual_seed(11)
    worst = 0.0
    cases = 0
    for K in range(1, 5):
        for M in range(1, 4):
            for rank, scale in ((K + M + 2, 2.0), (max(1, K + M - 2), 0.5)):
                Q, R, T, v, v_star = _drawn_order_parameters(gen, K, M, (2,), scale, rank)
                lr = 0.3 + 1.2 * float(torch.rand((), generator=gen, dtype=D))
                for second, noise in ((True, 0.0), (False, 0.09)):
                    got = th.ode_rhs(Q, R, T, v, v_star, lr, lr_v=0.7, train_second_layer=second, noise_var=noise)
                    for r in range(2):
                        want = _reference_rhs(Q[r], R[r], T[r], v[r], v_star, lr, lr_v=0.7,
                                              train_second_layer=second, noise_var=noise)
                        for a, b in zip(got, want):
                            worst = max(worst, float((a[r] - b).abs().max()) / max(1.0, float(b.abs().max())))
                    cases += 1
    # a student that is a copy of a teacher node (Omega singular, I4 arguments with repeated fields)
    T = _cov([[1.0, 0.3], [0.3, 0.7]])
    Q, R = T[:1, :1].clone(), T[:1, :].clone()
    got = th.ode_rhs(Q, R, T, _cov([0.8]), _cov([1.0, -0.5]), 1.1, noise_var=0.01)
    want = _reference_rhs(Q, R, T, _cov([0.8]), _cov([1.0, -0.5]), 1.1, noise_var=0.01)
    worst = max([worst] + [float((a - b).abs().max()) for a, b in zip(got, want)])
    assert cases == 48 and worst <= 1e-13, worst


def test_rhs_on_numpy_arrays_equals_the_torch_rhs():
    """The integrators call the same right-hand side on numpy arrays: same numbers as on tensors."""
    gen = torch.Generator().manual_seed(5)
    Q, R, T, v, v_star = _drawn_order_parameters(gen, 3, 2, (4,), 1.0, 6)
    for second, noise in ((True, 0.0), (False, 0.2)):
        args = (1.3, 0.4, second, noise)
        a = th._rhs(Q, R, T, v, v_star, *args)
        b = th._rhs(Q.numpy(), R.numpy(), T.numpy(), v.numpy(), v_star.numpy(), *args)
        for x, y in zip(a, b):
            assert isinstance(y, np.ndarray) and y.shape == tuple(x.shape)
            assert np.allclose(x.numpy(), y, rtol=0, atol=1e-14)


def test_integrate_ode_rk4_and_solve_ivp_agree_and_report_errors():
    p = _problem()
    alphas = np.linspace(0, 3, 16)
    rk4 = p.ode(alphas, method="rk4", dt=0.1)
    ivp = p.ode(alphas, method="DOP853", rtol=1e-11, atol=1e-13)
    assert rk4.error is not None and rk4.error < 1e-7 and rk4.eps_error < 1e-7
    assert ivp.details["rtol"] == 1e-11 and ivp.details["nfev"] > 0
    assert float((rk4.eps - ivp.eps).abs().max()) < 1e-7
    assert float((rk4.Q - ivp.Q).abs().max()) < 1e-7
    # step halving until the tolerance is met
    coarse = p.ode([0.0, 3.0], method="rk4", dt=1.5, tol=1e-9)
    assert coarse.details["halvings"] >= 1 and coarse.error <= 1e-9 and coarse.details["tol_met"]
    assert float((coarse.eps[-1] - ivp.eps[-1]).abs()) < 1e-8
    # a batch of problems integrates like each one alone
    Q0 = torch.stack([p.Q0, 0.8 * p.Q0])
    batch = th.integrate_ode(Q0, p.R0, p.T, p.v0, p.v_star, alphas, p.lr)
    single = th.integrate_ode(0.8 * p.Q0, p.R0, p.T, p.v0, p.v_star, alphas, p.lr)
    assert torch.allclose(batch.eps[1], single.eps, atol=1e-14)


def _max_state_gap(a, b):
    return max(float((getattr(a, n) - getattr(b, n)).abs().max()) for n in ("Q", "R", "v"))


def test_default_solver_is_dop853_and_agrees_with_small_step_rk4():
    """DOP853 (default) against RK4 with a small step over a long window, on the claim's problem and with a noisy,
    first-layer-only K = 3 student; the reported error estimates cover the actual differences."""
    alphas = np.linspace(0.0, 20.0, 41)
    for problem in (eng.ode_check_problem(True), eng.ode_check_problem(False)):
        ivp = problem.ode(alphas)
        rk4 = problem.ode(alphas, method="rk4", dt=0.02)
        assert ivp.method == "DOP853" and ivp.details["rtol"] == 1e-9 and ivp.details["tol_met"] is None
        assert rk4.error < 1e-11  # the reference is much more accurate than the default solve
        gap = _max_state_gap(ivp, rk4)
        eps_gap = float((ivp.eps - rk4.eps).abs().max())
        assert 0 < gap <= ivp.error + rk4.error and eps_gap <= ivp.eps_error + rk4.eps_error, (gap, ivp.error)
        assert ivp.error < 1e-7 and eps_gap < 1e-8
    # every accepted scipy method solves the same problem
    p = _problem()
    ref = p.ode(alphas[:11], rtol=1e-12, atol=1e-14, estimate_error=False)
    for method in ("RK45", "LSODA", "Radau"):
        other = p.ode(alphas[:11], method=method, rtol=1e-8, atol=1e-10)
        assert other.method == method and _max_state_gap(other, ref) <= max(other.error, 1e-9), method


def test_solver_tolerance_is_respected():
    """Halving rtol moves the solution by less than 3 rtol (states are O(1)); the error falls with rtol; the
    actual error (against a much tighter solve) is within the reported estimate; ``tol`` tightens until met."""
    p = _problem()
    alphas = np.linspace(0.0, 20.0, 41)
    ref = p.ode(alphas, rtol=1e-13, atol=1e-15, estimate_error=False)
    moves, nfevs = [], []
    for rtol in (1e-7, 1e-8, 1e-9):
        a = p.ode(alphas, rtol=rtol, atol=rtol / 100)
        b = p.ode(alphas, rtol=rtol / 2, atol=rtol / 200, estimate_error=False)
        move = _max_state_gap(a, b)
        assert 0 < move < 3 * rtol, (rtol, move)
        assert _max_state_gap(a, ref) <= a.error and float((a.eps - ref.eps).abs().max()) <= a.eps_error
        moves.append(move)
        nfevs.append(b.details["nfev"])
    assert moves[-1] < moves[0] / 10 and nfevs[0] < nfevs[1] < nfevs[2]
    met = p.ode(alphas, tol=1e-10)
    assert met.details["tol_met"] and met.details["tightenings"] >= 1 and met.error <= 1e-10
    assert _max_state_gap(met, ref) <= 1e-10
    unmet = p.ode(alphas, tol=1e-12, max_halvings=0)
    assert unmet.details["tol_met"] is False and unmet.error > 1e-12  # reported, not hidden


def test_integrate_ode_validates_solver_and_tolerances():
    p = _problem()
    for method in ("euler", "dop853", 5, None):
        with pytest.raises(ValueError, match="method must be one of DOP853"):
            p.ode([0.0, 1.0], method=method)
    for name, bad in (("rtol", 0.0), ("rtol", 1e-16), ("rtol", float("nan")), ("rtol", True), ("atol", -1e-9),
                      ("atol", float("inf")), ("atol", "1e-9"), ("tol", 0.0), ("dt", 0.0)):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            p.ode([0.0, 1.0], **{name: bad})
    with pytest.raises(ValueError, match="max_halvings"):
        p.ode([0.0, 1.0], max_halvings=-1)
    with pytest.raises(TypeError, match="estimate_error"):
        p.ode([0.0, 1.0], estimate_error="yes")


def test_solver_failure_is_an_error(monkeypatch):
    import scipy.integrate

    real = scipy.integrate.solve_ivp

    def failing(*args, **kwargs):
        sol = real(*args, **kwargs)
        sol.status, sol.success, sol.message = -1, False, "Required step size is less than spacing between numbers."
        return sol

    monkeypatch.setattr(scipy.integrate, "solve_ivp", failing)
    with pytest.raises(RuntimeError, match="solve_ivp \\(LSODA.*Required step size"):
        _problem().ode([0.0, 1.0], method="LSODA")


def test_integrate_ode_dtype_device_and_trivial_grid():
    p = _problem()
    alphas = [0.0, 0.5, 1.0]
    f64 = p.ode(alphas, rtol=1e-10, atol=1e-12)
    f32 = th.integrate_ode(p.Q0.float(), p.R0.float(), p.T.float(), p.v0.float(), p.v_star.float(), alphas, p.lr,
                           rtol=1e-10, atol=1e-12)
    assert f32.Q.dtype == torch.float32 and f32.eps.dtype == torch.float32
    assert torch.allclose(f32.eps.double(), f64.eps, atol=1e-6)  # integrated in float64: only the inputs' rounding
    for method in ("DOP853", "rk4"):
        zero = p.ode([0.0], method=method)
        assert zero.Q.shape == (1, 2, 2) and torch.allclose(zero.Q[0], p.Q0)
        assert float(zero.eps[0]) == pytest.approx(p.generalisation_error(), abs=1e-15)


def test_ode_bad_inputs_name_the_argument():
    p = _problem()
    with pytest.raises(ValueError, match="alphas"):
        p.ode([0.5, 1.0])
    with pytest.raises(ValueError, match="dt"):
        p.ode([0.0, 1.0], dt=-1.0)
    with pytest.raises(ValueError, match="method"):
        p.ode([0.0, 1.0], method="euler")
    with pytest.raises(ValueError, match="lr"):
        th.ode_rhs(p.Q0, p.R0, p.T, p.v0, p.v_star, 0.0)
    with pytest.raises(ValueError, match="noise_var"):
        th.ode_rhs(p.Q0, p.R0, p.T, p.v0, p.v_star, 1.0, noise_var=-1.0)
    with pytest.raises(ValueError, match="R must have shape"):
        th.ode_rhs(p.Q0, p.R0.T[:1], p.T, p.v0, p.v_star, 1.0)
    with pytest.raises(ValueError, match="Q0, R0, T"):
        eng.CommitteeProblem(Q0=[[0.1, 0.0], [0.0, 0.1]], R0=[[1.0, 0.0], [0.0, 1.0]], T=[[1.0, 0.0], [0.0, 1.0]],
                             v0=[1.0, 1.0], v_star=[1.0, 1.0])
    with pytest.raises(ValueError, match="noise_std"):
        _problem(noise_std=-0.1)
    with pytest.raises(ValueError, match="N must be"):
        eng.simulate_sgd(p, 5, [0.0, 1.0], runs=2)
    with pytest.raises(ValueError, match="runs"):
        eng.simulate_order_parameters(p, 50, [0.0, 1.0], runs=0)
    with pytest.raises(ValueError, match="alphas"):
        eng.simulate_order_parameters(p, 50, [-1.0], runs=2)


# -- weights and engines -----------------------------------------------------------------------


def test_weights_realise_order_parameters_even_when_singular():
    p = _problem()
    W, Ws = eng.weights_from_order_parameters(p.Q0, p.R0, p.T, 40, seed=0, runs=3)
    Q, R, T = eng.order_parameters(W, Ws)
    assert W.shape == (3, 2, 40) and Ws.shape == (3, 2, 40)
    for got, want in ((Q, p.Q0), (R, p.R0), (T, p.T)):
        assert torch.allclose(got, want.expand_as(got), atol=1e-12)
    # two identical student vectors equal to the first teacher vector: a singular Gram matrix
    Qs = _cov([[1.0, 1.0], [1.0, 1.0]])
    Rs = _cov([[1.0, 0.2], [1.0, 0.2]])
    W, Ws = eng.weights_from_order_parameters(Qs, Rs, p.T, 10, seed=1, runs=1)
    Q, R, _ = eng.order_parameters(W, Ws)
    assert torch.allclose(Q[0], Qs, atol=1e-12) and torch.allclose(R[0], Rs, atol=1e-12)
    with pytest.raises(ValueError, match="N must be at least"):
        eng.weights_from_order_parameters(p.Q0, p.R0, p.T, 3, seed=0, runs=1)


def test_order_parameter_step_equals_a_weight_step():
    p = _problem(noise_std=0.2)
    N = 30
    W, Ws = eng.weights_from_order_parameters(p.Q0, p.R0, p.T, N, seed=2, runs=4)
    v = p.v0.expand(4, 2).clone()
    vs = p.v_star.expand(4, 2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(4, N, generator=gen, dtype=D)
        zeta = torch.randn(4, generator=gen, dtype=D)
        Q, R, _ = eng.order_parameters(W, Ws)
        lam = torch.einsum("rkn,rn->rk", W, x) / math.sqrt(N)
        nu = torch.einsum("rmn,rn->rm", Ws, x) / math.sqrt(N)
        Q1, R1, v1 = eng.order_parameter_step(Q, R, v, vs, lam, nu, (x * x).sum(-1), N, p.lr, 0.5, zeta=zeta,
                                              noise_std=0.2)
        W, v = eng.sgd_step(W, v, Ws, vs, x, p.lr, 0.5, zeta=zeta, noise_std=0.2)
        Q2, R2, _ = eng.order_parameters(W, Ws)
        assert torch.allclose(Q1, Q2, atol=1e-12) and torch.allclose(R1, R2, atol=1e-12)
        assert torch.allclose(v1, v, atol=1e-14)


@pytest.mark.parametrize("simulate", [eng.simulate_sgd, eng.simulate_order_parameters])
def test_batched_equals_single_runs(simulate):
    p = _problem(noise_std=0.1)
    seeds = [5, 9, 2]
    kw = {"dtype": D}
    batch = simulate(p, 40, [0.0, 0.5, 1.0], seed=seeds, **kw)
    assert batch.Q.shape == (3, 3, 2, 2) and batch.eps.shape == (3, 3)
    for r, s in enumerate(seeds):
        single = simulate(p, 40, [0.0, 0.5, 1.0], seed=[s], **kw)
        for name in ("Q", "R", "v", "eps"):
            assert torch.allclose(getattr(batch, name)[r], getattr(single, name)[0], atol=1e-10, rtol=0), name
    again = simulate(p, 40, [0.0, 0.5, 1.0], seed=seeds, **kw)
    assert torch.equal(again.Q, batch.Q)
    # starts exactly at the problem's order parameters
    assert torch.allclose(batch.Q[:, 0], p.Q0.expand(3, 2, 2), atol=1e-12)


def test_order_parameter_engine_has_the_law_of_weight_sgd():
    """At small N (where ||x||^2 fluctuations and finite-N effects matter) both engines give the same means."""
    p = _problem(lr=1.5, noise_std=0.3)
    N, runs = 20, 600
    w = eng.simulate_sgd(p, N, [0.0, 1.0, 2.0], runs=runs, seed=0, dtype=D)
    c = eng.simulate_order_parameters(p, N, [0.0, 1.0, 2.0], runs=runs, seed=10_000)
    for name in ("Q", "R", "v", "eps"):
        a, b = getattr(w, name)[:, -1], getattr(c, name)[:, -1]
        se = torch.sqrt(a.var(0) / runs + b.var(0) / runs)
        assert torch.all((a.mean(0) - b.mean(0)).abs() <= Z * se), name
    # and both differ from the N -> infinity ODE at this small N only by finite-size effects: eps means close
    ode = p.ode(w.alpha)
    assert float((w.eps.mean(0) - ode.eps).abs().max()) < 0.05


def test_chi2_sampler_moments_and_reproducibility():
    from teachtheory.random import RunStreams, as_seeds

    streams = RunStreams(as_seeds(0, 2000))
    for k in (4.0, 500.0):
        x = eng.sample_chi2(streams, "t", 0, torch.tensor(k), (5,))
        assert abs(float(x.mean()) - k) <= Z * math.sqrt(2 * k / x.numel())
        assert float(x.var()) == pytest.approx(2 * k, rel=0.1)
    y = eng.sample_chi2(streams.subset([3]), "t", 0, torch.tensor(500.0), (5,))
    assert torch.equal(y[0], x[3])


def test_progress_and_record_grid():
    p = _problem()
    calls = []
    rec = eng.simulate_sgd(p, 50, [0.0, 0.5, 1.0], runs=2, seed=0, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (50, 50)
    assert list(rec.steps) == [0, 25, 50] and np.allclose(rec.alpha, [0.0, 0.5, 1.0])
    assert eng.sup_gap(rec, p.ode(rec.alpha).eps).shape == (2,)


def test_fit_power_law_recovers_a_known_slope():
    rng = np.random.default_rng(0)
    Ns = [100, 400, 1600]
    gaps = [np.abs(rng.normal(size=400)) / math.sqrt(n) for n in Ns]
    fit = eng.fit_power_law(Ns, gaps, bootstrap=300)
    assert abs(fit["slope"] + 0.5) <= Z * fit["slope_se"]
    assert fit["slope_se"] == pytest.approx(fit["slope_se_wls"], rel=0.3)
    with pytest.raises(ValueError, match="Ns"):
        eng.fit_power_law([100], gaps[:1])


# -- claims ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def claims():
    load_claims()
    return CLAIMS


@pytest.mark.parametrize("claim_id", ["scm.integrals", "scm.ode"])
def test_claims_hold_at_quick_scale_and_power_checks_fail(claims, claim_id, tmp_path, monkeypatch):
    # the power check differs from the honest one only in the constant it tests: let it reuse the simulations
    memo, original = {}, eng.gap_scaling

    def gap_scaling(problem, Ns, alphas, **kw):
        key = (repr(problem.to_spec()), tuple(Ns), tuple(np.asarray(alphas).tolist()),
               tuple(sorted((k, v) for k, v in kw.items() if k != "ode_cache")))
        if key not in memo:
            memo[key] = original(problem, Ns, alphas, **kw)
        return memo[key]

    monkeypatch.setattr(eng, "gap_scaling", gap_scaling)
    claim = claims[claim_id]
    assert claim.statistical
    honest = claim.run(CheckContext(scale="quick", plots_dir=tmp_path))
    assert honest.verdict == "holds", honest.message
    assert honest.statistic <= honest.tolerance
    assert honest.figure is not None and (tmp_path / f"{claim_id.replace('.', '_')}.png").exists()
    power = claim.run(CheckContext(scale="quick", power=True))
    assert power.verdict == "fails", power.message
    assert power.statistic > power.tolerance
    if claim_id == "scm.integrals":  # every integral's wrong constant is caught on its own
        for name in ("I2", "J2", "I3", "I4"):
            assert power.details[name]["worst_se"] > Z


@pytest.mark.parametrize("simulate", [eng.simulate_sgd, eng.simulate_order_parameters])
def test_longer_runs_start_with_the_same_inputs(simulate):
    p = _problem()
    short = simulate(p, 30, [0.0, 1.0], runs=2, seed=3, dtype=D)
    long = simulate(p, 30, [0.0, 1.0, 3.0], runs=2, seed=3, dtype=D)
    assert torch.allclose(short.Q[:, 1], long.Q[:, 1], atol=1e-12)


def test_committee_simulation_writes_results_and_reproduces(tmp_path):
    from teachtheory.simulation import get_simulation

    sim = get_simulation("committee")
    assert sim.runner is not None
    tiny = {"N": 40, "records": 21, "scaling_N": [40, 80], "scaling_runs": 8, "weights_N": [40], "weights_runs": 4,
            "scaling_alpha": 1.0}
    calls = []
    outs = []
    for name, formats in (("a", ("png",)), ("b", ())):  # the rerun skips writing figures (slow)
        result = sim.runner(out=tmp_path / name, scale="small", runs=2, steps=200, seed=3, device="cpu",
                            formats=formats, progress=lambda label, d, t: calls.append(label), settings=tiny)
        outs.append(result)
    for f in ("config.json", "metrics.json", "generalisation_error.png", "order_parameters.png", "gap_scaling.png"):
        assert (tmp_path / "a" / f).exists(), f
    assert calls and all(isinstance(row, dict) for row in outs[0]["table"].values())
    m0, m1 = outs[0]["metrics"], outs[1]["metrics"]
    assert np.array_equal(m0["dynamics"]["eps_sgd_mean"], m1["dynamics"]["eps_sgd_mean"])
    assert np.array_equal(m0["scaling"]["mean_gap"], m1["scaling"]["mean_gap"])
    with pytest.raises(ValueError, match="settings"):
        sim.runner(out=tmp_path / "c", scale="small", runs=2, steps=200, settings={"bogus": 1})
    with pytest.raises(ValueError, match="steps"):
        sim.runner(out=tmp_path / "c", scale="small", runs=2, steps=0)


# -- scm.plateau ------------------------------------------------------------------------------------------


def test_symmetric_plateau_closed_form():
    p = th.symmetric_plateau(2)
    assert p["eps"] == pytest.approx(2 / math.pi * (math.pi / 6 - 2 * math.asin(0.25)), rel=1e-15)
    Q, R = th.symmetric_subspace_point(3, **{k: th.symmetric_plateau(3)[k] for k in ("Q", "C", "R", "S")})
    T, v = torch.eye(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    assert float(th.generalisation_error(Q, R, T, v, v)) == pytest.approx(th.symmetric_plateau(3)["eps"], rel=1e-12)
    with pytest.raises(ValueError, match="K"):
        th.symmetric_plateau(1)


def test_plateau_claim_holds_and_its_power_check_fails():
    claim = CLAIMS["scm.plateau"]
    v = claim.run(CheckContext(scale="quick", seed=0))
    assert v.verdict == "holds", v.message
    assert v.details["closed_form_gap"] < 1e-10 and v.statistic < 0.02
    assert v.details["ode_escape"] > max(v.details["sgd_escape"])  # SGD's noise breaks the symmetry first here
    assert claim.run(CheckContext(scale="quick", seed=0, power=True)).verdict == "fails"
