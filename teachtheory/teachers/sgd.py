"""The random teacher: examples drawn uniformly from the pool with their true labels (SGD)."""

from __future__ import annotations

import torch

from .base import Teacher, TeachingBatch, TeachingContext

__all__ = ["RandomTeacher"]


class RandomTeacher(Teacher):
    """SGD: m examples uniformly with replacement, true labels. Not omniscient."""

    name = "sgd"

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """A batch drawn uniformly from the pool, labels unchanged."""
        return self.sample_uniform(ctx, step)
