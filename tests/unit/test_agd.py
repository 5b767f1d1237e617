"""Alternating gradient descent at a strict saddle (teachtheory.theory.agd, Hai et al., NeurIPS 2023, Conclusion 1), the
PA-GD simulator, and the agd.saddle claim at quick scale."""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch

from teachtheory.claims import CLAIMS, CheckContext, select_claims
from teachtheory.l2t.saddle import growth_rate, perturbed_agd, saddle_hessian
from teachtheory.references import cite
from teachtheory.theory import agd

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _random_h(n: int, seed: int, batch=()) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(*batch, n, n, generator=g, dtype=DT)
    return (X + X.transpose(-1, -2)) / 2


def _agd_sweeps(H, split, lr, v, sweeps):
    """Explicit two-block AGD on e = v'Hv/2: block 1 at (x1, x2), then block 2 at the new x1."""
    for _ in range(sweeps):
        x1, x2 = v[..., :split], v[..., split:]
        x1 = x1 - lr * (H[:split, :split] @ x1 + H[:split, split:] @ x2)
        x2 = x2 - lr * (H[split:, :split] @ x1 + H[split:, split:] @ x2)
        v = torch.cat([x1, x2])
    return v


@pytest.mark.parametrize("n,split,lr", [(2, 1, 0.3), (5, 2, 0.1), (6, 5, 1.7), (4, 3, 0.01)])
def test_alternating_map_equals_explicit_sweeps(n, split, lr):
    H = _random_h(n, n * 10 + split)
    v0 = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=DT)
    T = agd.alternating_map(H, split, lr)
    assert torch.allclose(torch.linalg.matrix_power(T, 3) @ v0, _agd_sweeps(H, split, lr, v0, 3), rtol=1e-12,
                          atol=1e-12)
    upper, lower = agd.split_hessian(H, split)
    eye = torch.eye(n, dtype=DT)
    assert torch.allclose(T, torch.linalg.solve(eye + lr * lower, eye - lr * upper), atol=1e-12)
    assert torch.equal(upper + lower, H) and torch.all(lower[:split] == 0) and torch.all(upper[split:, :split] == 0)


def test_alternating_map_batched_over_leading_dims():
    H = _random_h(4, 3, batch=(3, 2))
    lr = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], dtype=DT)
    T = agd.alternating_map(H, 2, lr)
    assert T.shape == (3, 2, 4, 4) and T.dtype == DT
    for i in range(3):
        for j in range(2):
            assert torch.allclose(T[i, j], agd.alternating_map(H[i, j], 2, float(lr[i, j])), atol=1e-14)


def test_constants_and_bounds():
    H = torch.tensor([[2.0, 0.0, 0.5], [0.0, -1.0, 0.3], [0.5, 0.3, 1.0]], dtype=DT)
    c = agd.block_constants(H, 2)
    assert math.isclose(float(c["L_max"]), 2.0) and math.isclose(float(c["L"]), float(torch.linalg.matrix_norm(H, 2)))
    assert math.isclose(float(c["gamma"]), -float(torch.linalg.eigvalsh(H)[0]))
    assert float(c["L"]) >= float(c["L_max"])
    lr = 0.9 / float(c["L_max"])
    lam = float(agd.escape_eigenvalue(H, 2, lr)["lambda_max"])
    assert lam > float(agd.printed_escape_bound(lr, c["gamma"], c["L"], c["L_max"]))
    assert lam >= float(agd.sharp_escape_bound(lr, c["gamma"])) - 1e-12


def test_decoupled_blocks_make_the_sharp_bound_tight():
    H = torch.diag(torch.tensor([1.5, -0.7, 0.4, 2.0], dtype=DT))
    lr = 0.3
    lam = float(agd.escape_eigenvalue(H, 2, lr)["lambda_max"])
    assert math.isclose(lam, 1 + lr * 0.7, rel_tol=1e-14)


def test_symbolic_twin_identities_vanish():
    sym = agd.symbolic_agd_2x2()
    for key in ("identity", "similarity", "at_sharp_identity"):
        assert sp.simplify(sym[key]) == 0, key


