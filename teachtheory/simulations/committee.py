"""Simulation ``committee``: online SGD of soft committee machines against the Saad-Solla ODEs.

Writes into its output folder:

* ``generalisation_error.png``: eps_g(alpha) from the ODE and from SGD on the actual weights (K = M = 2,
  first layer trained, small initial overlaps: the symmetric plateau and the escape from it);
* ``order_parameters.png``: Q and R against alpha (ODE solid, SGD mean dashed);
* ``gap_scaling.png``: the mean over runs of sup_alpha |eps_SGD - eps_ODE| against N (log-log), its fitted
  slope and the N^-1/2 reference (order-parameter engine over many runs; weight-level SGD at small N);
* ``config.json`` and ``metrics.json`` (atomic writes).

References:
    Saad & Solla, Phys. Rev. E 52, 4225 (1995) (the symmetric plateau); Goldt et al., NeurIPS 2019 (ODE vs SGD).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.ticker import NullFormatter

from .. import committee as engine
from ..io import write_json
from ..plotting import plt, save_figure
from ..theory.committee import ODESolution
from . import Simulation, register

__all__ = ["run_committee", "plot_eps_dynamics", "plot_order_parameters", "plot_gap_scaling", "SCALE_SETTINGS",
           "plateau_escape"]

SCALE_SETTINGS: dict[str, dict[str, Any]] = {
    "small": {"N": 500, "records": 301, "scaling_N": [250, 500, 1000, 2000], "scaling_runs": 128,
              "weights_N": [250, 500], "weights_runs": 16, "scaling_alpha": 5.0},
    "full": {"N": 2000, "records": 601, "scaling_N": [250, 500, 1000, 2000, 4000, 8000], "scaling_runs": 1000,
             "weights_N": [250, 500, 1000], "weights_runs": 64, "scaling_alpha": 5.0},
}
DEFAULTS = {"small": {"runs": 8, "steps": 75_000}, "full": {"runs": 32, "steps": 300_000}}


def _np(t) -> np.ndarray:
    return torch.as_tensor(t).detach().to(torch.float64).cpu().numpy()


def plot_eps_dynamics(ax, ode: ODESolution, record: engine.CommitteeRecord, *, runs_drawn: int = 8,
                      log: bool = True) -> None:
    """eps_g against alpha: the ODE (solid black), SGD runs (thin) and their mean ± SE (dashed, band)."""
    eps = _np(record.eps)
    alpha = np.asarray(record.alpha)
    for r in range(min(runs_drawn, eps.shape[0])):
        ax.plot(alpha, eps[r], color="tab:blue", lw=0.6, alpha=0.35, label="SGD runs" if r == 0 else None)
    mean = eps.mean(0)
    se = eps.std(0, ddof=1) / np.sqrt(eps.shape[0]) if eps.shape[0] > 1 else np.zeros_like(mean)
    ax.plot(np.asarray(ode.alpha), _np(ode.eps), "k-", lw=1.4, label="ODE")
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
    Qs, Rs = _np(record.Q).mean(0), _np(record.R).mean(0)
    Qo, Ro = _np(ode.Q), _np(ode.R)
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


def run_committee(out: str | Path, scale: str = "small", runs: int | None = None, steps: int | None = None,
                  seed: int = 0, device: str = "cpu", formats: tuple[str, ...] = ("png",),
                  progress: Callable[[str, int, int], None] | None = None, *,
                  settings: dict[str, Any] | None = None) -> dict:
    """Run the committee simulation and write config.json, metrics.json and the figures into ``out``.

    Args:
        out: output folder. scale: "small" or "full" (sizes in ``SCALE_SETTINGS``).
        runs: SGD runs of the plateau dynamics (default 8 small, 32 full).
        steps: SGD steps of the plateau dynamics (alpha_max = steps / N; default alpha_max = 150).
        seed, device, formats: as for every simulation. progress: ``progress(label, done, total)``.
        settings: overrides of ``SCALE_SETTINGS[scale]`` (e.g. smaller sizes for a smoke test).

    Returns:
        {"out", "figures", "table" (rows for the CLI), "metrics"}.
    """
    if scale not in SCALE_SETTINGS:
        raise ValueError(f"scale must be one of {', '.join(SCALE_SETTINGS)}; got {scale!r}")
    runs = DEFAULTS[scale]["runs"] if runs is None else runs
    steps = DEFAULTS[scale]["steps"] if steps is None else steps
    for name, value in (("runs", runs), ("steps", steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    unknown = set(settings or {}) - set(SCALE_SETTINGS[scale])
    if unknown:
        raise ValueError(f"settings: unknown keys {sorted(unknown)}; known: {sorted(SCALE_SETTINGS[scale])}")
    settings = SCALE_SETTINGS[scale] | (settings or {})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    N = settings["N"]
    alpha_max = steps / N
    plateau = engine.plateau_problem(2, 2)
    check = engine.ode_check_problem()
    scaling_alphas = np.linspace(0.0, settings["scaling_alpha"], int(round(settings["scaling_alpha"] * 10)) + 1)
    config = {
        "simulation": "committee", "scale": scale, "runs": runs, "steps": steps, "seed": seed, "device": device,
        "settings": settings,
        "dynamics": {"N": N, "alpha_max": alpha_max, "problem": plateau.to_spec(), "engine": "weights",
                     "dtype": "float32", "ode": {"method": "DOP853", "rtol": 1e-10, "atol": 1e-12}},
        "scaling": {"problem": check.to_spec(), "Ns": settings["scaling_N"], "runs": settings["scaling_runs"],
                    "alphas": [0.0, settings["scaling_alpha"], len(scaling_alphas)], "engine": "order-parameters",
                    "weights_Ns": settings["weights_N"], "weights_runs": settings["weights_runs"],
                    "ode": {"method": "rk4", "dt": 0.05, "error": "Richardson step halving"}},
        "torch": torch.__version__,
    }
    write_json(out / "config.json", config)

    def report(label: str):
        return None if progress is None else (lambda done, total: progress(label, done, total))

    # 1. plateau dynamics: SGD on the weights against the ODE
    record_alphas = np.linspace(0.0, alpha_max, settings["records"])
    dyn = engine.simulate_sgd(plateau, N, record_alphas, runs=runs, seed=seed, device=device, dtype=torch.float32,
                              progress=report(f"SGD N={N}"))
    t_ode = time.perf_counter()
    ode = plateau.ode(dyn.alpha, method="DOP853", rtol=1e-10, atol=1e-12)
    ode_seconds = time.perf_counter() - t_ode
    # 2. finite-size scaling of the gap
    scaling = engine.gap_scaling(check, settings["scaling_N"], scaling_alphas, runs=settings["scaling_runs"],
                                 seed=seed + 7, device=device, progress=progress)
    weights = engine.gap_scaling(check, settings["weights_N"], scaling_alphas, runs=settings["weights_runs"],
                                 seed=seed + 11, engine="weights", device=device, progress=progress)

    figures = []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    plot_eps_dynamics(ax, ode, dyn)
    ax.set_title(f"soft committee K=M=2, erf, eta={plateau.lr:g}: plateau and escape", fontsize=10)
    figures += save_figure(fig, out / "generalisation_error", formats)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    plot_order_parameters(axes, ode, dyn)
    fig.suptitle(f"order parameters, N={N}, R={runs}", fontsize=10)
    figures += save_figure(fig, out / "order_parameters", formats)
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    plot_gap_scaling(ax, scaling, extra=[weights])
    ax.set_title("ODE vs SGD: sup-gap of $\\epsilon_g$ over $\\alpha \\in [0, 5]$", fontsize=10)
    figures += save_figure(fig, out / "gap_scaling", formats)

    eps = _np(dyn.eps)
    ode_eps = _np(ode.eps)
    esc_ode = plateau_escape(dyn.alpha, ode_eps)
    esc_runs = [plateau_escape(dyn.alpha, e)["escape_alpha"] for e in eps]
    se = eps.std(0, ddof=1) / np.sqrt(eps.shape[0]) if eps.shape[0] > 1 else np.zeros(eps.shape[1])
    metrics = {
        "simulation": "committee",
        "dynamics": {
            "N": N, "runs": runs, "alpha": dyn.alpha, "eps_ode": ode_eps, "eps_sgd_mean": eps.mean(0), "eps_sgd_se": se,
            "eps_sgd_median": np.median(eps, 0), "Q_sgd_mean": _np(dyn.Q).mean(0), "R_sgd_mean": _np(dyn.R).mean(0),
            "Q_ode": _np(ode.Q), "R_ode": _np(ode.R), "plateau_ode": esc_ode, "escape_alpha_sgd_runs": esc_runs,
            "sup_gap_runs": engine.sup_gap(dyn, ode.eps), "sgd_seconds": dyn.seconds, "ode_seconds": ode_seconds,
            "ode_details": ode.details,
        },
        "scaling": {
            "Ns": scaling.Ns, "mean_gap": scaling.fit["mean"], "se_gap": scaling.fit["se"],
            "slope": scaling.fit["slope"], "slope_se": scaling.fit["slope_se"],
            "slope_se_wls": scaling.fit["slope_se_wls"],
            "chi2": scaling.fit["chi2"], "local_slopes": scaling.fit["local_slopes"], "runs": settings["scaling_runs"],
            "ode_error": scaling.ode.error, "seconds": scaling.seconds,
            "weights": {"Ns": weights.Ns, "mean_gap": weights.fit["mean"], "se_gap": weights.fit["se"],
                        "slope": weights.fit["slope"], "slope_se": weights.fit["slope_se"],
                        "runs": settings["weights_runs"], "seconds": weights.seconds},
        },
        "seconds": time.perf_counter() - started,
    }
    write_json(out / "metrics.json", metrics)
    finite = [a for a in esc_runs if np.isfinite(a)]
    nan = float("nan")
    rows = {
        "plateau eps_g (ODE)": {"value": esc_ode["plateau_eps"], "SE": nan, "seconds": ode_seconds},
        "escape alpha (ODE)": {"value": esc_ode["escape_alpha"], "SE": nan, "seconds": nan},
        f"escape alpha (SGD N={N}, median of {runs})": {
            "value": float(np.median(finite)) if finite else nan, "SE": nan, "seconds": float(dyn.seconds)},
        "final eps_g (ODE)": {"value": float(ode_eps[-1]), "SE": nan, "seconds": nan},
        f"final eps_g (SGD N={N}, mean)": {"value": float(eps[:, -1].mean()), "SE": float(se[-1]), "seconds": nan},
        f"gap slope, order-parameter engine (R={settings['scaling_runs']})": {
            "value": float(scaling.fit["slope"]), "SE": float(scaling.fit["slope_se"]),
            "seconds": float(scaling.seconds)},
        f"gap slope, weights engine (R={settings['weights_runs']})": {
            "value": float(weights.fit["slope"]), "SE": float(weights.fit["slope_se"]),
            "seconds": float(weights.seconds)},
    }
    table = {label: {k: v for k, v in row.items() if np.isfinite(v)} for label, row in rows.items()}
    return {"out": str(out), "figures": [str(f) for f in figures], "table": table, "metrics": metrics}


register(Simulation(
    "committee", "soft committee machine: online SGD vs the Saad-Solla ODEs (plateau, order parameters, 1/sqrt N gap)",
    "Saad & Solla 1995 / Goldt et al. 2019", DEFAULTS, runner=run_committee,
))
