"""Feasible sets for synthesized labels, with exact Euclidean projections.

In label synthesis teaching the teacher first computes an unconstrained greedy
label ``y*``. For least-squares and softmax cross-entropy learners the greedy
objective is an isotropic quadratic in the label, so the best *constrained*
label is the Euclidean projection of ``y*`` onto the feasible set. This module
provides those sets and projections, batched over any leading dimensions
(labels have shape ``[..., K]``; a scalar label is ``[..., 1]``).

Sets: :class:`Unconstrained`, :class:`Ball` (around the learner's prediction,
the true label or the origin, in the 1-, 2- or inf-norm), :class:`Simplex`,
:class:`NonNegative`, :class:`Box`, the discrete :class:`OneHot` and
:class:`Signs`, and :class:`Intersection` of any of these.
:func:`parse_label_set` reads the compact string form used by the CLI and the
configs; every set's :meth:`LabelSet.spec` writes it back.

References:
    LAST: Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021,
    Sec. 3.2. DHT: Qiu et al., AISTATS 2023, Sec. 5.1 (``y >= 0`` and
    ``||y||_2 <= 2``). Duchi et al., "Efficient Projections onto the l1-Ball
    for Learning in High Dimensions", ICML 2008 (simplex and l1 ball).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from typing import NoReturn

import torch
from torch import Tensor

__all__ = [
    "Ball",
    "Box",
    "Intersection",
    "LabelSet",
    "NonNegative",
    "OneHot",
    "Signs",
    "Simplex",
    "Unconstrained",
    "dykstra",
    "interval",
    "parse_label_set",
]

_CENTERS = ("prediction", "truth", "origin")
_NORMS = (1.0, 2.0, math.inf)
_ACCEPTED_FORMS = (
    "none",
    "onehot",
    "signs",
    "simplex",
    "nonneg",
    "box:LOW:HIGH",
    "ball:R",
    "ball-truth:R",
    "ball-origin:R",
    "a ball with ',p=1', ',p=2' or ',p=inf' appended (e.g. 'ball:0.5,p=1')",
    "sets joined by '+' for their intersection (e.g. 'simplex+ball-truth:0.5')",
)
_EMPTY_MSG = "constraint: the feasible label set is empty"


def _fmt(x: float) -> str:
    """Shortest text that parses back to exactly ``x`` (``-0.0`` folded to ``0.0``)."""
    return repr(float(x) + 0.0)


def _labels(y: Tensor) -> Tensor:
    """Validate a label tensor; integer labels are promoted since projections are real-valued."""
    if not isinstance(y, Tensor):
        y = torch.as_tensor(y)
    if y.ndim == 0:
        raise ValueError("labels must have shape [..., K] (a scalar label is [..., 1]), got a 0-d tensor")
    if not y.is_floating_point():
        y = y.to(torch.get_default_dtype())
    return y


def _like(t: Tensor | float, y: Tensor, name: str) -> Tensor:
    """``t`` as a tensor with ``y``'s dtype and device, checked to broadcast against ``y``."""
    t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
    try:
        torch.broadcast_shapes(t.shape, y.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{name} of shape {tuple(t.shape)} does not broadcast against labels of shape {tuple(y.shape)}"
        ) from err
    return t


def _dykstra_tol(dtype: torch.dtype) -> float:
    """Stopping tolerance for Dykstra's algorithm, near the dtype's attainable accuracy."""
    if dtype == torch.float64:
        return 1e-10
    if dtype == torch.float32:
        return 1e-6
    return 1e-3


def _feasibility_atol(dtype: torch.dtype) -> float:
    """Slack allowed when checking that an iterative projection landed in every set."""
    if dtype == torch.float64:
        return 1e-6
    if dtype == torch.float32:
        return 1e-4
    return 1e-2


def _project_scaled_simplex(v: Tensor, z: float) -> Tensor:
    """Project the rows of ``v`` onto ``{x >= 0, sum(x) = z}`` for ``z >= 0``.

    Sort-based algorithm: ``theta`` is chosen so that ``max(v - theta, 0)``
    sums to ``z``.

    References:
        Duchi et al., ICML 2008, Fig. 1.
    """
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - z
    ind = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
    cond = u - css / ind > 0
    # Largest j with the condition true; clamp to 1 so z = 0 (or rounding) cannot index -1.
    rho = torch.where(cond, ind, torch.zeros_like(ind)).amax(dim=-1, keepdim=True).clamp_min(1)
    theta = css.gather(-1, rho.long() - 1) / rho
    return (v - theta).clamp_min(0)


class LabelSet:
    """A feasible set of labels, batched over leading dimensions.

    Subclasses implement the Euclidean projection :meth:`project`, membership
    :meth:`contains`, and the round-trip string :meth:`spec`. Sets compare
    equal when their specs are equal.
    """

    is_discrete: bool = False

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        """Euclidean projection of ``y`` (shape ``[..., K]``) onto the set.

        Args:
            y: labels to project.
            prediction: the learner's current prediction, needed by sets centred on it.
            truth: the true label, needed by sets centred on it.

        Returns:
            The nearest feasible labels, same shape, dtype and device as ``y``
            (or the broadcast shape when a centre has more leading dimensions).
        """
        raise NotImplementedError

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        """Whether each label lies in the set (up to ``atol``); bool of shape ``y.shape[:-1]``."""
        raise NotImplementedError

    def candidates(
        self, k: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Tensor | None:
        """All members as a ``[C, K]`` tensor for discrete sets; ``None`` for continuous ones."""
        return None

    def describe(self) -> str:
        """Short human-readable description."""
        raise NotImplementedError

    def spec(self) -> str:
        """The string that :func:`parse_label_set` maps back to an equal set."""
        raise NotImplementedError

    @property
    def depends_on(self) -> frozenset[str]:
        """Which of ``{"prediction", "truth"}`` the set is defined relative to."""
        return frozenset()

    def _bounds(
        self, y: Tensor, prediction: Tensor | None, truth: Tensor | None
    ) -> tuple[Tensor, Tensor] | None:
        """Per-coordinate ``(low, high)`` if the set is exactly a box for labels like ``y``, else None."""
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSet):
            return NotImplemented
        return self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(self.spec())

    def __repr__(self) -> str:
        return f"parse_label_set({self.spec()!r})"


