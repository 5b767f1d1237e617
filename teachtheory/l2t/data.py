"""Scikit-learn's embedded 8x8 digits for L2T-DLN: a shared test split, and per-run training /
validation divisions that are redrawn every epoch (L2T-DLN Sec. 5.3, "validation ratio")."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..random import RunStreams, as_seeds

__all__ = ["DigitsTask", "load_digits_task"]


@dataclass
class DigitsTask:
    """Pool (train + validation) and test set, shared by all runs; per-run divisions and mini-batches.

    Attributes:
        X, y: the pool [n, d], [n]. X_test, y_test: the test set. streams: per-run random streams.
        val_ratio: fraction of the pool used for validation in each division.
        batch_size, val_batch_size: training and validation mini-batch sizes (paper: 25 and 100).
    """

    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    streams: RunStreams
    val_ratio: float = 0.5
    batch_size: int = 25
    val_batch_size: int = 100
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.val_ratio < 1.0:
            raise ValueError(f"val_ratio must lie in (0, 1), got {self.val_ratio}")
        for name in ("batch_size", "val_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @property
    def runs(self) -> int:
        """Number R of runs."""
        return self.streams.runs

    @property
    def classes(self) -> int:
        """Number of classes in the pool."""
        return int(self.y.max()) + 1

    @property
    def n_val(self) -> int:
        """Validation examples per division (at least one)."""
        return max(1, int(round(self.val_ratio * self.X.shape[0])))

    @property
    def n_train(self) -> int:
        """Training examples per division."""
        return self.X.shape[0] - self.n_val

    @property
    def val_batches_per_epoch(self) -> int:
        """Validation mini-batches per pass over the validation part (at least one): the authors' code takes one
        per teacher round and redivides the data after a pass."""
        return max(1, self.n_val // self.val_batch_size)

    @property
    def steps_per_epoch(self) -> int:
        """Student steps per pass over the training part (at least one)."""
        return max(1, self.n_train // self.batch_size)

    def division(self, epoch: int) -> torch.Tensor:
        """Per-run permutation [R, n] of the pool for this epoch: first n_train train, the rest validation."""
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            u = self.streams.uniform("division", epoch, (self.X.shape[0],))
            self._cache[epoch] = torch.argsort(u, dim=-1).to(self.X.device)
        return self._cache[epoch]

    def _gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[index], self.y[index]

    def train_batch(self, step: int, epoch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mini-batch of student step ``step`` (global index): x [R, B, d], y [R, B], from the division of
        ``epoch`` (default: the epoch of student steps that ``step`` falls in)."""
        perm = self.division(step // self.steps_per_epoch if epoch is None else epoch)
        pick = self.streams.integers("train-batch", step, self.n_train, (self.batch_size,)).to(perm.device)
        return self._gather(torch.gather(perm[:, : self.n_train], 1, pick))

    def val_batch(self, index: int, step: int, epoch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation mini-batch number ``index`` drawn from the division in force at ``step`` (or of ``epoch``)."""
        perm = self.division(step // self.steps_per_epoch if epoch is None else epoch)
        pick = self.streams.integers("val-batch", index, self.n_val, (self.val_batch_size,)).to(perm.device)
        return self._gather(torch.gather(perm[:, self.n_train:], 1, pick))

    def pool_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mini-batch from the whole pool (train + validation), for the fixed-loss baselines."""
        pick = self.streams.integers("pool-batch", step, self.X.shape[0], (self.batch_size,)).to(self.X.device)
        return self._gather(pick)


def load_digits_task(seed, runs: int | None = None, *, test_fraction: float = 0.3, val_ratio: float = 0.5,
                     batch_size: int = 25, val_batch_size: int = 100, dtype=torch.float32, device="cpu") -> DigitsTask:
    """The 10-class digits (1797 images, 64 pixels scaled to [0, 1] then standardised with the pool's
    statistics). The test split is drawn from the first run's seed and shared; divisions and
    mini-batches are per run."""
    from ..problems import digits_arrays

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    seeds = as_seeds(seed, runs)
    X, y = digits_arrays()
    order = torch.argsort(RunStreams(seeds[:1]).uniform("test-split", 0, (X.shape[0],))[0])
    n_test = int(round(test_fraction * X.shape[0]))
    test, pool = order[:n_test], order[n_test:]
    mean, std = X[pool].mean(0), X[pool].std(0).clamp_min(1e-2)
    X = (X - mean) / std
    return DigitsTask(X[pool].to(dtype=dtype, device=device), y[pool].to(device),
                      X[test].to(dtype=dtype, device=device), y[test].to(device), RunStreams(seeds, device=device),
                      val_ratio=val_ratio, batch_size=batch_size, val_batch_size=val_batch_size)
