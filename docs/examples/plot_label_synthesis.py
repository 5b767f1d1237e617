"""
Label synthesis against SGD and IMT (linear regression)
=======================================================

LAST Fig. 7 at small scale (Liu et al., NeurIPS 2021): the omniscient IMT teacher picks the best pool
example, LAST keeps a random example and synthesises its label, mixed teaching does both. 16 runs,
mean with a band of one standard error.
"""

import teachtheory as tt
from teachtheory.learners import LeastSquares
from teachtheory.plotting import convergence_figure
from teachtheory.teachers.presets import regression_teachers

problem = tt.problems.linear_regression(dim=20, pool_size=200, runs=16, seed=0, noise=0.1)
learner = LeastSquares(20)
trajectories = {name: tt.teach(problem, learner, teacher, steps=300, lr=0.5 / 20)
                for name, teacher in regression_teachers()}
fig = convergence_figure(trajectories, ("distance", "loss"), title="LAST Fig. 7 (small scale)")
