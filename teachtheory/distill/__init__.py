"""Dataset distillation: a teacher writes a small synthetic training set once, and fresh networks learn from it.

* :mod:`~teachtheory.distill.data`: digits, MNIST-1D, MNIST / Fashion-MNIST / CIFAR from files, normalised.
* :mod:`~teachtheory.distill.nets`: the ConvNet and MLP, batched over R parameter sets.
* :mod:`~teachtheory.distill.evaluate`: the evaluation protocol (R networks trained at once).
* :mod:`~teachtheory.distill.augment`: differentiable siamese augmentation (DSA).
* :mod:`~teachtheory.distill.kernels`: NNGP/NTK arc-cosine kernels, kernel ridge regression, Label Solve.
* distillers: :mod:`~teachtheory.distill.baselines` (random, herding, k-means, full),
  :mod:`~teachtheory.distill.dm`, :mod:`~teachtheory.distill.kip`, :mod:`~teachtheory.distill.dc` (DC, DSA),
  :mod:`~teachtheory.distill.mtt`; all behind :func:`distill`.
"""

from .api import BASELINES, LEARNED, METHODS, distill
from .data import DATASETS, DistillData, load_dataset
from .evaluate import EvalResult, evaluate, evaluate_full
from .nets import NetSpec, make_net
from .synthetic import SyntheticSet

__all__ = [
           "BASELINES",
           "DATASETS",
           "LEARNED",
           "METHODS",
           "DistillData",
           "EvalResult",
           "NetSpec",
           "SyntheticSet",
           "distill",
           "evaluate",
           "evaluate_full",
           "load_dataset",
           "make_net",
]
