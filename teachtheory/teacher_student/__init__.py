"""Teacher-student ReLU networks, batched over runs: student specialization, alignment measurements, and
the population-gradient simulations of two-layer ReLU networks (:mod:`.population`).

References:
    Y. Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension",
    ICML 2020.
"""

# the public names are listed once, in each submodule's __all__
from . import analysis, population, training
from .analysis import *  # noqa: F403
from .population import *  # noqa: F403
from .training import *  # noqa: F403

__all__ = sorted([*analysis.__all__, *population.__all__, *training.__all__])
