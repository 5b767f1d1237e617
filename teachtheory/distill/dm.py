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
from .baselines import real_init
from .data import DistillData, class_indices
from .nets import make_net
from .synthetic import SyntheticSet

__all__ = ["dm", "sample_real_per_class"]


def sample_real_per_class(data: DistillData, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """``b`` random training images of every class without replacement, ordered by class.

    Here b = min(batch, smallest class).

    Returns the images ``[K b, C, *s]`` and b.
    """
    groups = class_indices(data.y_train.cpu(), data.num_classes)
    b = min(batch, min(g.numel() for g in groups))
    index = torch.cat([g[torch.randperm(g.numel(), generator=generator)[:b]] for g in groups])
    return data.x_train[index.to(data.x_train.device)], b


def dm(data: DistillData, ipc: int, *, steps: int = 1000, seed: int = 0, progress=None, width: int | None = None,
       lr_img: float = 1.0, momentum: float = 0.5, batch_real: int = 256, augment: bool = True, **_) -> SyntheticSet:
    """Distribution matching with random ConvNet embeddings (see the module docstring).

    Args:
        width: the embedding ConvNet's width (default 128); lr_img, momentum: SGD on the images.
        batch_real: real images per class and step; augment: DSA (siamese per class) on both batches.
    """
    K = data.num_classes
    spec = make_net("convnet", data.image_shape, K, width=width)
    gen = torch.Generator().manual_seed(seed)
    images, labels = real_init(data, ipc, gen)
    images.requires_grad_(True)
    opt = torch.optim.SGD([images], lr=lr_img, momentum=momentum)
    strategy = default_strategy(data.name, data.spatial) if augment else None
    syn_group = torch.arange(K).repeat_interleave(ipc)
    curve = []
    for step in range(steps):
        params = spec.init(1, gen, data.x_train.device)
        real, b = sample_real_per_class(data, batch_real, gen)
        syn = images
        if strategy is not None:
            aug = sample_params(strategy, K, data.spatial, gen)
            real = apply(real, aug, torch.arange(K).repeat_interleave(b))
            syn = apply(syn, aug, syn_group)
        with torch.no_grad():
            mean_real = spec.embed(params, real)[0].view(K, b, -1).mean(1)
        mean_syn = spec.embed(params, syn)[0].view(K, ipc, -1).mean(1)
        loss = ((mean_real - mean_syn) ** 2).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, steps)
    settings = {"seed": seed, "steps": steps, "net": spec.to_dict(), "lr_img": lr_img, "momentum": momentum,
                "batch_real": batch_real, "augment": list(strategy) if strategy else None, "loss_curve": curve,
                "loss_name": "sum over classes of squared mean-embedding gap"}
    return SyntheticSet(images.detach(), labels, K, "dm", data.name, ipc, provenance=settings)
