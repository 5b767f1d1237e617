"""The LAST claims (Liu et al., NeurIPS 2021) at quick scale: each gives its expected verdict, and every claim with a
power check fails when run with its deliberately wrong constant."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from proofs_checks.last import labels as last_claims
from teachtheory.claims import CLAIMS, CheckContext, select_claims
from teachtheory.references import cite

EXPECTED = {
    "last.greedy-lsr": "holds",
    "last.kaczmarz": "holds",
    "last.constraints": "holds",
    "last.rescaling": "holds",
    "last.one-step-monotone": "holds",
    "last.monotonicity": "holds",
    # mixed <= IMT holds exactly, but "never worse than LAST" has counterexamples and with label noise
    # mixed stalls at IMT's floor after the crossover with LAST: fastest only early (and on noise-free labels).
    "last.mixed": "holds-in-regime",
    "last.soft-label-views": "holds",
}
# claims whose check honours ctx.power (statistical ones, and exact ones with a wrong-method variant)
WITH_POWER = ("last.kaczmarz", "last.constraints", "last.rescaling", "last.one-step-monotone", "last.monotonicity",
              "last.mixed", "last.soft-label-views")

_cache: dict[tuple[str, bool], object] = {}


def verdict(claim_id: str, power: bool = False):
    key = (claim_id, power)
    if key not in _cache:
        select_claims(["last"])  # loads the registry
        _cache[key] = CLAIMS[claim_id].run(CheckContext(scale="quick", seed=0, power=power))
    return _cache[key]


def test_every_listed_claim_is_registered():
    ids = {c.id for c in select_claims(["last"])}
    assert set(EXPECTED) <= ids


@pytest.mark.parametrize("claim_id", sorted(EXPECTED))
def test_quick_verdict(claim_id):
    v = verdict(claim_id)
    assert v.verdict == EXPECTED[claim_id], (v.message, v.details.get("traceback"))
    assert v.statistic is not None and math.isfinite(v.statistic)
    assert v.tolerance is not None and v.tolerance_rule
    claim = CLAIMS[claim_id]
    assert claim.source.startswith(cite("last")) and claim.statement and claim.method


@pytest.mark.parametrize("claim_id", WITH_POWER)
def test_power_check_fails(claim_id):
    v = verdict(claim_id, power=True)
    assert v.verdict == "fails", v.message


def test_statistical_claims_have_power_checks():
    for claim_id in EXPECTED:
        if CLAIMS[claim_id].statistical:
            assert claim_id in WITH_POWER


def test_statistical_verdicts_use_the_z_tolerance():
    for claim_id in ("last.monotonicity", "last.mixed"):
        v = verdict(claim_id)
        assert v.tolerance == CheckContext().z


def test_mixed_details_are_honest():
    v = verdict("last.mixed")
    d = v.details
    assert d["one_step"]["mixed_minus_imt"] <= last_claims.ONE_STEP_TOLERANCE  # exact: mixed keeps IMT's x
    assert d["counterexample"]["mixed_worse_than_some_last"] and d["counterexample"]["mixed_worse_than_mean_last"]
    assert v.statistic > v.tolerance  # with label noise mixed is overtaken (it stalls at IMT's floor)
    assert abs(d["stall_second_half"]) < 0.1
    assert d["restricted_holds"] is True and d["restricted_form"] and "corrected_form" not in d
    assert verdict("last.mixed", power=True).details["restricted_holds"] is False
    lines = {line["label"]: line["verdict"] for line in d["verdict_lines"]}
    assert lines["one step vs IMT"] == "holds" and lines["one step vs LAST"] == "fails"
    assert lines["early: before the crossover with LAST"] == "holds-in-regime"
    assert lines["late: after the crossover"] == "fails"
    for cell in d["crossover_grid"]:  # mixed is ahead early, LAST overtakes, mixed ends at IMT's floor
        assert cell["early_fastest"] and cell["stalls_at_imt_floor"]
        assert 0 < cell["ahead_until"] < cell["crossover"] <= cell["overtaken_at"] < cell["steps"]
    by_dim = {}
    for cell in d["crossover_grid"]:
        by_dim.setdefault(cell["dim"], []).append(cell["crossover"])
    assert min(by_dim[10]) > max(by_dim[5])  # the crossover comes later in higher dimension


def test_mixed_counterexample_is_exact():
    c = last_claims.mixed_counterexample()
    assert c["mixed"] == pytest.approx(1 - 4 / 404, rel=1e-12)  # Kaczmarz on x_a = (20, 2), e = (0, 1)
    assert c["last_per_x"][1] == pytest.approx(0.0, abs=1e-15)
    assert c["mixed"] <= c["imt"]


def test_one_step_monotone_needs_the_feasibility_assumption():
    d = verdict("last.one-step-monotone").details
    assert d["infeasible_violations"] > 0  # without a feasible truth LAST can lose to SGD
    assert max(d["per_case"].values()) <= last_claims.ONE_STEP_TOLERANCE


def test_constraints_softmax_isotropy_only_on_the_plane():
    d = verdict("last.constraints").details
    assert d["softmax_isotropic_on_plane"] and not d["softmax_isotropic_off_plane"]
    shortcut = d["projection_shortcut"]
    assert max(v for k, v in shortcut.items() if "softmax simplex (" in k) <= last_claims.CONSTRAINT_TOLERANCE
    assert max(v for k, v in shortcut.items() if "softmax ball-truth:0.5 (" in k) > 1e-3


def test_rescaling_reports_a_wrong_printed_form(monkeypatch):
    """If a printed g(y) disagreed with the derivation the verdict says so, with a corrected form that holds."""
    original = last_claims.theory.symbolic_rescaling

    def doctored():
        out = original()
        entry = out["lr"]
        printed = 2 * entry["printed"]
        out["lr"] = dict(entry, printed=printed, difference=sp.simplify(entry["derived"] - printed))
        return out

    monkeypatch.setattr(last_claims.theory, "symbolic_rescaling", doctored)
    v = last_claims.check_rescaling(CheckContext(scale="quick"))
    assert v.verdict == "printed-form-wrong"
    assert "lr" in v.details["corrected_form"] and v.details["corrected_holds"] is True


def test_reference_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    for kind in ("lsr", "softmax"):
        W, W_star, x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=3)
        _, grad = last_claims.np_one_step_grad(kind, W, W_star, x, y, 0.7)
        h = 1e-6
        numeric = np.array([(last_claims.np_one_step(kind, W, W_star, x, y + h * e, 0.7)
                             - last_claims.np_one_step(kind, W, W_star, x, y - h * e, 0.7)) / (2 * h)
                            for e in np.eye(3)])
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_reference_set_matches_its_definition():
    pred, truth = np.array([0.2, 0.5, 0.3]), np.array([0.0, 1.0, 0.0])
    _, _, violation, _ = last_claims.reference_set("simplex+ball-truth:0.5", pred, truth)
    assert violation(np.array([0.1, 0.8, 0.1])) == 0.0
    assert violation(np.array([0.5, 0.5, 0.0])) > 0.1  # distance to the truth 0.707 > 0.5
    assert violation(np.array([0.2, 0.9, 0.1])) == pytest.approx(0.2)  # sum 1.2
    lo, hi = last_claims.interval_reference("box:-1.5:1.5+ball-truth:1", 3.0, 1.0)
    assert (lo, hi) == (0.0, 1.5)


def test_figures_are_written(tmp_path):
    ctx = CheckContext(scale="quick", plots_dir=tmp_path)
    v = CLAIMS["last.rescaling"].run(ctx)
    assert v.figure is not None and (tmp_path / "last_rescaling.png").exists()


def test_monotonicity_reports_the_myopic_setting_on_its_own_line():
    lines = verdict("last.monotonicity").details["verdict_lines"]
    myopic = [line for line in lines if "no noise floor" in line["label"]]
    assert len(myopic) == 1 and myopic[0]["verdict"] in ("holds", "fails")
    assert {line["verdict"] for line in verdict("last.monotonicity", power=True).details["verdict_lines"]} == {"fails"}
