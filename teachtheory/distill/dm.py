"""DM: distribution matching (Zhao & Bilen, WACV 2023).

Each step draws a fresh, untrained ConvNet and moves the synthetic images so that, class by class,
the mean embedding of the synthetic images matches the mean embedding of a batch of real images
(``sum_c ||mean phi(real_c) - mean phi(syn_c)||^2``), both augmented with the same DSA parameters
per class. Images start from random real ones and are updated by SGD with momentum 0.5, learning
rate 1 (the paper's settings; its 20,000 steps and 256 real images per class are options).
"""

from __future__ import annotations

import torch

from .augment import apply, default_strategy, sample_params
from .baselines import descend, real_init
from .data import DistillData, class_indices
from .nets import make_net
from .synthetic import SyntheticSet

__all__ = ["dm", "learnable_images", "matching_batches", "sample_real_per_class"]


def sample_real_per_class(data: DistillData, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """``b`` random training images of every class without replacement, ordered by class.

    Here b = min(batch, smallest class).

    Returns the images ``[K b, C, *s]`` and b.
    """
    groups = class_indices(data.y_train.cpu(), data.num_classes)
    b = min(batch, min(g.numel() for g in groups))
    index = torch.cat([g[torch.randperm(g.numel(), generator=generator)[:b]] for g in groups])
    return data.x_train[index.to(data.x_train.device)], b


def learnable_images(data: DistillData, ipc: int, seed: int, lr_img: float, momentum: float, augment: bool):
    """The start of the matching methods: a seeded generator, trainable images initialised from real ones (and
    their labels), SGD with momentum on them, and the DSA strategy (None without ``augment``)."""
    gen = torch.Generator().manual_seed(seed)
    images, labels = real_init(data, ipc, gen)
    images.requires_grad_(True)
    opt = torch.optim.SGD([images], lr=lr_img, momentum=momentum)
    strategy = default_strategy(data.name, data.spatial) if augment else None
    return gen, images, labels, opt, strategy


def matching_batches(data: DistillData, images: torch.Tensor, batch_real: int, strategy, generator: torch.Generator):
    """Real images per class (:func:`sample_real_per_class`) and the synthetic ones, both under one sampled
    siamese augmentation per class when ``strategy`` is set; returns (real, synthetic, b)."""
    K = data.num_classes
    real, b = sample_real_per_class(data, batch_real, generator)
    syn = images
    if strategy is not None:
        aug = sample_params(strategy, K, data.spatial, generator)
        real = apply(real, aug, torch.arange(K).repeat_interleave(b))
        syn = apply(syn, aug, torch.arange(K).repeat_interleave(images.shape[0] // K))
    return real, syn, b


def dm(data: DistillData, ipc: int, *, steps: int = 1000, seed: int = 0, progress=None, width: int | None = None,
       lr_img: float = 1.0, momentum: float = 0.5, batch_real: int = 256, augment: bool = True, **_) -> SyntheticSet:
    """Distribution matching with random ConvNet embeddings (see the module docstring).

    Args:
        width: the embedding ConvNet's width (default 128); lr_img, momentum: SGD on the images.
        batch_real: real images per class and step; augment: DSA (siamese per class) on both batches.
    """
    K = data.num_classes
    spec = make_net("convnet", data.image_shape, K, width=width)
    gen, images, labels, opt, strategy = learnable_images(data, ipc, seed, lr_img, momentum, augment)
    curve = []
    for step in range(steps):
        params = spec.init(1, gen, data.x_train.device)
        real, syn, b = matching_batches(data, images, batch_real, strategy, gen)
        with torch.no_grad():
            mean_real = spec.embed(params, real)[0].view(K, b, -1).mean(1)
        mean_syn = spec.embed(params, syn)[0].view(K, ipc, -1).mean(1)
        descend(opt, ((mean_real - mean_syn) ** 2).sum(), curve, progress, step, steps)
    settings = {"seed": seed, "steps": steps, "net": spec.to_dict(), "lr_img": lr_img, "momentum": momentum,
                "batch_real": batch_real, "augment": list(strategy) if strategy else None, "loss_curve": curve,
                "loss_name": "sum over classes of squared mean-embedding gap"}
    return SyntheticSet(images.detach(), labels, K, "dm", data.name, ipc, provenance=settings)
