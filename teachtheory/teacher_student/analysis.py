"""Analyses and figures of the student-specialization experiments, shared by simulations and claims.

References:
    Y. Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension",
    ICML 2020 (recovery against teacher strength, the L-shape at convergence).
    Y. Tian, "An Analytical Formula of Population Gradient for two-layered ReLU network and its
    Applications in Convergence and Critical Point Analysis", ICML 2017 (symmetric dynamics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..plotting import laid_out, plt, style_axes
from ..theory import relu as theory
from .training import TeacherStudentConfig, TeacherStudentResult

# The figure functions save to ``path`` (one file per format) and return the paths; with ``path=None`` they
# return the open Figure instead (for notebooks and the docs gallery).

__all__ = [
    "OBSERVED_RANGE", "observed", "specialization_config", "l_shape_statistics", "figure_recovery_by_node",
    "figure_l_shape", "figure_sorted_best_corr", "figure_alignment_over_time", "figure_symmetric_dynamics",
]


# A node is "observed" by the data (Tian's premise: its ReLU boundary passes through the inputs) when it is
# active on a fraction of held-out inputs strictly inside this range: dead and always-on nodes are not.
OBSERVED_RANGE = (0.01, 0.99)


def observed(active: np.ndarray, active_range: tuple[float, float] = OBSERVED_RANGE) -> np.ndarray:
    """Which nodes are observed: their active fraction ``active`` (any shape) strictly inside ``active_range``."""
    return (active > active_range[0]) & (active < active_range[1])


def specialization_config(scale: str, steps: int, **changes) -> TeacherStudentConfig:
    """The two-layer specialization setting: d = 20, m = 10 teacher nodes, student 5x over-realised,
    10 outputs, Gaussian input, N = 4000 training samples, SGD (lr 0.05, momentum 0.9, batch 64)."""
    base = dict(input_dim=20, teacher_widths=(10,), output_dim=10, multi=5, train_size=4000, eval_size=2000,
                batch_size=64, lr=0.05, momentum=0.9, steps=steps, record_every=max(1, steps // 40))
    if scale == "full":
        base.update(input_dim=50, teacher_widths=(20,), train_size=20000, eval_size=5000)
    base.update(changes)
    return TeacherStudentConfig(**base)


# -- statistics used by the claims and the figures ----------------------------------------------


def l_shape_statistics(result: TeacherStudentResult, corr_low: float = 0.8, active_range=(0.05, 0.95)) -> dict:
    """Fan-out mass of unspecialised student nodes (top hidden layer), per run and over time.

    Unspecialised = best correlation < ``corr_low`` and observed on the data (active on a fraction of
    held-out inputs inside ``active_range``: dead or always-on nodes are not "observed" in Tian's sense).
    share[r, t] = sum of ||v_k||^2 over those nodes / sum over all nodes. ``baseline`` is the share the
    same (final) unspecialised nodes carried at initialisation, when fan-out is independent of alignment.
    """
    fo = result.fanout_history  # [R, T, n]
    sb = result.student_best_history
    act = result.student_active_history
    unspecialised = (sb < corr_low) & observed(act, active_range)
    total = (fo**2).sum(-1)
    share = (fo**2 * unspecialised).sum(-1) / np.maximum(total, 1e-300)
    final_u = unspecialised[:, -1]
    baseline = (fo[:, 0] ** 2 * final_u).sum(-1) / np.maximum(total[:, 0], 1e-300)
    return {"share": share, "baseline": baseline, "count": unspecialised.sum(-1),
            "specialised": (sb >= result.config.threshold).sum(-1)}


# -- figures ---------------------------------------------------------------------------------


def _threshold(results: Mapping[str, TeacherStudentResult]) -> float:
    """The alignment threshold of the compared configurations (the first one's)."""
    return next(iter(results.values())).config.threshold


def figure_recovery_by_node(results: Mapping[str, TeacherStudentResult], path, formats=("png",), layer: int = -1,
                            title: str = "") -> list[Path] | plt.Figure:
    """Recovery rate (mean ± SE over runs) and median time to alignment against the teacher index j."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    for label, res in results.items():
        rate, se = res.recovery_rate(layer)
        j = np.arange(1, rate.shape[0] + 1)
        line = axes[0].plot(j, rate, "o-", ms=3.5, lw=1.4, label=label)[0]
        axes[0].fill_between(j, rate - se, rate + se, color=line.get_color(), alpha=0.2, lw=0)
        tta = res.time_to_alignment[layer]
        med = np.array([np.median(tta[:, k]) for k in range(tta.shape[1])])
        never = ~np.isfinite(med)
        shown = np.where(never, np.nan, med)
        axes[1].plot(j, shown, "o-", ms=3.5, lw=1.4, color=line.get_color(), label=label)
        if never.any():
            top = res.steps[-1] * 1.05
            axes[1].plot(j[never], np.full(never.sum(), top), "x", color=line.get_color(), ms=6)
    axes[0].set_xlabel("teacher node j (fan-out ∝ 1/j^p)")
    axes[0].set_ylabel(f"recovery rate (best corr ≥ {_threshold(results)})")
    axes[0].set_ylim(-0.05, 1.05)
    axes[1].set_xlabel("teacher node j")
    axes[1].set_ylabel("median time to alignment (steps; x = never)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "strong teacher nodes are learned first", fontsize=11)
    return laid_out(fig, path, formats)


def figure_l_shape(results: Mapping[str, TeacherStudentResult], path, formats=("png",), layer: int = -1,
                   title: str = "") -> list[Path] | plt.Figure:
    """Scatter of each student node's best correlation (x) against its fan-out norm (y), at the end."""
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    for label, res in results.items():
        ax.scatter(res.student_best[layer].ravel(), res.fanout[layer].ravel(), s=7, alpha=0.55, label=label)
    ax.axvline(_threshold(results), color="k", ls=":", lw=1)
    ax.set_xlim(-0.05, 1.02)
    style_axes(ax, "best correlation with a teacher node", "fan-out norm ||v_k||", title or "L shape at convergence",
               legend=None)
    ax.legend(fontsize=8, markerscale=2)
    return laid_out(fig, path, formats)


def figure_sorted_best_corr(results: Mapping[str, TeacherStudentResult], path, formats=("png",), layer: int = -1,
                            title: str = "") -> list[Path] | plt.Figure:
    """Best correlation per teacher node, sorted in decreasing order within each run (mean over runs)."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for label, res in results.items():
        final = np.sort(res.best_corr[layer][:, -1], axis=1)[:, ::-1]
        mean = final.mean(0)
        se = final.std(0, ddof=1) / math.sqrt(final.shape[0]) if final.shape[0] > 1 else 0 * mean
        k = np.arange(1, mean.shape[0] + 1)
        line = ax.plot(k, mean, "o-", ms=3, lw=1.4, label=label)[0]
        ax.fill_between(k, mean - se, mean + se, color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(_threshold(results), color="k", ls=":", lw=1)
    style_axes(ax, "rank of teacher node (by best correlation)", "best correlation",
               title or "sorted best-correlation curves")
    return laid_out(fig, path, formats)


def figure_alignment_over_time(result: TeacherStudentResult, path, formats=("png",), layer: int = -1,
                               title: str = "") -> list[Path] | plt.Figure:
    """Best correlation of every teacher node over training (mean over runs), with the gradient size."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    best = result.best_corr[layer].mean(0)  # [T, m]
    cmap = plt.get_cmap("viridis")
    m = best.shape[1]
    for j in range(m):
        axes[0].plot(result.steps, best[:, j], color=cmap(j / max(m - 1, 1)), lw=1.3,
                     label=f"j={j + 1}" if m <= 12 else None)
    axes[0].axhline(result.config.threshold, color="k", ls=":", lw=1)
    axes[0].set_xlabel("SGD step")
    axes[0].set_ylabel("best correlation (mean over runs)")
    if m <= 12:
        axes[0].legend(fontsize=7, ncol=2)
    axes[1].semilogy(result.steps, result.eval_loss.mean(0), label="held-out loss")
    axes[1].semilogy(result.steps, result.g1_inf.mean(0), label=r"max$_x\|g_1(x)\|_\infty$")
    axes[1].semilogy(result.steps, result.grad_norm.mean(0), label="parameter gradient norm")
    axes[1].set_xlabel("SGD step")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"alignment over time (p = {result.config.strength_decay:g})", fontsize=11)
    return laid_out(fig, path, formats)


def figure_symmetric_dynamics(trajectories: Mapping[str, dict], path, formats=("png",),
                              title: str = "") -> list[Path] | plt.Figure:
    """(x, y) = (mean diagonal, mean off-diagonal) of W_t for symmetric and perturbed starts, one panel per K."""
    Ks = sorted({k for k, _ in trajectories})
    fig, axes = plt.subplots(1, len(Ks), figsize=(4.0 * len(Ks), 3.8), squeeze=False)
    for ax, K in zip(axes[0], Ks):
        for (k, label), tr in trajectories.items():
            if k != K:
                continue
            x, y, _ = theory.symmetric_coordinates(tr["W"])
            x, y = x.reshape(-1, x.shape[-1]).numpy(), y.reshape(-1, y.shape[-1]).numpy()
            line = None
            for i in range(x.shape[0]):
                line = ax.plot(x[i], y[i], lw=1.1, alpha=0.8, color=None if line is None else line.get_color(),
                               label=label if i == 0 else None)[0]
                ax.plot(x[i, -1], y[i, -1], "o", ms=3, color=line.get_color())
        xs = theory.symmetric_fixed_point(K)
        ax.plot([xs], [xs], "k*", ms=10, label="symmetric fixed point")
        ax.plot([1], [0], "rs", ms=6, label="w* (x=1, y=0)")
        ax.plot([-0.2, 1.1], [-0.2, 1.1], "k:", lw=0.8)
        ax.set_xlabel("x (mean diagonal)")
        ax.set_ylabel("y (mean off-diagonal)")
        ax.set_title(f"K = {K}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title or "population-gradient descent from symmetric starts", fontsize=11)
    return laid_out(fig, path, formats)


