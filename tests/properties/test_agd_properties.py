"""Hypothesis properties of the alternating-gradient-descent map at a strict saddle (Hai et al., NeurIPS 2023,
Conclusion 1): block sizes, spectra and step sizes are drawn; matrices are built inside the test from a drawn seed."""

from __future__ import annotations

import math

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from teachtheory.theory import agd

DT = torch.float64


def _saddle(n1: int, n2: int, seed: int, log_scale: float, coupling: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = n1 + n2
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    spec = torch.randn(n, generator=g, dtype=DT) * 10.0**log_scale
    spec[0] = -spec[0].abs() - 1e-2 * 10.0**log_scale
    H = Q @ torch.diag(spec) @ Q.T
    H[:n1, n1:] *= coupling
    H[n1:, :n1] *= coupling
    return (H + H.T) / 2


blocks = st.integers(1, 4)
seeds = st.integers(0, 2**31 - 1)
scales = st.floats(-2.0, 2.0)
couplings = st.sampled_from([1.0, 0.5, 1e-3, 0.0])


@settings(max_examples=30, deadline=None)
@given(n1=blocks, n2=blocks, seed=seeds, log_scale=scales, coupling=couplings, f=st.floats(1e-3, 0.999))
def test_conclusion_1_inside_the_step_size(n1, n2, seed, log_scale, coupling, f):
    H = _saddle(n1, n2, seed, log_scale, coupling)
    c = agd.block_constants(H, n1)
    assume(float(c["gamma"]) > 1e-9 * float(c["L"]))  # rescaling the coupling can remove the saddle
    eta = f / float(c["L_max"])
    ev = torch.linalg.eigvals(agd.alternating_map(H, n1, eta))
    T_norm = float(torch.linalg.matrix_norm(agd.alternating_map(H, n1, eta), 2))
    assert float(ev.imag.abs().max()) <= 1e2 * math.sqrt(2.2e-16) * T_norm  # real spectrum
    assert float(ev.real.min()) >= -1e-9 * T_norm  # and non-negative (hyperbolic QEP, lambda = mu^2)
    lam = float(ev.real.max())
    gamma, L, L_max = float(c["gamma"]), float(c["L"]), float(c["L_max"])
    printed = 1 + eta * gamma / (1 + L / L_max)
    assert lam > printed
    assert lam >= 1 + eta * gamma - 1e-10 * T_norm  # the derived sharp bound


@settings(max_examples=30, deadline=None)
@given(n1=blocks, n2=blocks, seed=seeds, log_scale=scales, coupling=couplings, f=st.floats(1.0, 50.0))
def test_beyond_the_step_size(n1, n2, seed, log_scale, coupling, f):
    """eta >= 1/L_max: the escape eigenvalue still exceeds 1 + eta gamma; the spectrum is real whenever
    eta max(lambda_max(A), lambda_max(C)) < 1 (the one-sided condition)."""
    H = _saddle(n1, n2, seed, log_scale, coupling)
    c = agd.block_constants(H, n1)
    assume(float(c["gamma"]) > 1e-9 * float(c["L"]))
    eta = f / float(c["L_max"])
    T = agd.alternating_map(H, n1, eta)
    ev = torch.linalg.eigvals(T)
    T_norm = float(torch.linalg.matrix_norm(T, 2))
    assert float(ev.real.max()) >= 1 + eta * float(c["gamma"]) - 1e-9 * T_norm
    if eta * float(c["top"]) < 1:
        assert float(ev.imag.abs().max()) <= 1e2 * math.sqrt(2.2e-16) * T_norm


@settings(max_examples=30, deadline=None)
@given(n1=blocks, n2=blocks, seed=seeds, lr=st.floats(1e-3, 3.0), sweeps=st.integers(1, 4))
def test_map_equals_explicit_alternating_sweeps(n1, n2, seed, lr, sweeps):
    g = torch.Generator().manual_seed(seed)
    n = n1 + n2
    X = torch.randn(n, n, generator=g, dtype=DT)
    H = (X + X.T) / 2
    v = torch.randn(n, generator=g, dtype=DT)
    expected = v.clone()
    for _ in range(sweeps):
        x1 = expected[:n1] - lr * (H[:n1] @ expected)
        x2 = expected[n1:] - lr * (H[n1:, :n1] @ x1 + H[n1:, n1:] @ expected[n1:])
        expected = torch.cat([x1, x2])
    got = torch.linalg.matrix_power(agd.alternating_map(H, n1, lr), sweeps) @ v
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10 * (1 + float(expected.abs().max())))
