"""Property tests of data hallucination teaching: the Eq. (5) gradient ratio of a scaling map, the scaling
that realises a prescribed multiplier (DHT Thm 1), and the one-step guarantees of the greedy teacher (Eq. 4).

Hypothesis draws dimensions, step sizes, scalings and integer seeds; tensors are built from the seed.
References are written from the definitions (torch.func gradients of the losses, explicit squared distances).
"""

from __future__ import annotations

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from teachtheory.learners import Logistic
from teachtheory.problems import Problem
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teachers import DHTTeacher, TeachingContext
from teachtheory.teachers.dht import hallucinate
from teachtheory.theory import dht as theory

DT = torch.float64
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
BETAS = st.floats(min_value=-3.0, max_value=3.0).filter(lambda b: abs(b) >= 0.05)
PROPS = settings(max_examples=30, deadline=None)
SLOW_PROPS = settings(max_examples=15, deadline=None)


def _lsr_loss(w, x, y):
    return 0.5 * ((w * x).sum() - y) ** 2


def _lr_loss(w, x, y):  # logaddexp: softplus is linear past 20 (its gradient is then off by e^-20)
    return torch.logaddexp(torch.zeros_like(y), -y * (w * x).sum())


def _draw(seed: int, d: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g, dtype=DT), torch.randn(d, generator=g, dtype=DT), g


@PROPS
@given(seed=SEEDS, d=st.integers(1, 8), beta=BETAS)
def test_lsr_ratio_identity(seed, d, beta):
    w, x, g = _draw(seed, d)
    y = torch.randn((), generator=g, dtype=DT)
    assume(abs(float((w * x).sum() - y)) > 1e-6)
    grad = torch.func.grad(_lsr_loss)
    lhs, base = grad(w, beta * x, y), grad(w, x, y)
    ratio = theory.ratio_lsr(w, x, y, beta)
    assert torch.allclose(lhs, ratio * beta * base, rtol=1e-9, atol=1e-12 * float(base.norm()))
    printed = theory.printed_ratio_lsr(w, x, y, beta)
    assert torch.allclose(printed * ratio, torch.ones((), dtype=DT), rtol=1e-12)  # the printed form is the reciprocal


@PROPS
@given(seed=SEEDS, d=st.integers(1, 8), beta=BETAS, positive=st.booleans())
def test_logistic_ratio_identity(seed, d, beta, positive):
    w, x, _ = _draw(seed, d)
    y = torch.tensor(1.0 if positive else -1.0, dtype=DT)
    grad = torch.func.grad(_lr_loss)
    lhs, base = grad(w, beta * x, y), grad(w, x, y)
    ratio = theory.ratio_logistic(w, x, y, beta)
    assert torch.allclose(lhs, ratio * beta * base, rtol=1e-9, atol=1e-14)
    assert torch.allclose(theory.printed_ratio_logistic(w, x, y, beta) * ratio, torch.ones((), dtype=DT), rtol=1e-12)


@PROPS
@given(seed=SEEDS, d=st.integers(1, 6), target=st.floats(min_value=1e-3, max_value=5.0))
def test_scaling_realises_the_multiplier(seed, d, target):
    w, x, g = _draw(seed, d)
    w_star = torch.randn(d, generator=g, dtype=DT)
    y = (w_star * x).sum()  # noiseless LSR label, as in DHT Thm 1
    m = (w * x).sum()
    assume(abs(float(m - y)) > 1e-6 and abs(float(m)) > 1e-6)
    beta, feasible = theory.solve_scaling_lsr(m, y, torch.tensor(target, dtype=DT))
    disc = float(y * y + 4 * m * target * (m - y))
    assert bool(feasible) == (disc >= 0)
    if feasible:
        grad = torch.func.grad(_lsr_loss)
        lhs, base = grad(w, beta * x, y), grad(w, x, y)
        assert torch.allclose(lhs, target * base, rtol=1e-7, atol=1e-9 * float(base.norm()))


def _logistic_pool(seed: int, d: int, n: int, runs: int):
    s = RunStreams(as_seeds(seed, 1))
    X = s.normal("pool", 0, (n, d))
    y = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0).to(DT)[None]  # both labels present
    w_star = s.normal("w_star", 0, (d,))
    w0 = w_star + RunStreams(as_seeds(seed + 1, runs)).normal("w0", 0, (d,))
    return Problem(X, y, w_star, w0, label_values=torch.tensor([-1.0, 1.0], dtype=DT))


def _one_step(w, w_star, x, y, lr):
    return theory.one_step_change(w, w_star, theory.logistic_grad(w, x, y), lr)


@SLOW_PROPS
@given(seed=SEEDS, d=st.integers(1, 4), n=st.integers(4, 16), lr=st.floats(min_value=0.05, max_value=2.0))
def test_greedy_dht_one_step(seed, d, n, lr):
    runs = 3
    problem = _logistic_pool(seed, d, n, runs)
    learner = Logistic(d)
    ctx = TeachingContext(problem=problem, learner=learner, lr=lr, batch_size=1,
                          streams=RunStreams(as_seeds(seed, runs)))
    w, w_star = problem.w0, problem.w_star.expand(runs, d)
    lo, hi = problem.box()
    pool = theory.one_step_change(w[:, None], w_star[:, None], theory.logistic_grad(w[:, None], problem.X, problem.y),
                                  lr)
    tol = 1e-10 * torch.clamp(((w - w_star) ** 2).sum(-1), min=1.0)
    balanced_sgd, dht = [], []
    for value in (-1.0, 1.0):
        y = torch.full((runs, 1), value, dtype=DT)
        x = hallucinate(ctx, w, y, 0, iterations=8, restarts=2, step_fraction=0.1)[:, 0]
        assert (x >= lo - 1e-12).all() and (x <= hi + 1e-12).all()
        s = _one_step(w, w_star, x, y[:, 0], lr)
        same = problem.y[0] == value
        assert (s <= torch.where(same, pool, torch.inf).min(-1).values + tol).all()
        dht.append(s)
        balanced_sgd.append(pool[:, same].mean(-1))
    # averaged over the uniform label: never worse than SGD with class-balanced sampling
    assert (torch.stack(dht).mean(0) <= torch.stack(balanced_sgd).mean(0) + tol).all()
    # the teacher's own draw: in the box, a label from the label space, no worse than that label's best example
    batch = DHTTeacher(iterations=8, restarts=2, step_fraction=0.1).teach(ctx, w, 0)
    xb, yb = batch.x[:, 0], batch.y[:, 0]
    assert (xb >= lo - 1e-12).all() and (xb <= hi + 1e-12).all()
    assert set(yb.tolist()) <= {-1.0, 1.0}
    same_b = problem.y[0][None, :] == yb[:, None]
    assert (_one_step(w, w_star, xb, yb, lr) <= torch.where(same_b, pool, torch.inf).min(-1).values + tol).all()
