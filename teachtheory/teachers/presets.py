"""The teacher line-ups of the papers' figures, shared by the simulations and the claims that test them.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 7 (linear regression),
    Fig. 8 (classification), Fig. 10 (two-layer MLP).
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Fig. 3 and Sec. 5.1.
"""

from __future__ import annotations

from .base import Teacher
from .dht import DHTTeacher
from .imt import IMTTeacher
from .last import LASTTeacher, MixedTeacher
from .sgd import RandomTeacher

__all__ = ["classification_teachers", "dht_fig3_teachers", "last_fig8_teachers", "mlp_teachers",
           "regression_teachers"]


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


def last_fig8_teachers() -> list[tuple[str, Teacher]]:
    """LAST Fig. 8 alone: SGD, IMT, LAST (one-hot = {-1, +1}, soft = [-1, 1], unconstrained) and mixed teaching on a
    +-1 logistic learner (the soft set is the two-class simplex (p, 1 - p) written as y = 2p - 1)."""
    return [pair for pair in classification_teachers("box:-2:2") if not pair[0].startswith("DHT")]


def dht_fig3_teachers(label_set: str = "nonneg+ball-origin:2", box: str = "global") -> list[tuple[str, Teacher]]:
    """DHT Fig. 3's six curves on a two-output softmax learner: SGD, IMT, DHT, and each with label synthesis
    ("+ label") in ``label_set`` (the paper: y >= 0, ||y||_2 <= 2); DHT's inputs in the ``box`` feasible set."""
    return [
        ("SGD", RandomTeacher()),
        ("IMT", IMTTeacher()),
        ("DHT", DHTTeacher(box=box)),
        ("SGD + label", LASTTeacher(label_set)),
        ("IMT + label", MixedTeacher(label_set)),
        ("DHT + label", DHTTeacher(synthesize=label_set, box=box)),
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
