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
    base = dict(Q0=[[0.5, 0.1], [0.1, 0.4]], R0=[[0.3, 0.05], [0.0, 0.2]], T=[[1.0, 0.2], [0.2, 0.8]],
                v0=[0.5, 0.3], v_star=[1.0, 0.7], lr=0.9)
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
    rep = lambda t: t.expand(S, *t.shape)  # noqa: E731
    Q1, R1, v1 = eng.order_parameter_step(rep(p.Q0), rep(p.R0), rep(p.v0), rep(p.v_star), u[:, :2], u[:, 2:],
                                          torch.full((S,), float(N), dtype=D), N, p.lr, p.effective_lr_v, zeta=zeta,
                                          noise_std=noise, train_second_layer=second_layer)
    dQ, dR, dv = th.ode_rhs(p.Q0, p.R0, p.T, p.v0, p.v_star, p.lr, train_second_layer=second_layer,
                            noise_var=noise**2)
    for sample, rhs in ((N * (Q1 - p.Q0), dQ), (N * (R1 - p.R0), dR), (N * (v1 - p.v0), dv)):
        mean, se = sample.mean(0), sample.std(0) / math.sqrt(S)
        assert torch.all((mean - rhs).abs() <= Z * se + 1e-12), (mean, rhs, se)


def test_integrate_ode_rk4_and_solve_ivp_agree_and_report_errors():
    p = _problem()
    alphas = np.linspace(0, 3, 16)
    rk4 = p.ode(alphas, dt=0.1)
    ivp = p.ode(alphas, method="DOP853", rtol=1e-11, atol=1e-13)
    assert rk4.error is not None and rk4.error < 1e-7 and rk4.eps_error < 1e-7
    assert ivp.details["rtol"] == 1e-11 and ivp.details["nfev"] > 0
    assert float((rk4.eps - ivp.eps).abs().max()) < 1e-7
    assert float((rk4.Q - ivp.Q).abs().max()) < 1e-7
    # step halving until the tolerance is met
    coarse = p.ode([0.0, 3.0], dt=1.5, tol=1e-9)
    assert coarse.details["halvings"] >= 1 and coarse.error <= 1e-9
    assert float((coarse.eps[-1] - ivp.eps[-1]).abs()) < 1e-8
    # a batch of problems integrates like each one alone
    Q0 = torch.stack([p.Q0, 0.8 * p.Q0])
    batch = th.integrate_ode(Q0, p.R0, p.T, p.v0, p.v_star, alphas, p.lr)
    single = th.integrate_ode(0.8 * p.Q0, p.R0, p.T, p.v0, p.v_star, alphas, p.lr)
    assert torch.allclose(batch.eps[1], single.eps, atol=1e-14)


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
