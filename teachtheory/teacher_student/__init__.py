"""Teacher-student ReLU networks, batched over runs: student specialization, alignment measurements, and
the population-gradient simulations of two-layer ReLU networks (:mod:`.population`).

References:
    Y. Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension",
    ICML 2020.
"""

from .analysis import (
    figure_alignment_over_time,
    figure_l_shape,
    figure_recovery_by_node,
    figure_sorted_best_corr,
    figure_symmetric_dynamics,
    l_shape_statistics,
    specialization_config,
)
from .population import (
    monte_carlo_init_in_omega,
    monte_carlo_population_gradient,
    monte_carlo_population_gradient_k,
    population_gradient_descent,
)
from .training import (
    AUGMENTATIONS,
    Network,
    TeacherStudentConfig,
    TeacherStudentResult,
    activation_correlations,
    fanout_strengths,
    final_correlations,
    forward,
    make_dataset,
    make_student_network,
    make_teacher_network,
    train_teacher_student,
    with_options,
)

__all__ = [
    "AUGMENTATIONS",
    "Network",
    "TeacherStudentConfig",
    "TeacherStudentResult",
    "activation_correlations",
    "fanout_strengths",
    "figure_alignment_over_time",
    "figure_l_shape",
    "figure_recovery_by_node",
    "figure_sorted_best_corr",
    "figure_symmetric_dynamics",
    "final_correlations",
    "forward",
    "l_shape_statistics",
    "make_dataset",
    "make_student_network",
    "make_teacher_network",
    "monte_carlo_init_in_omega",
    "monte_carlo_population_gradient",
    "monte_carlo_population_gradient_k",
    "population_gradient_descent",
    "specialization_config",
    "train_teacher_student",
    "with_options",
]
