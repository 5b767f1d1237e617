"""teachtheory.unroll: the reverse-mode recurrence (L2T-DLN Eqs. 4-6) against autograd through the
unrolled steps, a closed form, and central finite differences, on tiny float64 problems."""

from __future__ import annotations

import math

import pytest
import torch

from teachtheory.unroll import central_difference, chain_to, hypergradient, noise_level, sgd_steps

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _tiny(seed=0, runs=2, d=3, n=5):
    """Per-run weighted logistic-ish regression: phi = (per-example log-weights [R, n], a scale [R])."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(runs, n, d, generator=g, dtype=DT)
    y = torch.randn(runs, n, generator=g, dtype=DT)
    Xv = torch.randn(runs, 7, d, generator=g, dtype=DT)
    yv = torch.randn(runs, 7, generator=g, dtype=DT)
    theta0 = (torch.randn(runs, d, generator=g, dtype=DT),)
    phi = (0.3 * torch.randn(runs, n, generator=g, dtype=DT), torch.ones(runs, dtype=DT))

    def train(theta, phi, i):
        (w,), (logw, s) = theta, phi
        j = i % n  # step i uses the examples in a fixed cyclic order
        pred = torch.tanh((X * w[:, None, :]).sum(-1) * s[:, None])
        per = torch.exp(logw) * (pred - y) ** 2
        return (per[:, : j + 1].sum(-1) + 0.1 * (w**2).sum(-1) * s**2).sum()

    def val(theta):
        (w,) = theta
        return ((torch.tanh((Xv * w[:, None, :]).sum(-1)) - yv) ** 2).mean(-1).sum()

    return train, val, theta0, phi


def _rel(a, b):
    fa = torch.cat([t.reshape(-1) for t in a])
    fb = torch.cat([t.reshape(-1) for t in b])
    return float((fa - fb).norm() / fb.norm())


@pytest.mark.parametrize("steps", [1, 4, 9])
def test_reverse_equals_autograd(steps):
    train, val, theta0, phi = _tiny()
    rev = hypergradient(train, val, theta0, phi, steps, 0.2)
    auto = hypergradient(train, val, theta0, phi, steps, 0.2, method="autograd")
    assert _rel(rev.grad_phi, auto.grad_phi) < 1e-12
    assert _rel(rev.grad_theta0, auto.grad_theta0) < 1e-12
    assert torch.allclose(rev.value, auto.value, rtol=1e-14)
    assert torch.equal(rev.theta[0], sgd_steps(train, theta0, phi, steps, 0.2)[0])


@pytest.mark.parametrize("k", [1, 2, 3, 7, 20])
def test_checkpointed_reverse_is_identical(k):
    train, val, theta0, phi = _tiny(1)
    full = hypergradient(train, val, theta0, phi, 7, 0.1)
    ckpt = hypergradient(train, val, theta0, phi, 7, 0.1, checkpoint_every=k)
    for a, b in zip(full.grad_phi + full.grad_theta0, ckpt.grad_phi + ckpt.grad_theta0):
        assert torch.allclose(a, b, rtol=0, atol=1e-15)


def test_matches_central_finite_differences():
    train, val, theta0, phi = _tiny(2)
    steps, lr = 6, 0.15
    rev = hypergradient(train, val, theta0, phi, steps, lr)

    def e(p):
        return val(sgd_steps(train, theta0, p, steps, lr))

    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        d = tuple(torch.randn(p.shape, generator=g, dtype=DT) for p in phi)
        fd = central_difference(e, phi, d, 1e-5)
        analytic = float(sum((a * b).sum() for a, b in zip(rev.grad_phi, d)))
        assert abs(fd - analytic) <= 1e-7 * max(1.0, abs(analytic))


def test_linear_quadratic_closed_form():
    """L = 1/2 th'A th - phi'th: th_N = P^N th_0 + sum_k P^k eta phi, P = I - eta A; e = 1/2||th_N - c||^2."""
    g = torch.Generator().manual_seed(4)
    A = torch.randn(4, 4, generator=g, dtype=DT)
    A = A @ A.T / 4 + torch.eye(4, dtype=DT)
    c = torch.randn(4, generator=g, dtype=DT)
    th0, ph = torch.randn(1, 4, generator=g, dtype=DT), torch.randn(1, 4, generator=g, dtype=DT)
    lr, N = 0.1, 5

    def train(theta, phi, i):
        return (0.5 * theta[0] @ A * theta[0]).sum() - (phi[0] * theta[0]).sum()

    def val(theta):
        return 0.5 * ((theta[0] - c) ** 2).sum()

    P = torch.eye(4, dtype=DT) - lr * A
    S = sum(torch.linalg.matrix_power(P, k) for k in range(N))
    thN = th0[0] @ torch.linalg.matrix_power(P, N).T + lr * ph[0] @ S.T
    expected_phi = lr * S.T @ (thN - c)
    expected_th0 = torch.linalg.matrix_power(P, N).T @ (thN - c)
    res = hypergradient(train, val, (th0,), (ph,), N, lr)
    assert torch.allclose(res.grad_phi[0][0], expected_phi, atol=1e-13)
    assert torch.allclose(res.grad_theta0[0][0], expected_th0, atol=1e-13)
    no_h = hypergradient(train, val, (th0,), (ph,), N, lr, hessian=False)
    assert not torch.allclose(no_h.grad_phi[0][0], expected_phi, atol=1e-6)  # the Hessian term matters


def test_zero_steps_and_weight():
    train, val, theta0, phi = _tiny(5)
    res = hypergradient(train, val, theta0, phi, 0, 0.1)
    assert all(torch.all(g == 0) for g in res.grad_phi)
    weighted = hypergradient(train, val, theta0, phi, 3, 0.1, weight=0.5)
    halved = hypergradient(train, val, theta0, phi, 3, 0.05)
    assert _rel(weighted.grad_phi, halved.grad_phi) < 1e-14


def test_chain_to_is_a_vjp():
    a = torch.randn(3, dtype=DT, requires_grad=True)
    out = (2 * a, a**2)
    got = chain_to(out, (a,), (torch.ones(3, dtype=DT), torch.ones(3, dtype=DT)))
    assert torch.allclose(got[0], 2 + 2 * a.detach())


def test_fd_helpers():
    p = (torch.tensor([0.3, -1.2], dtype=DT),)
    d = (torch.tensor([1.0, 2.0], dtype=DT),)

    def f(q):
        return torch.sin(q[0]).sum()

    exact = float((torch.cos(p[0]) * d[0]).sum())
    assert abs(central_difference(f, p, d, 1e-5) - exact) < 1e-9
    eps = noise_level(f, p, d)
    assert 0 < eps < 1e-12


@pytest.mark.parametrize("kwargs,match", [
    ({"method": "forward"}, "method"), ({"lr": 0.0}, "lr"), ({"lr": -1.0}, "lr"), ({"steps": -1}, "steps"),
    ({"checkpoint_every": 0}, "checkpoint_every"), ({"method": "autograd", "hessian": False}, "hessian"),
    ({"weight": float("inf")}, "weight"),
])
def test_bad_arguments_raise(kwargs, match):
    train, val, theta0, phi = _tiny()
    args = {"steps": 2, "lr": 0.1, **kwargs}
    steps, lr = args.pop("steps"), args.pop("lr")
    with pytest.raises(ValueError, match=match):
        hypergradient(train, val, theta0, phi, steps, lr, **args)


def test_bad_parameters_raise():
    train, val, theta0, phi = _tiny()
    with pytest.raises(ValueError, match="theta0"):
        hypergradient(train, val, (torch.full((2, 3), math.nan, dtype=DT),), phi, 2, 0.1)
    with pytest.raises(TypeError, match="phi"):
        hypergradient(train, val, theta0, (), 2, 0.1)
    with pytest.raises(ValueError, match="h"):
        central_difference(lambda q: q[0].sum(), theta0, theta0, 0.0)
