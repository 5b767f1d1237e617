"""Simulation ``mlp-digits35``: a two-layer ReLU MLP on digits 3 vs 5 taught by SGD, IMT, LAST (beta = 1) and mixed.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 10.
"""

from __future__ import annotations

from teachtheory import problems
from teachtheory.learners import MLP
from teachtheory.simulation import Setup, Simulation, register
from teachtheory.teachers.presets import mlp_teachers

from .common import TEACHING_MEMORY_PER_RUN_STEP

__all__ = ["DEFAULTS", "SETTINGS", "build_mlp_digits35"]

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
                        "w0": "He initialisation, independent of the target's"})


register(Simulation("mlp-digits35", "two-layer ReLU MLP on digits 3 vs 5: SGD, IMT, LAST (beta = 1), mixed",
                    "LAST Fig. 10", DEFAULTS, build_mlp_digits35,
                    memory_per_run_step=TEACHING_MEMORY_PER_RUN_STEP))
