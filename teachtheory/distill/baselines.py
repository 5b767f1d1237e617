"""Baselines built from real data: random images per class, herding, k-means centroids, the full set.

* ``random``: ``ipc`` training images per class drawn without replacement.
* ``herding``: per class, the greedy herding of Welling (ICML 2009) in a feature space, as used for
  coreset selection (Rebuffi et al., CVPR 2017): pick the image that brings the running mean of the
  chosen features closest to the class mean feature. Features are those of a ConvNet trained on the
  real training set (``features="trained"``, the default), of a random ConvNet (``"random"``) or the
  pixels (``"pixels"``).
* ``kmeans``: per class, the ``ipc`` centroids of scikit-learn's k-means on the pixels (centroids,
  not real images).
* ``full``: the whole training set (the ceiling; ``ipc`` is the largest class size).
"""

from __future__ import annotations

import numpy as np
import torch

from .data import DistillData, class_indices
from .evaluate import train_networks
from .nets import make_net
from .synthetic import SyntheticSet

__all__ = ["HERDING_FEATURES", "descend", "full_set", "herding", "kmeans", "random_real", "real_init"]

HERDING_FEATURES = ("trained", "random", "pixels")


def real_init(data: DistillData, ipc: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` random training images per class, ordered by class: images ``[K ipc, C, *s]`` and labels.

    Raises:
        ValueError: a class has fewer than ``ipc`` images.
    """
    chosen = []
    for c, idx in enumerate(class_indices(data.y_train.cpu(), data.num_classes)):
        if idx.numel() < ipc:
            raise ValueError(f"ipc={ipc} exceeds the {idx.numel()} training images of class {c}")
        chosen.append(idx[torch.randperm(idx.numel(), generator=generator)[:ipc]])
    index = torch.cat(chosen).to(data.x_train.device)
    return data.x_train[index].clone(), data.y_train[index].clone()


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, curve: list[float], progress, step: int,
            steps: int) -> None:
    """One optimiser step on ``loss`` for a learned synthetic set: its value joins ``curve`` and ``progress`` hears."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    curve.append(float(loss.detach()))
    if progress is not None:
        progress(step + 1, steps)


def random_real(data: DistillData, ipc: int, *, seed: int = 0, **_) -> SyntheticSet:
    """``ipc`` random real training images per class."""
    images, labels = real_init(data, ipc, torch.Generator().manual_seed(seed))
    return SyntheticSet(images, labels, data.num_classes, "random", data.name, ipc, provenance={"seed": seed})


def _features(data: DistillData, kind: str, seed: int, width: int | None, epochs: int) -> torch.Tensor:
    if kind == "pixels":
        return data.x_train.flatten(1)
    spec = make_net("convnet", data.image_shape, data.num_classes, width=width)
    gen = torch.Generator().manual_seed(seed)
    params = spec.init(1, gen, data.x_train.device)
    if kind == "trained":
        params = train_networks(spec, params, data.x_train, data.y_train, epochs=epochs, generator=gen)
    with torch.no_grad():
        return torch.cat([spec.embed(params, data.x_train[s:s + 1024])[0]
                          for s in range(0, data.x_train.shape[0], 1024)])


def herding(data: DistillData, ipc: int, *, seed: int = 0, features: str = "trained", width: int | None = None,
            epochs: int = 10, **_) -> SyntheticSet:
    """Greedy herding per class in a feature space (see the module docstring).

    Args:
        features: ``trained`` (ConvNet trained ``epochs`` epochs on the real training set), ``random`` or ``pixels``.
        width: the feature ConvNet's width (default 128).
    """
    if features not in HERDING_FEATURES:
        raise ValueError(f"features must be one of {', '.join(HERDING_FEATURES)}; got {features!r}")
    feats = _features(data, features, seed, width, epochs).double()
    chosen = []
    for c, idx in enumerate(class_indices(data.y_train.cpu(), data.num_classes)):
        if idx.numel() < ipc:
            raise ValueError(f"ipc={ipc} exceeds the {idx.numel()} training images of class {c}")
        f = feats[idx.to(feats.device)]
        target = f.mean(0)
        total = torch.zeros_like(target)
        available = torch.ones(idx.numel(), dtype=torch.bool, device=f.device)
        picks = []
        for k in range(ipc):
            # distance of the running mean, were each candidate added, to the class mean
            gap = ((target - (total + f) / (k + 1)) ** 2).sum(1)
            gap[~available] = float("inf")
            best = int(gap.argmin())
            picks.append(best)
            available[best] = False
            total = total + f[best]
        chosen.append(idx[torch.tensor(picks)])
    index = torch.cat(chosen).to(data.x_train.device)
    return SyntheticSet(data.x_train[index].clone(), data.y_train[index].clone(), data.num_classes, "herding",
                        data.name, ipc, provenance={"seed": seed, "features": features, "feature_epochs": epochs})


def kmeans(data: DistillData, ipc: int, *, seed: int = 0, n_init: int = 4, **_) -> SyntheticSet:
    """Per class, the ``ipc`` k-means centroids of the training images (scikit-learn, pixel space)."""
    from sklearn.cluster import KMeans

    images, labels = [], []
    x = data.x_train.cpu().flatten(1).double().numpy()
    for c, idx in enumerate(class_indices(data.y_train.cpu(), data.num_classes)):
        if idx.numel() < ipc:
            raise ValueError(f"ipc={ipc} exceeds the {idx.numel()} training images of class {c}")
        model = KMeans(n_clusters=ipc, n_init=n_init, random_state=seed + c).fit(x[idx.numpy()])
        images.append(torch.from_numpy(model.cluster_centers_.astype(np.float32)))
        labels.append(torch.full((ipc,), c, dtype=torch.int64))
    images = torch.cat(images).view(-1, *data.image_shape).to(data.x_train.device)
    return SyntheticSet(images, torch.cat(labels).to(data.x_train.device), data.num_classes, "kmeans", data.name, ipc,
                        provenance={"seed": seed, "n_init": n_init, "space": "pixels"})


def full_set(data: DistillData, ipc: int | None = None, **_) -> SyntheticSet:
    """The whole training set (``ipc`` is ignored; recorded as the largest class size)."""
    largest = int(torch.bincount(data.y_train.cpu()).max())
    return SyntheticSet(data.x_train, data.y_train, data.num_classes, "full", data.name, largest,
                        provenance={"note": "the whole real training set"})
