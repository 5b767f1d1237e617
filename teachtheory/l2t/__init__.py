"""L2T-DLN (Hai et al., NeurIPS 2023): learning to teach with a dynamic loss network.

Students, the dynamic loss network, the coordinate-wise LSTM teacher, Algorithm 1 and the baselines,
all batched over runs; the networks are :mod:`teachtheory.nets` architectures (flat parameter vectors via
:func:`teachtheory.nets.flatten`) and hypergradients come from :mod:`teachtheory.unroll`.

References:
    Hai, Pan, Liu, Liu & Yunita, "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023.
"""

from .algorithm import L2TDLN, OPTIMIZERS, L2TConfig, train_fixed_loss
from .data import DigitsTask, load_digits_task
from .dln import DynamicLossNetwork
from .losses import BASELINES, get_loss
from .student import MLPStudent
from .teacher import LSTMTeacher, preprocess_gradient

__all__ = [
    "BASELINES",
    "L2TDLN",
    "OPTIMIZERS",
    "DigitsTask",
    "DynamicLossNetwork",
    "L2TConfig",
    "LSTMTeacher",
    "MLPStudent",
    "get_loss",
    "load_digits_task",
    "preprocess_gradient",
    "train_fixed_loss",
]
