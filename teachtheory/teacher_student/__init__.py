"""Teacher-student ReLU networks, batched over runs: student specialization, alignment measurements.

References:
    Y. Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension",
    ICML 2020.
"""

from .analysis import __all__ as _analysis_all
from .analysis import (  # noqa: F401
    figure_alignment_over_time,
    figure_l_shape,
    figure_recovery_by_node,
    figure_sorted_best_corr,
    figure_symmetric_dynamics,
    l_shape_statistics,
    specialization_config,
)
from .training import *  # noqa: F401,F403
from .training import __all__ as _training_all

__all__ = [*_training_all, *_analysis_all]
