"""
Alternating gradient descent escaping a strict saddle
=====================================================

The L2T-DLN analysis (Hai et al., NeurIPS 2023, Conclusion 1): near a strict saddle of the teacher-student
objective, perturbed alternating gradient descent leaves along the negative curvature. Distance from the
saddle over iterations for several step sizes.
"""

import matplotlib.pyplot as plt
import numpy as np

from teachtheory.l2t.saddle import perturbed_agd, saddle_hessian

H = saddle_hessian(6, 3, gamma=0.5, L=1.0, seed=0)  # one negative eigenvalue -gamma, the rest in (0, L]
fig, ax = plt.subplots(figsize=(5, 3.5))
for lr in (0.1, 0.3, 0.9):
    run = perturbed_agd(H, 3, lr, 300, 16, seed=0)
    ax.semilogy(np.arange(run["distance"].shape[1]), run["distance"].mean(0).numpy(), label=f"step {lr:g}")
ax.set_xlabel("iteration")
ax.set_ylabel("mean distance from the saddle (16 runs)")
ax.legend()
