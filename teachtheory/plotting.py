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

__all__ = ["plot_metric", "convergence_figure", "save_figure", "finish_figure", "theory_vs_measured", "METRIC_LABELS",
           "STYLES", "figure_style", "sweep_figure"]

METRIC_LABELS = {
    "distance": r"$\|w_t - w^*\|_2$",
    "loss": "training loss",
    "test_accuracy": "test accuracy",
    "test_loss": "test loss",
}


# One look for every figure: "default" for screens and docs, "paper" sized for a two-column page
# (3.3 in per column, 8-9 pt serif text, thin lines). Standard-error bands use BAND_ALPHA everywhere.
_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]  # Okabe-Ito
BAND_ALPHA = 0.25
STYLES: dict[str, dict] = {
    "default": {"axes.prop_cycle": matplotlib.cycler(color=_COLOURS), "font.size": 10, "axes.titlesize": 10,
                "axes.labelsize": 10, "legend.fontsize": 8, "lines.linewidth": 1.5, "figure.dpi": 100,
                "savefig.dpi": 150},
    "paper": {"axes.prop_cycle": matplotlib.cycler(color=_COLOURS), "font.family": "serif", "font.size": 8,
              "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
              "legend.fontsize": 7, "lines.linewidth": 1.0, "axes.linewidth": 0.6, "figure.figsize": (3.3, 2.3),
              "savefig.dpi": 300, "pdf.fonttype": 42, "ps.fonttype": 42},
}


def figure_style(name: str = "default"):
    """A context manager applying the named figure style (``default`` or ``paper``) to figures made inside it.

    Raises:
        ValueError: an unknown style name (the message lists the styles).
    """
    if name not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}; got {name!r}")
    return plt.rc_context(STYLES[name])


def _wants_log(values: np.ndarray) -> bool:
    positive = values[np.isfinite(values) & (values > 0)]
    return positive.size > 0 and bool((values > 0).all()) and positive.max() / positive.min() > 30


def plot_metric(
    trajectories: "Trajectory | Mapping[str, Trajectory]", metric: str = "distance", ax=None, log: bool | None = None,
    band: str = "se", label: str | None = None,
):
    """Mean of ``metric`` over runs against the step, one line per trajectory, with a band of
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
        steps = np.arange(s["mean"].shape[0])
        line = ax.plot(steps, s["mean"], label=label, lw=1.5)[0]
        if band == "se":
            low, high = s["mean"] - s["se"], s["mean"] + s["se"]
        elif band == "quantiles":
            low, high = s["q0.1"], s["q0.9"]
        else:
            raise ValueError(f"band must be 'se' or 'quantiles', got {band!r}")
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=BAND_ALPHA, lw=0)
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


def sweep_figure(dataset, metrics: Sequence[str] | None = None, title: str = ""):
    """A teaching sweep (:func:`teachtheory.sweep.merge`): one column per setting, one row per metric, one line
    per teacher; the line is the mean over seeds of each seed's mean curve, the band ± one standard error
    over seeds. Returns the Figure."""
    metrics = [m for m in (metrics or [v for v in dataset.data_vars if not v.endswith("_se")])
               if "step" in dataset[m].dims]
    if not metrics:
        raise ValueError("the sweep has no per-step metrics to draw (only teaching sweeps have curves)")
    settings = list(dataset["setting"].values)
    fig, axes = plt.subplots(len(metrics), len(settings), figsize=(4.2 * len(settings), 3.0 * len(metrics)),
                             squeeze=False, sharex="col")
    for row, metric in enumerate(metrics):
        for col, setting in enumerate(settings):
            ax = axes[row][col]
            curves = dataset[metric].sel(setting=setting)
            for teacher in dataset["teacher"].values:
                values = curves.sel(teacher=teacher).values  # [seeds, steps]
                keep = np.isfinite(values).all(0)
                if not keep.any():
                    continue
                steps = dataset["step"].values[keep]
                seeds_mean = values[:, keep]
                mean = seeds_mean.mean(0)
                se = seeds_mean.std(0, ddof=1) / np.sqrt(seeds_mean.shape[0]) if seeds_mean.shape[0] > 1 else None
                line = ax.plot(steps, mean, label=str(teacher))[0]
                if se is not None:
                    ax.fill_between(steps, mean - se, mean + se, color=line.get_color(), alpha=BAND_ALPHA, lw=0)
            if metric != "test_accuracy" and _wants_log(np.nan_to_num(curves.values, nan=1.0)):
                ax.set_yscale("log")
            ax.set_title(str(setting), fontsize="small")
            if col == 0:
                ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            if row == len(metrics) - 1:
                ax.set_xlabel("iteration")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
