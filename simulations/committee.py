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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from teachtheory import committee as engine
from teachtheory.committee.figures import (
    as_numpy,
    plateau_escape,
    plot_eps_dynamics,
    plot_gap_scaling,
    plot_order_parameters,
)
from teachtheory.io import write_json
from teachtheory.plotting import plt, save_figure
from teachtheory.simulation import Simulation, mean_se_entry, register, write_metrics

from .common import prepare_output

__all__ = ["SCALE_SETTINGS", "run_committee"]

SCALE_SETTINGS: dict[str, dict[str, Any]] = {
    "small": {"N": 500, "records": 301, "scaling_N": [250, 500, 1000, 2000], "scaling_runs": 128,
              "weights_N": [250, 500], "weights_runs": 16, "scaling_alpha": 5.0},
    "full": {"N": 2000, "records": 601, "scaling_N": [250, 500, 1000, 2000, 4000, 8000], "scaling_runs": 1000,
             "weights_N": [250, 500, 1000], "weights_runs": 64, "scaling_alpha": 5.0},
}
DEFAULTS = {"small": {"runs": 8, "steps": 75_000}, "full": {"runs": 32, "steps": 300_000}}
# The ODE leaves the symmetric plateau at alpha ~ 66: the dynamics must reach alpha = 80 to show the escape.
ESCAPE_ALPHA = 80.0
MINIMUM = {scale: {"runs": 1, "steps": int(ESCAPE_ALPHA * s["N"])} for scale, s in SCALE_SETTINGS.items()}


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
    unknown = set(settings or {}) - set(SCALE_SETTINGS[scale])
    if unknown:
        raise ValueError(f"settings: unknown keys {sorted(unknown)}; known: {sorted(SCALE_SETTINGS[scale])}")
    settings = SCALE_SETTINGS[scale] | (settings or {})
    out = prepare_output(out, runs, steps, device)
    started = time.perf_counter()
    N = settings["N"]
    alpha_max = steps / N
    plateau = engine.plateau_problem(2, 2)
    check = engine.ode_check_problem()
    scaling_alphas = np.linspace(0.0, settings["scaling_alpha"], round(settings["scaling_alpha"] * 10) + 1)
    config = {
        "simulation": "committee", "scale": scale, "runs": runs, "steps": steps, "seed": seed, "device": device,
        "settings": settings,
        "dynamics": {"N": N, "alpha_max": alpha_max, "problem": plateau.to_spec(), "engine": "weights",
                     "dtype": "float32", "ode": {"method": "DOP853", "rtol": 1e-10, "atol": 1e-12}},
        "scaling": {"problem": check.to_spec(), "Ns": settings["scaling_N"], "runs": settings["scaling_runs"],
                    "alphas": [0.0, settings["scaling_alpha"], len(scaling_alphas)], "engine": "order-parameters",
                    "weights_Ns": settings["weights_N"], "weights_runs": settings["weights_runs"],
                    "ode": {"method": "DOP853", "error": "difference to a 10x looser solve"}},
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

    eps = as_numpy(dyn.eps)
    ode_eps = as_numpy(ode.eps)
    esc_ode = plateau_escape(dyn.alpha, ode_eps)
    for key in [k for k, v in esc_ode.items() if not np.isfinite(v)]:  # too short a run: say so next to the nan
        esc_ode[f"{key}_note"] = f"nan: alpha_max = {alpha_max:g} ends before the plateau or its escape"
    esc_runs = [plateau_escape(dyn.alpha, e)["escape_alpha"] for e in eps]
    spread = mean_se_entry(eps)
    se = spread["se"] if spread["se"] is not None else np.full(eps.shape[1], np.nan)  # for the table only
    metrics = {
        "simulation": "committee",
        "dynamics": {
            "N": N, "runs": runs, "alpha": dyn.alpha, "eps_ode": ode_eps, "eps_sgd_mean": eps.mean(0),
            **{f"eps_sgd_{k}": v for k, v in spread.items() if k != "mean"},
            "eps_sgd_median": np.median(eps, 0), "Q_sgd_mean": as_numpy(dyn.Q).mean(0),
            "R_sgd_mean": as_numpy(dyn.R).mean(0), "Q_ode": as_numpy(ode.Q), "R_ode": as_numpy(ode.R),
            "plateau_ode": esc_ode, "escape_alpha_sgd_runs": esc_runs,
            "escape_alpha_sgd_runs_note": "nan: the run had not escaped the plateau by alpha_max",
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
    write_metrics(out, metrics)
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
    "Saad & Solla 1995 / Goldt et al. 2019", DEFAULTS, runner=run_committee, minimum=MINIMUM,
    minimum_reason=f"alpha = steps / N must reach {ESCAPE_ALPHA:g} to show the escape from the plateau",
    protocol=("Saad & Solla's order-parameter ODEs against online SGD at finite N, the papers' K, M and learning "
              'rates'),
))
