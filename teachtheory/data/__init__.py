"""Embedded data and file loaders (MNIST IDX, CIFAR python batches) for data the user has on disk."""

# the public names are listed once, in the submodule's __all__
from . import loaders
from .loaders import *  # noqa: F403

__all__ = list(loaders.__all__)
