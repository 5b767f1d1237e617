"""The basic label sets: unconstrained, norm balls, simplex, orthant, box, one-hot and signs.

References:
    LAST: Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021,
    Sec. 3.2. DHT: Qiu et al., AISTATS 2023, Sec. 5.1 (``y >= 0`` and
    ``||y||_2 <= 2``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import LabelSet, as_labels, broadcast_like, format_number
from .projections import project_ball, project_simplex

__all__ = ["Ball", "Box", "NonNegative", "OneHot", "Signs", "Simplex", "Unconstrained"]

CENTERS = ("prediction", "truth", "origin")
NORMS = (1.0, 2.0, math.inf)
# The spec keyword of a ball around each centre.
BALL_KEYWORDS = {"prediction": "ball", "truth": "ball-truth", "origin": "ball-origin"}


class Unconstrained(LabelSet):
    """Every real label is feasible; the projection is the identity (a copy)."""

    keyword = "none"
    title = "unconstrained"
    coordinate_bounds = (-math.inf, math.inf)


class NonNegative(LabelSet):
    """Non-negative orthant ``{y >= 0}``; projection clamps at zero.

    References:
        DHT: Qiu et al., AISTATS 2023, Sec. 5.1 (with ``Ball(2, "origin")``).
    """

    keyword = "nonneg"
    title = "non-negative orthant"
    coordinate_bounds = (0.0, math.inf)


class Box(LabelSet):
    r"""Coordinate box :math:`\{y : \ell \le y_k \le h\}`; projection clamps.

    Args:
        low: lower bound (may be ``-inf``).
        high: upper bound (may be ``inf``), at least ``low``.
    """

    keyword = "box"

    def __init__(self, low: float, high: float) -> None:
        try:
            lo, hi = float(low), float(high)
        except (TypeError, ValueError) as err:
            raise ValueError(f"box bounds must be numbers, got low={low!r}, high={high!r}") from err
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"box bounds must be numbers, got low={low!r}, high={high!r}")
        if lo > hi:
            raise ValueError(f"box needs low <= high, got low={low!r} > high={high!r}")
        self.low = lo + 0.0
        self.high = hi + 0.0
        self.coordinate_bounds = (self.low, self.high)

    def describe(self) -> str:
        """``box[low, high]``."""
        return f"box[{self.low:g}, {self.high:g}]"

    def spec(self) -> str:
        """``box:LOW:HIGH``."""
        return f"{self.keyword}:{format_number(self.low)}:{format_number(self.high)}"


class Simplex(LabelSet):
    r"""Probability simplex :math:`\{y \ge 0, \sum_k y_k = 1\}`; exact sort-based projection.

    References:
        Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections onto the
        l1-ball for learning in high dimensions", ICML 2008, Fig. 1.
    """

    keyword = "simplex"
    title = "probability simplex"

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        r"""Projection onto the simplex, :math:`\max(y - \theta, 0)` with :math:`\theta` making the sum 1."""
        return project_simplex(as_labels(y), 1.0)

    def bounds(
        self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None
    ) -> tuple[Tensor, Tensor] | None:
        """``(1, 1)`` for scalar labels (the simplex is ``{1}``), else ``None``."""
        if y.shape[-1] != 1:
            return None
        one = y.new_tensor(1.0)
        return one, one


class Ball(LabelSet):
    r"""Norm ball :math:`\{y : \lVert y - c \rVert_p \le r\}` around the prediction, the truth or the origin.

    Args:
        radius: non-negative radius ``r`` (``inf`` allowed).
        center: ``"prediction"`` (LAST's magnitude constraint around the
            learner's output), ``"truth"`` or ``"origin"``.
        p: 1, 2 or ``inf``. Projections are exact: radial scaling (p=2),
            clamping (p=inf), sort-based l1-ball projection (p=1); see
            :func:`~teachtheory.constraints.project_ball`.

    References:
        LAST: Liu et al., NeurIPS 2021, Sec. 3.2. Duchi, Shalev-Shwartz, Singer &
        Chandra, ICML 2008 (p=1).
    """

    def __init__(self, radius: float, center: str = "prediction", p: float | str = 2) -> None:
        try:
            r = float(radius)
        except (TypeError, ValueError) as err:
            raise ValueError(f"radius must be a non-negative number, got {radius!r}") from err
        if math.isnan(r) or r < 0:
            raise ValueError(f"radius must be a non-negative number, got {radius!r}")
        if center not in CENTERS:
            raise ValueError(f"center must be one of {', '.join(map(repr, CENTERS))}; got {center!r}")
        try:
            pf = float(p)
        except (TypeError, ValueError):
            pf = math.nan
        if pf not in NORMS:
            raise ValueError(f"p must be one of 1, 2, inf; got {p!r}")
        self.radius = r + 0.0
        self.center = center
        self.p = pf

    def center_for(self, y: Tensor, prediction: Tensor | None, truth: Tensor | None) -> Tensor:
        """The centre as a tensor like ``y``; raises ``ValueError`` when the needed tensor is missing."""
        if self.center == "origin":
            return y.new_zeros(())
        t = prediction if self.center == "prediction" else truth
        if t is None:
            raise ValueError(f"{self.describe()} needs the {self.center} tensor; pass {self.center}=...")
        return broadcast_like(t, y, self.center)

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        r"""Projection onto the ball; see :func:`~teachtheory.constraints.project_ball`."""
        y = as_labels(y)
        return project_ball(y, self.center_for(y, prediction, truth), self.radius, self.p)

    def _contains(self, y: Tensor, prediction: Tensor | None, truth: Tensor | None, atol: float) -> Tensor:
        r"""Whether :math:`\lVert y - c \rVert_p \le r + \mathrm{atol}`.

        One norm instead of a projection: discrete teachers test every candidate label at every step.
        """
        d = y - self.center_for(y, prediction, truth)
        return torch.linalg.vector_norm(d, ord=self.p, dim=-1) <= self.radius + atol

    def _norm_text(self, sep: str) -> str:
        """``""`` for the 2-norm, else the separator and ``p=1`` or ``p=inf``."""
        return "" if self.p == 2.0 else f"{sep}p={'inf' if self.p == math.inf else int(self.p)}"

    def describe(self) -> str:
        """``ball(r=R[, p=P], around CENTER)``."""
        return f"ball(r={self.radius:g}{self._norm_text(', ')}, around {self.center})"

    def spec(self) -> str:
        """``ball:R``, ``ball-truth:R`` or ``ball-origin:R``, with ``,p=1`` or ``,p=inf`` unless p = 2."""
        return f"{BALL_KEYWORDS[self.center]}:{format_number(self.radius)}{self._norm_text(',')}"

    @property
    def depends_on(self) -> frozenset[str]:
        """The centre, unless it is the origin."""
        return frozenset() if self.center == "origin" else frozenset({self.center})

    def bounds(
        self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None
    ) -> tuple[Tensor, Tensor] | None:
        """``c -+ r`` for the inf-ball, or for any ball when K = 1; else ``None``."""
        # Every p-ball is an interval in one dimension; the inf-ball is a box in any dimension.
        if self.p != math.inf and y.shape[-1] != 1:
            return None
        c = self.center_for(y, prediction, truth)
        return c - self.radius, c + self.radius


class OneHot(LabelSet):
    """The K one-hot vectors; projection picks the nearest (the argmax, ties to the lowest index)."""

    keyword = "onehot"
    title = "one-hot"
    is_discrete = True

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        """The one-hot vector at ``argmax y`` (the first maximal index)."""
        y = as_labels(y)
        # ||y - e_i||^2 = ||y||^2 - 2 y_i + 1, so the nearest one-hot is at argmax y.
        idx = y.argmax(dim=-1, keepdim=True)
        return torch.zeros_like(y).scatter_(-1, idx, 1.0)

    def candidates(
        self, k: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """The ``[K, K]`` identity."""
        return torch.eye(k, dtype=dtype or torch.get_default_dtype(), device=device)


class Signs(LabelSet):
    """The scalar labels ``{-1, +1}`` of a logistic learner (K must be 1); projection is sign, 0 -> +1."""

    keyword = "signs"
    title = "signs {-1, +1}"
    is_discrete = True

    @staticmethod
    def _check_k(k: int) -> None:
        """Raise unless K = 1."""
        if k != 1:
            raise ValueError(f"signs is a set of scalar labels and needs K = 1, got K = {k}")

    def project(self, y: Tensor, *, prediction: Tensor | None = None, truth: Tensor | None = None) -> Tensor:
        """``+1`` where ``y >= 0``, else ``-1``."""
        y = as_labels(y)
        self._check_k(y.shape[-1])
        return torch.where(y >= 0, torch.ones_like(y), -torch.ones_like(y))

    def candidates(
        self, k: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Tensor:
        """``[[-1], [1]]``."""
        self._check_k(k)
        return torch.tensor([[-1.0], [1.0]], dtype=dtype or torch.get_default_dtype(), device=device)
