"""Learners: models with per-example loss and gradient, batched over runs, and update rules."""

from .base import LABEL_KINDS, Learner, OutputJacobian, SoftmaxClassifier
from .linear import LeastSquares, Logistic, Softmax
from .mlp import MLP
from .updates import SGD, Adam, Momentum, UpdateRule, make_update_rule

__all__ = [
    "Learner", "OutputJacobian", "LABEL_KINDS", "SoftmaxClassifier", "LeastSquares", "Logistic", "Softmax", "MLP",
    "UpdateRule", "SGD", "Momentum", "Adam", "make_update_rule",
]
