r"""Exact projections onto intersections of the basic sets, and how to group members that have one.

:class:`~teachtheory.constraints.Intersection` first drops members implied by
others (:func:`simplify`), then splits the rest into few groups that each have
an exact projection (:func:`exact_blocks`), and runs Dykstra's algorithm over
the groups only when there is more than one. The exact methods
(:func:`project_exactly`) are: clamping for boxes; clamping then radial scaling
for the orthant with an origin 2-ball (:math:`\Pi_{K \cap B} = \Pi_B \circ \Pi_K`
for a closed convex cone :math:`K` and a ball :math:`B` centred at 0); threshold
searches for the simplex and an l1 ball with boxes; and bisection on the
multiplier of a 2-ball around anything exactly projectable.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .base import LabelSet, intersect_bounds
from .projections import (
    EmptySetError,
    bisect_threshold,
    bisection_steps,
    check_box,
    feasibility_atol,
    project_box_l1_ball,
    project_capped_simplex,
    project_simplex_l1_ball,
)
from .sets import Ball, Box, NonNegative, Simplex, Unconstrained

__all__ = ["ExactBlock", "exact_blocks", "exact_cost", "project_exactly", "simplify"]

_BISECT = 64  # cost of one bisection loop, in elementary projections
_NEWTON = 16  # typical cost of one safeguarded Newton solve, in elementary projections
_MAX_EXACT_COST = _BISECT**2  # deeper nesting of bisections is slower than Dykstra's algorithm


def _is_nonneg(s: LabelSet) -> bool:
    """Whether ``s`` is the orthant ``{y >= 0}`` (as :class:`NonNegative` or ``box:0:inf``)."""
    return s.coordinate_bounds == (0.0, math.inf)


def _is_ball(s: LabelSet, p: float) -> bool:
    """Whether ``s`` is a ``p``-norm ball."""
    return isinstance(s, Ball) and s.p == p


def _is_boxlike(s: LabelSet, k: int) -> bool:
    """Whether ``s`` is exactly a coordinate box (possibly per element) for K = k."""
    if s.coordinate_bounds is not None or _is_ball(s, math.inf):
        return True
    return k == 1 and isinstance(s, (Ball, Simplex))


def simplify(members: Sequence[LabelSet]) -> list[LabelSet]:
    """Drop members implied by others (exactness shortcuts; the intersection is unchanged)."""
    active = [m for m in members if not isinstance(m, Unconstrained)]
    # Concentric balls of the same norm: only the smallest matters.
    smallest: dict[tuple[str, float], Ball] = {}
    for m in active:
        if isinstance(m, Ball):
            key = (m.center, m.p)
            if key not in smallest or m.radius < smallest[key].radius:
                smallest[key] = m
    out: list[LabelSet] = []
    seen: set[str] = set()
    for m in active:
        if isinstance(m, Ball) and smallest[(m.center, m.p)] is not m:
            continue
        if m.spec() in seen:
            continue
        seen.add(m.spec())
        out.append(m)
    if any(isinstance(m, Simplex) for m in out):
        # The simplex lies in y >= 0, in [0, 1]^K and in every origin ball of radius >= 1.
        def implied(m: LabelSet) -> bool:
            if isinstance(m, NonNegative):
                return True
            if isinstance(m, Box):
                return m.low <= 0.0 and m.high >= 1.0
            return isinstance(m, Ball) and m.center == "origin" and m.radius >= 1.0

        out = [m for m in out if not implied(m)]
    return out


def _cone_and_origin_ball(active: Sequence[LabelSet]) -> bool:
    """Whether every member is the orthant or a 2-ball around the origin."""
    return all(_is_nonneg(m) or (isinstance(m, Ball) and m.p == 2.0 and m.center == "origin") for m in active)


def _separable_kind(active: Sequence[LabelSet], k: int) -> str | None:
    """Boxes with the simplex (``"simplex"``), one l1 ball (``"l1"``) or both (``"simplex-l1"``), else None."""
    others = [m for m in active if not _is_boxlike(m, k)]
    n_simplex = sum(isinstance(m, Simplex) for m in others)
    n_l1 = sum(_is_ball(m, 1.0) for m in others)
    if not others or n_simplex > 1 or n_l1 > 1 or n_simplex + n_l1 != len(others):
        return None
    return {(1, 0): "simplex", (0, 1): "l1", (1, 1): "simplex-l1"}[(n_simplex, n_l1)]


def _l2_splits(active: Sequence[LabelSet], k: int) -> list[tuple[int, Ball, list[LabelSet]]]:
    """Each way to peel one 2-ball off an exactly projectable rest: ``(cost of the rest, ball, rest)``."""
    splits = []
    for b in active:
        if isinstance(b, Ball) and b.p == 2.0:
            rest = [m for m in active if m is not b]
            cost = exact_cost(rest, k)
            if cost is not None:
                splits.append((cost, b, rest))
    return splits


def exact_cost(active: Sequence[LabelSet], k: int) -> int | None:
    """Rough number of elementary projections the exact method needs; ``None`` if there is none."""
    if len(active) <= 1 or all(_is_boxlike(m, k) for m in active) or _cone_and_origin_ball(active):
        return 1
    kind = _separable_kind(active, k)
    if kind is not None:
        return {"simplex": _NEWTON, "l1": _BISECT, "simplex-l1": _BISECT * _NEWTON}[kind]
    costs = [c * _BISECT for c, _, _ in _l2_splits(active, k)]
    return min(costs) if costs else None


def _can_project_exactly(active: Sequence[LabelSet], k: int) -> bool:
    """Whether :func:`project_exactly` handles these members at acceptable cost."""
    cost = exact_cost(active, k)
    return cost is not None and cost <= _MAX_EXACT_COST


def _box_of(
    members: Sequence[LabelSet], y: Tensor, prediction: Tensor | None, truth: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Intersection of the members' boxes (all members must be box-like)."""
    b = intersect_bounds(members, y, prediction, truth)
    assert b is not None
    return b


