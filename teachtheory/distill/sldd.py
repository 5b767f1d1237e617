r"""SLDD: soft-label dataset distillation (Sucholutsky & Schonlau, "Soft-Label Dataset Distillation and Text
Dataset Distillation", IJCNN 2021).

DD's bilevel problem with the labels learned too: each synthetic image carries a label distribution
(softmax of learned logits, started from its one-hot class) that the inner GD steps fit by cross-entropy,
so one image can speak for several classes. That allows **fewer images than classes**: with ``size`` = M < K
images, image i starts as the uniform mixture of the classes c with c mod M = i, and the learned labels
spread the classes over the images.

The paper's metrics: the M-sample distillation ratio :math:`r_M = 100\% \times` (accuracy after training on
the M distilled samples) / (accuracy after training on the original set), and the A% distillation size
:math:`d_A` = the smallest M whose ratio reaches A% (:func:`distillation_ratio`, :func:`distillation_size`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .data import DistillData
from .dd import _distil
from .synthetic import SyntheticSet

__all__ = ["distillation_ratio", "distillation_size", "sldd"]


def sldd(data: DistillData, ipc: int, *, steps: int = 300, seed: int = 0, progress=None, size: int | None = None,
         net: str = "convnet", width: int | None = 32, gd_steps: int = 1, epochs: int = 1, init: str = "random",
         runs: int = 4, image_init: str = "noise", batch_real: int = 256, lr_img: float = 0.01,
         lr_label: float = 0.05, lr_lr: float = 0.01, lr_init: float = 0.1, unroll: str = "reverse",
         checkpoint_every: int | None = None, **_) -> SyntheticSet:
    """Soft-label dataset distillation: images, label distributions and step sizes learned together.

    Args:
        size: the number of distilled images M (may be below the number of classes); default ``ipc`` per class.
        lr_label: Adam rate of the label logits. Others: as :func:`teachtheory.distill.dd.dd`.
    """
    if size is not None and gd_steps != 1:
        raise ValueError("size (a free number of images) needs gd_steps=1: the chunks follow classes")
    return _distil(data, ipc, "sldd", True, size, steps=steps, seed=seed, progress=progress, net=net, width=width,
                   gd_steps=gd_steps, epochs=epochs, init=init, runs=runs, image_init=image_init,
                   batch_real=batch_real, lr_img=lr_img, lr_lr=lr_lr, lr_init=lr_init, unroll=unroll,
                   checkpoint_every=checkpoint_every, lr_label=lr_label)


def distillation_ratio(accuracy: float, original: float) -> float:
    """The distillation ratio :math:`r_M` in percent: accuracy on M distilled samples over the original accuracy.

    Raises:
        ValueError: accuracies outside [0, 1] or a zero original accuracy.
    """
    for name, value in (("accuracy", accuracy), ("original", original)):
        if not (isinstance(value, (int, float)) and 0 <= value <= 1 and math.isfinite(value)):
            raise ValueError(f"{name} must be an accuracy in [0, 1], got {value!r}")
    if original == 0:
        raise ValueError("original accuracy must be positive")
    return 100.0 * accuracy / original


def distillation_size(sizes: Sequence[int], accuracies: Sequence[float], original: float, percent: float
                      ) -> int | None:
    """The A% distillation size :math:`d_A`: the smallest M among ``sizes`` whose ratio :math:`r_M` reaches
    ``percent``; None when none does.

    Raises:
        ValueError: sizes and accuracies of different lengths, or a percent outside (0, 100].
    """
    if len(sizes) != len(accuracies) or not sizes:
        raise ValueError(f"sizes and accuracies must be non-empty and of equal length, got {len(sizes)} and "
                         f"{len(accuracies)}")
    if not (isinstance(percent, (int, float)) and 0 < percent <= 100):
        raise ValueError(f"percent must be in (0, 100], got {percent!r}")
    reached = [m for m, a in sorted(zip(sizes, accuracies)) if distillation_ratio(a, original) >= percent]
    return int(reached[0]) if reached else None
