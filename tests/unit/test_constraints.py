"""Tests for teachtheory.constraints: projections checked against SLSQP / brute force, the pure projection
functions' properties (idempotent, feasible, nearest), the base class's shared defaults and the spec parser."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

import teachtheory.constraints as tc
from teachtheory.constraints import (
    Ball,
    Box,
    EmptySetError,
    Intersection,
    LabelSet,
    NonNegative,
    OneHot,
    Signs,
    Simplex,
    Unconstrained,
    dykstra,
    interval,
    parse_label_set,
)

SETTINGS = settings(max_examples=40, deadline=None)
KS = st.integers(min_value=1, max_value=6)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
# SLSQP's KKT system degenerates at radius 0, so the SLSQP checks use r >= 0.05 (r = 0 is tested apart).
RADII = st.floats(min_value=0.05, max_value=3.0, allow_nan=False)


def t64(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


# ---------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------


def slsqp(y: np.ndarray, x0: np.ndarray, constraints: list[dict] | None = None, bounds=None) -> np.ndarray:
    """argmin ||z - y||^2 subject to the constraints, by SLSQP."""
    res = minimize(
        lambda z: float(np.sum((z - y) ** 2)),
        x0,
        jac=lambda z: 2.0 * (z - y),
        constraints=constraints or [],
        bounds=bounds,
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 2000},
    )
    # Status 8 ("positive directional derivative for linesearch") is SLSQP stalling at
    # the optimum within rounding; a genuinely bad stop still fails the comparison.
    assert res.success or res.status == 8, res.message
    return res.x


def l2_ball_con(c: np.ndarray, r: float) -> dict:
    return {"type": "ineq", "fun": lambda z: r**2 - np.sum((z - c) ** 2), "jac": lambda z: -2.0 * (z - c)}


def simplex_con() -> dict:
    return {"type": "eq", "fun": lambda z: np.sum(z) - 1.0, "jac": lambda z: np.ones_like(z)}


def slsqp_l1_ball(y: np.ndarray, c: np.ndarray, r: float, nonneg: bool = False, simplex: bool = False) -> np.ndarray:
    """l1-ball projection as a smooth QP: z = c + u - v with u, v >= 0 and sum(u + v) <= r."""
    k = y.size

    def split(w: np.ndarray) -> np.ndarray:
        return c + w[:k] - w[k:]

    cons = [{"type": "ineq", "fun": lambda w: r - np.sum(w), "jac": lambda w: -np.ones_like(w)}]
    if nonneg or simplex:
        cons.append({"type": "ineq", "fun": split, "jac": lambda w: np.hstack([np.eye(k), -np.eye(k)])})
    if simplex:
        cons.append(
            {"type": "eq", "fun": lambda w: np.sum(split(w)) - 1.0, "jac": lambda w: np.r_[np.ones(k), -np.ones(k)]}
        )
    res = minimize(
        lambda w: float(np.sum((split(w) - y) ** 2)),
        np.zeros(2 * k),
        jac=lambda w: np.concatenate([2 * (split(w) - y), -2 * (split(w) - y)]),
        constraints=cons,
        bounds=[(0, None)] * (2 * k),
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 2000},
    )
    assert res.success or res.status == 8, res.message
    return split(res.x)


def l1_ball_cons(c: np.ndarray, r: float) -> list[dict]:
    """||z - c||_1 <= r as the 2^K linear constraints s . (z - c) <= r, s in {-1, +1}^K."""
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=c.size)))
    return [{"type": "ineq", "fun": lambda z: r - signs @ (z - c), "jac": lambda z: -signs}]


def brute_simplex(y: np.ndarray) -> np.ndarray:
    """Exact simplex projection by enumerating supports: on support S, z_S = y_S - (sum y_S - 1)/|S|."""
    k = y.size
    best, best_d = None, math.inf
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            idx = list(support)
            z = np.zeros(k)
            z[idx] = y[idx] - (y[idx].sum() - 1.0) / size
            if (z >= -1e-12).all():
                d = np.sum((z - y) ** 2)
                if d < best_d:
                    best, best_d = z, d
    assert best is not None
    return best


def naive_clamp_normalise(y: np.ndarray) -> np.ndarray:
    z = np.clip(y, 0, None)
    return z / z.sum()


def is_nearest(y: np.ndarray, x: np.ndarray, feasible: np.ndarray, tol: float = 1e-7) -> bool:
    """No sampled feasible point s, nor any point of the segment [x, s], is closer to y than x.

    By convexity the segment is feasible; its points near x are closer to y than x
    iff <y - x, s - x> > 0, which catches feasible-but-wrong answers that random
    points alone almost never beat.
    """
    d_x = np.sum((y - x) ** 2)
    d_s = np.sum((y - feasible) ** 2, axis=-1)
    vi = (feasible - x) @ (y - x)
    return bool((d_s >= d_x - tol).all() and (vi <= tol).all())


# ---------------------------------------------------------------------------
# Cases: a set, a label, centres, and an independent sampler of feasible points
# ---------------------------------------------------------------------------

Case = tuple[LabelSet, np.ndarray, np.ndarray, np.ndarray, Callable[[int], np.ndarray]]


def _in_l2(rng: np.random.Generator, n: int, k: int, c: np.ndarray, r: float) -> np.ndarray:
    d = rng.normal(size=(n, k))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return c + d * r * rng.uniform(size=(n, 1)) ** (1.0 / k)


def _in_l1(rng: np.random.Generator, n: int, k: int, c: np.ndarray, r: float) -> np.ndarray:
    w = rng.dirichlet(np.ones(k), size=n) * rng.choice([-1.0, 1.0], size=(n, k))
    return c + w * r * rng.uniform(size=(n, 1))


def _dirichlet(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.vstack([np.eye(k), rng.dirichlet(np.ones(k), size=n), rng.dirichlet(0.2 * np.ones(k), size=n)])


def _shrink_l2(s: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Move each s toward c until within the l2 ball; a convex combination, so stays in any convex set holding both."""
    n = np.linalg.norm(s - c, axis=1, keepdims=True)
    return c + (s - c) * np.minimum(1.0, r / np.maximum(n, 1e-300))


