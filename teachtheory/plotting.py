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

__all__ = ["plot_metric", "convergence_figure", "save_figure", "finish_figure", "theory_vs_measured", "METRIC_LABELS"]

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
    trajectories: "Trajectory | Mapping[str, Trajectory]", metric: str = "distance", ax=None, log: bool | None = None,
    band: str = "se", label: str | None = None,
):
    """Mean of ``metric`` over runs against the (recorded) step, one line per trajectory, with a band of
    +- one standard error (``band="se"``) or the 10-90% quantiles (``band="quantiles"``).

    Args:
        trajectories: one :class:`~teachtheory.engine.Trajectory` or a mapping label -> Trajectory.
        metric: a recorded metric (``distance``, ``loss``, ``test_accuracy``, ...).
        ax: the matplotlib Axes to draw on (a new figure when None).
        log: log scale; by default chosen when the values span more than 1.5 decades.
        band: ``"se"`` or ``"quantiles"``.
        label: the legend label of a single trajectory (default: its teacher's name).

    Returns:
        The Axes.

    Example:
        >>> import teachtheory as tt
        >>> from teachtheory.learners import LeastSquares
        >>> from teachtheory.teachers import RandomTeacher
        >>> problem = tt.problems.linear_regression(dim=5, pool_size=20, runs=4, seed=0)
        >>> traj = tt.teach(problem, LeastSquares(5), RandomTeacher(), steps=10, lr=0.1)
        >>> ax = plot_metric(traj, "distance")
        >>> ax.get_ylabel()
        '$\\|w_t - w^*\\|_2$'
    """
    if not isinstance(trajectories, Mapping):
        name = label or trajectories.config.get("teacher", {}).get("name", "run")
        trajectories = {name: trajectories}
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    means = []
    for label, traj in trajectories.items():
        s = traj.summary(metric)
        steps = traj.steps_recorded
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


def finish_figure(fig, path: str | os.PathLike | None, formats: Sequence[str] = ("png",)) -> str | None:
    """Save ``fig`` at ``path`` (first format's file returned as a string) and close it; None: just close it.

    The one way claim checks end a figure: with no plots folder the figure is discarded.
    """
    if path is None:
        plt.close(fig)
        return None
    written = save_figure(fig, path, formats)
    return str(written[0])


def theory_vs_measured(
    path: Path | None,
    panels: Sequence[dict],
    title: str = "",
    log: bool = True,
) -> str | None:
    """One panel per dict with keys: t, estimate, se, theory, (optional) label, theory_label,
    xlabel, ylabel, extra (list of (t, values, label) drawn as dashed lines). Returns the PNG path."""
    if path is None:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        t = np.asarray(panel["t"])
        est, se = np.asarray(panel["estimate"], float), np.asarray(panel["se"], float)
        line = ax.plot(t, est, lw=1.6, label=panel.get("label", "measured (mean ± SE)"))[0]
        ax.fill_between(t, est - se, est + se, color=line.get_color(), alpha=0.3, lw=0)
        ax.plot(t, np.asarray(panel["theory"], float), "k--", lw=1.2, label=panel.get("theory_label", "theory"))
        for tt, values, label in panel.get("extra", ()):
            ax.plot(tt, values, ":", lw=1.2, label=label)
        if log and np.all(est > 0):
            ax.set_yscale("log")
        ax.set_xlabel(panel.get("xlabel", "t"))
        ax.set_ylabel(panel.get("ylabel", r"$E\|e_t\|^2$"))
        if panel.get("title"):
            ax.set_title(panel["title"], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return finish_figure(fig, path)
