"""The product of a distiller: a small training set, saved and loaded atomically with its provenance."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write, to_jsonable

__all__ = ["LABEL_LOSSES", "SyntheticSet"]

LABEL_LOSSES = ("ce", "mse")
_FORMAT = "teachtheory.distill.SyntheticSet/1"


@dataclass
class SyntheticSet:
    """A synthetic (or selected) training set.

    Attributes:
        images: float32 ``[M, C, *spatial]`` in the data set's normalised units.
        labels: int64 ``[M]`` (hard) or float ``[M, K]`` (soft or learned labels).
        num_classes: K.
        method, dataset, ipc: what made it, from which data set, images per class.
        lr: a learned learning rate for training on it (MTT), or None for the protocol's default.
        label_loss: ``"ce"`` (cross-entropy; soft labels are target distributions) or ``"mse"`` (regression
            on the labels, as KIP's kernel ridge regression and its finite networks use).
        provenance: settings, seed, steps, timings, loss curve, versions.
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    method: str
    dataset: str
    ipc: int
    lr: float | None = None
    label_loss: str = "ce"
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.dim() < 3:
            raise ValueError("images must be a tensor [M, C, *spatial]")
        if not isinstance(self.labels, torch.Tensor) or self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"labels must be a tensor with one row per image ({self.images.shape[0]})")
        if self.labels.dim() == 2 and self.labels.shape[1] != self.num_classes:
            raise ValueError(f"soft labels must have num_classes={self.num_classes} columns, got {self.labels.shape}")
        if self.labels.dim() not in (1, 2):
            raise ValueError(f"labels must be [M] (hard) or [M, K] (soft), got shape {tuple(self.labels.shape)}")
        if self.label_loss not in LABEL_LOSSES:
            raise ValueError(f"label_loss must be one of {', '.join(LABEL_LOSSES)}; got {self.label_loss!r}")
        if self.label_loss == "mse" and self.labels.dim() != 2:
            raise ValueError("label_loss 'mse' needs label vectors [M, K]")
        if self.lr is not None and not (float(self.lr) > 0 and np.isfinite(float(self.lr))):
            raise ValueError(f"lr must be positive and finite or None, got {self.lr!r}")

    @property
    def size(self) -> int:
        """Number of images M."""
        return int(self.images.shape[0])

    @property
    def soft(self) -> bool:
        """True when labels are vectors rather than class indices."""
        return self.labels.dim() == 2

    @property
    def hard_labels(self) -> torch.Tensor:
        """Class indices ``[M]`` (argmax of vector labels)."""
        return self.labels.argmax(1) if self.soft else self.labels

    def targets(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Label vectors ``[M, K]``: the labels themselves, or one-hot rows of hard labels."""
        if self.soft:
            return self.labels.to(dtype)
        return torch.nn.functional.one_hot(self.labels, self.num_classes).to(dtype)

    def to(self, device: str | torch.device) -> SyntheticSet:
        """The same set on ``device``."""
        return SyntheticSet(self.images.to(device), self.labels.to(device), self.num_classes, self.method,
                            self.dataset, self.ipc, self.lr, self.label_loss, dict(self.provenance))

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` (arrays plus provenance as JSON text; no pickles), atomically."""
        meta = {"format": _FORMAT, "num_classes": self.num_classes, "method": self.method, "dataset": self.dataset,
                "ipc": self.ipc, "lr": self.lr, "label_loss": self.label_loss, "provenance": self.provenance}
        buffer = io.BytesIO()
        np.savez(buffer, images=self.images.detach().cpu().numpy(), labels=self.labels.detach().cpu().numpy(),
                 meta=np.array(json.dumps(to_jsonable(meta))))
        return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> SyntheticSet:
        """Read a set written by :meth:`save`.

        Raises:
            ValueError: the file is not such a set (the message names it).
        """
        try:
            with np.load(path, allow_pickle=False) as archive:
                images, labels = archive["images"], archive["labels"]
                meta = json.loads(str(archive["meta"]))
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{str(path)!r} is not a synthetic set written by SyntheticSet.save: {exc}") from None
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{str(path)!r} is not a synthetic set written by SyntheticSet.save")
        return cls(torch.from_numpy(images), torch.from_numpy(labels), int(meta["num_classes"]), meta["method"],
                   meta["dataset"], int(meta["ipc"]), meta["lr"], meta["label_loss"], meta["provenance"])