def _shrink_l1(s: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    n = np.abs(s - c).sum(axis=1, keepdims=True)
    return c + (s - c) * np.minimum(1.0, r / np.maximum(n, 1e-300))


def make_case(name: str, k: int, seed: int, r: float) -> Case:
    rng = np.random.default_rng(seed)
    y = rng.normal(scale=2.0, size=k)
    pred = rng.normal(size=k)
    truth = rng.dirichlet(np.ones(k))  # a distribution, so truth-centred simplex sets are non-empty
    if name == "ball2-prediction":
        return Ball(r, "prediction"), y, pred, truth, lambda n: _in_l2(rng, n, k, pred, r)
    if name == "ball1-truth":
        return Ball(r, "truth", p=1), y, pred, truth, lambda n: _in_l1(rng, n, k, truth, r)
    if name == "ballinf-origin":
        return Ball(r, "origin", p="inf"), y, pred, truth, lambda n: rng.uniform(-r, r, size=(n, k))
    if name == "simplex":
        return Simplex(), y, pred, truth, lambda n: _dirichlet(rng, n, k)
    if name == "nonneg":
        return NonNegative(), y, pred, truth, lambda n: rng.exponential(size=(n, k)) * rng.integers(0, 2, (n, k))
    if name == "box":
        lo, hi = -r, 0.5 * r
        return Box(lo, hi), y, pred, truth, lambda n: rng.uniform(lo, hi, size=(n, k))
    if name == "simplex+ball-truth":
        s = Intersection(Simplex(), Ball(r, "truth"))
        return s, y, pred, truth, lambda n: _shrink_l2(_dirichlet(rng, n, k), truth, r)
    if name == "nonneg+ball-origin":
        s = Intersection(NonNegative(), Ball(r, "origin"))
        return s, y, pred, truth, lambda n: _shrink_l2(rng.exponential(size=(n, k)), np.zeros(k), r)
    if name == "simplex+ball1-truth":
        s = Intersection(Simplex(), Ball(r, "truth", p=1))
        return s, y, pred, truth, lambda n: _shrink_l1(_dirichlet(rng, n, k), truth, r)
    if name == "simplex+box":
        hi = max(float(truth.max()), 1.5 / k)  # the truth and the centre of the simplex stay feasible
        s = Intersection(Simplex(), Box(0.0, hi))

        def sample(n: int) -> np.ndarray:
            # Convex combinations of feasible points: the truth, the centre, and Dirichlet draws under the cap.
            d = _dirichlet(rng, n, k)
            anchors = np.vstack([truth, np.full(k, 1.0 / k), d[d.max(axis=1) <= hi]])
            w = rng.dirichlet(np.ones(len(anchors)) * 0.3, size=n)
            return np.vstack([anchors, w @ anchors])

        return s, y, pred, truth, sample
    if name == "box+ball-prediction":
        pred = rng.uniform(-1, 1, size=k)  # centre inside the box, so the intersection is non-empty
        s = Intersection(Box(-1, 1), Ball(r, "prediction"))
        return s, y, pred, truth, lambda n: _shrink_l2(rng.uniform(-1, 1, (n, k)), pred, r)
    if name == "nonneg+ball1-prediction":
        pred = np.abs(pred)
        s = Intersection(NonNegative(), Ball(r, "prediction", p=1))
        return s, y, pred, truth, lambda n: _shrink_l1(rng.exponential(size=(n, k)), pred, r)
    raise AssertionError(name)


CASE_NAMES = [
    "ball2-prediction",
    "ball1-truth",
    "ballinf-origin",
    "simplex",
    "nonneg",
    "box",
    "simplex+ball-truth",
    "nonneg+ball-origin",
    "box+ball-prediction",
    "nonneg+ball1-prediction",
    "simplex+ball1-truth",
    "simplex+box",
]


def project_np(s: LabelSet, y: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    out = s.project(t64(y), prediction=t64(pred), truth=t64(truth))
    assert out.dtype == torch.float64 and out.shape == (y.size,)
    return out.numpy()


# ---------------------------------------------------------------------------
# Projections against SLSQP / brute force
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2, math.inf])
@pytest.mark.parametrize("center", ["prediction", "truth", "origin"])
@SETTINGS
@given(k=KS, seed=SEEDS, r=RADII)
def test_ball_projection_matches_slsqp(p: float, center: str, k: int, seed: int, r: float) -> None:
    rng = np.random.default_rng(seed)
    y, pred, truth = rng.normal(scale=2, size=k), rng.normal(size=k), rng.normal(size=k)
    c = {"prediction": pred, "truth": truth, "origin": np.zeros(k)}[center]
    x = project_np(Ball(r, center, p), y, pred, truth)
    if p == 2:
        ref = slsqp(y, c.copy(), [l2_ball_con(c, r)])
    elif p == math.inf:
        ref = slsqp(y, c.copy(), bounds=list(zip(c - r, c + r)))
    else:
        ref = slsqp_l1_ball(y, c, r)
    np.testing.assert_allclose(x, ref, atol=1e-5)


