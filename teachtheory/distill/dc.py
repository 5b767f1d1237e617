"""DC: dataset condensation by gradient matching (Zhao, Mopuri & Bilen, ICLR 2021), and DSA, the same with
differentiable siamese augmentation (Zhao & Bilen, ICML 2021).

Each outer iteration starts from a fresh random ConvNet. ``outer_loop`` times it matches, class by
class, the gradient of the loss of a real batch with the gradient of the loss of the synthetic
images of that class, moving the images to lower the layer-wise distance :func:`match_distance`
(SGD, momentum 0.5, step size :func:`default_lr_img`: the papers' 0.1 for images, 0.01 for
MNIST-1D), and between matchings trains the network ``inner_loop`` epochs on the synthetic set (SGD,
lr 0.01). The loop counts per images-per-class are the paper's (:func:`default_loops`: 1 -> (1, 1),
10 -> (10, 50), 50 -> (50, 10), ...).

The per-class gradients come from one backward pass: the network is replicated once per class (the
run axis of :mod:`teachtheory.distill.nets`) and class c's batch goes through copy c, so the
gradient with respect to copy c is class c's gradient. DSA draws one augmentation per class and
applies it to that class's real and synthetic batch alike, and augments the synthetic set while the
network trains on it.
"""

from __future__ import annotations

import torch

from .data import DistillData
from .dm import learnable_images, matching_batches
from .evaluate import batched_loss, train_networks
from .nets import make_net
from .synthetic import SyntheticSet

__all__ = ["LR_IMG", "dc", "default_loops", "default_lr_img", "dsa", "layer_distance", "match_distance"]

_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
# Step size on the synthetic images. The papers' 0.1 is for images; on MNIST-1D signals (a depth-3 ConvNet of 1-D
# convolutions, so more matched rows per class) it inflated the signals: after 30 DC iterations at ipc 1 (width 32)
# their RMS was 2.4 (the real signals': 1.0) and 4 ConvNets trained on them scored 14.9 % (random real signals:
# 17.1 %); at 0.03 the RMS was 1.5 (16.1 %), at 0.01 1.2 (16.2 %). 0.01 keeps the signals at the real scale; it
# does not by itself make 30 iterations beat random signals. Other data sets keep the papers' 0.1.
LR_IMG = {"mnist1d": 0.01}
DEFAULT_LR_IMG = 0.1
_EPS = 1e-6  # as in the paper's distance, keeps the cosine finite for a zero gradient row


def default_loops(ipc: int) -> tuple[int, int]:
    """(outer_loop, inner_loop) of the paper for ``ipc``; other values get (ipc, max(1, 500 // ipc))."""
    return _LOOPS.get(ipc, (ipc, max(1, 500 // ipc)))


def default_lr_img(dataset: str) -> float:
    """The step size on the synthetic images for a data set: :data:`LR_IMG`, else the papers' 0.1."""
    return LR_IMG.get(dataset, DEFAULT_LR_IMG)


def layer_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """DC's distance between two gradients of one layer: sum over output nodes i of 1 - cos(a_i, b_i).

    A gradient ``[out, *in]`` is read as one row per output node (a convolution's kernel flattened);
    a 1-D gradient (bias, normalisation) contributes 0, as in the paper. For gradients with a leading
    class axis use :func:`match_distance`.
    """
    if a.dim() == 1:
        return a.new_zeros(())
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + _EPS)
    return (1 - cos).sum()


def match_distance(real: dict[str, torch.Tensor], syn: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over layers and over the leading (class) axis of :func:`layer_distance`; tensors are ``[K, *layer]``."""
    total = None
    for name, a in real.items():
        b = syn[name]
        if a.dim() == 2:  # [K, out]: bias or normalisation
            continue
        a2, b2 = a.reshape(a.shape[0], a.shape[1], -1), b.reshape(b.shape[0], b.shape[1], -1)
        cos = (a2 * b2).sum(-1) / (a2.norm(dim=-1) * b2.norm(dim=-1) + _EPS)
        term = (1 - cos).sum()
        total = term if total is None else total + term
    return total


def dc(data: DistillData, ipc: int, *, steps: int = 200, seed: int = 0, progress=None, width: int | None = None,
       lr_img: float | None = None, momentum: float = 0.5, lr_net: float = 0.01, batch_real: int = 256,
       outer_loop: int | None = None, inner_loop: int | None = None, augment: bool = False, method: str = "dc",
       **_) -> SyntheticSet:
    """Gradient matching (see the module docstring); ``steps`` counts outer iterations (fresh networks).

    Args:
        width: the ConvNet's width (default 128); lr_img, momentum: SGD on the images (lr_img default
            :func:`default_lr_img` of the data set).
        lr_net: SGD on the network between matchings; batch_real: real images per class per matching.
        outer_loop, inner_loop: default :func:`default_loops` (ipc).
        augment: DSA (siamese augmentation); :func:`dsa` sets it.
    """
    K = data.num_classes
    spec = make_net("convnet", data.image_shape, K, width=width)
    loops = default_loops(ipc)
    outer_loop, inner_loop = outer_loop or loops[0], inner_loop or loops[1]
    lr_img = default_lr_img(data.name) if lr_img is None else float(lr_img)
    if not lr_img > 0:
        raise ValueError(f"lr_img must be positive, got {lr_img!r}")
    gen, images, labels, opt, strategy = learnable_images(data, ipc, seed, lr_img, momentum, augment)
    class_of = torch.arange(K, device=images.device)
    curve = []
    for step in range(steps):
        params = spec.init(1, gen, images.device)
        total = 0.0
        for ol in range(outer_loop):
            copies = {k: v.detach().expand(K, *v.shape[1:]).clone().requires_grad_(True) for k, v in params.items()}
            real, syn, b = matching_batches(data, images, batch_real, strategy, gen)
            names = list(copies)
            real_loss = batched_loss(spec(copies, real.view(K, b, *data.image_shape)), class_of[:, None].expand(K, b),
                                     "ce")
            g_real = dict(zip(names, (g.detach() for g in torch.autograd.grad(real_loss, list(copies.values())))))
            syn_loss = batched_loss(spec(copies, syn.view(K, ipc, *data.image_shape)),
                                    class_of[:, None].expand(K, ipc), "ce")
            g_syn = dict(zip(names, torch.autograd.grad(syn_loss, list(copies.values()), create_graph=True)))
            distance = match_distance(g_real, g_syn)
            opt.zero_grad(set_to_none=True)
            distance.backward()
            opt.step()
            total += float(distance.detach())
            if ol == outer_loop - 1:
                break
            params = train_networks(spec, params, images.detach(), labels, epochs=inner_loop, lr=lr_net, momentum=0.0,
                                    weight_decay=0.0, strategy=strategy, generator=gen, decay_at_half=False)
        curve.append(total / outer_loop)
        if progress is not None:
            progress(step + 1, steps)
    settings = {"seed": seed, "steps": steps, "net": spec.to_dict(), "lr_img": lr_img, "momentum": momentum,
                "lr_net": lr_net, "batch_real": batch_real, "outer_loop": outer_loop, "inner_loop": inner_loop,
                "augment": list(strategy) if strategy else None, "loss_curve": curve,
                "loss_name": "gradient-matching distance (mean over outer loop)"}
    return SyntheticSet(images.detach(), labels, K, method, data.name, ipc, provenance=settings)


def dsa(data: DistillData, ipc: int, **options) -> SyntheticSet:
    """DSA: :func:`dc` with differentiable siamese augmentation."""
    options["augment"] = True
    options["method"] = "dsa"
    return dc(data, ipc, **options)
