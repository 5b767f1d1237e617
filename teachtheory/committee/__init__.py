"""Soft committee machines in the teacher-student setting: online SGD, batched over runs, and its
order-parameter process (the closed-form ODEs live in :mod:`teachtheory.theory.committee`).

References:
    D. Saad and S. A. Solla, "On-line learning in soft committee machines", Phys. Rev. E 52, 4225 (1995).
    S. Goldt, M. Advani, A. Saxe, F. Krzakala, L. Zdeborová, "Dynamics of stochastic gradient descent for
    two-layer neural networks in the teacher-student setup", NeurIPS 2019.
"""

from .online import *  # noqa: F401,F403
from .online import __all__  # noqa: F401