@SETTINGS
@given(k=KS, seed=SEEDS)
def test_simplex_projection_matches_slsqp_and_enumeration(k: int, seed: int) -> None:
    y = np.random.default_rng(seed).normal(scale=2, size=k)
    x = project_np(Simplex(), y, y, y)
    np.testing.assert_allclose(x, brute_simplex(y), atol=1e-10)
    ref = slsqp(y, np.full(k, 1.0 / k), [simplex_con()], bounds=[(0, None)] * k)
    np.testing.assert_allclose(x, ref, atol=1e-5)


@SETTINGS
@given(k=KS, seed=SEEDS, r=RADII)
def test_nonneg_and_box_match_slsqp(k: int, seed: int, r: float) -> None:
    y = np.random.default_rng(seed).normal(scale=2, size=k)
    np.testing.assert_allclose(
        project_np(NonNegative(), y, y, y), slsqp(y, np.ones(k), bounds=[(0, None)] * k), atol=1e-5
    )
    np.testing.assert_allclose(
        project_np(Box(-r, 0.5 * r), y, y, y), slsqp(y, np.zeros(k), bounds=[(-r, 0.5 * r)] * k), atol=1e-5
    )


@SETTINGS
@given(k=KS, seed=SEEDS, r=RADII)
def test_intersections_match_slsqp(k: int, seed: int, r: float) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(scale=2, size=k)
    truth = rng.dirichlet(np.ones(k))
    pred = rng.uniform(-1, 1, size=k)

    # simplex ∩ ball around the truth (Dykstra)
    x = project_np(Intersection(Simplex(), Ball(r, "truth")), y, pred, truth)
    ref = slsqp(y, truth.copy(), [simplex_con(), l2_ball_con(truth, r)], bounds=[(0, None)] * k)
    np.testing.assert_allclose(x, ref, atol=1e-5)

    # box ∩ ball around the prediction (Dykstra)
    x = project_np(Intersection(Box(-1, 1), Ball(r, "prediction")), y, pred, truth)
    ref = slsqp(y, pred.copy(), [l2_ball_con(pred, r)], bounds=[(-1, 1)] * k)
    np.testing.assert_allclose(x, ref, atol=1e-5)

    # DHT's set: y >= 0 and ||y||_2 <= r (closed form)
    x = project_np(parse_label_set(f"nonneg+ball-origin:{r!r}"), y, pred, truth)
    ref = slsqp(y, np.zeros(k), [l2_ball_con(np.zeros(k), r)], bounds=[(0, None)] * k)
    np.testing.assert_allclose(x, ref, atol=1e-5)

    # non-negative ∩ l1 ball around a non-negative prediction (Dykstra)
    c = np.abs(pred)
    x = project_np(Intersection(NonNegative(), Ball(r, "prediction", p=1)), y, c, truth)
    np.testing.assert_allclose(x, slsqp_l1_ball(y, c, r, nonneg=True), atol=1e-5)

    # simplex ∩ l1 ball around the truth (nested bisection)
    x = project_np(Intersection(Simplex(), Ball(r, "truth", p=1)), y, pred, truth)
    np.testing.assert_allclose(x, slsqp_l1_ball(y, truth, r, simplex=True), atol=1e-5)

    # two l1 balls (no exact method: Dykstra's algorithm); the prediction ball reaches the truth ball
    c2 = truth + rng.normal(scale=0.5, size=k)
    r2 = max(0.05, float(np.abs(c2 - truth).sum()) - 0.5 * r)
    s2 = Intersection(Ball(r, "truth", p=1), Ball(r2, "prediction", p=1), max_iter=20000)
    x = project_np(s2, y, c2, truth)
    ref = slsqp(y, truth + (c2 - truth) * (r / (r + r2)), l1_ball_cons(truth, r) + l1_ball_cons(c2, r2))
    np.testing.assert_allclose(x, ref, atol=1e-5)

    # simplex ∩ box ∩ ball around the truth (capped simplex inside the ball bisection);
    # the box keeps the truth feasible
    if k == 1:
        return  # the simplex is {1}; a box below 1 would make the set empty
    hi = float(truth.max())
    s3 = Intersection(Simplex(), Box(0.0, hi), Ball(r, "truth"))
    x = project_np(s3, y, pred, truth)
    ref = slsqp(y, truth.copy(), [simplex_con(), l2_ball_con(truth, r)], bounds=[(0, hi)] * k)
    np.testing.assert_allclose(x, ref, atol=1e-5)


@SETTINGS
@given(k=KS, seed=SEEDS, r=RADII)
def test_closed_forms_agree_with_dykstra(k: int, seed: int, r: float) -> None:
    rng = np.random.default_rng(seed)
    y = t64(rng.normal(scale=2, size=(3, k)))
    pred = t64(rng.uniform(-0.5, 1.0, size=(3, k)))  # inside the box, so box ∩ inf-ball is non-empty
    for members in [
        (NonNegative(), Ball(r, "origin")),
        (Box(-0.5, 1.0), Ball(r, "prediction", p="inf")),
        (Simplex(), NonNegative(), Box(-1.0, 2.0)),
    ]:
        fast = Intersection(*members).project(y, prediction=pred)
        slow = dykstra(members, y, prediction=pred)
        torch.testing.assert_close(fast, slow, atol=1e-7, rtol=0)


def test_zero_radius_projects_to_centre() -> None:
    y = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64)
    c = torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64)
    for p in (1, 2, math.inf):
        torch.testing.assert_close(Ball(0.0, "prediction", p).project(y, prediction=c), c)


