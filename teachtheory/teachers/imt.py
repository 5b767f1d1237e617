"""Omniscient greedy example selection (IMT): the pool example that most reduces ||w - w*||.

References:
    Liu et al., "Iterative Machine Teaching", ICML 2017; LAST (Liu et al. 2021) Eq. (1).
"""

from __future__ import annotations

import torch

from ..learners import Learner
from ..theory.last import greedy_score, greedy_score_linear, residual_objective, residual_quadratic
from .base import Teacher, TeachingBatch, TeachingContext, gather_pool

__all__ = ["IMTTeacher", "example_scores", "pool_scores", "scores_along", "select_examples"]


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
    r = learner.residual_(jac.z, learner.label_vector(y) if y_vector is None else y_vector)  # z is ours
    if len(jac.jvp) == 1:
        (jvp,), (gram,) = jac.jvp.values(), jac.gram.values()
        if gram.dim() < r.dim():
            # One block with J J^T = ||x||^2 I (linear learners): the fused closed form per output.
            score = _linear_scores(r, jvp, gram, lr, constants)
            return score[..., 0] if score.shape[-1] == 1 else score.sum(-1)
    A, b = residual_quadratic(list(jac.jvp.values()), list(jac.gram.values()), lr)
    return residual_objective(r, A, b)


def _linear_scores(r: torch.Tensor, jvp: torch.Tensor, gram: torch.Tensor, lr: float,
                   constants: dict | None) -> torch.Tensor:
    """:func:`~teachtheory.theory.last.greedy_score_linear` (r, jvp, gram[..., None], lr), jvp overwritten, with
    its constants of the pool and lr (eta^2 ||x||^2 and -2 eta as a 0-dim tensor) made once and kept in
    ``constants`` (the pool constants that hold ``gram``): the same operations on the same numbers, without
    a pass over the pool and two scalar conversions at every step."""
    if (constants is None or constants.get("sqnorm") is not gram or type(lr) is not float
            or (torch.is_grad_enabled() and (r.requires_grad or jvp.requires_grad or gram.requires_grad))):
        return greedy_score_linear(r, jvp, gram[..., None], lr)
    cached = constants.get("_linear_score")
    if cached is None or cached[0] != lr:
        # a Python float multiplies a tensor as its value rounded to the tensor's dtype: so does this scalar
        minus_two_lr = torch.tensor(-2.0 * lr, dtype=jvp.dtype)
        constants["_linear_score"] = cached = (lr, gram[..., None] * (lr * lr), minus_two_lr)
    _, a, minus_two_lr = cached
    return jvp.mul_(minus_two_lr).addcmul_(r, a).mul_(r)


def pool_scores(ctx: TeachingContext, w: torch.Tensor) -> torch.Tensor:
    """eta^2 ||g_i||^2 - 2 eta <w - w*, g_i> for every pool example, [R, n], in one batched call."""
    X, y = ctx.pool()
    return example_scores(ctx.learner, w, ctx.w_star, X, y, ctx.lr, ctx.pool_constants())


def select_examples(ctx: TeachingContext, w: torch.Tensor) -> TeachingBatch:
    """The batch_size pool examples with the lowest scores (each scored for a single step)."""
    scores = pool_scores(ctx, w)
    if ctx.batch_size == 1:  # min over a dim is several times faster than topk on CPU
        index = scores.min(-1, keepdim=True).indices
    else:
        index = torch.topk(scores, ctx.batch_size, dim=-1, largest=False).indices
    x, y = gather_pool(*ctx.pool(), index)
    return TeachingBatch(x=x, y=y, index=index)


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
