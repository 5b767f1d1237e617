"""Omniscient greedy example selection (IMT): the pool example that most reduces ||w - w*||.

References:
    Liu et al., "Iterative Machine Teaching", ICML 2017; LAST (Liu et al. 2021) Eq. (1).
"""

from __future__ import annotations

import torch

from .base import Teacher, TeachingBatch, TeachingContext, gather_pool

__all__ = ["IMTTeacher", "pool_scores", "select_examples"]


def pool_scores(ctx: TeachingContext, w: torch.Tensor) -> torch.Tensor:
    """eta^2 ||g_i||^2 - 2 eta <w - w*, g_i> for every pool example, [R, n], in one batched call."""
    X, y = ctx.pool()
    return ctx.learner.greedy_scores(w, ctx.w_star, X, y, ctx.lr)


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
        return select_examples(ctx, w)
