"""Figures: convergence curves (mean over runs with a standard-error band), saved atomically."""

from __future__ import annotations

import io as _io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no screen needed; set before pyplot is imported
import matplotlib.pyplot as plt
import numpy as np

from .io import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Trajectory

__all__ = [
    "BAND_ALPHA",
    "METRIC_LABELS",
    "STYLES",
    "convergence_figure",
    "draw_figure",
    "figure_style",
    "finish_figure",
    "laid_out",
    "plot_metric",
    "save_figure",
    "scatter_vs_theory",
    "se_band",
    "style_axes",
    "sweep_figure",
    "theory_vs_measured",
    "tolerance_lines",
]

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
    trajectories: Trajectory | Mapping[str, Trajectory], metric: str = "distance", ax=None, log: bool | None = None,
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
    for name, traj in trajectories.items():
        s = traj.summary(metric)
        steps = traj.steps_recorded
        line = ax.plot(steps, s["mean"], label=name, lw=1.5)[0]
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
    trajectories: Mapping[str, Trajectory], metrics: Sequence[str], title: str = "", band: str = "se"
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
        data = buffer.getvalue()
        written.append(atomic_write(target, lambda handle, data=data: handle.write(data)))
    plt.close(fig)
    return written


def finish_figure(
    fig, path: str | os.PathLike | None, formats: Sequence[str] = ("png",), *, title: str = "", title_size: float = 11
) -> str | None:
    """Title ``fig``, lay it out tightly, save it at ``path`` (first format's file returned as a string) and close it.

    The one way claim checks and simulations end a figure: with ``path`` None (no plots folder) the
    figure is just closed and None returned.
    """
    if path is None:
        plt.close(fig)
        return None
    if title:
        fig.suptitle(title, fontsize=title_size)
    fig.tight_layout()
    written = save_figure(fig, path, formats)
    return str(written[0])


def laid_out(fig, path: str | os.PathLike | None, formats: Sequence[str] = ("png",)):
    """Lay ``fig`` out tightly, then save it at ``path`` (the files written) or, with ``path`` None, return it.

    The ending of the domain figure functions, which give the figure back to a caller that composes it.
    """
    fig.tight_layout()
    return fig if path is None else save_figure(fig, path, formats)


def draw_figure(draw, data, path: str | os.PathLike | None, formats: Sequence[str] = ("png",), **kwargs) -> str | None:
    """Run a figure function that saves its own files, ``draw(data, path, formats, **kwargs) -> [paths]``
    (e.g. the :mod:`teachtheory.teacher_student` figures), when ``path`` is given; the first file, as a string."""
    if path is None:
        return None
    return str(draw(data, path, formats, **kwargs)[0])


def se_band(ax, x, mean, se, label: str | None = None, alpha: float = BAND_ALPHA, **line):
    """A line at ``mean`` with a shaded band of +- ``se`` in the line's colour; returns the line.

    ``line`` goes to ``ax.plot`` (lw 1.5 unless given).
    """
    mean, se = np.asarray(mean, float), np.asarray(se, float)
    line.setdefault("lw", 1.5)
    drawn = ax.plot(x, mean, label=label, **line)[0]
    ax.fill_between(x, mean - se, mean + se, color=drawn.get_color(), alpha=alpha, lw=0)
    return drawn


def style_axes(
    ax, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None, *, title_size: float = 10,
    legend: float | None = 8, grid: str | None = "major", xscale: str | None = None, yscale: str | None = None,
) -> None:
    """The common finish of a panel: labels, a title, scales, a light grid and a legend.

    Args:
        ax: the matplotlib Axes. xlabel, ylabel, title: set when given (title at ``title_size``).
        legend: legend font size, None for no legend. grid: ``major``, ``both``, ``x``, ``y`` or None.
        xscale, yscale: e.g. ``log``, set when given.
    """
    if xscale:
        ax.set_xscale(xscale)
    if yscale:
        ax.set_yscale(yscale)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title, fontsize=title_size)
    if grid in ("major", "both"):
        ax.grid(alpha=0.3, which=grid)
    elif grid in ("x", "y"):
        ax.grid(alpha=0.3, axis=grid)
    elif grid is not None:
        raise ValueError(f"grid must be 'major', 'both', 'x', 'y' or None, got {grid!r}")
    if legend is not None:
        ax.legend(fontsize=legend)


def scatter_vs_theory(ax, theory, estimate, se, title: str, label: str = "Monte Carlo ± SE") -> None:
    """Estimates (with ± SE error bars) against their closed-form values, and the diagonal estimate = theory."""
    t, e, s = (np.asarray(v, float).ravel() for v in (theory, estimate, se))
    ax.errorbar(t, e, yerr=s, fmt="o", ms=2.5, lw=0.8, alpha=0.7, label=label)
    lo, hi = float(min(t.min(), e.min())), float(max(t.max(), e.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="closed form")
    style_axes(ax, "closed form", "estimate", title, title_size=9, legend=7)


def tolerance_lines(ax, tolerance: float, horizontal: bool = True, **line) -> None:
    """Dashed lines at +- ``tolerance`` (e.g. +- z on a panel of standardised gaps)."""
    line = {"color": "k", "ls": "--", "lw": 1} | line
    for value in (-tolerance, tolerance):
        (ax.axhline if horizontal else ax.axvline)(value, **line)


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
        se_band(ax, t, est, se, label=panel.get("label", "measured (mean ± SE)"), lw=1.6)
        ax.plot(t, np.asarray(panel["theory"], float), "k--", lw=1.2, label=panel.get("theory_label", "theory"))
        for tt, values, label in panel.get("extra", ()):
            ax.plot(tt, values, ":", lw=1.2, label=label)
        if log and np.all(est > 0):
            ax.set_yscale("log")
        style_axes(ax, panel.get("xlabel", "t"), panel.get("ylabel", r"$E\|e_t\|^2$"), panel.get("title") or None)
    return finish_figure(fig, path, title=title)


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
                n = seeds_mean.shape[0]
                se = seeds_mean.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)  # one seed: no band
                se_band(ax, steps, mean, se, label=str(teacher))
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
