"""Image-classification sets for dataset distillation, as tensors with a fixed, seeded train/test split.

* ``digits``: scikit-learn's embedded 8x8 digits (1797 images, 10 classes), a stratified split with
  a fixed seed (20 % test), images ``[n, 1, 8, 8]``.
* ``mnist1d``: MNIST-1D (Greydanus, "Scaling down deep learning", 2020), generated locally by the
  ``mnist1d`` package's generator (never its download): 4000 train / 1000 test signals ``[n, 1, 40]``.
* ``mnist``, ``fashion-mnist``: the IDX files in a folder the user gives (``root``), read by
  :func:`teachtheory.data.load_mnist`; the official split, images ``[n, 1, 28, 28]``.
* ``cifar10``, ``cifar100``: the python batches in ``root``, read by :func:`teachtheory.data.load_cifar`.

Every set is normalised per channel with the training split's mean and standard deviation; both are
stored with the set (:attr:`DistillData.mean`, :attr:`DistillData.std`) so that images can be shown
in pixel units again (:meth:`DistillData.denormalise`).
"""

from __future__ import annotations

import functools
import random as _pyrandom
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["DATASETS", "DistillData", "class_indices", "load_dataset"]

DATASETS = ("digits", "mnist1d", "mnist", "fashion-mnist", "cifar10", "cifar100")
FILE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100")
DIGITS_TEST_FRACTION = 0.2
MNIST1D_SEED = 42  # the seed of the published MNIST-1D set (the generator's default)


@dataclass
class DistillData:
    """A labelled image set split into train and test, normalised per channel.

    Attributes:
        name: the data set's name (one of :data:`DATASETS`).
        x_train, x_test: float32 images ``[n, C, *spatial]`` (``[n, C, H, W]`` or ``[n, C, L]`` for
            signals), normalised per channel.
        y_train, y_test: int64 labels ``[n]`` in ``0..num_classes-1``.
        num_classes: K.
        mean, std: per-channel float32 ``[C]`` statistics of the raw training images.
        meta: where the data came from (split seed, sizes, generator settings).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: torch.Tensor
    std: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(C, *spatial)`` of one image."""
        return tuple(self.x_train.shape[1:])

    @property
    def channels(self) -> int:
        """Number of channels C."""
        return int(self.x_train.shape[1])

    @property
    def spatial(self) -> tuple[int, ...]:
        """The spatial size: ``(H, W)`` for images, ``(L,)`` for signals."""
        return tuple(self.x_train.shape[2:])

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the per-channel normalisation of images ``[n, C, *spatial]``."""
        shape = (1, -1) + (1,) * len(self.spatial)
        return x * self.std.to(x).view(shape) + self.mean.to(x).view(shape)

    def to(self, device: str | torch.device) -> DistillData:
        """The same set with its tensors on ``device``."""
        move = {k: getattr(self, k).to(device) for k in ("x_train", "y_train", "x_test", "y_test", "mean", "std")}
        return DistillData(self.name, num_classes=self.num_classes, meta=dict(self.meta), **move)

    def subset(self, train_size: int | None = None, test_size: int | None = None, seed: int = 0) -> DistillData:
        """A class-balanced random subset of the train and/or test split (for quick runs); normalisation kept."""
        gen = torch.Generator().manual_seed(seed)
        parts = {}
        for split, size in (("train", train_size), ("test", test_size)):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if size is not None:
                if not isinstance(size, int) or isinstance(size, bool) or size < self.num_classes:
                    raise ValueError(f"{split}_size must be an integer >= num_classes ({self.num_classes}), "
                                     f"got {size!r}")
                keep = _balanced_subset(y.cpu(), self.num_classes, size, gen).to(y.device)
                x, y = x[keep], y[keep]
            parts[f"x_{split}"], parts[f"y_{split}"] = x, y
        meta = dict(self.meta, subset={"train_size": train_size, "test_size": test_size, "seed": seed})
        return DistillData(self.name, num_classes=self.num_classes, mean=self.mean, std=self.std, meta=meta, **parts)


def _balanced_subset(y: torch.Tensor, K: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """Indices of about ``size / K`` random examples per class (fewer where a class has fewer), sorted."""
    per = size // K
    chosen = []
    for c in range(K):
        idx = torch.nonzero(y == c).flatten()
        chosen.append(idx[torch.randperm(idx.numel(), generator=gen)[:per]])
    return torch.sort(torch.cat(chosen)).values


def class_indices(y: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """The indices of each class's examples, ``[indices of class 0, ..., class K-1]``."""
    return [torch.nonzero(y == c).flatten() for c in range(num_classes)]