def test_complex_counterexample_beyond_the_step_size():
    ce = agd.complex_counterexample()
    assert ce["lr"] >= 1 / ce["L_max"] and ce["discriminant"] < 0
    assert float(ce["eigenvalues"].imag.abs().max()) > 1e-3
    # the same H with eta < 1/L_max: real
    ev = torch.linalg.eigvals(agd.alternating_map(ce["H"], 2, 0.99 / ce["L_max"]))
    assert float(ev.imag.abs().max()) < 1e-10
    assert float(agd.reality_threshold(ce["H"], 2)) >= 1 / ce["L_max"]


@pytest.mark.parametrize("bad,match", [
    (lambda: agd.alternating_map(torch.zeros(3, 4, dtype=DT), 1, 0.1), "H"),
    (lambda: agd.alternating_map(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=DT), 1, 0.1), "symmetric"),
    (lambda: agd.alternating_map(torch.eye(3, dtype=DT), 0, 0.1), "split"),
    (lambda: agd.alternating_map(torch.eye(3, dtype=DT), 3, 0.1), "split"),
    (lambda: agd.alternating_map(torch.eye(3, dtype=DT), 1, 0.0), "lr"),
    (lambda: agd.alternating_map(torch.eye(3, dtype=DT), 1, float("nan")), "lr"),
    (lambda: agd.alternating_map(torch.full((2, 2), float("nan"), dtype=DT), 1, 0.1), "H"),
    (lambda: agd.alternating_map(torch.eye(1, dtype=DT), 1, 0.1), "H"),
    (lambda: perturbed_agd(torch.eye(3, dtype=DT), 1, 0.1, 0, 2), "steps"),
    (lambda: saddle_hessian(6, 3, -1.0, 2.0), "gamma"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_pagd_escapes_at_the_predicted_rate_and_batches_exactly():
    H = saddle_hessian(6, 3, 0.5, 3.0, seed=2)
    lr = 0.9 / float(agd.block_constants(H, 3)["L_max"])
    lam = float(agd.escape_eigenvalue(H, 3, lr)["lambda_max"])
    out = perturbed_agd(H, 3, lr, 250, 4, seed=5)
    assert torch.all(out["value"][:, -1] < -0.9 * 0.25 / 4)  # reached the minimum value -gamma^2/4
    rates = growth_rate(out["distance"], out["first_perturbation"], 1e-5, 1e-2 * math.sqrt(0.5))
    assert torch.allclose(rates, torch.full_like(rates, math.log(lam)), rtol=1e-3)
    alone = perturbed_agd(H, 3, lr, 250, 1, seed=7)  # run 2 of the batch has seed 5 + 2
    assert torch.equal(alone["distance"][0], out["distance"][2])
    stuck = perturbed_agd(H, 3, lr, 50, 2, perturb=False)
    assert torch.all(stuck["distance"] == 0)


_cache: dict = {}


def _verdict(power: bool):
    if power not in _cache:
        select_claims(["agd"])
        _cache[power] = CLAIMS["agd.saddle"].run(CheckContext(scale="quick", seed=0, power=power))
    return _cache[power]


def test_claim_holds_at_quick_scale():
    v = _verdict(False)
    assert v.verdict == "holds", (v.message, v.details.get("traceback"))
    assert 0.0 < v.statistic <= 0.5 + 1e-6  # the printed margin is at least half of eta gamma, reached when decoupled
    assert v.details["smallest_margin"]["ratio_excess_over_printed"] >= 2.0 - 1e-6
    assert v.details["beyond_step_size"]["complex"] > 0  # counterexamples once eta >= 1/L_max
    assert v.details["pagd"]["escaped_fraction"] == 1.0
    assert CLAIMS["agd.saddle"].source.startswith(cite("l2t-dln"))


def test_claim_power_check_fails():
    v = _verdict(True)
    assert v.verdict == "fails", v.message
    assert v.statistic < 0
