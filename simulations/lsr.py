"""Simulation ``lsr``: linear regression taught by SGD, IMT, LAST (no constraint, r = 0.5, r = 2) and mixed teaching.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 7.
"""

from __future__ import annotations

from teachtheory import problems
from teachtheory.learners import LeastSquares
from teachtheory.simulation import Setup, Simulation, register
from teachtheory.teachers.presets import regression_teachers

__all__ = ["DEFAULTS", "SETTINGS", "build_lsr"]

SETTINGS = {"small": {"dim": 20, "pool": 200}, "full": {"dim": 50, "pool": 1000}}
DEFAULTS = {"small": {"runs": 32, "steps": 300}, "full": {"runs": 128, "steps": 1000}}


def build_lsr(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """x ~ N(0, I_d), y = <w_gen, x> + 0.1 N(0, 1) on a pool; w* the least-squares fit; lr = 0.5/d."""
    dim, pool = SETTINGS[scale]["dim"], SETTINGS[scale]["pool"]
    problem = problems.linear_regression(dim=dim, pool_size=pool, runs=runs, seed=seed, noise=0.1, test_size=0,
                                         device=device)
    lr = 0.5 / dim  # x ~ N(0, I_d) has ||x||^2 ~ d: SGD is stable and not too slow
    return Setup(problem, LeastSquares(dim), regression_teachers(), steps, lr, metrics=("distance", "loss"),
                 notes={"magnitude constraint": "|y - y_true| <= r (around the ground truth, p = 2)",
                        "data": "x ~ N(0, I_d), y = <w_gen, x> + 0.1 N(0,1); w* = least-squares fit on the pool"})


register(Simulation("lsr", "linear regression: SGD, IMT, LAST (NC, r=0.5, r=2), mixed", "LAST Fig. 7", DEFAULTS,
                    build_lsr))
