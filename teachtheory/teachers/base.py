"""The teacher interface of GIT(m, v, M, Q): what a teacher sees and what it hands the learner.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 5.2, Eq. (7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..learners import Learner
from ..problems import Problem
from ..random import RunStreams

__all__ = ["TeachingBatch", "TeachingContext", "Teacher", "gather_pool", "SAMPLE_STREAM"]

# The stream from which every "sample x uniformly from the pool" teacher draws, so SGD, LAST
# and the label-policy teachers see the same x at the same step for the same seed.
SAMPLE_STREAM = "pool-sample"
# Pool samples are drawn and gathered for blocks of consecutive steps (one call instead of one per step):
# the first block has SAMPLE_BLOCK_FIRST steps, each following one twice as many, up to SAMPLE_BLOCK_MAX
# steps or SAMPLE_BLOCK_ELEMENTS gathered input values, whichever is fewer.
SAMPLE_BLOCK_FIRST = 32
SAMPLE_BLOCK_MAX = 1024
SAMPLE_BLOCK_ELEMENTS = 1 << 18


@dataclass
class TeachingBatch:
    """Teaching material for one learner step.

    Attributes:
        x: inputs [R, m, d]; y: labels [R, m] or [R, m, K].
        grad_scale: optional per-example gradient multiplier g [R, m] (LAST Sec. 3.4).
        preconditioner: optional matrix [R, p, p] applied to the mean gradient (LAST Thm 3).
        index: pool indices [R, m] when the examples come from the pool (else None).
        outputs: optionally (w, w._version, x, z): the learner's outputs z of x at the parameters w, when the
            teacher computed them with the numbers the learner's gradient would (one example per run): a step
            from that same, unmodified w on this same x reuses them (:func:`~teachtheory.engine.apply_batch_gradient`).
    """

    x: torch.Tensor
    y: torch.Tensor
    grad_scale: torch.Tensor | None = None
    preconditioner: torch.Tensor | None = None
    index: torch.Tensor | None = None
    outputs: tuple | None = None


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
    # The current block of pool samples (see :meth:`pool_sample`).
    _samples: _SampleBlock | None = field(default=None, init=False, repr=False, compare=False)
    # (w, w*, w's version, e = w - w*, e's version): the last direction, see :meth:`direction`.
    _direction: tuple | None = field(default=None, init=False, repr=False, compare=False)
    # (X, y, key -> value): see :meth:`pool_memo`.
    _pool_memo: tuple | None = field(default=None, init=False, repr=False, compare=False)

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

    def pool_memo(self, key, make: Callable[[], object]):
        """``make()``, a teacher's own quantity of the pool (e.g. DHT's feasible box), computed once and reused
        while the pool tensors are the same objects; ``key`` names it (with what else it depends on)."""
        X, y = self.problem.X, self.problem.y
        memo = self._pool_memo
        if memo is None or memo[0] is not X or memo[1] is not y:
            self._pool_memo = memo = (X, y, {})
        if key not in memo[2]:
            memo[2][key] = make()
        return memo[2][key]

    def direction(self, w: torch.Tensor) -> torch.Tensor:
        """e = w - w* [R, p] (omniscient teachers only), computed once per parameter tensor: the engine's
        distance ||w_t - w*|| and the teacher's next step at the same w_t share it. Reused while ``w`` is the
        same tensor, unmodified (its version counter), and w* the same; never under autograd."""
        w_star = self.problem.w_star
        cached = self._direction
        if cached is not None and cached[0] is w and cached[1] is w_star and cached[2] == w._version:
            e = cached[3]
            if e._version == cached[4]:
                return e
        e = w - w_star
        if torch.is_grad_enabled() and (w.requires_grad or w_star.requires_grad):
            self._direction = None
        else:
            self._direction = (w, w_star, w._version, e, e._version)
        return e

    def pool_sample(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pool examples of step ``step`` from the shared sampling stream: (index [R, m], x [R, m, d],
        y [R, m(, K)]), uniformly with replacement or, with ``sampling="sequential"``, examples
        step*m ... step*m + m - 1 (mod n).

        Consecutive steps are drawn and gathered a block at a time (the numbers are those of one draw per
        step: :meth:`~teachtheory.random.RunStreams.integers_block`), so a teacher that samples at every step
        pays the per-call cost once per block. The tensors are views of the block: replace them, do not write
        into them.
        """
        block = self._block(step)
        if block is None:  # A block shared by several steps would share one autograd graph: draw this step alone.
            return self._draw_samples(step, 1).step(step)
        return block.step(step)

    def _block(self, step: int) -> _SampleBlock | None:
        """The block of pool samples that holds ``step``, drawn when needed; None under autograd on the pool."""
        X, y = self.problem.X, self.problem.y
        block = self._samples
        if block is not None and block.holds(X, y, self.batch_size, self.sampling, self.streams, step):
            return block
        if torch.is_grad_enabled() and (X.requires_grad or y.requires_grad):
            return None
        count = SAMPLE_BLOCK_FIRST
        if block is not None and block.key_matches(X, y, self.batch_size, self.sampling, self.streams) and (
                step == block.stop):  # the run goes on
            count = 2 * (block.stop - block.start)
        elements = self.streams.runs * self.batch_size * X.shape[-1]
        count = max(1, min(count, SAMPLE_BLOCK_MAX, SAMPLE_BLOCK_ELEMENTS // max(1, elements)))
        self._samples = block = self._draw_samples(step, count)
        return block

    def sample_constants(self, step: int) -> dict[str, torch.Tensor]:
        """The learner's :meth:`~teachtheory.learners.Learner.pool_constants` of the examples of
        :meth:`pool_sample` at ``step`` (each [R, m, ...]), gathered from :meth:`pool_constants` a block of
        steps at a time. Constants that are not per example (named with a leading underscore) are left out."""
        block = self._block(step)
        if block is None:
            return {}  # no shared blocks under autograd (see pool_sample): the learner computes its own
        j = step - block.start
        return {name: values[j] for name, values in self._block_constants(block).items()}

    def sample_derived(self, step: int, key, make: Callable[[dict[str, torch.Tensor]], tuple]) -> tuple | None:
        """A teacher's own per-example quantities of the examples of :meth:`pool_sample` at ``step``, made from
        their :meth:`sample_constants` once per block of steps instead of at every step.

        Args:
            step: the learner step.
            key: names the quantities (with whatever they depend on besides the constants, e.g. the step size)
                among those cached for the block.
            make: maps the block's constants (name -> [count, R, m, ...]) to a tuple whose tensors have the
                block's steps as their leading axis (None entries allowed); elementwise in the constants, so
                that a step's rows are the numbers it would get alone.

        Returns:
            The tuple with each tensor's row of ``step``, or None under autograd on the pool (no blocks).
        """
        block = self._block(step)
        if block is None:
            return None
        derived = block.derived
        if derived is None or derived[0] is not self.learner:
            block.derived = derived = (self.learner, {})
        values = derived[1].get(key)
        if values is None:
            values = derived[1][key] = make(self._block_constants(block))
        j = step - block.start
        return tuple(None if v is None else v[j] for v in values)

    def _block_constants(self, block: _SampleBlock) -> dict[str, torch.Tensor]:
        """The learner's per-example pool constants of a block's examples, [count, R, m, ...] each (cached)."""
        if block.constants is None or block.constants[0] is not self.learner:
            index = block.index  # [count, R, m]
            n, gathered = self.problem.pool_size, {}
            for name, values in self.pool_constants().items():
                if not name.startswith("_") and values.shape[:2] in ((1, n), (index.shape[1], n)):
                    gathered[name] = _take(values, index)
            block.constants = (self.learner, gathered)
        return block.constants[1]

    def _draw_samples(self, step0: int, count: int) -> _SampleBlock:
        """The pool samples of steps step0 ... step0 + count - 1 as one block."""
        X, y = self.problem.X, self.problem.y
        n, m, R = self.problem.pool_size, self.batch_size, self.streams.runs
        if self.sampling == "sequential":
            index = (torch.arange(count * m) + step0 * m) % n
            index = index.reshape(count, 1, m).expand(count, R, m)
        else:
            index = self.streams.integers_block(SAMPLE_STREAM, step0, count, n, (m,)).transpose(0, 1).contiguous()
        index = index.to(X.device)  # [count, R, m]
        # [count, R, m, ...] written contiguously, so every step's slice is contiguous
        xs, ys = _take(X, index), _take(y, index)
        return _SampleBlock((X, y, m, self.sampling, self.streams), step0, index, xs, ys)


class _SampleBlock:
    """Pool samples for the steps start ... stop - 1: (index, x, y) of all of them, [count, R, ...] each, and
    one view of each per step on demand (``unbind`` would make every view up front, several times dearer
    per view than the one indexing call a step asks for)."""

    __slots__ = ("key", "start", "stop", "index", "x", "y", "constants", "derived")

    def __init__(self, key: tuple, start: int, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
        self.key, self.start, self.stop = key, start, start + index.shape[0]
        self.index, self.x, self.y = index, x, y
        self.constants: tuple | None = None  # (learner, name -> [count, R, m, ...]), see sample_constants
        self.derived: tuple | None = None  # (learner, key -> tuple), see sample_derived

    def key_matches(self, X, y, batch_size, sampling, streams) -> bool:
        """Whether the block was drawn for the same pool, batch size, sampling and streams (by identity)."""
        key = self.key
        return key[0] is X and key[1] is y and key[2] == batch_size and key[3] == sampling and key[4] is streams

    def holds(self, X, y, batch_size, sampling, streams, step: int) -> bool:
        """Whether the block has the samples of ``step`` for this configuration."""
        return self.start <= step < self.stop and self.key_matches(X, y, batch_size, sampling, streams)

    def step(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(index, x, y) of ``step``."""
        j = step - self.start
        return self.index[j], self.x[j], self.y[j]


def gather_pool(X: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``index`` [R, m] of a pool X [Rp, n, d], y [Rp, n(, K)] -> ([R, m, d], [R, m(, K)])."""
    return _take(X, index), _take(y, index)


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` [..., R, m] of per-example values [1 or R, n, ...] -> [..., R, m, ...] (one indexing call,
    written contiguously in the index's order)."""
    if values.shape[0] == 1:  # index_select: several times cheaper per call than advanced indexing
        return values[0].index_select(0, index.reshape(-1)).view(*index.shape, *values.shape[2:])
    runs = torch.arange(values.shape[0], device=index.device)[:, None]  # broadcast against [..., R, m]
    return values[runs, index]


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
        index, x, y = ctx.pool_sample(step)
        return TeachingBatch(x=x, y=y, index=index)

    def to_spec(self) -> dict:
        """The teacher's configuration as a JSON-able dict."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_spec().items() if k != "name")
        return f"{type(self).__name__}({args})"
