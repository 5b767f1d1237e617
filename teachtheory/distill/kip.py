"""KIP (kernel inducing points) and Label Solve (Nguyen, Chen & Lee, ICLR 2021).

KIP learns a support set (images, optionally labels) by minimising the kernel ridge regression loss
of a target batch drawn from the real training set, with the NNGP or NTK of a fully connected ReLU
network (:mod:`teachtheory.distill.kernels`) and Adam. Labels start as mean-centred one-hot vectors
and the set is trained with the squared error (``label_loss="mse"``), as KRR and the paper's finite
networks are. Label Solve keeps a support set fixed (random real images by default) and replaces its
labels by the closed-form minimiser of the same loss over the whole training set.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .baselines import descend, real_init
from .data import DistillData
from .kernels import (
    DEFAULT_REG,
    DEFAULT_SIGMA_B2,
    DEFAULT_SIGMA_W2,
    KERNELS,
    krr_loss,
    krr_predict,
    label_solve,
    relu_kernels,
)
from .synthetic import SyntheticSet

__all__ = ["centred_one_hot", "kip", "krr_accuracy", "label_solve_method"]


def centred_one_hot(labels: torch.Tensor, K: int) -> torch.Tensor:
    """One-hot rows minus 1/K (KIP's regression targets)."""
    return torch.nn.functional.one_hot(labels, K).double() - 1.0 / K


def _kernel(kind: str, depth: int, sigma_w2: float, sigma_b2: float) -> Callable:
    if kind not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}; got {kind!r}")
    index = KERNELS.index(kind)
    return lambda a, b=None: relu_kernels(a, b, depth=depth, sigma_w2=sigma_w2, sigma_b2=sigma_b2)[index]


def kip(data: DistillData, ipc: int, *, steps: int = 500, seed: int = 0, progress=None, kernel: str = "ntk",
        depth: int = 2, lr: float = 0.01, target_batch: int = 1024, reg: float = DEFAULT_REG,
        learn_labels: bool = False, sigma_w2: float = DEFAULT_SIGMA_W2, sigma_b2: float = DEFAULT_SIGMA_B2,
        **_) -> SyntheticSet:
    """KIP: Adam on the support images (and labels with ``learn_labels``) against the KRR loss of random target batches.

    Args:
        kernel: ``ntk`` or ``nngp``; depth: hidden layers of the fully connected ReLU network.
        lr: Adam's step size; target_batch: real images per step (the whole set if smaller).
        reg: the relative ridge regulariser (lambda = reg tr(K_ss)/M).
    """
    k_fn = _kernel(kernel, depth, sigma_w2, sigma_b2)
    gen = torch.Generator().manual_seed(seed)
    images, hard = real_init(data, ipc, gen)
    K = data.num_classes
    support = images.double().requires_grad_(True)
    labels = centred_one_hot(hard, K).requires_grad_(learn_labels)
    opt = torch.optim.Adam([support, labels] if learn_labels else [support], lr=lr)
    N = data.x_train.shape[0]
    targets_all = centred_one_hot(data.y_train, K)
    curve = []
    for step in range(steps):
        idx = torch.randperm(N, generator=gen)[:min(target_batch, N)].to(data.x_train.device)
        x_t, y_t = data.x_train[idx].double(), targets_all[idx]
        loss = krr_loss(k_fn(x_t, support), k_fn(support), labels, y_t, reg)
        descend(opt, loss, curve, progress, step, steps)
    settings = {"seed": seed, "steps": steps, "kernel": kernel, "depth": depth, "lr": lr, "target_batch": target_batch,
                "reg": reg, "learn_labels": learn_labels, "sigma_w2": sigma_w2, "sigma_b2": sigma_b2,
                "loss_curve": curve, "loss_name": "KRR loss on a target batch"}
    return SyntheticSet(support.detach().float(), labels.detach().float(), K, "kip", data.name, ipc,
                        label_loss="mse", provenance=settings)


def label_solve_method(data: DistillData, ipc: int, *, seed: int = 0, progress=None, kernel: str = "ntk",
                       depth: int = 2, reg: float = DEFAULT_REG, sigma_w2: float = DEFAULT_SIGMA_W2,
                       sigma_b2: float = DEFAULT_SIGMA_B2, support: SyntheticSet | None = None, **_) -> SyntheticSet:
    """Label Solve: closed-form KRR-optimal labels for ``ipc`` random real images per class (or a given support set)."""
    k_fn = _kernel(kernel, depth, sigma_w2, sigma_b2)
    if support is None:
        images, _ = real_init(data, ipc, torch.Generator().manual_seed(seed))
    else:
        images = support.images
    x = images.double()
    y = label_solve(k_fn(data.x_train.double(), x), k_fn(x), centred_one_hot(data.y_train, data.num_classes), reg)
    if progress is not None:
        progress(1, 1)
    return SyntheticSet(images.float(), y.float(), data.num_classes, "label-solve", data.name, ipc, label_loss="mse",
                        provenance={"seed": seed, "kernel": kernel, "depth": depth, "reg": reg,
                                    "support": "random real" if support is None else support.method})


@torch.no_grad()
def krr_accuracy(syn: SyntheticSet, data: DistillData, *, kernel: str = "ntk", depth: int = 2,
                 reg: float = DEFAULT_REG, sigma_w2: float = DEFAULT_SIGMA_W2,
                 sigma_b2: float = DEFAULT_SIGMA_B2) -> float:
    """Test accuracy of kernel ridge regression trained on ``syn`` (labels as vectors; hard labels one-hot, centred)."""
    k_fn = _kernel(kernel, depth, sigma_w2, sigma_b2)
    x = syn.images.double()
    y = syn.labels.double() if syn.soft else centred_one_hot(syn.labels, syn.num_classes)
    correct = 0
    for s in range(0, data.x_test.shape[0], 4096):
        pred = krr_predict(k_fn(data.x_test[s:s + 4096].double(), x), k_fn(x), y, reg)
        correct += int((pred.argmax(1) == data.y_test[s:s + 4096]).sum())
    return correct / data.x_test.shape[0]
