"""Simulation ``lsr``: linear regression taught by SGD, IMT, LAST (no constraint, r = 0.5, r = 2) and mixed teaching.

Two protocols: the toolkit's own (default; w* the least-squares fit on the pool, which the teachers can reach
exactly) and ``--preset liu2021`` (the paper's Fig. 7 as printed: w* is the generating w of
y = <w*, x> + noise, so ||w_t - w*|| levels off at the fit's distance from it). Both centre the magnitude
constraint on the ground-truth label, ||y - y_true||_2 <= r (LAST Sec. 3.2 allows that or the current prediction;
the figure does not say which).

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 7.
"""

from __future__ import annotations

from teachtheory import problems
from teachtheory.learners import LeastSquares
from teachtheory.simulation import Setup, Simulation, register
from teachtheory.teachers.presets import regression_teachers

from .common import teaching_preset

__all__ = ["DEFAULTS", "LIU2021_REFERENCE", "REFERENCE", "SETTINGS", "build_lsr", "build_lsr_liu2021"]

REFERENCE = "LAST Fig. 7, toolkit protocol (fitted w*; --preset liu2021: the paper's)"
LIU2021_REFERENCE = "LAST Fig. 7, paper protocol (liu2021: generating w*)"

SETTINGS = {"small": {"dim": 20, "pool": 200}, "full": {"dim": 50, "pool": 1000}}
DEFAULTS = {"small": {"runs": 32, "steps": 300}, "full": {"runs": 128, "steps": 1000}}


def _build(scale: str, runs: int, steps: int, seed: int, device: str, target: str, protocol: str) -> Setup:
    dim, pool = SETTINGS[scale]["dim"], SETTINGS[scale]["pool"]
    problem = problems.linear_regression(dim=dim, pool_size=pool, runs=runs, seed=seed, noise=0.1, test_size=0,
                                         target=target, device=device)
    lr = 0.5 / dim  # x ~ N(0, I_d) has ||x||^2 ~ d: SGD is stable and not too slow
    w_star = "the least-squares fit on the pool" if target == "fitted" else "the generating w (the paper's)"
    return Setup(problem, LeastSquares(dim), regression_teachers(), steps, lr, metrics=("distance", "loss"),
                 notes={"protocol": protocol, "magnitude constraint": "|y - y_true| <= r (around the ground truth, "
                                                                      "p = 2)",
                        "data": f"x ~ N(0, I_d), y = <w_gen, x> + 0.1 N(0,1); w* = {w_star}"})


def build_lsr(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """x ~ N(0, I_d), y = <w_gen, x> + 0.1 N(0, 1) on a pool; w* the least-squares fit; lr = 0.5/d."""
    return _build(scale, runs, steps, seed, device, "fitted", "toolkit")


def build_lsr_liu2021(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """LAST Fig. 7 as printed: the same data, w* the generating w of y = <w*, x> + noise."""
    return _build(scale, runs, steps, seed, device, "given", "liu2021")


register(Simulation("lsr", "linear regression: SGD, IMT, LAST (NC, r=0.5, r=2), mixed", REFERENCE, DEFAULTS,
                    build_lsr,
                    presets={"toolkit": teaching_preset("lsr", REFERENCE, build_lsr),
                             "liu2021": teaching_preset("lsr", LIU2021_REFERENCE, build_lsr_liu2021)},
                    preset_defaults={"toolkit": DEFAULTS, "liu2021": DEFAULTS}))
