"""L2T-DLN (Hai et al., NeurIPS 2023): learning to teach with a dynamic loss network.

Students, the dynamic loss network, the coordinate-wise LSTM teacher, Algorithm 1, the baselines (fixed losses
and L2T-DLF, :mod:`.dlf`) and the named protocols (:mod:`.protocol`: the paper text, the authors' code, ours),
all batched over runs; the networks are :mod:`teachtheory.nets` architectures (flat parameter vectors via
:func:`teachtheory.nets.flatten`) and hypergradients come from :mod:`teachtheory.unroll`.

References:
    Hai, Pan, Liu, Liu & Yunita, "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023.
"""

from .algorithm import L2TDLN, OPTIMIZERS, RESPLITS, STAGE3, L2TConfig, train_fixed_loss
from .data import DigitsTask, load_digits_task
from .dlf import L2TDLF, DLFConfig, dlf_loss
from .dln import DynamicLossNetwork
from .losses import BASELINES, get_loss
from .protocol import PROTOCOLS, Job, diagnostics, make_task, run_job
from .student import MLPStudent
from .teacher import LSTMTeacher, preprocess_gradient

__all__ = [
    "BASELINES",
    "DLFConfig",
    "L2TDLF",
    "L2TDLN",
    "OPTIMIZERS",
    "PROTOCOLS",
    "RESPLITS",
    "STAGE3",
    "DigitsTask",
    "Job",
    "DynamicLossNetwork",
    "L2TConfig",
    "LSTMTeacher",
    "MLPStudent",
    "diagnostics",
    "dlf_loss",
    "get_loss",
    "load_digits_task",
    "make_task",
    "preprocess_gradient",
    "run_job",
    "train_fixed_loss",
]
