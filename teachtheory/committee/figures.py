"""Figures of soft-committee-machine runs: generalisation error against the ODE, order parameters, and
the scaling of the SGD-ODE gap with N; shared by the simulation and the claims.

References:
    D. Saad and S. A. Solla, "On-line learning in soft committee machines", Phys. Rev. E 52, 4225 (1995).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.ticker import NullFormatter

from ..plotting import plt
from ..theory.committee import ODESolution
from . import online as engine

__all__ = ["as_numpy", "plot_eps_dynamics", "plot_order_parameters", "plot_gap_scaling", "plateau_escape"]


def as_numpy(t) -> np.ndarray:
    """A tensor (or array) as a float64 numpy array on the CPU."""
    return torch.as_tensor(t).detach().to(torch.float64).cpu().numpy()


def plot_eps_dynamics(ax, ode: ODESolution, record: engine.CommitteeRecord, *, runs_drawn: int = 8,
                      log: bool = True) -> None:
    """eps_g against alpha: the ODE (solid black), SGD runs (thin) and their mean ± SE (dashed, band)."""
    eps = as_numpy(record.eps)
    alpha = np.asarray(record.alpha)
    for r in range(min(runs_drawn, eps.shape[0])):
        ax.plot(alpha, eps[r], color="tab:blue", lw=0.6, alpha=0.35, label="SGD runs" if r == 0 else None)
    mean = eps.mean(0)
    se = eps.std(0, ddof=1) / np.sqrt(eps.shape[0]) if eps.shape[0] > 1 else np.zeros_like(mean)
    ax.plot(np.asarray(ode.alpha), as_numpy(ode.eps), "k-", lw=1.4, label="ODE")
    ax.fill_between(alpha, mean - se, mean + se, color="tab:orange", alpha=0.3, lw=0)
    ax.plot(alpha, mean, "--", color="tab:orange", lw=1.6, label=f"SGD mean ± SE (R={eps.shape[0]}, N={record.N})")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha$ = steps / N")
    ax.set_ylabel(r"$\epsilon_g$")
    ax.grid(alpha=0.3, which="both" if log else "major")
    ax.legend(fontsize=8)


def plot_order_parameters(axes: Sequence, ode: ODESolution, record: engine.CommitteeRecord) -> None:
    """Q_kl (k <= l) and R_kn against alpha: ODE solid, SGD mean over runs dashed, one colour per entry."""
    alpha, oa = np.asarray(record.alpha), np.asarray(ode.alpha)
    Qs, Rs = as_numpy(record.Q).mean(0), as_numpy(record.R).mean(0)
    Qo, Ro = as_numpy(ode.Q), as_numpy(ode.R)
    K, M = Qs.shape[-2], Rs.shape[-1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    i = 0
    for k in range(K):
        for l in range(k, K):
            c = colours[i % len(colours)]
            axes[0].plot(oa, Qo[:, k, l], "-", color=c, lw=1.3, label=f"$Q_{{{k + 1}{l + 1}}}$")
            axes[0].plot(alpha, Qs[:, k, l], "--", color=c, lw=1.3)
            i += 1
    i = 0
    for k in range(K):
        for n in range(M):
            c = colours[i % len(colours)]
            axes[1].plot(oa, Ro[:, k, n], "-", color=c, lw=1.3, label=f"$R_{{{k + 1}{n + 1}}}$")
            axes[1].plot(alpha, Rs[:, k, n], "--", color=c, lw=1.3)
            i += 1
    for ax, name in zip(axes, ("Q", "R")):
        ax.set_xlabel(r"$\alpha$")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2, title="ODE solid, SGD mean dashed", title_fontsize=7)


def plot_gap_scaling(ax, scaling: engine.GapScaling, *, extra: Sequence[engine.GapScaling] = (),
                     reference_slope: float = -0.5, other_slopes: Sequence[float] = ()) -> None:
    """Mean sup-gap ± SE against N (log-log) with the fitted power law and reference slopes anchored at the fit."""
    Ns = np.asarray(scaling.Ns, dtype=float)
    fit = scaling.fit
    ax.errorbar(Ns, fit["mean"], yerr=fit["se"], fmt="o", color="tab:blue", capsize=3,
                label=f"{scaling.engine} engine (R={scaling.gaps[0].size} per N)")
    grid = np.geomspace(Ns.min() / 1.3, Ns.max() * 1.3, 50)
    ax.plot(grid, np.exp(fit["intercept"]) * grid ** fit["slope"], "-", color="tab:blue", lw=1.2,
            label=f"fit: slope {fit['slope']:.3f} ± {fit['slope_se']:.3f}")
    anchor_N = np.exp(np.log(Ns).mean())
    anchor = np.exp(fit["intercept"]) * anchor_N ** fit["slope"]
    ax.plot(grid, anchor * (grid / anchor_N) ** reference_slope, "k--", lw=1.0, label=f"slope {reference_slope:g}")
    for s in other_slopes:
        ax.plot(grid, anchor * (grid / anchor_N) ** s, "r:", lw=1.0, label=f"slope {s:g}")
    for other in extra:
        ax.errorbar(np.asarray(other.Ns, float), other.fit["mean"], yerr=other.fit["se"], fmt="s", color="tab:orange",
                    capsize=3, mfc="none", label=f"{other.engine} engine (R={other.gaps[0].size} per N)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(set(scaling.Ns) | {n for other in extra for n in other.Ns})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(n) for n in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("N")
    ax.set_ylabel(r"mean over runs of $\sup_\alpha|\epsilon_{SGD} - \epsilon_{ODE}|$")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def plateau_escape(alpha: np.ndarray, eps: np.ndarray) -> dict[str, float]:
    """The plateau and the escape from it, read off one eps_g curve.

    After the first drop (eps below half its initial value), the plateau is the point where eps changes
    slowest (smallest |d log eps / d alpha|, searched while eps stays above 1% of its value at the drop);
    the escape time is the first later alpha at which eps falls below half the plateau level (nan if never).
    """
    alpha, eps = np.asarray(alpha, float), np.asarray(eps, float)
    nan = {"plateau_eps": float("nan"), "plateau_alpha": float("nan"), "escape_alpha": float("nan")}
    if eps.size < 5 or not np.any(eps < 0.5 * eps[0]):
        return nan
    logs = np.log(np.clip(eps, 1e-300, None))
    rate = np.abs(np.gradient(logs, alpha))
    start = int(np.argmax(eps < 0.5 * eps[0]))
    window = np.nonzero(eps[start:] > 0.01 * eps[start])[0]
    stop = start + (int(window[-1]) + 1 if window.size else 1)
    i = start + int(np.argmin(rate[start:stop]))
    level = float(eps[i])
    after = np.nonzero(eps[i:] < 0.5 * level)[0]
    return {"plateau_eps": level, "plateau_alpha": float(alpha[i]),
            "escape_alpha": float(alpha[i + after[0]]) if after.size else float("nan")}


