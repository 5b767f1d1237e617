"""Omniscient greedy example selection (IMT): the pool example that most reduces ||w - w*||.

References:
    Liu et al., "Iterative Machine Teaching", ICML 2017; LAST (Liu et al. 2021) Eq. (1).
"""

from __future__ import annotations

import torch

from ..learners import Learner
from ..learners.base import binary_softmax_residual
from ..learners.linear import LinearLearner
from ..theory.last import greedy_score, greedy_score_linear, residual_objective, residual_quadratic
from .base import Teacher, TeachingBatch, TeachingContext, gather_pool

__all__ = ["IMTTeacher", "example_scores", "pool_scores", "scores_along", "select_examples"]

SCORE_GROUP_BYTES = 1 << 21  # select_examples: outputs of a group of runs scored at once (about one core's L2)
SCORE_GROUP_MIN_RUNS = 32  # ... unless fewer runs than this would fit: then all runs at once
SUM_BY_ADDS = 4  # _sum_outputs: up to this many outputs by additions in class order, the numbers of sum(-1)


def example_scores(
    learner: Learner, w: torch.Tensor, w_star: torch.Tensor, X: torch.Tensor, y: torch.Tensor, lr: float,
    constants: dict | None = None,
) -> torch.Tensor:
    """IMT's score eta^2 ||g_i||^2 - 2 eta <w - w*, g_i> of every example (x_i, y_i), [R, n].

    Built from the learner's output Jacobian (J e and J J^T, with e = w - w*) and residual r: the
    closed forms of :mod:`teachtheory.theory.last`. ``constants`` are the learner's pool constants of X
    (see :meth:`TeachingContext.pool_constants`). Learners without a factored Jacobian fall back to
    their per-example gradients.

    References: LAST Eq. (1); IMT (Liu et al. 2017).
    """
    return scores_along(learner, w, w - w_star, X, y, lr, constants)


