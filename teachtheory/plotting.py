"""Figures: convergence curves (mean over runs with a standard-error band), saved atomically."""

from __future__ import annotations

import io as _io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no screen needed; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_write  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Trajectory

__all__ = ["plot_metric", "convergence_figure", "save_figure", "METRIC_LABELS"]

METRIC_LABELS = {
    "distance": r"$\|w_t - w^*\|_2$",
    "loss": "training loss",
    "test_accuracy": "test accuracy",
    "test_loss": "test loss",
}


def _wants_log(values: np.ndarray) -> bool:
    positive = values[np.isfinite(values) & (values > 0)]
    return positive.size > 0 and bool((values > 0).all()) and positive.max() / positive.min() > 30


def plot_metric(
    trajectories: Mapping[str, "Trajectory"], metric: str = "distance", ax=None, log: bool | None = None,
    band: str = "se",
):
    """Mean of ``metric`` over runs against the step, one line per trajectory, with a band of
    +- one standard error (``band="se"``) or the 10-90% quantiles (``band="quantiles"``).

    Log scale is chosen automatically when the values span more than 1.5 decades.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    means = []
    for label, traj in trajectories.items():
        s = traj.summary(metric)
        steps = np.arange(s["mean"].shape[0])
        line = ax.plot(steps, s["mean"], label=label, lw=1.5)[0]
        if band == "se":
            low, high = s["mean"] - s["se"], s["mean"] + s["se"]
        elif band == "quantiles":
            low, high = s["q0.1"], s["q0.9"]
        else:
            raise ValueError(f"band must be 'se' or 'quantiles', got {band!r}")
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.25, lw=0)
        means.append(s["mean"])
    if log is None:
        log = metric != "test_accuracy" and _wants_log(np.concatenate(means))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3, which="both" if log else "major")
    return ax


def convergence_figure(
    trajectories: Mapping[str, "Trajectory"], metrics: Sequence[str], title: str = "", band: str = "se"
):
    """One panel per metric, a shared legend; returns the Figure."""
    metrics = [m for m in metrics if all(m in t.metrics for t in trajectories.values())]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        plot_metric(trajectories, metric, ax=ax, band=band)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), frameon=False, fontsize=9)
    if title:
        fig.suptitle(title)
    bottom = 0.12 + 0.05 * ((len(labels) - 1) // 5)
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


def save_figure(fig, path: str | os.PathLike, formats: Sequence[str] = ("png",), dpi: int = 150) -> list[Path]:
    """Save ``fig`` as path.<fmt> for each format, atomically; closes the figure."""
    path = Path(path)
    written = []
    for fmt in formats:
        buffer = _io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight")
        target = path.with_suffix(f".{fmt}")
        written.append(atomic_write(target, lambda handle: handle.write(buffer.getvalue())))
    plt.close(fig)
    return written
