"""Adversarial samples in the teacher-student setting: oracle and data adversaries, standard, adversarial,
logit / label and confidence-calibrated training, and the in-plane / out-of-plane split of the student's
first-layer weights.

References:
    Yang, Chen, Cai, Chen, Li & Tian, "Understanding Robustness in Teacher-Student Setting: A New Perspective",
    AISTATS 2021.
    Madry et al., ICLR 2018 (PGD). Stutz, Hein & Schiele, ICML 2020 (CCAT).
"""

from .attacks import NORMS, data_adversary, logits, oracle_adversary, pgd, project
from .figures import figure_eps_traces, figure_robust_over_epochs, figure_sorted_best_nc, result_arrays
from .oracles import ImageOracle, cifar_arrays, cifar_oracle, digits_oracle, image_oracle, shift_images, train_on_image
from .training import (
    PLANES,
    REGIMES,
    TARGETS,
    AdversarialConfig,
    AdversarialResult,
    Oracle,
    attack_matrix,
    ccat_lambda,
    make_oracle,
    plane_decomposition,
    plane_projector,
    robust_accuracy,
    train_adversarial,
)

__all__ = [
    "NORMS", "PLANES", "REGIMES", "TARGETS", "AdversarialConfig", "AdversarialResult", "ImageOracle", "Oracle",
    "attack_matrix", "ccat_lambda", "cifar_arrays", "cifar_oracle", "data_adversary", "digits_oracle",
    "figure_eps_traces", "figure_robust_over_epochs", "figure_sorted_best_nc", "image_oracle", "logits", "make_oracle",
    "oracle_adversary", "pgd", "plane_decomposition", "plane_projector", "project", "result_arrays", "robust_accuracy",
    "shift_images", "train_adversarial", "train_on_image",
]
