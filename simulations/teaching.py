"""Teaching simulations of the LAST and DHT papers: SGD, IMT, LAST variants, mixed, DHT.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 7, 8, 10.
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Fig. 3.
"""

from __future__ import annotations

from teachtheory import problems
from teachtheory.learners import MLP, LeastSquares, Logistic
from teachtheory.simulation import Setup, Simulation, register
from teachtheory.teachers.presets import classification_teachers, mlp_teachers, regression_teachers

# metric histories of every teacher, kept while stacked and in the trajectories: (6 teachers x 2 metrics x 8 bytes)
# x 2 copies, with headroom
MEMORY_PER_RUN_STEP = 512


def _lsr(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    dim, pool = (20, 200) if scale == "small" else (50, 1000)
    problem = problems.linear_regression(dim=dim, pool_size=pool, runs=runs, seed=seed, noise=0.1, test_size=0,
                                         device=device)
    lr = 0.5 / dim  # x ~ N(0, I_d) has ||x||^2 ~ d: SGD is stable and not too slow
    return Setup(problem, LeastSquares(dim), regression_teachers(), steps, lr, metrics=("distance", "loss"),
                 notes={"magnitude constraint": "|y - y_true| <= r (around the ground truth, p = 2)",
                        "data": "x ~ N(0, I_d), y = <w_gen, x> + 0.1 N(0,1); w* = least-squares fit on the pool"})


def _moons(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    pool = 200 if scale == "small" else 1000
    problem = problems.moons(pool_size=pool, runs=runs, seed=seed, noise=0.1, test_size=500, device=device)
    return Setup(problem, Logistic(problem.dim), classification_teachers("box:-2:2"), steps, lr=0.1,
                 metrics=("distance", "test_accuracy"),
                 notes={"labels": "+-1; one-hot = {-1, +1}; soft = [-1, 1]; DHT + label: |y| <= 2",
                        "pool": "shared by all runs; runs differ in w0 and sampling"})


def _digits35(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, device=device)
    return Setup(problem, Logistic(problem.dim), classification_teachers("box:-2:2"), steps, lr=0.05,
                 metrics=("distance", "test_accuracy"),
                 notes={"data": "scikit-learn digits 3 vs 5, projected to 24 dims by a seeded Gaussian matrix",
                        "labels": "+-1; one-hot = {-1, +1}; soft = [-1, 1]; DHT + label: |y| <= 2"})


def _mlp_digits35(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    hidden = 16 if scale == "small" else 32
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, learner="mlp", hidden=hidden, device=device,
                                init_scale=1.0)
    learner = MLP(problem.dim, hidden, 2)
    return Setup(problem, learner, mlp_teachers(beta=1.0), steps, lr=0.05, metrics=("distance", "test_accuracy"),
                 notes={"beta": 1.0, "target": "two-layer ReLU MLP trained by L-BFGS on the pool (a local minimum)",
                        "w0": "He initialisation, independent of the target's"})


register(Simulation("lsr", "linear regression: SGD, IMT, LAST (NC, r=0.5, r=2), mixed",
                    "LAST Fig. 7", {"small": {"runs": 32, "steps": 300}, "full": {"runs": 128, "steps": 1000}}, _lsr,
                    memory_per_run_step=MEMORY_PER_RUN_STEP))
register(Simulation("moons", "logistic regression on half-moons: SGD, IMT, LAST variants, mixed, DHT",
                    "LAST Fig. 8 / DHT Fig. 3", {"small": {"runs": 16, "steps": 300}, "full": {"runs": 64, "steps": 1000}},
                    _moons, memory_per_run_step=MEMORY_PER_RUN_STEP))
register(Simulation("digits35", "logistic regression on digits 3 vs 5: SGD, IMT, LAST variants, mixed, DHT",
                    "LAST Fig. 8 / DHT Fig. 3", {"small": {"runs": 16, "steps": 300}, "full": {"runs": 64, "steps": 1000}},
                    _digits35, memory_per_run_step=MEMORY_PER_RUN_STEP))
register(Simulation("mlp-digits35", "two-layer ReLU MLP on digits 3 vs 5: SGD, IMT, LAST (beta = 1), mixed",
                    "LAST Fig. 10", {"small": {"runs": 8, "steps": 300}, "full": {"runs": 32, "steps": 1000}},
                    _mlp_digits35, memory_per_run_step=MEMORY_PER_RUN_STEP))