def _normalise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel standardisation with the training split's statistics."""
    axes = (0,) + tuple(range(2, x_train.ndim))
    mean = x_train.mean(axis=axes).astype(np.float32)
    std = x_train.std(axis=axes).astype(np.float32)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    shape = (1, -1) + (1,) * (x_train.ndim - 2)
    return ((x_train - mean.reshape(shape)) / std.reshape(shape), (x_test - mean.reshape(shape)) / std.reshape(shape),
            mean, std)


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with ``round(test_fraction n_c)`` test examples per class, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(test_fraction * idx.size)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _digits(seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None]  # [n, 1, 8, 8] in [0, 1]
    y = data.target.astype(np.int64)
    train, test = _stratified_split(y, DIGITS_TEST_FRACTION, seed)
    return x[train], y[train], x[test], y[test], {"split_seed": seed, "test_fraction": DIGITS_TEST_FRACTION,
                                                   "source": "scikit-learn load_digits (embedded)"}


def _mnist1d(seed: int) -> tuple[np.ndarray, ...]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError("dataset 'mnist1d' needs the mnist1d package (pip install 'teachtheory[distill]' or "
                         "pip install mnist1d); its generator builds the set locally, nothing is downloaded") from None
    args = get_dataset_args()
    args.seed = seed
    # The generator seeds numpy's and Python's global generators; put them back afterwards.
    np_state, py_state = np.random.get_state(), _pyrandom.getstate()
    try:
        raw = make_dataset(args)  # the generator itself: no file is read or written, nothing downloaded
    finally:
        np.random.set_state(np_state)
        _pyrandom.setstate(py_state)
    x_train = np.asarray(raw["x"], np.float32)[:, None]
    x_test = np.asarray(raw["x_test"], np.float32)[:, None]
    meta = {"split_seed": seed, "source": "mnist1d generator (make_dataset), built locally",
            "num_samples": args.num_samples, "train_split": args.train_split, "length": args.final_seq_length}
    return x_train, np.asarray(raw["y"], np.int64), x_test, np.asarray(raw["y_test"], np.int64), meta


def _mnist_files(root: Path, name: str) -> tuple[np.ndarray, ...]:
    from ..data import load_mnist

    x_train, y_train = load_mnist(root, "train", flatten=False)
    x_test, y_test = load_mnist(root, "test", flatten=False)
    return x_train[:, None], y_train, x_test[:, None], y_test, {"source": f"{name} IDX files in {str(root)!r}"}


def _cifar_files(root: Path, variant: int) -> tuple[np.ndarray, ...]:
    from ..data import load_cifar

    x_train, y_train = load_cifar(root, variant, "train")
    x_test, y_test = load_cifar(root, variant, "test")
    return x_train, y_train, x_test, y_test, {"source": f"CIFAR-{variant} python batches in {str(root)!r}"}


@functools.lru_cache(maxsize=8)
def _cached(name: str, root: str | None, seed: int) -> DistillData:
    if name == "digits":
        parts = _digits(seed)
    elif name == "mnist1d":
        parts = _mnist1d(seed)
    elif name in ("mnist", "fashion-mnist"):
        parts = _mnist_files(Path(root), name)
    else:
        parts = _cifar_files(Path(root), 10 if name == "cifar10" else 100)
    x_train, y_train, x_test, y_test, meta = parts
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    x_train, x_test, mean, std = _normalise(np.asarray(x_train, np.float32), np.asarray(x_test, np.float32))
    meta = dict(meta, train_size=int(x_train.shape[0]), test_size=int(x_test.shape[0]),
                normalisation="per channel, training-split mean and std")
    return DistillData(name, torch.from_numpy(np.ascontiguousarray(x_train)), torch.from_numpy(y_train.copy()),
                       torch.from_numpy(np.ascontiguousarray(x_test)), torch.from_numpy(y_test.copy()), num_classes,
                       torch.from_numpy(mean), torch.from_numpy(std), meta)


def load_dataset(name: str, *, root: str | Path | None = None, seed: int | None = None,
                 device: str | torch.device = "cpu") -> DistillData:
    """Load one of :data:`DATASETS` as a :class:`DistillData` (cached per process; copies are cheap views).

    Args:
        name: ``digits``, ``mnist1d``, ``mnist``, ``fashion-mnist``, ``cifar10`` or ``cifar100``.
        root: folder holding the files of ``mnist``, ``fashion-mnist`` (IDX) or CIFAR (python batches);
            nothing is downloaded. Unused for ``digits`` and ``mnist1d``.
        seed: the split seed of ``digits`` (default 0) or the generator seed of ``mnist1d`` (default 42,
            the published set); the file sets have their official split.
        device: where the tensors go.

    Raises:
        ValueError: an unknown name, a missing ``root`` for a file set, or a missing ``mnist1d`` package.
        FileNotFoundError: ``root`` lacks the files (raised by the loaders, naming what was looked for).
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    if name in FILE_DATASETS:
        if root is None:
            raise ValueError(f"dataset {name!r} is read from files: pass root (--data-root) naming the folder "
                             "that holds them; nothing is downloaded")
        root = str(Path(root).expanduser().resolve())
    else:
        root = None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed) if seed is not None else (MNIST1D_SEED if name == "mnist1d" else 0)
    data = _cached(name, root, seed)
    return data.to(device) if torch.device(device).type != "cpu" else data.to("cpu")