def _project_with_l2_ball(
    ball: Ball, rest: Sequence[LabelSet], y: Tensor, prediction: Tensor | None, truth: Tensor | None
) -> Tensor:
    r"""Exact projection onto :math:`S \cap \{\lVert z - c \rVert_2 \le r\}` for an exactly projectable :math:`S`.

    With multiplier :math:`\lambda` for the ball, :math:`\lVert z - y \rVert^2 + \lambda \lVert z - c \rVert^2`
    equals :math:`(1 + \lambda) \lVert z - w \rVert^2` + const with :math:`w = (1 - t) y + t c`,
    :math:`t = \lambda / (1 + \lambda)`, so the solution is :math:`\Pi_S(w(t))`;
    :math:`\lVert \Pi_S(w(t)) - c \rVert` is non-increasing in :math:`t`, so bisection on
    :math:`t \in [0, 1]` finds the :math:`t` where the ball is active.
    """

    def inner(v: Tensor) -> Tensor:
        return project_exactly(rest, v, prediction, truth)

    c = ball.center_for(y, prediction, truth)
    shape = torch.broadcast_shapes(y.shape, c.shape)
    yb, cb = y.expand(shape), c.expand(shape)
    r = ball.radius

    def dist(x: Tensor) -> Tensor:
        return torch.linalg.vector_norm(x - cb, dim=-1, keepdim=True)

    x0 = inner(yb)
    # t = 1 projects the centre itself: if even that is outside the ball, nothing is feasible.
    far = dist(inner(cb)) > r + feasibility_atol(y.dtype)
    if bool(far.any()):
        raise EmptySetError(
            int(far.sum()), far.numel(), f"the rest of the set lies farther than {r:g} from the ball's centre"
        )
    lo = torch.zeros(shape[:-1] + (1,), dtype=y.dtype, device=y.device)
    # Invariant: t = hi is feasible for the ball (up to the atol above).
    t = bisect_threshold(lambda s: dist(inner((1 - s) * yb + s * cb)) <= r, lo, torch.ones_like(lo),
                         bisection_steps(y.dtype))
    x = inner((1 - t) * yb + t * cb)
    return torch.where(dist(x0) <= r, x0, x)


def project_exactly(
    active: Sequence[LabelSet], y: Tensor, prediction: Tensor | None, truth: Tensor | None
) -> Tensor:
    """Exact projection onto the intersection of ``active`` (see :func:`exact_cost` for which have one).

    Raises:
        EmptySetError: (a ``ValueError``) where the intersection is empty.
    """
    k = y.shape[-1]
    if not active:
        return y.clone()
    if len(active) == 1:
        return active[0].project(y, prediction=prediction, truth=truth)
    if all(_is_boxlike(m, k) for m in active):
        lo, hi = _box_of(active, y, prediction, truth)
        x = torch.minimum(torch.maximum(y, lo), hi)
        check_box(lo, hi, x.shape)
        return x
    if _cone_and_origin_ball(active):
        # For a closed convex cone K and a ball centred at 0, P_{K ∩ B} = P_B ∘ P_K.
        x = y.clamp_min(0)
        for m in active:
            if isinstance(m, Ball):
                x = m.project(x)
        return x
    kind = _separable_kind(active, k)
    if kind is not None:
        lo, hi = _box_of([m for m in active if _is_boxlike(m, k)], y, prediction, truth)
        if kind == "simplex":
            return project_capped_simplex(y, lo, hi)
        ball = next(m for m in active if _is_ball(m, 1.0) and not _is_boxlike(m, k))
        assert isinstance(ball, Ball)
        project = project_box_l1_ball if kind == "l1" else project_simplex_l1_ball
        return project(y, lo, hi, ball.center_for(y, prediction, truth), ball.radius)
    # A 2-ball around an exactly projectable rest: pick the cheapest split.
    _, ball, rest = min(_l2_splits(active, k), key=lambda split: split[0])
    return _project_with_l2_ball(ball, rest, y, prediction, truth)


class ExactBlock(LabelSet):
    """A group of members projected onto jointly and exactly (one "set" for Dykstra's algorithm).

    Args:
        members: sets whose intersection :func:`project_exactly` handles.
    """

    def __init__(self, members: Sequence[LabelSet]) -> None:
        self.members = tuple(members)

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        """Exact projection onto the members' intersection."""
        return project_exactly(self.members, y, prediction, truth)

    def spec(self) -> str:
        """The members' specs joined by ``+``."""
        return "+".join(m.spec() for m in self.members)


def exact_blocks(active: Sequence[LabelSet], k: int) -> list[list[LabelSet]]:
    """Split the members into few exactly projectable groups, largest first.

    Dykstra's algorithm converges much faster over fewer, larger sets, and needs
    no iterations at all when one group is everything.
    """
    remaining = list(active)
    blocks: list[list[LabelSet]] = []
    while remaining:
        chosen: tuple[int, ...] = (0,)
        for size in range(len(remaining), 1, -1):
            combo = next(
                (
                    c
                    for c in itertools.combinations(range(len(remaining)), size)
                    if _can_project_exactly([remaining[i] for i in c], k)
                ),
                None,
            )
            if combo is not None:
                chosen = combo
                break
        blocks.append([remaining[i] for i in chosen])
        remaining = [m for i, m in enumerate(remaining) if i not in chosen]
    return blocks
