"""Summary statistics over the run axis, the one home of the standard error used by claims and simulations."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mean_se"]


def mean_se(values, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean over ``axis`` (the runs) and its standard error :math:`s/\sqrt{n}` with ``ddof=1`` (NaN for one run)."""
    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    with np.errstate(invalid="ignore", divide="ignore"):
        se = values.std(axis, ddof=1) / math.sqrt(n) if n > 1 else np.full_like(values.mean(axis), np.nan)
    return values.mean(axis), se