def scores_along(
    learner: Learner, w: torch.Tensor, e: torch.Tensor, X: torch.Tensor, y: torch.Tensor, lr: float,
    constants: dict | None = None, y_vector: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`example_scores` with the direction e = w - w* given (and the labels in vector form, when the
    caller has them): for a caller that scores many candidate sets against the same w, e.g. DHT's search."""
    try:
        jac = learner.output_jacobian(w, X, e, constants)
    except NotImplementedError:
        inner, sqnorm = learner.grad_stats(w, e, X, y)
        return greedy_score(inner, sqnorm, lr)
    y_vector = learner.label_vector(y) if y_vector is None else y_vector
    if _binary_softmax(learner, jac):
        return _binary_softmax_scores(jac, y_vector, lr, constants)
    r = learner.residual_(jac.z, y_vector)  # z is ours
    if len(jac.jvp) == 1:
        (jvp,), (gram,) = jac.jvp.values(), jac.gram.values()
        if gram.dim() < r.dim():
            # One block with J J^T = ||x||^2 I (linear learners): the fused closed form per output.
            score = _linear_scores(r, jvp, gram, lr, constants)
            return score[..., 0] if score.shape[-1] == 1 else _sum_outputs(score)
    A, b = residual_quadratic(list(jac.jvp.values()), list(jac.gram.values()), lr)
    return residual_objective(r, A, b)


def _binary_softmax(learner: Learner, jac) -> bool:
    """True for a two-class softmax learner with one linear block (J J^T = ||x||^2 I) outside autograd."""
    if learner.label_kind != "probabilities" or learner.output_dim != 2 or len(jac.jvp) != 1:
        return False
    (jvp,), (gram,) = jac.jvp.values(), jac.gram.values()
    return gram.dim() < jac.z.dim() and not (torch.is_grad_enabled() and (
        jac.z.requires_grad or jvp.requires_grad or gram.requires_grad))


def _binary_softmax_scores(jac, y: torch.Tensor, lr: float, constants: dict | None) -> torch.Tensor:
    """IMT's score for a two-class softmax learner, [R, n]: with r_0 = -r_1
    (:func:`~teachtheory.learners.base.binary_softmax_residual`) the sum over the two outputs of
    r_k (eta^2 ||x||^2 r_k - 2 eta (E^T x)_k) is :func:`~teachtheory.theory.last.greedy_score_linear` of one output,
    r_1 with (E^T x)_1 - (E^T x)_0 and 2 ||x||^2. Why: the same score from about a third of the passes over the
    outputs (no exponentials, no normalisation, one output instead of two)."""
    (jvp,), (gram,) = jac.jvp.values(), jac.gram.values()
    inner = torch.sub(jvp[..., 1], jvp[..., 0])
    return _linear_scores(binary_softmax_residual(jac.z, y), inner, gram, lr, constants, folded_outputs=2)


def _linear_scores(r: torch.Tensor, jvp: torch.Tensor, gram: torch.Tensor, lr: float,
                   constants: dict | None, folded_outputs: int = 1) -> torch.Tensor:
    """:func:`~teachtheory.theory.last.greedy_score_linear` (r, jvp, gram[..., None], lr), jvp overwritten, with
    its constants of the pool and lr (eta^2 ||x||^2 and -2 eta as a 0-dim tensor) made once and kept in
    ``constants`` (the pool constants that hold ``gram``): the same operations on the same numbers, without
    a pass over the pool and two scalar conversions at every step.

    ``folded_outputs`` = 2: r and jvp are [R, n], the two outputs of a two-class softmax folded into one
    (:func:`_binary_softmax_scores`), whose squared gradient norm is 2 ||x||^2 r^2.
    """
    def sqnorm() -> torch.Tensor:
        return gram[..., None] if folded_outputs == 1 else folded_outputs * gram

    if (constants is None or constants.get("sqnorm") is not gram or type(lr) is not float
            or (torch.is_grad_enabled() and (r.requires_grad or jvp.requires_grad or gram.requires_grad))):
        return greedy_score_linear(r, jvp, sqnorm(), lr)
    key = "_linear_score" if folded_outputs == 1 else f"_linear_score_folded{folded_outputs}"
    cached = constants.get(key)
    if cached is None or cached[0] != lr:
        # a Python float multiplies a tensor as its value rounded to the tensor's dtype: so does this scalar
        minus_two_lr = torch.tensor(-2.0 * lr, dtype=jvp.dtype)
        constants[key] = cached = (lr, sqnorm() * (lr * lr), minus_two_lr)
    _, a, minus_two_lr = cached
    return jvp.mul_(minus_two_lr).addcmul_(r, a).mul_(r)


def _sum_outputs(score: torch.Tensor) -> torch.Tensor:
    """score [..., n, K] summed over its outputs: in the class-major layout of the shared-pool product by K - 1
    additions of contiguous [..., n] rows, in class order (``sum(-1)`` there first zero-fills its result and
    then adds every class, one pass more over the runs)."""
    rows = score.transpose(-1, -2)
    if score.shape[-1] > SUM_BY_ADDS or not rows.is_contiguous() or (torch.is_grad_enabled() and score.requires_grad):
        return score.sum(-1)
    total = rows[..., 0, :] + rows[..., 1, :]
    for k in range(2, rows.shape[-2]):
        total += rows[..., k, :]
    return total


def pool_scores(ctx: TeachingContext, w: torch.Tensor) -> torch.Tensor:
    """eta^2 ||g_i||^2 - 2 eta <w - w*, g_i> for every pool example, [R, n], in one batched call."""
    X, y = ctx.pool()
    return scores_along(ctx.learner, w, ctx.direction(w), X, y, ctx.lr, ctx.pool_constants())


def select_examples(ctx: TeachingContext, w: torch.Tensor) -> TeachingBatch:
    """The batch_size pool examples with the lowest scores (each scored for a single step).

    Many runs on a shared CPU pool are scored a group of runs at a time (:func:`_run_group`): every run's
    scores are its own (one row of each product), and the group's outputs stay in the cache between the
    product and the passes that follow it instead of streaming through memory at every pass.
    """
    X, y = ctx.pool()
    R = w.shape[0]
    group = _run_group(ctx, w)
    if group >= R:
        index = _best(pool_scores(ctx, w), ctx.batch_size)
    else:
        constants, w_star = ctx.pool_constants(), ctx.w_star
        index = torch.cat([
            _best(example_scores(ctx.learner, w[i:i + group], w_star if w_star.shape[0] == 1 else w_star[i:i + group],
                                 X, y, ctx.lr, constants), ctx.batch_size)
            for i in range(0, R, group)])
    x, y = gather_pool(X, y, index)
    return TeachingBatch(x=x, y=y, index=index)


def _best(scores: torch.Tensor, m: int) -> torch.Tensor:
    """Indices [R, m] of the m lowest scores of every run."""
    if m == 1:  # min over a dim is several times faster than topk on CPU
        return scores.min(-1, keepdim=True).indices
    return torch.topk(scores, m, dim=-1, largest=False).indices


def _run_group(ctx: TeachingContext, w: torch.Tensor) -> int:
    """How many runs :func:`select_examples` scores at once: all of them, but for a shared pool on the CPU and a
    linear learner, as many as keep the group's outputs within about SCORE_GROUP_BYTES (if that is at least
    SCORE_GROUP_MIN_RUNS runs)."""
    R = w.shape[0]
    if R <= SCORE_GROUP_MIN_RUNS:  # a group is never smaller than that: all at once
        return R
    X, y = ctx.pool()
    if (X.shape[0] != 1 or y.shape[0] != 1 or X.device.type != "cpu"
            or not isinstance(ctx.learner, LinearLearner)):
        return R
    per_run = 2 * ctx.learner.output_dim * X.shape[1] * X.element_size()  # z and J e of one run
    group = SCORE_GROUP_BYTES // per_run
    # Few runs a group: the products get too thin and the calls too many to gain (a softmax pool of 2,000
    # examples, R = 256: groups of 8 runs took 1.5x as long as all at once, of 16 1.1x, of 32 0.85x), so a
    # large pool is scored all at once.
    return group if group >= SCORE_GROUP_MIN_RUNS else R


class IMTTeacher(Teacher):
    """IMT omniscient greedy teacher: the whole pool is scored with true labels at every step.

    With batch_size m > 1 the m individually best examples are taken (a common approximation
    of the joint selection).
    """

    name = "imt"
    omniscient = True

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """The pool example(s) with the lowest score, with their true labels."""
        return select_examples(ctx, w)
