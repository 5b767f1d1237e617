"""Teaching policies: random (SGD), IMT, LAST, mixed, joint greedy, DHT, soft-label policies, theorem teachers."""

from __future__ import annotations

from .base import Teacher, TeachingBatch, TeachingContext
from .dht import DHTTeacher, ScalingMapTeacher
from .imt import IMTTeacher
from .last import JointGreedyLSRTeacher, LASTTeacher, MixedTeacher, synthesize_labels

# Learned teaching policies (LAST Sec. 4 and 7; DHT Sec. 3.3.1): training lives in teachers.training.
from .learned import LearnedTeacher, TeachingPolicy
from .policies import DistillationTeacher, LabelSmoothingTeacher, SelfTrainingTeacher
from .sgd import RandomTeacher
from .theorem import ArmijoTeacher, HessianTeacher, ScaledGradientTeacher

TEACHERS: dict[str, type[Teacher]] = {
    "sgd": RandomTeacher,
    "imt": IMTTeacher,
    "last": LASTTeacher,
    "mixed": MixedTeacher,
    "joint-greedy": JointGreedyLSRTeacher,
    "dht": DHTTeacher,
    "dht-scaling": ScalingMapTeacher,
    "distill": DistillationTeacher,
    "smooth": LabelSmoothingTeacher,
    "self-train": SelfTrainingTeacher,
    "scaled": ScaledGradientTeacher,
    "armijo": ArmijoTeacher,
    "hessian": HessianTeacher,
}


def make_teacher(name: str, **options) -> Teacher:
    """A teacher by name, e.g. ``make_teacher("last", constraint="ball:0.5")``."""
    if name not in TEACHERS:
        raise ValueError(f"teacher: unknown name {name!r}; accepted: {', '.join(TEACHERS)}")
    try:
        return TEACHERS[name](**options)
    except TypeError as exc:
        raise ValueError(f"teacher {name!r}: bad options {sorted(options)} ({exc})") from exc


__all__ = [
    "Teacher", "TeachingBatch", "TeachingContext", "TEACHERS", "make_teacher", "RandomTeacher", "IMTTeacher",
    "LASTTeacher", "MixedTeacher", "JointGreedyLSRTeacher", "DHTTeacher", "ScalingMapTeacher", "DistillationTeacher",
    "LabelSmoothingTeacher", "SelfTrainingTeacher", "ScaledGradientTeacher", "ArmijoTeacher", "HessianTeacher",
    "synthesize_labels", "LearnedTeacher", "TeachingPolicy",
]
