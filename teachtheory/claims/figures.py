"""Figures for claim checks: measured curves with standard-error bands against theory curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..plotting import plt, save_figure

__all__ = ["theory_vs_measured"]


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
    (written,) = save_figure(fig, path)
    return str(written)
