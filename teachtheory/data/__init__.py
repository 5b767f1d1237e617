"""Embedded data and file loaders (MNIST IDX, CIFAR python batches) for data the user has on disk."""

from .loaders import (
    load_cifar,
    load_class_subset,
    load_mnist,
    read_idx,
    safe_unpickle,
    write_cifar_batch,
    write_idx,
)

__all__ = [
    "load_cifar",
    "load_class_subset",
    "load_mnist",
    "read_idx",
    "safe_unpickle",
    "write_cifar_batch",
    "write_idx",
]