# ---------------------------------------------------------------------------
# Generic properties: feasible, idempotent, nearest
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASE_NAMES)
@SETTINGS
@given(k=KS, seed=SEEDS, r=RADII)
def test_projection_feasible_idempotent_nearest(name: str, k: int, seed: int, r: float) -> None:
    s, y, pred, truth, sample = make_case(name, k, seed, r)
    x = project_np(s, y, pred, truth)
    kw = {"prediction": t64(pred), "truth": t64(truth)}
    assert bool(s.contains(t64(x), **kw))
    np.testing.assert_allclose(project_np(s, x, pred, truth), x, atol=1e-8)
    feasible = sample(300)
    # The samplers are independent of the code under test; check they are sound.
    assert bool(s.contains(t64(feasible), **kw).all())
    assert is_nearest(y, x, feasible, tol=1e-6)


def test_nearest_check_rejects_clamp_and_normalise() -> None:
    """Clamp-then-normalise lands in the simplex but is not the projection; the checks above catch it."""
    y = np.array([0.5, 0.4, -0.5])
    naive = naive_clamp_normalise(y)  # [5/9, 4/9, 0]
    exact = project_np(Simplex(), y, y, y)
    np.testing.assert_allclose(exact, [0.55, 0.45, 0.0], atol=1e-12)
    assert bool(Simplex().contains(t64(naive)))
    assert np.abs(naive - exact).max() > 5e-3
    assert np.sum((y - naive) ** 2) > np.sum((y - exact) ** 2)
    feasible = _dirichlet(np.random.default_rng(0), 300, 3)
    assert is_nearest(y, exact, feasible)
    assert not is_nearest(y, naive, feasible)


def test_batched_projection_equals_rowwise() -> None:
    rng = np.random.default_rng(7)
    y = t64(rng.normal(scale=2, size=(2, 5, 4)))
    truth = t64(rng.dirichlet(np.ones(4), size=(2, 5)))
    pred = t64(np.abs(rng.normal(size=(2, 5, 4))))  # non-negative, so every set below is non-empty
    sets = [
        Simplex(),
        Ball(0.7, "truth", p=1),
        Ball(0.7, "prediction"),
        Intersection(Simplex(), Ball(0.4, "truth")),
        Intersection(Simplex(), Box(0.0, 0.6)),
        Intersection(Simplex(), Ball(0.5, "truth", p=1)),
        Intersection(Box(-5.0, 5.0), Ball(0.5, "prediction")),
        Intersection(NonNegative(), Ball(0.7, "prediction", p=1)),
        Intersection(OneHot(), Ball(1.2, "truth")),
    ]
    for s in sets:
        batched = s.project(y, prediction=pred, truth=truth)
        assert batched.shape == y.shape
        for i, j in itertools.product(range(2), range(5)):
            row = s.project(y[i, j], prediction=pred[i, j], truth=truth[i, j])
            torch.testing.assert_close(batched[i, j], row, atol=1e-9, rtol=0)
        assert s.contains(batched, prediction=pred, truth=truth).shape == (2, 5)


def test_dtype_and_broadcast_centre_preserved() -> None:
    rng = np.random.default_rng(3)
    y64 = t64(rng.normal(size=(6, 3)))
    truth = t64(rng.dirichlet(np.ones(3)))  # one centre broadcast over the batch
    s = Intersection(Simplex(), Ball(0.3, "truth"))
    x64 = s.project(y64, truth=truth)
    x32 = s.project(y64.float(), truth=truth.float())
    assert x32.dtype == torch.float32 and x32.shape == (6, 3)
    torch.testing.assert_close(x32.double(), x64, atol=1e-4, rtol=0)
    assert Simplex().project(y64.float()).dtype == torch.float32


# ---------------------------------------------------------------------------
# The pure projection functions: in the set (by its definition), idempotent, nearest
# ---------------------------------------------------------------------------

# Each case: (name, project(y) -> x, membership by the set's definition, sampler of feasible points).
PureCase = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray], Callable[[int], np.ndarray]]


