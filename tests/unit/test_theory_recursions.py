"""The covariance recursions of theory.convergence and theory.last: reweighted and rescaled steps."""

from __future__ import annotations

import pytest
import torch

from teachtheory.theory import convergence as conv
from teachtheory.theory import last as last_theory

DT = torch.float64


def _pool_and_error(seed: int = 0, n: int = 9, d: int = 4):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=DT), torch.randn(d, generator=gen, dtype=DT)


@pytest.mark.parametrize("c", [0.3, 1.0, 1.8])
def test_kaczmarz_scale_rescales_the_one_step_decrease(c):
    X, e = _pool_and_error()
    q = X / X.norm(dim=-1, keepdim=True)
    P = q.T @ q / q.shape[0]
    one = last_theory.kaczmarz_expected_sq_error(torch.outer(e, e), X, 1, scale=c)
    # E[||e'||^2 | e] = ||e||^2 - c e^T P e, from the definition of the scaled change
    assert float(one[1]) == pytest.approx(float(e @ e - c * (e @ P @ e)), rel=1e-12)


def test_kaczmarz_scale_follows_the_scaled_recursion_over_many_steps():
    X, e = _pool_and_error(1)
    c, steps = 0.6, 12
    q = X / X.norm(dim=-1, keepdim=True)
    P = q.T @ q / q.shape[0]
    sigma, traces = torch.outer(e, e), [float(e @ e)]
    for _ in range(steps):  # Sigma' = Sigma + c [mean_i (q_i^T Sigma q_i) q_i q_i^T - P Sigma - Sigma P]
        mean_term = sum(float(qi @ sigma @ qi) * torch.outer(qi, qi) for qi in q) / q.shape[0]
        sigma = sigma + c * (mean_term - P @ sigma - sigma @ P)
        traces.append(float(torch.trace(sigma)))
    got = last_theory.kaczmarz_expected_sq_error(torch.outer(e, e), X, steps, scale=c)
    assert got.tolist() == pytest.approx(traces, rel=1e-10)


def test_default_scale_and_weight_are_the_plain_steps():
    X, e = _pool_and_error(2)
    sigma0 = torch.outer(e, e)
    plain = conv.sgd_expected_sq_error(sigma0, X, 0.05, 6)
    assert torch.equal(plain, conv.sgd_expected_sq_error(sigma0, X, 0.05, 6, quad_weight=0.05 * 0.05))
    assert not torch.equal(plain, conv.sgd_expected_sq_error(sigma0, X, 0.05, 6, quad_weight=0.05))
    assert torch.equal(last_theory.kaczmarz_expected_sq_error(sigma0, X, 6),
                       last_theory.kaczmarz_expected_sq_error(sigma0, X, 6, scale=1.0))
