"""The label-set base class with the behaviour every set shares, and :func:`interval`.

A subclass defines its projection (or, for a fixed coordinate box, only
:attr:`LabelSet.coordinate_bounds`), its :attr:`LabelSet.keyword` and
:attr:`LabelSet.title`; membership, description, spec string, interval bounds,
equality and hashing come from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from .projections import project_box

# The public names; the helpers below are shared inside the package only.
__all__ = ["LabelSet", "interval"]

EMPTY_MSG = "constraint: the feasible label set is empty"


def format_number(x: float) -> str:
    """Shortest text that parses back to exactly ``x`` (``-0.0`` folded to ``0.0``)."""
    return repr(float(x) + 0.0)


def as_labels(y: Tensor) -> Tensor:
    """Validate a label tensor ``[..., K]``; integer labels are promoted since projections are real-valued."""
    if not isinstance(y, Tensor):
        y = torch.as_tensor(y)
    if y.ndim == 0:
        raise ValueError("labels must have shape [..., K] (a scalar label is [..., 1]), got a 0-d tensor")
    if not y.is_floating_point():
        y = y.to(torch.get_default_dtype())
    return y


def broadcast_like(t: Tensor | float, y: Tensor, name: str) -> Tensor:
    """``t`` as a tensor with ``y``'s dtype and device, checked to broadcast against ``y``."""
    t = torch.as_tensor(t, dtype=y.dtype, device=y.device)
    try:
        torch.broadcast_shapes(t.shape, y.shape)
    except RuntimeError as err:
        raise ValueError(
            f"{name} of shape {tuple(t.shape)} does not broadcast against labels of shape {tuple(y.shape)}"
        ) from err
    return t


class LabelSet:
    """A feasible set of labels, batched over leading dimensions.

    Subclasses define :meth:`project` (a set that is a fixed coordinate box may
    instead set :attr:`coordinate_bounds`), :attr:`keyword` and :attr:`title`,
    and override the other methods only where they differ. Sets compare equal
    when their specs are equal.

    Attributes:
        keyword: the spec string of a set without parameters (``"simplex"``).
        title: the human-readable description of such a set.
        is_discrete: whether the set is finite (see :meth:`candidates`).
        coordinate_bounds: ``(low, high)`` when the set is the same coordinate box
            ``{low <= y_k <= high}`` for every K and centre, else ``None``.
    """

    keyword: ClassVar[str] = ""
    title: ClassVar[str] = ""
    is_discrete: bool = False
    coordinate_bounds: tuple[float, float] | None = None

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        """Euclidean projection of ``y`` (shape ``[..., K]``) onto the set.

        The default clamps to :attr:`coordinate_bounds`.

        Args:
            y: labels to project.
            prediction: the learner's current prediction, needed by sets centred on it.
            truth: the true label, needed by sets centred on it.

        Returns:
            The nearest feasible labels, same shape, dtype and device as ``y``
            (or the broadcast shape when a centre has more leading dimensions).
        """
        if self.coordinate_bounds is None:
            raise NotImplementedError(f"{type(self).__name__} defines neither project() nor coordinate_bounds")
        return project_box(as_labels(y), *self.coordinate_bounds)

    def contains(
        self,
        y: Tensor,
        *,
        prediction: Tensor | None = None,
        truth: Tensor | None = None,
        atol: float = 1e-6,
    ) -> Tensor:
        """Whether each label lies within Euclidean distance ``atol`` of the set; bool of shape ``y.shape[:-1]``.

        The distance is ``||y - project(y)||_2`` unless a subclass knows better; NaN
        labels are never contained.
        """
        return self._contains(as_labels(y), prediction, truth, atol)

    def _contains(self, y: Tensor, prediction: Tensor | None, truth: Tensor | None, atol: float) -> Tensor:
        """:meth:`contains` for validated labels; override this rather than ``contains``."""
        x = self.project(y, prediction=prediction, truth=truth)
        # Equal entries (infinite ones too) are at distance 0; inf - inf alone would give NaN.
        gap = torch.where(x == y, torch.zeros_like(x), x - y)
        return torch.linalg.vector_norm(gap, dim=-1) <= atol

    def candidates(
        self, k: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Tensor | None:
        """All members as a ``[C, K]`` tensor for discrete sets; ``None`` for continuous ones."""
        return None

    def describe(self) -> str:
        """Short human-readable description."""
        return self.title

    def spec(self) -> str:
        """The string that :func:`~teachtheory.constraints.parse_label_set` maps back to an equal set."""
        return self.keyword

    def bounds(
        self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None
    ) -> tuple[Tensor, Tensor] | None:
        """Per-coordinate ``(low, high)`` if the set is exactly a box for labels like ``y``, else ``None``.

        The bounds broadcast against ``y``; the default is :attr:`coordinate_bounds`.
        """
        if self.coordinate_bounds is None:
            return None
        low, high = self.coordinate_bounds
        return y.new_tensor(low), y.new_tensor(high)

    @property
    def depends_on(self) -> frozenset[str]:
        """Which of ``{"prediction", "truth"}`` the set is defined relative to."""
        return frozenset()

    def __eq__(self, other: object) -> bool:
        """Equal when the specs are equal."""
        if not isinstance(other, LabelSet):
            return NotImplemented
        return self.spec() == other.spec()

    def __hash__(self) -> int:
        """Hash of the spec, consistent with equality."""
        return hash(self.spec())

    def __repr__(self) -> str:
        """The call that rebuilds the set."""
        return f"parse_label_set({self.spec()!r})"


def intersect_bounds(
    members: Sequence[LabelSet], y: Tensor, prediction: Tensor | None, truth: Tensor | None
) -> tuple[Tensor, Tensor] | None:
    """Intersection of the members' boxes for labels like ``y``; ``None`` if some member is not a box."""
    lo, hi = y.new_tensor(-torch.inf), y.new_tensor(torch.inf)
    for m in members:
        b = m.bounds(y, prediction=prediction, truth=truth)
        if b is None:
            return None
        lo, hi = torch.maximum(lo, b[0]), torch.minimum(hi, b[1])
    return lo, hi


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
    bounds = label_set.bounds(like, prediction=prediction, truth=truth)
    if bounds is None:  # pragma: no cover - every continuous set is an interval when K = 1
        raise ValueError(f"{label_set.describe()} has no interval form")
    lo, hi = (torch.broadcast_to(b, torch.broadcast_shapes(b.shape, shape)).clone() for b in bounds)
    empty = lo > hi
    if bool(empty.any()):
        raise ValueError(
            f"{EMPTY_MSG} for {int(empty.sum())} of {empty.numel()} batch elements ({label_set.describe()})"
        )
    return lo, hi
