"""
Soft committee machines: online SGD against the Saad-Solla ODEs
================================================================

The generalisation error of online SGD for a K=2 student learning an M=2 teacher (Saad & Solla, Phys.
Rev. E 1995), simulated at N=300 over 8 runs, against the order-parameter ODEs integrated by scipy.
"""

import matplotlib.pyplot as plt
import numpy as np

from teachtheory.committee import ode_check_problem, simulate_sgd
from teachtheory.committee.figures import plot_eps_dynamics

problem = ode_check_problem()
alphas = np.linspace(0.0, 10.0, 41)
record = simulate_sgd(problem, 300, alphas, runs=8, seed=0)
ode = problem.ode(alphas)
fig, ax = plt.subplots(figsize=(5, 3.5))
plot_eps_dynamics(ax, ode, record)
ax.set_title("online SGD (N=300, 8 runs) and the ODE")
