"""The teacher interface of GIT(m, v, M, Q): what a teacher sees and what it hands the learner.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 5.2, Eq. (7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..learners import Learner
from ..problems import Problem
from ..random import RunStreams

__all__ = ["TeachingBatch", "TeachingContext", "Teacher", "gather_pool", "SAMPLE_STREAM"]

# The stream from which every "sample x uniformly from the pool" teacher draws, so SGD, LAST
# and the label-policy teachers see the same x at the same step for the same seed.
SAMPLE_STREAM = "pool-sample"


@dataclass
class TeachingBatch:
    """Teaching material for one learner step.

    Attributes:
        x: inputs [R, m, d]; y: labels [R, m] or [R, m, K].
        grad_scale: optional per-example gradient multiplier g [R, m] (LAST Sec. 3.4).
        preconditioner: optional matrix [R, p, p] applied to the mean gradient (LAST Thm 3).
        index: pool indices [R, m] when the examples come from the pool (else None).
    """

    x: torch.Tensor
    y: torch.Tensor
    grad_scale: torch.Tensor | None = None
    preconditioner: torch.Tensor | None = None
    index: torch.Tensor | None = None


@dataclass
class TeachingContext:
    """What a teacher may use: the problem (w* only if omniscient), learner, step size, batch size."""

    problem: Problem
    learner: Learner
    lr: float
    batch_size: int
    streams: RunStreams
    sampling: str = "uniform"
    # (pool tensor, learner, constants): the learner's pool constants, memoised by identity.
    _pool_constants: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def w_star(self) -> torch.Tensor:
        """The target parameters [1 or R, p] (read only by omniscient teachers)."""
        return self.problem.w_star

    def pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The pool (X [1 or R, n, d], y [1 or R, n(, K)])."""
        return self.problem.X, self.problem.y

    def pool_constants(self) -> dict[str, torch.Tensor]:
        """The learner's :meth:`~teachtheory.learners.Learner.pool_constants` of the pool inputs (e.g. the
        squared norms ||x_i||^2), computed once and reused while the pool tensor and the learner are the
        same objects (a teacher scoring the pool at every step must not recompute them)."""
        X = self.problem.X
        cached = self._pool_constants
        if cached is None or cached[0] is not X or cached[1] is not self.learner:
            self._pool_constants = cached = (X, self.learner, self.learner.pool_constants(X))
        return cached[2]


def gather_pool(X: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``index`` [R, m] of a pool X [Rp, n, d], y [Rp, n(, K)] -> ([R, m, d], [R, m(, K)])."""
    R = index.shape[0]
    X = X.expand(R, *X.shape[1:])
    y = y.expand(R, *y.shape[1:])
    xi = torch.gather(X, 1, index[..., None].expand(*index.shape, X.shape[-1]))
    if y.dim() == 2:
        yi = torch.gather(y, 1, index)
    else:
        yi = torch.gather(y, 1, index[..., None].expand(*index.shape, y.shape[-1]))
    return xi, yi


class Teacher:
    """Base class: holds configuration only.

    ``omniscient`` teachers read w*; others must not. ``teach`` returns the batch for one step
    given the current learner parameters ``w`` [R, p] and the step number.
    """

    name: str = "teacher"
    omniscient: bool = False

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """The batch for the learner step ``step`` at parameters w [R, p]."""
        raise NotImplementedError

    def sample_uniform(self, ctx: TeachingContext, step: int) -> TeachingBatch:
        """m pool examples: uniformly with replacement from the shared sampling stream, or, with
        ``sampling="sequential"``, examples step*m ... step*m + m - 1 (mod n) in pool order (for an
        i.i.d. per-run pool this is fresh sampling, e.g. x ~ N(0, I) at every step)."""
        n, m = ctx.problem.pool_size, ctx.batch_size
        if ctx.sampling == "sequential":
            index = (torch.arange(m) + step * m) % n
            index = index.expand(ctx.streams.runs, m)
        else:
            index = ctx.streams.integers(SAMPLE_STREAM, step, n, (m,))
        index = index.to(ctx.problem.X.device)
        x, y = gather_pool(*ctx.pool(), index)
        return TeachingBatch(x=x, y=y, index=index)

    def to_spec(self) -> dict:
        """The teacher's configuration as a JSON-able dict."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_spec().items() if k != "name")
        return f"{type(self).__name__}({args})"