def _capped_box(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate bounds 0 <= lo < 1/K < hi <= 1 (hi = 1 when K = 1), so the uniform point is feasible."""
    return rng.uniform(0, 0.9 / k, size=k), rng.uniform(min(1.1 / k, 1.0), 1.0, size=k)


def _capped_samples(rng: np.random.Generator, n: int, k: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Points of {sum = 1, lo <= z <= hi}: Dirichlet draws that satisfy the box, the centre, and their mixtures."""
    d = _dirichlet(rng, 20 * n, k)
    anchors = np.vstack([np.full(k, 1.0 / k), d[((d >= lo) & (d <= hi)).all(axis=1)][:n]])
    w = rng.dirichlet(np.ones(len(anchors)) * 0.3, size=n)
    return np.vstack([anchors, w @ anchors])


def make_pure_case(name: str, k: int, seed: int, r: float) -> tuple[np.ndarray, PureCase]:
    rng = np.random.default_rng(seed)
    y = rng.normal(scale=2.0, size=k)
    c = rng.normal(size=k)
    tol = 1e-9

    def run(f: Callable[..., torch.Tensor], *args: object) -> Callable[[np.ndarray], np.ndarray]:
        return lambda v: f(t64(v), *(t64(a) if isinstance(a, np.ndarray) else a for a in args)).numpy()

    if name == "box":
        lo = rng.uniform(-2, 0, size=k)
        hi = lo + rng.uniform(0, 2, size=k)
        return y, (run(tc.project_box, lo, hi), lambda z: bool(((z >= lo - tol) & (z <= hi + tol)).all()),
                   lambda n: rng.uniform(lo, hi, size=(n, k)))
    if name == "simplex-scaled":
        return y, (run(tc.project_simplex, r), lambda z: bool((z >= -tol).all() and abs(z.sum() - r) <= tol),
                   lambda n: r * _dirichlet(rng, n, k))
    if name in ("ball1", "ball2", "ballinf"):
        p = {"ball1": 1, "ball2": 2, "ballinf": np.inf}[name]
        sample = {
            1: lambda n: _in_l1(rng, n, k, c, r),
            2: lambda n: _in_l2(rng, n, k, c, r),
            np.inf: lambda n: c + rng.uniform(-r, r, size=(n, k)),
        }[p]
        return y, (run(tc.project_ball, c, r, float(p)), lambda z: bool(np.linalg.norm(z - c, ord=p) <= r + tol),
                   sample)
    if name == "capped-simplex":
        lo, hi = _capped_box(rng, k)

        def in_capped(z: np.ndarray) -> bool:
            return bool(abs(z.sum() - 1) <= tol and ((z >= lo - tol) & (z <= hi + tol)).all())

        return y, (run(tc.project_capped_simplex, lo, hi), in_capped, lambda n: _capped_samples(rng, n, k, lo, hi))
    if name == "box-l1":
        lo = rng.uniform(-2, 0, size=k)
        hi = lo + rng.uniform(0.1, 2, size=k)
        c = rng.uniform(lo, hi)  # the centre in the box, so the intersection is not empty

        def in_box_l1(z: np.ndarray) -> bool:
            return bool(((z >= lo - tol) & (z <= hi + tol)).all() and np.abs(z - c).sum() <= r + tol)

        return y, (run(tc.project_box_l1_ball, lo, hi, c, r), in_box_l1,
                   lambda n: _shrink_l1(rng.uniform(lo, hi, size=(n, k)), c, r))
    if name == "simplex-l1":
        lo, hi = _capped_box(rng, k)
        c = _capped_samples(rng, 1, k, lo, hi)[-1]  # a point of the capped simplex, so the ball meets it

        def in_simplex_l1(z: np.ndarray) -> bool:
            in_capped = abs(z.sum() - 1) <= tol and ((z >= lo - tol) & (z <= hi + tol)).all()
            return bool(in_capped and np.abs(z - c).sum() <= r + tol)

        return y, (run(tc.project_simplex_l1_ball, lo, hi, c, r), in_simplex_l1,
                   lambda n: _shrink_l1(_capped_samples(rng, n, k, lo, hi), c, r))
    raise AssertionError(name)


PURE_CASES = ["box", "simplex-scaled", "ball1", "ball2", "ballinf", "capped-simplex", "box-l1", "simplex-l1"]


@pytest.mark.parametrize("name", PURE_CASES)
@SETTINGS
@given(k=KS, seed=SEEDS, r=RADII)
def test_pure_projection_feasible_idempotent_nearest(name: str, k: int, seed: int, r: float) -> None:
    y, (project, member, sample) = make_pure_case(name, k, seed, r)
    x = project(y)
    assert x.shape == y.shape
    assert member(x)
    np.testing.assert_allclose(project(x), x, atol=1e-9)
    feasible = sample(200)
    assert all(member(s) for s in feasible)  # the samplers are independent of the code under test
    assert is_nearest(y, x, feasible, tol=1e-7)


def test_pure_projections_raise_empty_set_error_as_value_error() -> None:
    y = t64([[0.2, 0.3, 0.5]])
    with pytest.raises(EmptySetError, match="no point with sum 1") as err:
        tc.project_capped_simplex(y, 0.5, 1.0)  # every coordinate >= 0.5: the sum is at least 1.5
    assert isinstance(err.value, ValueError) and (err.value.n_empty, err.value.n_total) == (1, 1)
    with pytest.raises(ValueError, match="farther than 0.1"):
        tc.project_box_l1_ball(y, 1.0, 2.0, t64([0.0, 0.0, 0.0]), 0.1)
    with pytest.raises(ValueError, match="z must be a non-negative number"):
        tc.project_simplex(y, -1.0)
    with pytest.raises(ValueError, match="1, 2, inf"):
        tc.project_ball(y, t64([0.0]), 1.0, 3.0)


# ---------------------------------------------------------------------------
# The base class's shared defaults
# ---------------------------------------------------------------------------


def test_contains_is_distance_to_the_projection() -> None:
    atol = 1e-3
    # Two coordinates out by 0.6 atol each: every coordinate is within atol, but the distance is 0.85 atol.
    near = t64([[1 + 0.6 * atol, 1 + 0.6 * atol]])
    far = t64([[1 + 0.8 * atol, 1 + 0.8 * atol]])  # distance 1.13 atol
    assert bool(Box(-1, 1).contains(near, atol=atol)) and not bool(Box(-1, 1).contains(far, atol=atol))
    # Balls test their own norm instead (no projection): the same points are within atol in the inf-norm.
    inf_ball = Ball(1.0, "origin", p="inf")
    assert bool(inf_ball.contains(far, atol=atol)) and not bool(inf_ball.contains(far + atol, atol=atol))
    # l1 excess 1.1 atol is out, though the Euclidean distance to the l1 ball is only 0.78 atol.
    l1_ball = Ball(2.0, "origin", p=1)
    assert bool(l1_ball.contains(t64([[1 + 0.45 * atol, 1 + 0.45 * atol]]), atol=atol))
    assert not bool(l1_ball.contains(t64([[1 + 0.55 * atol, 1 + 0.55 * atol]]), atol=atol))
    # On the simplex the projection moves (1 + e) / 2 * (1, 1) by e / sqrt(2).
    e = 1.2 * atol
    assert bool(Simplex().contains(t64([[(1 + e) / 2, (1 + e) / 2]]), atol=atol))
    assert not bool(Simplex().contains(t64([[(1 + 1.5 * e) / 2, (1 + 1.5 * e) / 2]]), atol=atol))


def test_contains_handles_infinite_and_nan_labels() -> None:
    inf, nan = math.inf, math.nan
    y = t64([[inf, 1.0], [-inf, 0.0], [nan, 0.0], [2.0, 3.0]])
    assert Unconstrained().contains(y).tolist() == [True, True, False, True]
    assert NonNegative().contains(y).tolist() == [True, False, False, True]
    assert Box(0, inf).contains(y).tolist() == [True, False, False, True]
    assert Ball(inf, "origin").contains(y).tolist() == [True, True, False, True]
    assert not bool(Simplex().contains(t64([[nan, 1.0]])))


def test_a_subclass_needs_only_what_differs() -> None:
    class UnitBox(LabelSet):
        """[0, 1]^K from the shared defaults alone."""

        keyword = "unitbox"
        title = "unit box"
        coordinate_bounds = (0.0, 1.0)

    s = UnitBox()
    y = t64([[-0.5, 0.5, 2.0]])
    torch.testing.assert_close(s.project(y), t64([[0.0, 0.5, 1.0]]))
    assert s.contains(t64([[0.0, 1.0], [1.5, 0.0]])).tolist() == [True, False]
    assert (s.spec(), s.describe(), s.depends_on, s.candidates(3)) == ("unitbox", "unit box", frozenset(), None)
    lo, hi = interval(s)
    assert (lo.item(), hi.item()) == (0.0, 1.0)
    assert s == UnitBox() and hash(s) == hash(UnitBox()) and repr(s) == "parse_label_set('unitbox')"

    class Nothing(LabelSet):
        """Defines neither a projection nor bounds."""

    with pytest.raises(NotImplementedError, match="Nothing"):
        Nothing().project(y)


# ---------------------------------------------------------------------------
# Discrete sets
# ---------------------------------------------------------------------------


@SETTINGS
@given(k=KS, seed=SEEDS)
def test_onehot_equals_enumeration(k: int, seed: int) -> None:
    y = np.random.default_rng(seed).normal(size=(4, k))
    eye = np.eye(k)
    ref = eye[np.argmin(((y[:, None, :] - eye[None]) ** 2).sum(-1), axis=1)]
    x = OneHot().project(t64(y))
    np.testing.assert_array_equal(x.numpy(), ref)
    assert bool(OneHot().contains(x).all())
    assert not bool(OneHot().contains(t64(y)).any()) or k == 1
    torch.testing.assert_close(OneHot().candidates(k, dtype=torch.float64, device="cpu"), t64(eye))


def test_onehot_ties_go_to_lowest_index() -> None:
    y = torch.tensor([[0.3, 0.7, 0.7], [0.2, 0.2, 0.2]])
    assert OneHot().project(y).tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_signs() -> None:
    y = torch.tensor([[-2.0], [-1e-9], [0.0], [0.3]], dtype=torch.float64)
    assert Signs().project(y).flatten().tolist() == [-1.0, -1.0, 1.0, 1.0]
    assert Signs().contains(torch.tensor([[1.0], [-1.0], [0.0]])).tolist() == [True, True, False]
    assert Signs().candidates(1, dtype=torch.float64, device="cpu").tolist() == [[-1.0], [1.0]]
    assert Signs().is_discrete and Signs().candidates(1, dtype=torch.float32, device="cpu").dtype == torch.float32
    with pytest.raises(ValueError, match="K = 1"):
        Signs().project(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="K = 1"):
        Signs().candidates(2, dtype=torch.float32, device="cpu")


@SETTINGS
@given(k=st.integers(2, 6), seed=SEEDS, r=st.floats(0.0, 2.0))
def test_onehot_intersection_equals_enumeration(k: int, seed: int, r: float) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=k)
    truth = rng.dirichlet(np.ones(k))
    eye = np.eye(k)
    feasible = np.linalg.norm(eye - truth, axis=1) <= r + 1e-6
    s = Intersection(OneHot(), Ball(r, "truth"))
    assert s.is_discrete
    if not feasible.any():
        with pytest.raises(ValueError, match="feasible label set is empty"):
            s.project(t64(y), truth=t64(truth))
        return
    d = np.where(feasible, ((eye - y) ** 2).sum(1), np.inf)
    x = s.project(t64(y), truth=t64(truth)).numpy()
    np.testing.assert_array_equal(x, eye[np.argmin(d)])


