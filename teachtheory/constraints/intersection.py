"""Intersections of label sets, projected exactly where possible and by Dykstra's algorithm otherwise.

References:
    Boyle & Dykstra, "A method for finding projections onto the intersection of
    convex sets in Hilbert spaces", Lecture Notes in Statistics 37, 1986.
    LAST: Liu et al., NeurIPS 2021, Sec. 3.2. DHT: Qiu et al., AISTATS 2023, Sec. 5.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NoReturn

import torch
from torch import Tensor

from .base import EMPTY_MSG, LabelSet, as_labels, broadcast_like, intersect_bounds
from .exact import ExactBlock, exact_blocks, project_exactly, simplify
from .projections import EmptySetError, by_dtype, feasibility_atol

__all__ = ["Intersection", "dykstra"]


def _dykstra_tol(dtype: torch.dtype) -> float:
    """Stopping tolerance for Dykstra's algorithm, near the dtype's attainable accuracy."""
    return by_dtype(dtype, 1e-10, 1e-6, 1e-3)


def _dykstra(
    sets: Sequence[LabelSet],
    y: Tensor,
    prediction: Tensor | None,
    truth: Tensor | None,
    tol: float | None,
    max_iter: int,
) -> tuple[Tensor, float]:
    """Dykstra's iteration; returns the point and the largest move in the last cycle."""
    y = as_labels(y)
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
    r"""Projection onto the intersection of convex sets :math:`C_1 \cap \dots \cap C_m` by Dykstra's algorithm, batched.

    Starting from :math:`x = y` and increments :math:`p_i = 0`, each cycle sets, for
    :math:`i = 1, \dots, m`, :math:`v = x + p_i`, :math:`x \leftarrow \Pi_{C_i}(v)`,
    :math:`p_i \leftarrow v - x`; it stops when no sub-step moves any label by more
    than ``tol`` (a fixed point of the iteration) or after ``max_iter`` cycles.
    Does not check that the result is feasible or converged; :class:`Intersection`
    does. Dykstra's iterates can stall for many cycles at a feasible point that is
    not the projection (polyhedral sets with kinks), so prefer :class:`Intersection`,
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
    next to the simplex) are dropped. Other intersections (e.g. two l1 balls)
    use Dykstra's algorithm over exactly projectable groups of members,
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
        Boyle & Dykstra, 1986.
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
        """Union of the members' dependencies."""
        return frozenset().union(*(m.depends_on for m in self.sets))

    def describe(self) -> str:
        """The members' descriptions joined by ``∩``."""
        return " ∩ ".join(m.describe() for m in self.sets)

    def spec(self) -> str:
        """The members' specs joined by ``+``."""
        return "+".join(m.spec() for m in self.sets)

    def _contains(self, y: Tensor, prediction: Tensor | None, truth: Tensor | None, atol: float) -> Tensor:
        """Within ``atol`` of every member (cheaper than projecting onto the intersection)."""
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

    def bounds(
        self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None
    ) -> tuple[Tensor, Tensor] | None:
        """The intersection of the members' boxes, if every member is a box for labels like ``y``."""
        return intersect_bounds(self.sets, y, prediction, truth)

    def _raise_empty(self, n_empty: int, n_total: int, why: str) -> NoReturn:
        """Raise the ValueError for batch elements whose intersection is empty."""
        raise ValueError(f"{EMPTY_MSG} for {n_empty} of {n_total} batch elements ({self.describe()}); {why}")

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        """Euclidean projection onto the intersection (exact where possible, else Dykstra's; see the class)."""
        y = as_labels(y)
        if self.is_discrete:
            return self._project_discrete(y, prediction, truth)
        if y.numel() == 0:
            return y.clone()
        k = y.shape[-1]
        if k not in self._blocks:
            self._blocks[k] = exact_blocks(simplify(self.sets), k)
        blocks = self._blocks[k]
        try:
            if len(blocks) <= 1:
                return project_exactly(blocks[0] if blocks else [], y, prediction, truth)
            x, change = _dykstra([ExactBlock(b) for b in blocks], y, prediction, truth, self.tol, self.max_iter)
        except EmptySetError as err:
            self._raise_empty(err.n_empty, err.n_total, err.why)
        atol = feasibility_atol(x.dtype)
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
        """Nearest candidate of the first discrete member that every other member contains."""
        first = next(m for m in self.sets if m.is_discrete)
        others = [m for m in self.sets if m is not first]
        cand = first.candidates(y.shape[-1], dtype=y.dtype, device=y.device)
        assert cand is not None
        # Candidates get their own axis (-2) so per-element centres broadcast against all of them.
        pred_c = None if prediction is None else broadcast_like(prediction, y, "prediction").unsqueeze(-2)
        truth_c = None if truth is None else broadcast_like(truth, y, "truth").unsqueeze(-2)
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
