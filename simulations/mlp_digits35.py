"""Simulation ``mlp-digits35``: a two-layer ReLU MLP on digits 3 vs 5 taught by SGD, IMT, LAST (beta = 1) and mixed.

Protocols: the toolkit's (default) and ``--preset liu2021`` (LAST Fig. 10 as the paper states it). The paper
fixes only LAST (beta = 1), a two-layer ReLU MLP and 3/5 digits; its soft labels are the simplex, its one-hot
labels the two basis vectors, and its unconstrained teacher any vector; the toolkit's setup already follows each,
so the two presets run the same teaching and differ in their record only. What the paper leaves open and the
toolkit chooses: the target (an MLP fitted by L-BFGS on the pool, a local minimum, not an independent
generating network), the data (8x8 digits projected to 24 dims, not MNIST) and lr 0.05.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 10.
"""

from __future__ import annotations

from teachtheory import problems
from teachtheory.learners import MLP
from teachtheory.simulation import Setup, Simulation, register
from teachtheory.teachers.presets import mlp_teachers

from .common import TEACHING_MEMORY_PER_RUN_STEP, teaching_preset

__all__ = ["DEFAULTS", "REFERENCE", "SETTINGS", "build_mlp_digits35"]

REFERENCE = "LAST Fig. 10, toolkit protocol (= liu2021: the paper fixes no more)"

SETTINGS = {"small": {"hidden": 16}, "full": {"hidden": 32}}
DEFAULTS = {"small": {"runs": 8, "steps": 300}, "full": {"runs": 32, "steps": 1000}}


def build_mlp_digits35(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """The target: an MLP fitted by L-BFGS on the pool (a local minimum); w0: He initialisation."""
    hidden = SETTINGS[scale]["hidden"]
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, learner="mlp", hidden=hidden, device=device,
                                init_scale=1.0)
    learner = MLP(problem.dim, hidden, 2)
    return Setup(problem, learner, mlp_teachers(beta=1.0), steps, lr=0.05, metrics=("distance", "test_accuracy"),
                 notes={"beta": 1.0, "target": "two-layer ReLU MLP trained by L-BFGS on the pool (a local minimum)",
                        "w0": "He initialisation, independent of the target's", "protocol": "toolkit = liu2021",
                        "labels": "one-hot = basis vectors, soft = simplex, NC = any vector (as the paper)"})


register(Simulation("mlp-digits35", "two-layer ReLU MLP on digits 3 vs 5: SGD, IMT, LAST (beta = 1), mixed",
                    REFERENCE, DEFAULTS, build_mlp_digits35,
                    memory_per_run_step=TEACHING_MEMORY_PER_RUN_STEP,
                    presets={"toolkit": teaching_preset("mlp-digits35", REFERENCE, build_mlp_digits35),
                             "liu2021": teaching_preset("mlp-digits35", "LAST Fig. 10, paper protocol (liu2021)",
                                                        build_mlp_digits35)},
                    preset_defaults={"toolkit": DEFAULTS, "liu2021": DEFAULTS}))
