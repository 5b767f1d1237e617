r"""MTT: matching training trajectories (Cazenavette et al., CVPR 2022).

Experts are ConvNets trained on the real training set (plain SGD, DSA augmentation, the tool records
their parameters after every epoch; :func:`record_experts`, all experts at once). Each distillation
step picks an expert and a start epoch :math:`t` below ``max_start_epoch``, starts a student at
:math:`\theta^*_t`, trains it ``syn_steps`` SGD steps on the synthetic images with a learned learning
rate :math:`\alpha`, and minimises the normalised distance to the expert ``expert_epochs`` later,

.. math:: \frac{\|\hat\theta_{t+N} - \theta^*_{t+M}\|^2}{\|\theta^*_t - \theta^*_{t+M}\|^2},

with respect to the images and :math:`\alpha`, differentiating through the student's steps with
:func:`teachtheory.unroll.hypergradient` (the learned rate enters as a weight of the training loss).
The set carries :math:`\alpha` as its learning rate, which the evaluation protocol then uses.
"""

from __future__ import annotations

import torch

from ..unroll import hypergradient
from .augment import apply, default_strategy, sample_params
from .baselines import real_init
from .data import DistillData
from .evaluate import batched_loss, train_networks
from .nets import NetSpec, make_net
from .synthetic import SyntheticSet

__all__ = ["mtt", "record_experts"]


def record_experts(data: DistillData, spec: NetSpec, *, experts: int = 4, epochs: int = 20, lr: float = 0.01,
                   batch_size: int = 256, augment: bool = True, seed: int = 0,
                   ) -> dict[str, torch.Tensor]:
    """Train ``experts`` networks at once on the real training set and record their parameters after every epoch.

    Returns ``{name: [experts, epochs + 1, *shape]}`` (index 0 = initialisation).
    """
    gen = torch.Generator().manual_seed(seed)
    params = spec.init(experts, gen, data.x_train.device)
    snapshots = {k: [v.clone()] for k, v in params.items()}

    def keep(epoch: int, p) -> None:
        for k, v in p.items():
            snapshots[k].append(v.detach().clone())

    strategy = default_strategy(data.name, data.spatial) if augment else None
    train_networks(spec, params, data.x_train, data.y_train, epochs=epochs, lr=lr, momentum=0.0, weight_decay=0.0,
                   batch_size=batch_size, strategy=strategy, generator=gen, decay_at_half=False, on_epoch=keep)
    return {k: torch.stack(v, 1) for k, v in snapshots.items()}


def mtt(data: DistillData, ipc: int, *, steps: int = 300, seed: int = 0, progress=None, width: int | None = None,
        experts: int = 4, expert_train_epochs: int = 15, syn_steps: int = 10, expert_epochs: int = 2,
        max_start_epoch: int = 10, lr_img: float = 100.0, lr_lr: float = 1e-5, lr_init: float = 0.01,
        momentum: float = 0.5, batch_syn: int | None = None, augment: bool = True, unroll: str = "autograd",
        trajectories: dict[str, torch.Tensor] | None = None, **_) -> SyntheticSet:
    """Trajectory matching (see the module docstring).

    Args:
        experts, expert_train_epochs: expert networks recorded (unless ``trajectories`` is given) and their epochs.
        syn_steps: student steps N; expert_epochs: M; max_start_epoch: start epochs are drawn below it.
        lr_img, momentum: SGD on the images; lr_lr: SGD on the learned rate; lr_init: its start value.
        batch_syn: synthetic images per student step (default all); unroll: ``autograd`` or ``reverse``.
    """
    K = data.num_classes
    spec = make_net("convnet", data.image_shape, K, width=width)
    if max_start_epoch + expert_epochs > expert_train_epochs:
        raise ValueError(f"max_start_epoch ({max_start_epoch}) + expert_epochs ({expert_epochs}) must not exceed "
                         f"expert_train_epochs ({expert_train_epochs})")
    strategy = default_strategy(data.name, data.spatial) if augment else None
    if trajectories is None:
        trajectories = record_experts(data, spec, experts=experts, epochs=expert_train_epochs, augment=augment,
                                      seed=seed + 10_007)
    names = list(spec.shapes())
    n_experts = trajectories[names[0]].shape[0]
    gen = torch.Generator().manual_seed(seed)
    images, labels = real_init(data, ipc, gen)
    images.requires_grad_(True)
    syn_lr = torch.tensor(lr_init, dtype=images.dtype, device=images.device).requires_grad_(True)
    opt_img = torch.optim.SGD([images], lr=lr_img, momentum=momentum)
    opt_lr = torch.optim.SGD([syn_lr], lr=lr_lr, momentum=momentum)
    M = images.shape[0]
    batch_syn = min(batch_syn or M, M)
    curve = []
    for step in range(steps):
        e = int(torch.randint(n_experts, (1,), generator=gen))
        t = int(torch.randint(max_start_epoch, (1,), generator=gen))
        start = tuple(trajectories[k][e, t][None] for k in names)
        target = tuple(trajectories[k][e, t + expert_epochs][None] for k in names)
        batches = [torch.randperm(M, generator=gen)[:batch_syn].to(images.device) for _ in range(syn_steps)]
        augs = [sample_params(strategy, batch_syn, data.spatial, gen) if strategy else None for _ in range(syn_steps)]

        def train_loss(theta, phi, i, batches=batches, augs=augs):
            x, rate = phi[0][batches[i]], phi[1]
            if augs[i] is not None:
                x = apply(x, augs[i])
            return rate * batched_loss(spec(dict(zip(names, theta)), x[None]), labels[batches[i]][None], "ce")

        scale = sum(((s - g) ** 2).sum() for s, g in zip(start, target))

        def val_loss(theta, target=target, scale=scale):
            return sum(((p - g) ** 2).sum() for p, g in zip(theta, target)) / scale

        result = hypergradient(train_loss, val_loss, start, (images, syn_lr), syn_steps, 1.0, method=unroll)
        images.grad, syn_lr.grad = result.grad_phi[0], result.grad_phi[1].reshape(())
        opt_img.step()
        opt_lr.step()
        with torch.no_grad():
            syn_lr.clamp_(min=1e-5)
        curve.append(float(result.value))
        if progress is not None:
            progress(step + 1, steps)
    settings = {"seed": seed, "steps": steps, "net": spec.to_dict(), "experts": n_experts,
                "expert_train_epochs": expert_train_epochs, "syn_steps": syn_steps, "expert_epochs": expert_epochs,
                "max_start_epoch": max_start_epoch, "lr_img": lr_img, "lr_lr": lr_lr, "lr_init": lr_init,
                "momentum": momentum, "batch_syn": batch_syn, "augment": list(strategy) if strategy else None,
                "unroll": unroll, "learned_lr": float(syn_lr.detach()), "loss_curve": curve,
                "loss_name": "normalised parameter distance to the expert"}
    return SyntheticSet(images.detach(), labels, K, "mtt", data.name, ipc, lr=float(syn_lr.detach()),
                        provenance=settings)
