"""Soft-label training recipes as label-synthesis policies (LAST Sec. 3.1).

Each draws x uniformly from the pool (the same stream as SGD) and replaces the label:
knowledge distillation (a pretrained model's tempered softmax), label smoothing, self-training
(the learner's own prediction).

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 3.1.
"""

from __future__ import annotations

import torch

from .base import Teacher, TeachingBatch, TeachingContext

__all__ = ["DistillationTeacher", "LabelSmoothingTeacher", "SelfTrainingTeacher"]


def _soft_label(learner, w, x, temperature: float) -> torch.Tensor:
    """The model's prediction as a label, by the learner's ``label_kind``: tempered softmax for
    "probabilities", E[y] = tanh(m / (2T)) for "binary-logit", the regression output for "real".

    For the logistic learner the real-valued label enters log(1 + exp(-y m)) as a LAST label does
    (Sec. 3.4); that is not binary cross-entropy with a soft target p (whose gradient is
    (sigmoid(m) - p) x), only the same expected label."""
    z = learner.outputs(w, x)
    kind = learner.label_kind
    if kind == "binary-logit":
        return torch.tanh(z / (2.0 * temperature))
    if kind == "real":
        return z
    if kind == "probabilities":
        return torch.softmax(z / temperature, -1)
    raise ValueError(
        f"learner: label_kind {kind!r} has no soft label; accepted: 'real', 'binary-logit', 'probabilities'"
    )


class DistillationTeacher(Teacher):
    """Knowledge distillation: y = softmax(z(x) / psi) from a pretrained model.

    The pretrained model is the target w* (so this teacher is omniscient) unless ``teacher_w``
    [1 or R, p] is given.
    """

    name = "distill"

    def __init__(self, temperature: float = 1.0, teacher_w: torch.Tensor | None = None) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)
        self.teacher_w = teacher_w
        self.omniscient = teacher_w is None

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform inputs labelled with the pretrained teacher's soft labels at the temperature."""
        batch = self.sample_uniform(ctx, step)
        source = ctx.w_star if self.teacher_w is None else self.teacher_w.to(w)
        batch.y = _soft_label(ctx.learner, source.expand_as(w), batch.x, self.temperature)
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name, temperature and whether the teacher weights are the target or given."""
        return {"name": self.name, "temperature": self.temperature,
                "pretrained": "target" if self.teacher_w is None else "given"}


class LabelSmoothingTeacher(Teacher):
    """Label smoothing: y = mu y_true + (1 - mu)/K 1 (for +-1 labels: y = mu y_true)."""

    name = "smooth"

    def __init__(self, mu: float = 0.9) -> None:
        if not 0.0 <= mu <= 1.0:
            raise ValueError(f"mu must lie in [0, 1], got {mu}")
        self.mu = float(mu)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform samples with their labels smoothed by mu."""
        batch = self.sample_uniform(ctx, step)
        if batch.y.dim() == 2:
            batch.y = self.mu * batch.y
        else:
            batch.y = self.mu * batch.y + (1.0 - self.mu) / batch.y.shape[-1]
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name and mu."""
        return {"name": self.name, "mu": self.mu}


class SelfTrainingTeacher(Teacher):
    """Self-training: the learner's own current prediction as the label (soft or hard)."""

    name = "self-train"

    def __init__(self, hard: bool = False) -> None:
        self.hard = bool(hard)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform inputs labelled with the learner's own current (soft or hard) prediction."""
        batch = self.sample_uniform(ctx, step)
        learner = ctx.learner
        if self.hard and learner.classification:
            pred = learner.predict_labels(w, batch.x)
            # {-1, +1} predictions are labels already; class indices become one-hot labels.
            one_hot = learner.label_kind == "probabilities"
            batch.y = torch.nn.functional.one_hot(pred, learner.output_dim).to(w.dtype) if one_hot else pred
        else:
            batch.y = _soft_label(learner, w, batch.x, 1.0)
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name and whether labels are hard."""
        return {"name": self.name, "hard": self.hard}
