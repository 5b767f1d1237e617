"""
Data hallucination on half-moons (logistic regression)
======================================================

DHT Fig. 3 / LAST Fig. 8 at small scale (Qiu, Liu et al., AISTATS 2023): SGD, IMT, LAST with several
label sets, mixed teaching and data hallucination teaching, 4 runs sharing one pool.
"""

import teachtheory as tt
from teachtheory.learners import Logistic
from teachtheory.plotting import convergence_figure
from teachtheory.teachers.presets import classification_teachers

problem = tt.problems.moons(pool_size=100, runs=4, seed=0, noise=0.1, test_size=300)
learner = Logistic(problem.dim)
trajectories = {name: tt.teach(problem, learner, teacher, steps=100, lr=0.1)
                for name, teacher in classification_teachers("box:-2:2")}
fig = convergence_figure(trajectories, ("distance", "test_accuracy"), title="half-moons (small scale)")