class Unconstrained(LabelSet):
    """Every real label is feasible; the projection is the identity."""

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        # Clone so callers may modify the result in place without touching y.
        return _labels(y).clone()

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        y = _labels(y)
        return ~torch.isnan(y).any(dim=-1)

    def describe(self) -> str:
        return "unconstrained"

    def spec(self) -> str:
        return "none"

    def _bounds(
        self, y: Tensor, prediction: Tensor | None, truth: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        return y.new_tensor(-math.inf), y.new_tensor(math.inf)


class Ball(LabelSet):
    """Norm ball ``{y : ||y - c||_p <= radius}`` around the prediction, the truth or the origin.

    Args:
        radius: non-negative radius (``inf`` allowed).
        center: ``"prediction"`` (LAST's magnitude constraint around the
            learner's output), ``"truth"`` or ``"origin"``.
        p: 1, 2 or ``inf``. Projections are exact: radial scaling (p=2),
            clamping (p=inf), sort-based l1-ball projection (p=1).

    References:
        LAST: Liu et al., NeurIPS 2021, Sec. 3.2. Duchi et al., ICML 2008 (p=1).
    """

    def __init__(self, radius: float, center: str = "prediction", p: float | str = 2) -> None:
        try:
            r = float(radius)
        except (TypeError, ValueError) as err:
            raise ValueError(f"radius must be a non-negative number, got {radius!r}") from err
        if math.isnan(r) or r < 0:
            raise ValueError(f"radius must be a non-negative number, got {radius!r}")
        if center not in _CENTERS:
            raise ValueError(f"center must be one of {', '.join(map(repr, _CENTERS))}; got {center!r}")
        try:
            pf = float(p)
        except (TypeError, ValueError):
            pf = math.nan
        if pf not in _NORMS:
            raise ValueError(f"p must be one of 1, 2, inf; got {p!r}")
        self.radius = r + 0.0
        self.center = center
        self.p = pf

    def _center(self, y: Tensor, prediction: Tensor | None, truth: Tensor | None) -> Tensor:
        if self.center == "origin":
            return y.new_zeros(())
        t = prediction if self.center == "prediction" else truth
        if t is None:
            raise ValueError(f"{self.describe()} needs the {self.center} tensor; pass {self.center}=...")
        return _like(t, y, self.center)

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        y = _labels(y)
        c = self._center(y, prediction, truth)
        d = y - c
        r = self.radius
        if self.p == math.inf:
            return c + d.clamp(-r, r)
        if self.p == 2.0:
            n = torch.linalg.vector_norm(d, ord=2, dim=-1, keepdim=True)
            scale = torch.where(n > r, r / n.clamp_min(torch.finfo(d.dtype).tiny), torch.ones_like(n))
            return c + d * scale
        # p = 1: project |d| onto the scaled simplex, then restore the signs.
        n = torch.linalg.vector_norm(d, ord=1, dim=-1, keepdim=True)
        inside = n <= r
        w = torch.sign(d) * _project_scaled_simplex(d.abs(), r)
        return c + torch.where(inside, d, w)

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        y = _labels(y)
        d = y - self._center(y, prediction, truth)
        return torch.linalg.vector_norm(d, ord=self.p, dim=-1) <= self.radius + atol

    def describe(self) -> str:
        ptxt = "" if self.p == 2.0 else f", p={'inf' if self.p == math.inf else int(self.p)}"
        return f"ball(r={self.radius:g}{ptxt}, around {self.center})"

    def spec(self) -> str:
        prefix = {"prediction": "ball", "truth": "ball-truth", "origin": "ball-origin"}[self.center]
        suffix = "" if self.p == 2.0 else f",p={'inf' if self.p == math.inf else int(self.p)}"
        return f"{prefix}:{_fmt(self.radius)}{suffix}"

    @property
    def depends_on(self) -> frozenset[str]:
        return frozenset() if self.center == "origin" else frozenset({self.center})

    def _bounds(
        self, y: Tensor, prediction: Tensor | None, truth: Tensor | None
    ) -> tuple[Tensor, Tensor] | None:
        # Every p-ball is an interval in one dimension; the inf-ball is a box in any dimension.
        if self.p != math.inf and y.shape[-1] != 1:
            return None
        c = self._center(y, prediction, truth)
        return c - self.radius, c + self.radius


class Simplex(LabelSet):
    """Probability simplex ``{y >= 0, sum(y) = 1}``; exact sort-based projection.

    References:
        Duchi et al., ICML 2008, Fig. 1.
    """

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        return _project_scaled_simplex(_labels(y), 1.0)

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        y = _labels(y)
        return (y >= -atol).all(dim=-1) & ((y.sum(dim=-1) - 1).abs() <= atol)

    def describe(self) -> str:
        return "probability simplex"

    def spec(self) -> str:
        return "simplex"

    def _bounds(
        self, y: Tensor, prediction: Tensor | None, truth: Tensor | None
    ) -> tuple[Tensor, Tensor] | None:
        if y.shape[-1] != 1:
            return None
        one = y.new_tensor(1.0)
        return one, one


class NonNegative(LabelSet):
    """Non-negative orthant ``{y >= 0}``; projection clamps at zero.

    References:
        DHT: Qiu et al., AISTATS 2023, Sec. 5.1 (with ``Ball(2, "origin")``).
    """

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        return _labels(y).clamp_min(0)

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        return (_labels(y) >= -atol).all(dim=-1)

    def describe(self) -> str:
        return "non-negative orthant"

    def spec(self) -> str:
        return "nonneg"

    def _bounds(
        self, y: Tensor, prediction: Tensor | None, truth: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        return y.new_tensor(0.0), y.new_tensor(math.inf)


class Box(LabelSet):
    """Coordinate box ``{low <= y_k <= high}``; projection clamps.

    Args:
        low: lower bound (may be ``-inf``).
        high: upper bound (may be ``inf``), at least ``low``.
    """

    def __init__(self, low: float, high: float) -> None:
        lo, hi = float(low), float(high)
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"box bounds must be numbers, got low={low!r}, high={high!r}")
        if lo > hi:
            raise ValueError(f"box needs low <= high, got low={low!r} > high={high!r}")
        self.low = lo + 0.0
        self.high = hi + 0.0

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        return _labels(y).clamp(self.low, self.high)

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        y = _labels(y)
        return ((y >= self.low - atol) & (y <= self.high + atol)).all(dim=-1)

    def describe(self) -> str:
        return f"box[{self.low:g}, {self.high:g}]"

    def spec(self) -> str:
        return f"box:{_fmt(self.low)}:{_fmt(self.high)}"

    def _bounds(
        self, y: Tensor, prediction: Tensor | None, truth: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        return y.new_tensor(self.low), y.new_tensor(self.high)


class OneHot(LabelSet):
    """The K one-hot vectors; projection picks the nearest (the argmax, ties to the lowest index)."""

    is_discrete = True

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        y = _labels(y)
        # ||y - e_i||^2 = ||y||^2 - 2 y_i + 1, so the nearest one-hot is at argmax y
        # (torch.argmax returns the first maximal index).
        idx = y.argmax(dim=-1, keepdim=True)
        return torch.zeros_like(y).scatter_(-1, idx, 1.0)

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        y = _labels(y)
        return ((y - self.project(y)).abs() <= atol).all(dim=-1)

    def candidates(
        self, k: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        return torch.eye(k, dtype=dtype or torch.get_default_dtype(), device=device)

    def describe(self) -> str:
        return "one-hot"

    def spec(self) -> str:
        return "onehot"


class Signs(LabelSet):
    """The scalar labels ``{-1, +1}`` of a logistic learner (K must be 1); projection is sign, 0 -> +1."""

    is_discrete = True

    @staticmethod
    def _check_k(k: int) -> None:
        if k != 1:
            raise ValueError(f"signs is a set of scalar labels and needs K = 1, got K = {k}")

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        y = _labels(y)
        self._check_k(y.shape[-1])
        return torch.where(y >= 0, torch.ones_like(y), -torch.ones_like(y))

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        y = _labels(y)
        self._check_k(y.shape[-1])
        return ((y - 1).abs() <= atol).all(dim=-1) | ((y + 1).abs() <= atol).all(dim=-1)

    def candidates(
        self, k: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        self._check_k(k)
        return torch.tensor([[-1.0], [1.0]], dtype=dtype or torch.get_default_dtype(), device=device)

    def describe(self) -> str:
        return "signs {-1, +1}"

    def spec(self) -> str:
        return "signs"


def _is_nonneg(s: LabelSet) -> bool:
    return isinstance(s, NonNegative) or (isinstance(s, Box) and s.low == 0.0 and s.high == math.inf)


def _is_origin_l2_ball(s: LabelSet) -> bool:
    return isinstance(s, Ball) and s.center == "origin" and s.p == 2.0


def _simplify(members: Sequence[LabelSet]) -> list[LabelSet]:
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


class _EmptySet(Exception):
    """Internal: some batch elements have an empty feasible set (re-raised as ValueError)."""

    def __init__(self, n_empty: int, n_total: int, why: str) -> None:
        super().__init__(why)
        self.n_empty, self.n_total, self.why = n_empty, n_total, why


_BISECT = 64  # cost of one bisection loop, in elementary projections
_NEWTON = 16  # typical cost of one safeguarded Newton solve
_MAX_EXACT_COST = _BISECT**2  # deeper nesting of bisections is slower than Dykstra's algorithm


def _is_boxlike(s: LabelSet, k: int) -> bool:
    """Whether ``s`` is exactly a coordinate box (possibly per element) for K = k."""
    if isinstance(s, (Unconstrained, NonNegative, Box)):
        return True
    if isinstance(s, Ball):
        return s.p == math.inf or k == 1
    return isinstance(s, Simplex) and k == 1


def _is_l2_ball(s: LabelSet) -> bool:
    return isinstance(s, Ball) and s.p == 2.0


def _is_l1_ball(s: LabelSet) -> bool:
    return isinstance(s, Ball) and s.p == 1.0


def _separable_kind(active: Sequence[LabelSet], k: int) -> str | None:
    """Boxes with the simplex (``"simplex"``), one l1 ball (``"l1"``) or both (``"simplex-l1"``), else None."""
    others = [m for m in active if not _is_boxlike(m, k)]
    n_simplex = sum(isinstance(m, Simplex) for m in others)
    n_l1 = sum(_is_l1_ball(m) for m in others)
    if not others or n_simplex > 1 or n_l1 > 1 or n_simplex + n_l1 != len(others):
        return None
    return {(1, 0): "simplex", (0, 1): "l1", (1, 1): "simplex-l1"}[(n_simplex, n_l1)]


def _exact_cost(active: Sequence[LabelSet], k: int) -> int | None:
    """Rough number of elementary projections the exact method needs; None if there is none."""
    if len(active) <= 1 or all(_is_boxlike(m, k) for m in active):
        return 1
    if all(_is_nonneg(m) or _is_origin_l2_ball(m) for m in active):
        return 1
    kind = _separable_kind(active, k)
    if kind is not None:
        return {"simplex": _NEWTON, "l1": _BISECT, "simplex-l1": _BISECT * _NEWTON}[kind]
    costs = [
        c * _BISECT
        for b in active
        if _is_l2_ball(b) and (c := _exact_cost([m for m in active if m is not b], k)) is not None
    ]
    return min(costs) if costs else None


def _can_project_exactly(active: Sequence[LabelSet], k: int) -> bool:
    """Whether :func:`_project_exactly` handles these members at acceptable cost."""
    cost = _exact_cost(active, k)
    return cost is not None and cost <= _MAX_EXACT_COST


def _combined_bounds(
    members: Sequence[LabelSet], y: Tensor, prediction: Tensor | None, truth: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Intersection of the members' boxes (all members must be box-like)."""
    lo, hi = y.new_tensor(-math.inf), y.new_tensor(math.inf)
    for m in members:
        b = m._bounds(y, prediction, truth)
        assert b is not None
        lo, hi = torch.maximum(lo, b[0]), torch.minimum(hi, b[1])
    return lo, hi


def _bisection_steps(dtype: torch.dtype) -> int:
    """Halvings of a bracket needed to resolve it to the dtype's precision."""
    return {torch.float64: _BISECT, torch.float32: 32}.get(dtype, 16)


def _check_box(lo: Tensor, hi: Tensor, shape: torch.Size) -> None:
    empty = torch.broadcast_to(lo > hi, shape).any(dim=-1)
    if bool(empty.any()):
        raise _EmptySet(int(empty.sum()), empty.numel(), "some lower bound exceeds an upper bound")


def _solve_unit_sum(
    z_of: Callable[[Tensor], tuple[Tensor, Tensor]], t_lo: Tensor, t_hi: Tensor, max_steps: int = 200
) -> Tensor:
    """Find ``theta`` in ``[t_lo, t_hi]`` with ``sum(z_of(theta)[0]) = 1``, batched.

    ``z_of(theta)`` returns the point and a mask of the coordinates that move with
    slope -1 in ``theta`` (the others are flat), so the sum is non-increasing and
    piecewise linear. Safeguarded Newton: a Newton step is exact once it is on the
    right linear piece, and a bisection step is taken whenever Newton would leave
    the bracket, so the bracket keeps shrinking.
    """
    theta = 0.5 * (t_lo + t_hi)
    eps = torch.finfo(t_lo.dtype).eps
    g_tol: Tensor | None = None
    g_prev = torch.full_like(theta, math.inf)
    for step in range(max_steps):
        z, moving = z_of(theta)
        if g_tol is None:
            # Rounding in the sum grows with K and with the magnitudes, which the bracket bounds.
            g_tol = 8 * eps * z.shape[-1] * (1 + t_lo.abs() + t_hi.abs())
        g = z.sum(dim=-1, keepdim=True) - 1
        t_lo = torch.where(g >= 0, theta, t_lo)
        t_hi = torch.where(g <= 0, theta, t_hi)
        newton = theta + g / moving.sum(dim=-1, keepdim=True).clamp_min(1)
        # Newton only while it stays in the bracket and at least halves |g|; otherwise bisect.
        inside = moving.any(dim=-1, keepdim=True) & (newton > t_lo) & (newton < t_hi) & (2 * g.abs() <= g_prev)
        g_prev = g.abs()
        # Freeze an element once its sum is 1 to rounding: stepping on would only wander off.
        done = g.abs() <= g_tol
        theta = torch.where(done, theta, torch.where(inside, newton, 0.5 * (t_lo + t_hi)))
        # A host sync every few steps: stop once every sum is 1 or every bracket is exhausted.
        if step % 4 == 3:
            width = (t_hi - t_lo).abs() <= 4 * eps * (1 + t_lo.abs() + t_hi.abs())
            if bool((done | width).all()):
                break
    return theta


def _project_capped_simplex(y: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Project onto ``{sum(x) = 1, lo <= x <= hi}`` (the simplex intersected with a box).

    The solution is ``clamp(y - theta, lo, hi)`` with the scalar ``theta`` making the
    sum 1, found by safeguarded Newton (the sum is monotone and piecewise linear in
    ``theta``).
    """
    shape = torch.broadcast_shapes(y.shape, lo.shape, hi.shape)
    # Every coordinate of a point in the simplex is in [0, 1], so these caps change nothing.
    lo, hi = lo.clamp_min(0).expand(shape), hi.clamp_max(1).expand(shape)
    y = y.expand(shape)
    _check_box(lo, hi, shape)
    atol = _feasibility_atol(y.dtype)
    empty = (lo.sum(dim=-1) > 1 + atol) | (hi.sum(dim=-1) < 1 - atol)
    if bool(empty.any()):
        raise _EmptySet(int(empty.sum()), empty.numel(), "the box bounds leave no point with sum 1")

    def z_of(theta: Tensor) -> tuple[Tensor, Tensor]:
        v = y - theta
        return torch.clamp(v, lo, hi), (v > lo) & (v < hi)

    t_lo = (y - hi).amin(dim=-1, keepdim=True)  # sum(clamp(y - t_lo)) = sum(hi) >= 1
    t_hi = (y - lo).amax(dim=-1, keepdim=True)  # sum(clamp(y - t_hi)) = sum(lo) <= 1
    return z_of(_solve_unit_sum(z_of, t_lo, t_hi))[0]


def _project_box_l1(
    y: Tensor, lo: Tensor, hi: Tensor, ball: Ball, prediction: Tensor | None, truth: Tensor | None
) -> Tensor:
    """Project onto a box intersected with the l1 ball ``{||z - c||_1 <= r}``.

    With multiplier ``lam`` for the ball the problem separates by coordinate:
    ``z_i = clamp(c_i + soft(y_i - c_i, lam), lo_i, hi_i)``; ``||z - c||_1`` is
    non-increasing in ``lam``, so bisection on ``lam`` in ``[0, max|y - c|]`` finds it.
    """
    c = ball._center(y, prediction, truth)
    shape = torch.broadcast_shapes(y.shape, c.shape, lo.shape, hi.shape)
    y, c, lo, hi = y.expand(shape), c.expand(shape), lo.expand(shape), hi.expand(shape)
    _check_box(lo, hi, shape)
    r = ball.radius
    d = y - c

    def at(lam: Tensor) -> Tensor:
        return torch.clamp(c + torch.sign(d) * (d.abs() - lam).clamp_min(0), lo, hi)

    def dist(z: Tensor) -> Tensor:
        return (z - c).abs().sum(dim=-1, keepdim=True)

    # lam = max|y - c| gives clamp(c): the box point nearest c; if it is outside the ball, nothing is feasible.
    lam_lo = torch.zeros(shape[:-1] + (1,), dtype=y.dtype, device=y.device)
    lam_hi = d.abs().amax(dim=-1, keepdim=True)
    far = dist(at(lam_hi)) > r + _feasibility_atol(y.dtype)
    if bool(far.any()):
        raise _EmptySet(int(far.sum()), far.numel(), f"the box lies farther than {r:g} from the l1 ball's centre")
    for _ in range(_bisection_steps(y.dtype)):
        mid = 0.5 * (lam_lo + lam_hi)
        inside = dist(at(mid)) <= r
        lam_hi = torch.where(inside, mid, lam_hi)
        lam_lo = torch.where(inside, lam_lo, mid)
    z0 = at(torch.zeros_like(lam_lo))
    return torch.where(dist(z0) <= r, z0, at(lam_hi))


def _project_simplex_l1(
    y: Tensor, lo: Tensor, hi: Tensor, ball: Ball, prediction: Tensor | None, truth: Tensor | None
) -> Tensor:
    """Project onto the simplex intersected with a box and the l1 ball ``{||z - c||_1 <= r}``.

    With multipliers ``theta`` (sum) and ``lam`` (ball) the problem separates:
    ``z_i = clamp(c_i + soft(y_i - theta - c_i, lam), lo_i, hi_i)``. For each ``lam``
    the sum is monotone in ``theta`` (inner safeguarded Newton); ``||z - c||_1`` is
    non-increasing in ``lam`` (outer bisection).
    """
    c = ball._center(y, prediction, truth)
    shape = torch.broadcast_shapes(y.shape, c.shape, lo.shape, hi.shape)
    # Simplex coordinates lie in [0, 1], so these caps change nothing and keep brackets finite.
    lo, hi = lo.clamp_min(0).expand(shape), hi.clamp_max(1).expand(shape)
    y, c = y.expand(shape), c.expand(shape)
    z0 = _project_capped_simplex(y, lo, hi)  # also raises if the box leaves no point with sum 1
    atol = _feasibility_atol(y.dtype)
    r = ball.radius

    def dist(z: Tensor) -> Tensor:
        return (z - c).abs().sum(dim=-1, keepdim=True)

    # Smallest l1 distance from c to the capped simplex: clamp c into the box, then fix the sum.
    w = torch.clamp(c, lo, hi)
    far = dist(w) + (1 - w.sum(dim=-1, keepdim=True)).abs() > r + atol
    if bool(far.any()):
        raise _EmptySet(int(far.sum()), far.numel(), f"the simplex lies farther than {r:g} from the l1 ball's centre")
    steps = _bisection_steps(y.dtype)
    d = y - c

    def at(lam: Tensor) -> Tensor:
        def z_of(theta: Tensor) -> tuple[Tensor, Tensor]:
            e = d - theta
            u = c + torch.sign(e) * (e.abs() - lam).clamp_min(0)
            return torch.clamp(u, lo, hi), (e.abs() > lam) & (u > lo) & (u < hi)

        # Below min(y - hi) - lam every z_i is at hi (sum >= 1); above max(y - lo) + lam, at lo.
        t_lo = (y - hi).amin(dim=-1, keepdim=True) - lam
        t_hi = (y - lo).amax(dim=-1, keepdim=True) + lam
        return z_of(_solve_unit_sum(z_of, t_lo, t_hi))[0]

    # Once lam exceeds about 2 max|y - z| (z in [0, 1]), the l1 distance is at its minimum (the
    # reduced costs of the l1 LP are integers); grow the bracket in the rare case that is not enough.
    lam_hi = 2 * (y.abs().amax(dim=-1, keepdim=True) + 1) + 1
    for _ in range(8):
        short = dist(at(lam_hi)) > r + atol
        if not bool(short.any()):
            break
        lam_hi = torch.where(short, 16 * lam_hi, lam_hi)
    lam_lo = torch.zeros_like(lam_hi)
    for _ in range(steps):
        mid = 0.5 * (lam_lo + lam_hi)
        inside = dist(at(mid)) <= r
        lam_hi = torch.where(inside, mid, lam_hi)
        lam_lo = torch.where(inside, lam_lo, mid)
    return torch.where(dist(z0) <= r, z0, at(lam_hi))


def _project_with_l2_ball(
    ball: Ball, rest: Sequence[LabelSet], y: Tensor, prediction: Tensor | None, truth: Tensor | None
) -> Tensor:
    """Exact projection onto ``S ∩ {||z - c||_2 <= r}`` for a set ``S`` with an exact projection.

    With multiplier ``lam`` for the ball, ``||z - y||^2 + lam ||z - c||^2`` equals
    ``(1 + lam) ||z - w||^2`` + const with ``w = (1 - t) y + t c``, ``t = lam / (1 + lam)``,
    so the solution is ``P_S(w(t))``; ``||P_S(w(t)) - c||`` is non-increasing in ``t``,
    so bisection on ``t`` in [0, 1] finds the ``t`` where the ball is active.
    """

    def inner(v: Tensor) -> Tensor:
        return _project_exactly(rest, v, prediction, truth)

    c = ball._center(y, prediction, truth)
    shape = torch.broadcast_shapes(y.shape, c.shape)
    yb, cb = y.expand(shape), c.expand(shape)
    r = ball.radius

    def dist(x: Tensor) -> Tensor:
        return torch.linalg.vector_norm(x - cb, dim=-1, keepdim=True)

    x0 = inner(yb)
    # t = 1 projects the centre itself: if even that is outside the ball, nothing is feasible.
    far = dist(inner(cb)) > r + _feasibility_atol(y.dtype)
    if bool(far.any()):
        raise _EmptySet(int(far.sum()), far.numel(), f"the rest of the set lies farther than {r:g} from the ball's centre")
    lo = torch.zeros(shape[:-1] + (1,), dtype=y.dtype, device=y.device)
    hi = torch.ones_like(lo)  # invariant: t = hi is feasible for the ball (up to the atol above)
    for _ in range(_bisection_steps(y.dtype)):
        mid = 0.5 * (lo + hi)
        inside = dist(inner((1 - mid) * yb + mid * cb)) <= r
        hi = torch.where(inside, mid, hi)
        lo = torch.where(inside, lo, mid)
    x = inner((1 - hi) * yb + hi * cb)
    return torch.where(dist(x0) <= r, x0, x)


def _project_exactly(
    active: Sequence[LabelSet], y: Tensor, prediction: Tensor | None, truth: Tensor | None
) -> Tensor:
    """Exact projection onto the intersection of ``active`` (see :func:`_exact_cost`)."""
    k = y.shape[-1]
    if not active:
        return y.clone()
    if len(active) == 1:
        return active[0].project(y, prediction=prediction, truth=truth)
    if all(_is_boxlike(m, k) for m in active):
        lo, hi = _combined_bounds(active, y, prediction, truth)
        x = torch.minimum(torch.maximum(y, lo), hi)
        _check_box(lo, hi, x.shape)
        return x
    if all(_is_nonneg(m) or _is_origin_l2_ball(m) for m in active):
        # For a closed convex cone K and a ball centred at 0, P_{K ∩ B} = P_B ∘ P_K.
        x = y.clamp_min(0)
        for m in active:
            if isinstance(m, Ball):
                x = m.project(x)
        return x
    kind = _separable_kind(active, k)
    if kind is not None:
        boxes = [m for m in active if _is_boxlike(m, k)]
        lo, hi = _combined_bounds(boxes, y, prediction, truth)
        if kind == "simplex":
            return _project_capped_simplex(y, lo, hi)
        ball = next(m for m in active if _is_l1_ball(m) and not _is_boxlike(m, k))
        assert isinstance(ball, Ball)
        if kind == "l1":
            return _project_box_l1(y, lo, hi, ball, prediction, truth)
        return _project_simplex_l1(y, lo, hi, ball, prediction, truth)
    # A 2-ball around an exactly projectable rest: pick the cheapest split.
    options: list[tuple[int, LabelSet, list[LabelSet]]] = []
    for b in active:
        if _is_l2_ball(b):
            rest = [m for m in active if m is not b]
            cost = _exact_cost(rest, k)
            if cost is not None:
                options.append((cost, b, rest))
    _, ball, rest = min(options, key=lambda o: o[0])
    assert isinstance(ball, Ball)
    return _project_with_l2_ball(ball, rest, y, prediction, truth)


class _ExactBlock(LabelSet):
    """Internal: a group of members projected onto jointly and exactly (one "set" for Dykstra)."""

    def __init__(self, members: Sequence[LabelSet]) -> None:
        self.members = tuple(members)

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        return _project_exactly(self.members, y, prediction, truth)

    def spec(self) -> str:
        return "+".join(m.spec() for m in self.members)


def _exact_blocks(active: Sequence[LabelSet], k: int) -> list[list[LabelSet]]:
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


def _dykstra(
    sets: Sequence[LabelSet],
    y: Tensor,
    prediction: Tensor | None,
    truth: Tensor | None,
    tol: float | None,
    max_iter: int,
) -> tuple[Tensor, float]:
    """Dykstra's iteration; returns the point and the largest move in the last cycle."""
    y = _labels(y)
    x = y.clone()
    if not sets or y.numel() == 0:
        return x, 0.0
    tol = _dykstra_tol(y.dtype) if tol is None else tol
    increments = [torch.zeros_like(y) for _ in sets]
    last = math.inf
    for _ in range(max_iter):
        change = y.new_zeros(())
        for i, s in enumerate(sets):
            v = x + increments[i]
            z = s.project(v, prediction=prediction, truth=truth)
            increments[i] = v - z
            change = torch.maximum(change, (z - x).abs().amax())
            x = z
        # One host sync per cycle. A sub-step move equals its increment's change, so a
        # cycle in which nothing moves is a fixed point of the iteration.
        last = float(change)
        if last <= tol:
            break
    return x, last


def dykstra(
    sets: Sequence[LabelSet],
    y: Tensor,
    *,
    prediction: Tensor | None = None,
    truth: Tensor | None = None,
    tol: float | None = None,
    max_iter: int = 500,
) -> Tensor:
    """Projection onto the intersection of convex sets by Dykstra's algorithm, batched.

    Cycles through the member projections with Dykstra's correction terms,
    stopping when no sub-step moves any label by more than ``tol`` (a fixed
    point of the iteration) or after ``max_iter`` cycles. Does not check that
    the result is feasible or converged; :class:`Intersection` does. Dykstra's
    iterates can stall for many cycles at a feasible point that is not the
    projection (polyhedral sets with kinks), so prefer :class:`Intersection`,
    which uses exact methods where it can.

    Args:
        sets: convex member sets.
        y: labels ``[..., K]``.
        prediction: passed to the members.
        truth: passed to the members.
        tol: stopping tolerance; default 1e-10 (float64), 1e-6 (float32).
        max_iter: maximum number of full cycles.

    Returns:
        The approximate projection, broadcast shape of ``y`` and the centres.

    References:
        Boyle & Dykstra, "A method for finding projections onto the
        intersection of convex sets in Hilbert spaces", 1986.
    """
    return _dykstra(sets, y, prediction, truth, tol, max_iter)[0]


class Intersection(LabelSet):
    """Intersection of label sets.

    Projection is exact where possible: intersections of boxes (including
    inf-balls, and every set when K = 1) by clamping; ``NonNegative`` with an
    origin 2-ball by clamping then radially scaling; the simplex with boxes
    by a threshold search (``clamp(y - theta, low, high)``); an l1 ball with
    boxes by bisection on its multiplier (soft-thresholding); a 2-ball with
    anything exactly projectable (e.g. simplex ∩ ball around the truth) by
    bisection on the ball's multiplier; members implied by others (``y >= 0``
    next to the simplex) are dropped. Other intersections (e.g. simplex ∩ l1
    ball) use Dykstra's algorithm over exactly projectable groups of members,
    and raise ``ValueError`` if it has not converged in ``max_iter`` cycles. With a
    discrete member the projection is the nearest of its candidates that every
    other member contains. Raises ``ValueError`` when, for some batch element,
    the intersection is empty.

    Args:
        *sets: the members (nested intersections are flattened).
        tol: Dykstra's stopping tolerance; default by dtype (1e-10 for float64, 1e-6 for float32).
        max_iter: Dykstra's maximum number of cycles.

    References:
        LAST: Liu et al., NeurIPS 2021, Sec. 3.2. DHT: Qiu et al., AISTATS 2023, Sec. 5.1.
    """

    def __init__(self, *sets: LabelSet, tol: float | None = None, max_iter: int = 500) -> None:
        members: list[LabelSet] = []
        for s in sets:
            if not isinstance(s, LabelSet):
                raise TypeError(f"Intersection members must be LabelSet instances, got {type(s).__name__}")
            members.extend(s.sets if isinstance(s, Intersection) else (s,))
        if not members:
            raise ValueError("Intersection needs at least one set")
        if max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {max_iter}")
        self.sets: tuple[LabelSet, ...] = tuple(members)
        self.tol = tol
        self.max_iter = int(max_iter)
        self.is_discrete = any(m.is_discrete for m in members)
        self._blocks: dict[int, list[list[LabelSet]]] = {}  # grouping per K; depends on nothing else

    @property
    def depends_on(self) -> frozenset[str]:
        return frozenset().union(*(m.depends_on for m in self.sets))

    def describe(self) -> str:
        return " ∩ ".join(m.describe() for m in self.sets)

    def spec(self) -> str:
        return "+".join(m.spec() for m in self.sets)

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        y = _labels(y)
        out = self.sets[0].contains(y, prediction=prediction, truth=truth, atol=atol)
        for m in self.sets[1:]:
            out = out & m.contains(y, prediction=prediction, truth=truth, atol=atol)
        return out

    def candidates(
        self, k: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Tensor | None:
        """Candidates of the first discrete member kept by every member that needs no prediction/truth.

        Members centred on the prediction or the truth cannot be evaluated here;
        filter with :meth:`contains` for those.
        """
        discrete = [m for m in self.sets if m.is_discrete]
        if not discrete:
            return None
        cand = discrete[0].candidates(k, dtype=dtype, device=device)
        assert cand is not None
        keep = torch.ones(cand.shape[0], dtype=torch.bool, device=cand.device)
        for m in self.sets:
            if m is not discrete[0] and not m.depends_on:
                keep &= m.contains(cand)
        return cand[keep]

    def _bounds(
        self, y: Tensor, prediction: Tensor | None, truth: Tensor | None
    ) -> tuple[Tensor, Tensor] | None:
        lo: Tensor | None = None
        hi: Tensor | None = None
        for m in self.sets:
            b = m._bounds(y, prediction, truth)
            if b is None:
                return None
            lo = b[0] if lo is None else torch.maximum(lo, b[0])
            hi = b[1] if hi is None else torch.minimum(hi, b[1])
        assert lo is not None and hi is not None
        return lo, hi

    def _raise_empty(self, n_empty: int, n_total: int, why: str) -> NoReturn:
        raise ValueError(
            f"{_EMPTY_MSG} for {n_empty} of {n_total} batch elements ({self.describe()}); {why}"
        )

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        y = _labels(y)
        if self.is_discrete:
            return self._project_discrete(y, prediction, truth)
        if y.numel() == 0:
            return y.clone()
        k = y.shape[-1]
        if k not in self._blocks:
            self._blocks[k] = _exact_blocks(_simplify(self.sets), k)
        blocks = self._blocks[k]
        try:
            if len(blocks) <= 1:
                return _project_exactly(blocks[0] if blocks else [], y, prediction, truth)
            blocksets = [_ExactBlock(b) for b in blocks]
            x, change = _dykstra(blocksets, y, prediction, truth, self.tol, self.max_iter)
        except _EmptySet as err:
            self._raise_empty(err.n_empty, err.n_total, err.why)
        atol = _feasibility_atol(x.dtype)
        ok = self.contains(x, prediction=prediction, truth=truth, atol=atol)
        if not bool(ok.all()):
            self._raise_empty(
                int((~ok).sum()),
                ok.numel(),
                f"Dykstra's alternating projections did not meet within {atol:g} in {self.max_iter} cycles "
                "(if the set is not empty, pass a larger max_iter to Intersection)",
            )
        if change > atol:
            # Feasible but still moving: Dykstra can stall at a feasible non-projection.
            raise ValueError(
                f"constraint: Dykstra's algorithm did not converge for {self.describe()} in {self.max_iter} "
                f"cycles (last move {change:.3g}); pass a larger max_iter to Intersection"
            )
        return x

    def _project_discrete(self, y: Tensor, prediction: Tensor | None, truth: Tensor | None) -> Tensor:
        first = next(m for m in self.sets if m.is_discrete)
        others = [m for m in self.sets if m is not first]
        cand = first.candidates(y.shape[-1], dtype=y.dtype, device=y.device)
        assert cand is not None
        # Candidates get their own axis (-2) so per-element centres broadcast against all of them.
        pred_c = None if prediction is None else _like(prediction, y, "prediction").unsqueeze(-2)
        truth_c = None if truth is None else _like(truth, y, "truth").unsqueeze(-2)
        feasible = torch.ones(cand.shape[0], dtype=torch.bool, device=y.device)
        for m in others:
            feasible = feasible & m.contains(cand, prediction=pred_c, truth=truth_c)
        dist = ((y.unsqueeze(-2) - cand) ** 2).sum(dim=-1)
        dist = torch.where(feasible, dist, torch.full_like(dist, math.inf))
        none_ok = torch.isinf(dist).all(dim=-1)
        if bool(none_ok.any()):
            self._raise_empty(int(none_ok.sum()), none_ok.numel(), "no candidate label satisfies every constraint")
        if dist.numel() == 0:  # empty batch: nothing to choose
            return torch.broadcast_to(y, dist.shape[:-1] + y.shape[-1:]).clone()
        x = cand[dist.argmin(dim=-1)]
        # Keep the discrete member's own tie-breaking whenever its unconstrained choice is feasible.
        own = first.project(y)
        own_ok = torch.ones(own.shape[:-1], dtype=torch.bool, device=y.device)
        for m in others:
            own_ok = own_ok & m.contains(own, prediction=prediction, truth=truth)
        return torch.where(own_ok.unsqueeze(-1), own, x)


def interval(
    label_set: LabelSet, prediction: Tensor | None = None, truth: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Feasible ``[low, high]`` of a scalar label (K = 1), per batch element.

    Args:
        label_set: a continuous set.
        prediction: learner's prediction, shape ``[..., 1]`` (if the set uses it).
        truth: true label, shape ``[..., 1]`` (if the set uses it).

    Returns:
        ``(low, high)``, each of shape ``[..., 1]`` like a scalar label
        (``[1]`` when neither tensor is given), possibly infinite, so that
        ``torch.clamp(y, low, high)`` is the projection.

    Raises:
        ValueError: for discrete sets (use :meth:`LabelSet.candidates`), for
            non-scalar labels, or when the interval is empty.
    """
    if label_set.is_discrete:
        raise ValueError(f"interval() is for continuous sets; {label_set.describe()} is discrete, use candidates()")
    given = [torch.as_tensor(t) for t in (prediction, truth) if t is not None]
    floats = [t for t in given if t.is_floating_point()]
    dtype = floats[0].dtype if floats else torch.get_default_dtype()
    device = given[0].device if given else None
    shape = torch.broadcast_shapes(*(t.shape for t in given)) if given else torch.Size([1])
    if len(shape) == 0 or shape[-1] != 1:
        raise ValueError(f"interval() is for scalar labels of shape [..., 1], got shape {tuple(shape)}")
    like = torch.zeros(shape, dtype=dtype, device=device)
    bounds = label_set._bounds(like, prediction, truth)
    if bounds is None:  # pragma: no cover - every continuous set is an interval when K = 1
        raise ValueError(f"{label_set.describe()} has no interval form")
    lo, hi = (torch.broadcast_to(b, torch.broadcast_shapes(b.shape, shape)).clone() for b in bounds)
    empty = lo > hi
    if bool(empty.any()):
        raise ValueError(
            f"{_EMPTY_MSG} for {int(empty.sum())} of {empty.numel()} batch elements ({label_set.describe()})"
        )
    return lo, hi


_SPLIT = re.compile(r"\+(?=\s*(?:none|onehot|signs|simplex|nonneg|box|ball)\b)")
_BOX = re.compile(r"box:([^:]+):([^:]+)")
_BALL = re.compile(r"(ball|ball-truth|ball-origin):([^,]+)(?:,\s*p\s*=\s*(\S+))?")


def _unknown(term: str, spec: str) -> ValueError:
    return ValueError(
        f"unknown label set {term!r} in {spec!r}; accepted forms: " + "; ".join(_ACCEPTED_FORMS)
    )


def _parse_number(text: str, term: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError as err:
        raise _unknown(term, spec) from err


def _parse_term(term: str, spec: str) -> LabelSet:
    t = term.strip().lower()
    simple: dict[str, type[LabelSet]] = {
        "none": Unconstrained,
        "onehot": OneHot,
        "signs": Signs,
        "simplex": Simplex,
        "nonneg": NonNegative,
    }
    if t in simple:
        return simple[t]()
    m = _BOX.fullmatch(t)
    if m:
        return Box(_parse_number(m.group(1), term, spec), _parse_number(m.group(2), term, spec))
    m = _BALL.fullmatch(t)
    if m:
        center = {"ball": "prediction", "ball-truth": "truth", "ball-origin": "origin"}[m.group(1)]
        radius = _parse_number(m.group(2), term, spec)
        p = m.group(3) if m.group(3) is not None else "2"
        return Ball(radius, center=center, p=p)
    raise _unknown(term, spec)


def parse_label_set(spec: str) -> LabelSet:
    """Read a label set from its compact string form.

    Forms: ``none``, ``onehot``, ``signs``, ``simplex``, ``nonneg``,
    ``box:LOW:HIGH``, ``ball:R`` (around the prediction), ``ball-truth:R``,
    ``ball-origin:R``, balls optionally suffixed ``,p=1|2|inf``, and ``+``
    joining sets into an :class:`Intersection`, e.g. ``simplex+ball-truth:0.5``
    or ``nonneg+ball-origin:2`` (DHT's constraint).

    Args:
        spec: the string.

    Returns:
        The set; ``parse_label_set(s.spec()) == s`` for every set ``s``.

    Raises:
        ValueError: for unknown forms (the message lists the accepted ones) or invalid parameters.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty label set spec {spec!r}; accepted forms: " + "; ".join(_ACCEPTED_FORMS))
    terms = _SPLIT.split(spec.strip().lower())
    sets = [_parse_term(t, spec) for t in terms]
    return sets[0] if len(sets) == 1 else Intersection(*sets)
