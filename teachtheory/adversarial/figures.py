"""Figures of the adversarial teacher-student experiments, drawn from saved arrays (so results can be
redrawn without rerunning).

Each function takes ``{label: arrays}`` where ``arrays`` maps "epochs" [T] and the [R, T] (or [R, T, m])
traces of :class:`~teachtheory.adversarial.AdversarialResult` ("robust_oracle", "robust_data", "clean_acc",
"eps_in", "eps_out", "best_corr") to numpy arrays; :func:`result_arrays` builds it from a result.
With ``path=None`` they return the open Figure, otherwise the saved paths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..plotting import laid_out, plt, style_axes
from .training import AdversarialResult

__all__ = ["ARRAYS", "figure_eps_traces", "figure_robust_over_epochs", "figure_sorted_best_nc", "result_arrays"]

ARRAYS = ("epochs", "clean_acc", "robust_oracle", "robust_data", "eps_in", "eps_out", "best_corr")


def result_arrays(result: AdversarialResult) -> dict[str, np.ndarray]:
    """The arrays of a result that the figures use (see :data:`ARRAYS`)."""
    return {name: np.asarray(getattr(result, name)) for name in ARRAYS}


def _band(ax, x, values, label, **style):
    values = np.asarray(values, float)
    mean = values.mean(0)
    se = values.std(0, ddof=1) / math.sqrt(values.shape[0]) if values.shape[0] > 1 else 0 * mean
    line = ax.plot(x, mean, "o-", ms=3, lw=1.4, label=label, **style)[0]
    ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.2, lw=0)
    return line


def figure_robust_over_epochs(results: Mapping[str, Mapping[str, np.ndarray]], path, formats: Sequence[str] = ("png",),
                              title: str = ""):
    """Oracle-robust and data-robust accuracy against epochs, per regime (mean ± SE over runs)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8), sharey=True)
    for label, arr in results.items():
        line = _band(axes[0], arr["epochs"], arr["robust_oracle"], label)
        _band(axes[1], arr["epochs"], arr["robust_data"], label, color=line.get_color())
    for ax, name in zip(axes, ("oracle adversary", "data adversary")):
        ax.set_xlabel("epoch")
        ax.set_title(f"robust accuracy, {name}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (mean ± SE)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "robust accuracy over training", fontsize=11)
    return laid_out(fig, path, formats)


def figure_eps_traces(results: Mapping[str, Mapping[str, np.ndarray]], path, formats: Sequence[str] = ("png",),
                      title: str = ""):
    """eps_in and eps_out of the empirical model against epochs, per regime (mean ± SE over runs)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    for label, arr in results.items():
        line = _band(axes[0], arr["epochs"], arr["eps_in"], label)
        _band(axes[1], arr["epochs"], arr["eps_out"], label, color=line.get_color())
    for ax, name in zip(axes, (r"$\epsilon_{in}$ (in the data plane)", r"$\epsilon_{out}$ (out of the plane)")):
        ax.set_xlabel("epoch")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or r"$W_k = w^*_j + \epsilon_{in} u^{in}_k + \epsilon_{out} u^{out}_k$ over training",
                 fontsize=11)
    return laid_out(fig, path, formats)


def figure_sorted_best_nc(results: Mapping[str, Mapping[str, np.ndarray]], path, formats: Sequence[str] = ("png",),
                          title: str = ""):
    """Final first-layer best normalised correlation per teacher node, sorted within each run (mean ± SE)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for label, arr in results.items():
        final = np.sort(np.asarray(arr["best_corr"])[:, -1], axis=1)[:, ::-1]
        _band(ax, np.arange(1, final.shape[1] + 1), final, label)
    style_axes(ax, "rank of teacher node (by best correlation)", "best normalised correlation",
               title or "sorted best-NC curves (first layer)", legend=7)
    return laid_out(fig, path, formats)
