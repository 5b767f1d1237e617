"""The teacher line-ups of the papers' figures, shared by the simulations and the claims that test them.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 7 (linear regression),
    Fig. 8 (classification), Fig. 10 (two-layer MLP).
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Fig. 3.
"""

from __future__ import annotations

from .base import Teacher
from .dht import DHTTeacher
from .imt import IMTTeacher
from .last import LASTTeacher, MixedTeacher
from .sgd import RandomTeacher

__all__ = ["regression_teachers", "classification_teachers", "mlp_teachers"]


def regression_teachers() -> list[tuple[str, Teacher]]:
    """LAST Fig. 7: SGD, IMT, LAST unconstrained and with |y - y_true| <= r for r = 0.5, 2, and mixed teaching."""
    return [
        ("SGD", RandomTeacher()),
        ("IMT", IMTTeacher()),
        ("LAST (NC)", LASTTeacher()),
        ("LAST (r=0.5)", LASTTeacher("ball-truth:0.5")),
        ("LAST (r=2)", LASTTeacher("ball-truth:2")),
        ("Mixed", MixedTeacher()),
    ]


def classification_teachers(magnitude: str) -> list[tuple[str, Teacher]]:
    """LAST Fig. 8 / DHT Fig. 3: SGD, IMT, LAST (one-hot, soft, unconstrained), mixed, DHT, and DHT with
    label synthesis in the label set ``magnitude`` (a label-set spec such as ``box:-2:2``)."""
    return [
        ("SGD", RandomTeacher()),
        ("IMT", IMTTeacher()),
        ("LAST (one-hot)", LASTTeacher("signs")),
        ("LAST (soft)", LASTTeacher("box:-1:1")),
        ("LAST (NC)", LASTTeacher()),
        ("Mixed", MixedTeacher()),
        ("DHT", DHTTeacher()),
        ("DHT + label", DHTTeacher(synthesize=magnitude)),
    ]


def mlp_teachers(beta: float = 1.0) -> list[tuple[str, Teacher]]:
    """LAST Fig. 10: SGD, IMT, LAST (one-hot, soft = simplex, unconstrained) and mixed, with weight ``beta``."""
    return [
        ("SGD", RandomTeacher()),
        ("IMT", IMTTeacher()),
        ("LAST (one-hot)", LASTTeacher("onehot", beta=beta)),
        ("LAST (soft)", LASTTeacher("simplex", beta=beta)),
        ("LAST (NC)", LASTTeacher(beta=beta)),
        ("Mixed", MixedTeacher(beta=beta)),
    ]