def test_signs_intersection_and_candidates() -> None:
    s = Intersection(Signs(), Ball(1.5, "prediction"))
    pred = torch.tensor([[0.8], [-0.8], [0.8]])
    y = torch.tensor([[-0.5], [0.5], [3.0]])
    # Only the sign within 1.5 of the prediction is allowed.
    assert s.project(y, prediction=pred).flatten().tolist() == [1.0, -1.0, 1.0]
    assert parse_label_set("onehot+box:0:1").candidates(3, dtype=torch.float32, device="cpu").shape == (3, 3)
    assert parse_label_set("signs+nonneg").candidates(1, dtype=torch.float32, device="cpu").tolist() == [[1.0]]
    assert Simplex().candidates(3, dtype=torch.float32, device="cpu") is None


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_empty_intersections_raise() -> None:
    y = torch.tensor([[0.2, 0.3, 0.5], [1.0, 2.0, 3.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="constraint: the feasible label set is empty"):
        Intersection(Simplex(), Ball(0.1, "origin")).project(y)  # the simplex is >= 1/sqrt(3) from 0
    with pytest.raises(ValueError, match="constraint: the feasible label set is empty"):
        Intersection(Box(2.0, 3.0), Simplex()).project(y)
    with pytest.raises(ValueError, match="constraint: the feasible label set is empty"):
        parse_label_set("box:0:1+box:2:3").project(y)
    with pytest.raises(ValueError, match="constraint: the feasible label set is empty"):
        parse_label_set("onehot+ball-origin:0.5").project(y)
    # Only the second element's ball misses the simplex: still an error, naming 1 of 2.
    pred = torch.tensor([[0.3, 0.3, 0.4], [5.0, 5.0, 5.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="1 of 2"):
        Intersection(Simplex(), Ball(1.0, "prediction")).project(y, prediction=pred)


def test_dykstra_stall_is_reported_not_returned() -> None:
    """Dykstra can sit at a feasible non-projection for ~10^3 cycles; Intersection must not return that."""
    rng = np.random.default_rng(581967)  # a case hypothesis found; same draws as test_intersections_match_slsqp
    y = rng.normal(scale=2, size=6)
    rng.dirichlet(np.ones(6))  # (the truth there; unused here)
    c = np.abs(rng.uniform(-1, 1, size=6))
    members = (NonNegative(), Ball(1.0, "prediction", p=1))
    ref = slsqp_l1_ball(y, c, 1.0, nonneg=True)
    stalled = dykstra(members, t64(y), prediction=t64(c), max_iter=500).numpy()
    assert bool(Intersection(*members).contains(t64(stalled), prediction=t64(c)))  # feasible ...
    assert np.abs(stalled - ref).max() > 1e-4  # ... but not the projection
    # Intersection projects this pair exactly (bisection on the l1 multiplier) instead.
    exact = Intersection(*members).project(t64(y), prediction=t64(c)).numpy()
    np.testing.assert_allclose(exact, ref, atol=1e-6)

    # Two l1 balls have no exact method: too few Dykstra cycles must raise, enough must converge.
    rng = np.random.default_rng(170)
    k = int(rng.integers(2, 7))
    y, truth, r1 = rng.normal(scale=2, size=k), rng.dirichlet(np.ones(k)), rng.uniform(0.05, 3)
    c2 = truth + rng.normal(size=k) * 0.5
    r2 = max(0.05, np.abs(c2 - truth).sum() - r1 * 0.5)
    members = (Ball(r1, "truth", p=1), Ball(r2, "prediction", p=1))
    kw = {"prediction": t64(c2), "truth": t64(truth)}
    with pytest.raises(ValueError, match="max_iter"):
        Intersection(*members, max_iter=500).project(t64(y), **kw)
    x = Intersection(*members, max_iter=20000).project(t64(y), **kw).numpy()
    ref = slsqp(y, truth.copy(), l1_ball_cons(truth, r1) + l1_ball_cons(c2, r2))
    np.testing.assert_allclose(x, ref, atol=1e-6)


def test_invalid_parameters_raise() -> None:
    with pytest.raises(ValueError, match="radius"):
        Ball(-0.1)
    with pytest.raises(ValueError, match="radius"):
        Ball(float("nan"))
    with pytest.raises(ValueError, match="radius"):
        parse_label_set("ball-truth:-1")
    with pytest.raises(ValueError, match="'prediction', 'truth', 'origin'"):
        Ball(1.0, center="label")
    with pytest.raises(ValueError, match="1, 2, inf"):
        Ball(1.0, p=3)
    with pytest.raises(ValueError, match="low"):
        Box(1.0, 0.0)
    with pytest.raises(ValueError, match="prediction"):
        Ball(1.0).project(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="truth"):
        Ball(1.0, "truth").contains(torch.zeros(2, 3))


# ---------------------------------------------------------------------------
# parse_label_set / spec / interval
# ---------------------------------------------------------------------------

SPECS = [
    "none",
    "onehot",
    "signs",
    "simplex",
    "nonneg",
    "box:-1:1",
    "box:0:inf",
    "box:-1e+20:1e+20",
    "ball:0.5",
    "ball-truth:0.5,p=1",
    "ball-origin:2,p=inf",
    "ball:0.25,p=2",
    "simplex+ball-truth:0.5",
    "nonneg+ball-origin:2",
    "onehot+ball:1.5,p=inf+box:0:1",
]


@pytest.mark.parametrize("text", SPECS)
def test_parse_round_trip(text: str) -> None:
    s = parse_label_set(text)
    assert parse_label_set(s.spec()) == s
    assert s.spec() == parse_label_set(s.spec()).spec()
    assert isinstance(s.describe(), str) and s.describe()


def test_parse_builds_the_right_sets() -> None:
    assert parse_label_set("ball:0.5") == Ball(0.5, "prediction", 2)
    assert parse_label_set("ball:0.5") != Ball(0.5, "truth", 2)
    assert parse_label_set("ball-origin:2,p=inf") == Ball(2.0, "origin", math.inf)
    assert parse_label_set("box:0:+inf+simplex") == Intersection(Box(0.0, math.inf), Simplex())
    s = parse_label_set("simplex+ball-truth:0.5,p=1")
    assert isinstance(s, Intersection) and s.sets == (Simplex(), Ball(0.5, "truth", 1))
    assert Ball(0.5).describe() == "ball(r=0.5, around prediction)"
    assert isinstance(parse_label_set("none"), Unconstrained)


@SETTINGS
@given(
    r=st.floats(0, 1e6, allow_nan=False),
    lo=st.floats(-1e3, 0.0),
    width=st.floats(0.0, 1e3),
    p=st.sampled_from([1, 2, math.inf]),
    center=st.sampled_from(["prediction", "truth", "origin"]),
)
def test_spec_round_trip_property(r: float, lo: float, width: float, p: float, center: str) -> None:
    both = Intersection(Simplex(), Ball(r, center, p), Box(lo, lo + width))
    for s in (Ball(r, center, p), Box(lo, lo + width), both):
        back = parse_label_set(s.spec())
        assert back == s
        if isinstance(s, Ball):
            assert (back.radius, back.center, back.p) == (s.radius, s.center, s.p)


# (spec, a fragment the message must contain): every rejection names the spec, the problem and the accepted forms.
BAD_SPECS = [
    ("", "the spec is empty"),
    ("   ", "the spec is empty"),
    ("sphere:1", "unknown label set 'sphere:1'"),
    ("cube", "unknown label set 'cube'"),
    ("simplex+cube", "unknown label set 'cube'"),
    ("ball-center:1", "unknown label set"),
    ("ball", "not of the form ball:R"),
    ("ball-truth", "not of the form ball-truth:R"),
    ("ball:1,q=2", "not of the form ball:R"),
    ("ball:", "the radius is missing"),
    ("ball:abc", "radius 'abc' is not a number"),
    ("ball:1_0", "radius '1_0' is not a number"),
    ("ball:0x10", "radius '0x10' is not a number"),
    ("ball:1 2", "radius '1 2' is not a number"),
    ("ball:nan", "radius 'nan' is not a number"),
    ("ball:-1", "radius must be a non-negative number"),
    ("ball-truth:-1e-9", "radius must be a non-negative number"),
    ("ball:1,p=3", "p must be one of 1, 2, inf"),
    ("ball:1,p=-inf", "p must be one of 1, 2, inf"),
    ("ball:1,p=", "the norm p is missing"),
    ("box:1", "not of the form box:LOW:HIGH"),
    ("box:1:2:3", "not of the form box:LOW:HIGH"),
    ("box:2:1", "box needs low <= high"),
    ("box:nan:1", "box lower bound 'nan' is not a number"),
    ("box:0:1e", "box upper bound '1e' is not a number"),
    ("simplex:1", "'simplex' takes no parameters"),
    ("simplex+", "empty term"),
    ("+simplex", "empty term"),
    ("simplex++nonneg", "empty term"),
    ("+", "empty term"),
    ("box:0:1+box:2:3", "constraint: the feasible label set is empty"),
    ("nonneg+box:-2:-1", "constraint: the feasible label set is empty"),
]


@pytest.mark.parametrize(("bad", "fragment"), BAD_SPECS)
def test_parse_rejects_bad_specs(bad: str, fragment: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_label_set(bad)
    msg = str(err.value)
    assert f"invalid label set spec {bad!r}" in msg
    assert fragment in msg
    assert "ball-truth:R" in msg and "box:LOW:HIGH" in msg  # the accepted forms are listed


@pytest.mark.parametrize("bad", [None, 3, b"simplex", ["simplex"]])
def test_parse_rejects_non_strings(bad: object) -> None:
    with pytest.raises(TypeError, match="spec must be a string"):
        parse_label_set(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Simplex + BALL-TRUTH:0.5", "simplex+ball-truth:0.5"),
        ("ball: 0.5 , p = inf", "ball:0.5,p=inf"),
        ("ball:0.5,p=2.0", "ball:0.5"),
        ("ball:1.,p=1", "ball:1.0,p=1"),
        ("ball-origin:.5", "ball-origin:0.5"),
        ("box:-Infinity:+inf", "box:-inf:inf"),
        ("box:-1E+20:1e20", "box:-1e+20:1e+20"),
        ("box:0:+inf+simplex", "box:0.0:inf+simplex"),
        ("ball:inf", "ball:inf"),
        ("ball:-0", "ball:0.0"),
    ],
)
def test_parse_accepts_spacing_case_and_number_forms(text: str, expected: str) -> None:
    assert parse_label_set(text).spec() == expected


def test_interval_scalar_sets() -> None:
    pred = torch.tensor([[0.2], [1.0], [-0.3]], dtype=torch.float64)
    truth = torch.tensor([[1.0], [0.0], [-1.0]], dtype=torch.float64)
    lo, hi = interval(parse_label_set("nonneg+ball:0.5"), pred, truth)
    assert lo.shape == (3, 1) and lo.dtype == torch.float64
    torch.testing.assert_close(lo.flatten(), t64([0.0, 0.5, 0.0]))
    torch.testing.assert_close(hi.flatten(), t64([0.7, 1.5, 0.2]))
    with pytest.raises(ValueError, match="empty"):
        interval(parse_label_set("nonneg+ball:0.5"), pred - 3.0)  # [-3.3, -2.3] misses y >= 0
    lo, hi = interval(Box(-1, 2))
    assert (lo.item(), hi.item()) == (-1.0, 2.0)
    lo, hi = interval(Unconstrained(), pred)
    assert torch.isinf(lo).all() and torch.isinf(hi).all() and (lo < 0).all() and (hi > 0).all()
    lo, hi = interval(Ball(0.25, "truth", p=1), pred, truth)
    torch.testing.assert_close(lo, truth - 0.25)
    torch.testing.assert_close(hi, truth + 0.25)
    with pytest.raises(ValueError, match="discrete"):
        interval(Signs(), pred, truth)
    with pytest.raises(ValueError, match="discrete"):
        interval(parse_label_set("onehot+nonneg"), pred, truth)


@SETTINGS
@given(seed=SEEDS, r=RADII)
def test_interval_clamp_is_the_projection(seed: int, r: float) -> None:
    rng = np.random.default_rng(seed)
    y, pred, truth = (t64(rng.normal(scale=2, size=(5, 1))) for _ in range(3))
    sets = (
        Ball(r, "prediction", p=1),
        Intersection(Box(-1, 1), Ball(r, "truth")),
        Intersection(Simplex(), Ball(r + 1.0, "origin")),
    )
    for s in sets:
        try:
            lo, hi = interval(s, pred, truth)
        except ValueError as err:
            assert "empty" in str(err)
            with pytest.raises(ValueError, match="empty"):
                s.project(y, prediction=pred, truth=truth)
            continue
        torch.testing.assert_close(torch.clamp(y, lo, hi), s.project(y, prediction=pred, truth=truth))
