"""Simulations ``moons`` and ``digits35``: logistic regression taught by SGD, IMT, the LAST variants, mixed teaching
and DHT, on half-moons and on scikit-learn's digits 3 vs 5.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 8.
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Fig. 3.
"""

from __future__ import annotations

from teachtheory import problems
from teachtheory.learners import Logistic
from teachtheory.problems import Problem
from teachtheory.simulation import Setup, Simulation, register
from teachtheory.teachers.presets import classification_teachers

from .common import TEACHING_MEMORY_PER_RUN_STEP

__all__ = ["DEFAULTS", "SETTINGS", "build_digits35", "build_moons"]

# per scale: the size of the moons pool (digits35 uses the whole data set at both scales)
SETTINGS = {"small": {"moons_pool": 200}, "full": {"moons_pool": 1000}}
DEFAULTS = {"small": {"runs": 16, "steps": 300}, "full": {"runs": 64, "steps": 1000}}
LABELS = "+-1; one-hot = {-1, +1}; soft = [-1, 1]; DHT + label: |y| <= 2"
REFERENCE = "LAST Fig. 8 / DHT Fig. 3"


def _setup(problem: Problem, steps: int, lr: float, notes: dict) -> Setup:
    """The teachers of both figures on a logistic learner (DHT and the soft labels in the box [-2, 2])."""
    return Setup(problem, Logistic(problem.dim), classification_teachers("box:-2:2"), steps, lr=lr,
                 metrics=("distance", "test_accuracy"), notes=notes)


def build_moons(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """Half-moons (noise 0.1), one pool shared by the runs, 500 test points."""
    problem = problems.moons(pool_size=SETTINGS[scale]["moons_pool"], runs=runs, seed=seed, noise=0.1, test_size=500,
                             device=device)
    return _setup(problem, steps, 0.1, {"labels": LABELS, "pool": "shared by all runs; runs differ in w0 and sampling"})


def build_digits35(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """Digits 3 vs 5, projected to 24 dimensions by a seeded Gaussian matrix."""
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, device=device)
    return _setup(problem, steps, 0.05,
                  {"data": "scikit-learn digits 3 vs 5, projected to 24 dims by a seeded Gaussian matrix",
                   "labels": LABELS})


register(Simulation("moons", "logistic regression on half-moons: SGD, IMT, LAST variants, mixed, DHT", REFERENCE,
                    DEFAULTS, build_moons,
                    memory_per_run_step=TEACHING_MEMORY_PER_RUN_STEP))
register(Simulation("digits35", "logistic regression on digits 3 vs 5: SGD, IMT, LAST variants, mixed, DHT", REFERENCE,
                    DEFAULTS, build_digits35,
                    memory_per_run_step=TEACHING_MEMORY_PER_RUN_STEP))
