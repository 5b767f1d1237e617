"""L2T-DLN (Hai et al., NeurIPS 2023): learning to teach with a dynamic loss network.

Students, the dynamic loss network, the coordinate-wise LSTM teacher, Algorithm 1 and the baselines,
all batched over runs; hypergradients come from :mod:`teachtheory.unroll`.

References:
    Hai, Pan, Liu, Liu & Yunita, "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023.
"""

from .algorithm import L2TDLN, OPTIMIZERS, L2TConfig, train_fixed_loss
from .data import DigitsTask, load_digits_task
from .dln import DynamicLossNetwork, flatten, unflatten
from .losses import BASELINES, get_loss
from .student import MLPStudent
from .teacher import LSTMTeacher, preprocess_gradient

__all__ = [
    "OPTIMIZERS", "L2TConfig", "L2TDLN", "train_fixed_loss", "DigitsTask", "load_digits_task", "DynamicLossNetwork",
    "flatten", "unflatten", "BASELINES", "get_loss", "MLPStudent", "LSTMTeacher", "preprocess_gradient",
]
