"""The teachability-theorem claims (LAST Thm 1-3, DHT Thm 1) and the DHT claims, with their theory modules.

Each claim runs once at quick scale (module fixtures) and must give the verdict established for it;
each statistical claim run with ``power=True`` (a deliberately wrong constant) must fail. The theory
functions are checked against independent computations (sympy, direct sums, hand-solved cases).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from teachtheory.claims import CLAIMS, CheckContext, select_claims
from teachtheory.references import cite
from teachtheory.theory import convergence as conv
from teachtheory.theory import dht as dht_theory

DT = torch.float64
EXPECTED = {
    "last.thm1-et": "printed-form-wrong",
    "last.thm2-armijo": "printed-form-wrong",
    "last.thm3-superet": "holds",
    "dht.greedy": "fails",  # as printed (never worse than IMT); the restricted statement holds
    "dht.ratio": "printed-form-wrong",
    "dht.thm1-et": "printed-form-wrong",
}
WITH_POWER = ["last.thm1-et", "last.thm2-armijo", "last.thm3-superet", "dht.thm1-et"]


@pytest.fixture(scope="module")
def verdicts():
    claims = select_claims(list(EXPECTED))
    return {c.id: c.run(CheckContext(scale="quick", seed=0)) for c in claims}


@pytest.fixture(scope="module")
def power_verdicts():
    claims = select_claims(WITH_POWER)
    return {c.id: c.run(CheckContext(scale="quick", seed=0, power=True)) for c in claims}


# -- registry and verdicts -------------------------------------------------------------------


def test_claims_registered_with_source_statement_and_assumptions():
    select_claims([])
    for cid in EXPECTED:
        claim = CLAIMS[cid]
        assert claim.source.startswith((cite("last"), cite("dht"))), cid
        assert claim.statement and claim.method and claim.assumptions, cid
    for cid in ("last.thm1-et", "last.thm2-armijo", "last.thm3-superet", "dht.thm1-et"):
        assert CLAIMS[cid].statistical


@pytest.mark.parametrize("cid", list(EXPECTED))
def test_quick_verdict(verdicts, cid, assert_quick_verdict):
    assert_quick_verdict(verdicts[cid], EXPECTED[cid])


@pytest.mark.parametrize("cid", WITH_POWER)
def test_power_check_fails(power_verdicts, cid):
    v = power_verdicts[cid]
    assert v.verdict == "fails", (cid, v.verdict, v.message, v.details.get("traceback"))


def test_thm1_details(verdicts):
    d = verdicts["last.thm1-et"].details
    for case in ("gaussian_lsr", "radial"):
        c = d[case]
        assert c["printed_check"]["first_violation_t"] is not None  # the printed bound is exceeded
        assert c["derived_check"]["holds"] and c["derived_check"]["min_slack"] >= 1.0 - 1e-9
        assert c["info"]["printed_condition_c1eta_below_mu_over_L"] and c["info"]["derived_condition_ok"]
    assert d["assumptions"]["gaussian_lsr"]["interpolation_max_grad_norm"] < 1e-10
    assert d["assumptions"]["gaussian_lsr"]["mean_mu_i"] == pytest.approx(0.0, abs=1e-12)  # rank-one l_i
    assert d["assumptions"]["radial"]["mean_mu_i"] > 0  # every l_i strongly convex
    assert d["constant_g"]["printed_check"]["holds"] and d["constant_g"]["derived_check"]["holds"]
    # literal reading (Lipschitz losses, order-1 strong convexity): radial absolute deviation, rate attained exactly
    lines = {line["label"].split(" ")[0]: line["verdict"] for line in d["verdict_lines"]}
    assert lines == {"smooth": "printed-form-wrong", "literal": "printed-form-wrong"}
    plain, scaled = d["literal"]["inputs_x1"], d["literal"]["inputs_x4"]
    for case in (plain, scaled):
        assert case["assumptions"]["ok"] and case["derived_step_check"]["attained"]
        assert abs(case["measured_rate"] - case["corrected_rate"]) <= 5 * case["measured_rate_se"]
    assert plain["printed_check"]["holds"]  # L_max >= mean L_i^2 at unit scale
    assert not scaled["printed_check"]["holds"] and scaled["printed_rate"] < scaled["corrected_rate"] < 1
    assert "geometric only" not in str(d["corrected_form"])


def test_thm2_details(verdicts):
    d = verdicts["last.thm2-armijo"].details
    assert d["gaussian_lsr"]["printed_check"]["holds"]
    assert not d["tight_frame"]["printed_check"]["holds"]
    assert d["tight_frame"]["s_lo"] == pytest.approx(0.05 * 10.0 * 0.1 * 10, rel=1e-12)  # eta g_max / 2 = 0.5
    assert d["tight_frame"]["steps_at_w0"]["min_times_L_i"] == pytest.approx(0.51, rel=1e-9)
    sharp = d["tight_frame_sharp"]
    assert sharp["s_lo"] == pytest.approx(1.0) and sharp["steps_at_w0"]["min_times_L_i"] == pytest.approx(0.99)
    # every step is s_lo: the one-step factor is exactly 1 - s_lo (2 - 0.99) mu_bar, just below the derived one
    exact = 1 - sharp["s_lo"] * (2 - 0.99) * sharp["mu_bar"]
    step = sharp["derived_step_check"]
    assert step["holds"] and abs(step["mean_ratio"] * sharp["derived_rate"] - exact) <= 5 * step["se"] * sharp[
        "derived_rate"]


def test_thm3_orders(verdicts):
    orders = verdicts["last.thm3-superet"].details["orders"]
    for alpha, q in (("0.0", 2), ("0.5", 3), ("1.0", 2)):
        est = orders[alpha]
        assert abs(est["q"] - q) <= 5 * est["se"] and est["se"] < 0.2
    assert verdicts["last.thm3-superet"].details["assumptions"]["grad_norm_at_w_star"] < 1e-12


def test_dht_thm1_matches_last_thm1(verdicts):
    d = verdicts["dht.thm1-et"].details
    assert d["identity_gap_vs_last_thm1"] < 1e-9
    assert d["max_infeasible_fraction"] == 0.0
    # on the tight frame the derivation's one-step inequality is an equality: the mean ratio is 1 within its SE
    step = d["tight_frame"]["derived_step_check"]
    assert step["holds"] and abs(step["mean_ratio"] - 1.0) <= 5 * step["se"] and step["se"] < 1e-3


def test_dht_greedy_details(verdicts):
    for case in verdicts["dht.greedy"].details["cases"]:
        assert case["box_violation"] == 0.0 and case["engine_gap"] < 1e-9
        assert case["worst_excess_same_label"] <= 1.0
        assert case["frac_worse_than_unrestricted_imt"] > 0  # the printed claim fails: the label is drawn
    assert verdicts["dht.greedy"].details["restricted_holds"] is True
    power = CLAIMS["dht.greedy"].run(CheckContext(scale="quick", seed=0, power=True))
    assert power.details["restricted_holds"] is False  # the restricted statement against any label must fail


def test_figures_written(tmp_path):
    v = CLAIMS["dht.ratio"].run(CheckContext(scale="quick", plots_dir=tmp_path))
    assert v.figure is None  # no figure for the algebraic claim
    v = CLAIMS["last.thm3-superet"].run(CheckContext(scale="quick", plots_dir=tmp_path))
    assert v.figure is not None and (tmp_path / "last_thm3-superet.png").exists()


# -- theory.convergence ------------------------------------------------------------------------


def test_quadratic_pool_constants_against_direct():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 4, generator=g, dtype=DT)
    c = conv.quadratic_pool_constants(X)
    np.testing.assert_allclose(c.L, (X * X).sum(-1).numpy(), rtol=1e-12)
    assert c.mean_mu_i == pytest.approx(0.0, abs=1e-12)
    assert c.mu_bar == pytest.approx(float(np.linalg.eigvalsh((X.T @ X / 30).numpy())[0]), rel=1e-12)
    one = conv.quadratic_pool_constants(X[:, :1], outputs=3)  # d = 1: mu_i = L_i = x_i^2
    np.testing.assert_allclose(one.mu, one.L)
    with pytest.raises(ValueError, match="X must have shape"):
        conv.quadratic_pool_constants(torch.zeros(0, 3, dtype=DT))


def test_scaled_gradient_bound_recursion_and_rate():
    u = conv.scaled_gradient_bound(0.5, 0.2, 0.3, 2.0, 1.0, 2)
    a = 0.1
    u1 = 1 - 2 * a * 0.3 + a * a * 0.3 * 2.0
    assert u[1] == pytest.approx(u1, rel=1e-14)
    assert u[2] == pytest.approx(u1 * (1 - 2 * a * 0.3 * math.sqrt(u1) + a * a * 0.6 * u1), rel=1e-14)
    # not geometric: the per-step factor tends to 1 (u_t ~ 1/(a mu t)^2)
    long = conv.scaled_gradient_bound(0.5, 0.2, 0.3, 2.0, 1.0, 20000)
    assert long[-1] / long[-2] > 0.999 and long[-1] * (a * 0.3 * 20000) ** 2 == pytest.approx(1.0, rel=0.1)
    printed = conv.printed_thm1_bound(0.5, 0.2, 0.3, 2.0, 1.0, 3)
    np.testing.assert_allclose(printed, (1 - 0.03 + 0.02) ** np.arange(4))


def test_symbolic_thm1_shapes():
    factor, printed = conv.symbolic_thm1_radial_factor()
    r = sp.Symbol("r", positive=True)
    assert factor.has(r) and not printed.has(r)
    _phi, d1, d2 = conv.symbolic_thm1_bound_shape()
    a, mu, L, u = sp.symbols("a mu L u", positive=True)
    # concave and non-decreasing at the edge of the stated condition a L sqrt(u) = 1/3, mu = L
    point = {a: sp.Rational(1, 3), L: 1, mu: 1, u: 1}
    assert d2.subs(point) <= 0 and d1.subs(point) >= 0


def test_armijo_step_floor_cases():
    assert conv.armijo_step_floor(np.array([1.02]), 0.1, 10.0, 0.5) == pytest.approx(0.5)
    assert conv.armijo_step_floor(np.array([0.5]), 0.1, 10.0, 0.5) == pytest.approx(1.0)  # capped at eta g_max
    assert conv.armijo_step_floor(np.array([1.0, 3.0]), 1.0, 1.0, 0.5) == pytest.approx(0.25)


def test_symbolic_hessian_step_error():
    _, coefficients = conv.symbolic_hessian_step_error()
    alpha, f2, f3, f4 = sp.symbols("alpha f2 f3 f4", real=True)
    assert sp.simplify(coefficients[2] - (sp.Rational(1, 2) - alpha) * f3 / f2) == 0
    assert sp.simplify(coefficients[3].subs(alpha, sp.Rational(1, 2)) + f4 / (24 * f2)) == 0
    assert conv.hessian_step_order(0.5) == 3 and conv.hessian_step_order(0.0) == 2 == conv.hessian_step_order(1.0)
    with pytest.raises(ValueError, match="alpha"):
        conv.hessian_step_order(1.5)


def test_estimate_order_recovers_known_order():
    rng = np.random.default_rng(0)
    e0 = 10 ** rng.uniform(-4, -1, 300)
    e1 = 0.3 * e0**2.5 * np.exp(0.1 * rng.standard_normal(300)) * (1 + 2 * e0)
    est = conv.estimate_order(e0, e1)
    assert abs(est["q"] - 2.5) < 5 * est["se"] and est["se"] < 0.05
    with pytest.raises(ValueError, match="pairs"):
        conv.estimate_order(e0[:2], e1[:2])


# -- theory.dht ----------------------------------------------------------------------------------


def test_symbolic_ratios_are_reciprocals():
    for report in (dht_theory.symbolic_ratio_lsr(), dht_theory.symbolic_ratio_logistic()):
        assert report["derived_minus_corrected"] == 0
        assert report["derived_minus_printed"] != 0
        assert report["derived_times_printed"] == 1


def test_solve_scaling_lsr_hits_target_and_flags_infeasible():
    m = torch.tensor([1.0, -2.0, 0.5, 0.0, 0.3], dtype=DT)
    y = torch.tensor([0.2, 1.0, -1.0, 0.7, 0.6], dtype=DT)
    target = torch.tensor([0.3, 2.0, 0.1, 0.4, 5.0], dtype=DT)
    beta, feasible = dht_theory.solve_scaling_lsr(m, y, target)
    gs = dht_theory.scaling_multiplier_lsr(m, y, beta)
    assert feasible[:4].all()
    torch.testing.assert_close(gs[:4], target[:4], rtol=1e-12, atol=0)
    # m = 0.3, y = 0.6: attainable g_s <= y^2/(4 m (y - m)) = 1 < 5, the vertex is returned
    assert not feasible[4] and float(gs[4]) == pytest.approx(1.0)
