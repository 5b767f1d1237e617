"""Simulation ``relu-dynamics``: population-gradient descent of two-layer ReLU networks.

K = 1 and K = 2 node trajectories drawn in the plane, and the symmetric (x, y) dynamics for several K:
symmetric against perturbed starts (:func:`run_relu_dynamics`). Writes ``config.json``, ``metrics.json``
and PNG figures into its output folder.

References:
    Y. Tian, "An Analytical Formula of Population Gradient for two-layered ReLU network and its
    Applications in Convergence and Critical Point Analysis", ICML 2017 (population gradient, Lyapunov
    region, symmetry breaking). Y. Tian, "Understanding Deep Models With Teacher-student Setting" (talk).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from teachtheory.io import write_json
from teachtheory.plotting import plt, save_figure
from teachtheory.random import RunStreams, as_seeds
from teachtheory.simulation import Simulation, register, write_metrics
from teachtheory.teacher_student import figure_symmetric_dynamics, population_gradient_descent
from teachtheory.theory import relu as theory

from .common import Progress, final_summary, prepare_output, single_threaded

__all__ = ["DEFAULTS", "KS", "run_relu_dynamics"]

KS = {"small": (2, 3, 5, 10), "full": (2, 3, 4, 5, 8, 10)}
DEFAULTS = {"small": {"runs": 12, "steps": 3000}, "full": {"runs": 32, "steps": 10000}}


def _plane_panel(ax, trajectories: np.ndarray, w_star: np.ndarray, title: str, omega: bool = False) -> None:
    """Draw node trajectories [S, T, K, 2] in the plane with the teacher nodes."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for s in range(trajectories.shape[0]):
        for k in range(trajectories.shape[2]):
            path = trajectories[s, :, k]
            c = colors[(s * trajectories.shape[2] + k) % len(colors)] if trajectories.shape[2] == 1 else colors[k]
            ax.plot(path[:, 0], path[:, 1], lw=1.0, alpha=0.8, color=c)
            ax.plot(path[0, 0], path[0, 1], "o", ms=3, color=c, alpha=0.8)
    for k in range(w_star.shape[0]):
        ax.plot(w_star[k, 0], w_star[k, 1], "k*", ms=11)
    if omega:
        t = np.linspace(0, 2 * np.pi, 200)
        ax.plot(w_star[0, 0] + np.cos(t), w_star[0, 1] + np.sin(t), "k--", lw=0.9, label=r"$\Omega$ boundary")
        ax.legend(fontsize=7)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)


def _run_relu_dynamics(out, scale: str = "small", runs: int = 12, steps: int = 3000, seed: int = 0,
                      device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
    """Population-gradient descent (Tian 2017): K = 1 and K = 2 in the plane; symmetric (x, y) dynamics.

    ``runs`` random starts per panel (K = 1: uniform in a disc of radius 2 around 0; K = 2: each node
    uniform in the disc of radius 1.5), ``steps`` gradient steps (lr 0.1 in the plane, 2/K for the (x, y)
    dynamics). The (x, y) panels
    compare the symmetric start x0 = y0 = 0.1 with x0 = y0 +- 1e-3 and with a generic perturbation of
    size 1e-6, for K in (2, 3, 5, 10) (full: also 4 and 8).
    """
    out = prepare_output(out, runs, steps, device)
    Ks = KS["full" if scale == "full" else "small"]
    streams = RunStreams(as_seeds(seed, runs))
    config = {"simulation": "relu-dynamics",
              "reference": "Tian ICML 2017 (population-gradient dynamics); Tian's teacher-student talk", "scale": scale,
              "runs": runs, "steps": steps, "seed": seed, "device": device, "Ks": Ks,
              "lr": {"K=1": 0.1, "K=2 (plane)": 0.1, "symmetric": "2/K"}, "torch": torch.__version__}
    write_json(out / "config.json", config)
    started = time.perf_counter()
    total = 2 + len(Ks)
    report = (lambda label, done: progress(label, done, total)) if progress is not None else (lambda *_: None)
    # K = 1: starts uniform in the disc of radius 2 around 0 (covers Omega and beyond)
    w_star1 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    angle0 = 2 * math.pi * streams.uniform("k1-angle", 0, (1,))[:, 0]
    radius0 = 2 * streams.uniform("k1-radius", 0, (1,))[:, 0].sqrt()
    w0 = torch.stack([radius0 * torch.cos(angle0), radius0 * torch.sin(angle0)], -1)[:, None, :]
    seconds = {}  # wall time per panel (moved to run.json with the other timings)
    t0 = time.perf_counter()
    tr1 = population_gradient_descent(w0, w_star1, lr=0.1, steps=steps, record_every=1)
    seconds["K=1"] = time.perf_counter() - t0
    report("K=1", 1)
    # K = 2 in the plane, orthonormal teacher e1, e2
    w_star2 = torch.eye(2, dtype=torch.float64)
    a = 2 * math.pi * streams.uniform("k2-angle", 0, (2,))
    r = 1.5 * streams.uniform("k2-radius", 0, (2,)).sqrt()
    W0 = torch.stack([r * torch.cos(a), r * torch.sin(a)], -1)
    t0 = time.perf_counter()
    tr2 = population_gradient_descent(W0, w_star2, lr=0.1, steps=steps, record_every=1)
    seconds["K=2 (plane)"] = time.perf_counter() - t0
    report("K=2", 2)
    # symmetric dynamics
    sym = {}
    metrics_sym = {}
    for i, K in enumerate(Ks):
        eye = torch.eye(K, dtype=torch.float64)
        starts = {"x0 = y0 (symmetric)": theory.symmetric_start(K, 0.1, 0.1)[None],
                  "x0 = y0 + 1e-3": theory.symmetric_start(K, 0.101, 0.1)[None],
                  "x0 = y0 - 1e-3": theory.symmetric_start(K, 0.099, 0.1)[None],
                  "generic 1e-6 perturbation": theory.symmetric_start(K, 0.1, 0.1)[None]
                  + 1e-6 * streams.normal("sym-perturb", K, (K, K))}
        for label, W_init in starts.items():
            t0 = time.perf_counter()
            tr = population_gradient_descent(W_init, eye, lr=2.0 / K, steps=steps, record_every=max(1, steps // 1000))
            seconds[f"K={K}, {label}"] = time.perf_counter() - t0
            sym[(K, label)] = tr
            final_loss = tr["loss"][:, -1].numpy()
            x, y, off = theory.symmetric_coordinates(tr["W"][:, -1])
            metrics_sym[f"K={K}, {label}"] = {
                "final_loss_by_run": final_loss, "reached_global_minimum": float((final_loss < 1e-8).mean()),
                "final_x": x.numpy(), "final_y": y.numpy(), "left_symmetric_form": off.numpy()}
        report(f"K={K}", 3 + i)
    figures = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    _plane_panel(axes[0], tr1["W"].numpy(), w_star1.numpy(), "K = 1: w_t from random starts (w* = e1)", omega=True)
    _plane_panel(axes[1], tr2["W"].numpy(), w_star2.numpy(), "K = 2: both nodes (colour = node), teacher e1, e2")
    fig.suptitle(f"population-gradient descent (Tian 2017), {runs} starts, {steps} steps", fontsize=11)
    fig.tight_layout()
    figures += save_figure(fig, out / "plane_trajectories", formats)
    figures += figure_symmetric_dynamics(sym, out / "symmetric_dynamics", formats)
    d1 = (tr1["W"][:, -1, 0] - w_star1[0]).norm(dim=-1).numpy()
    start1 = tr1["W"][:, 0, 0]
    loss2 = tr2["loss"][:, -1].numpy()
    # mean and SE over the random starts (the symmetric starts are one deterministic start each: no SE)
    summary = {
        "K=1": {"converged_to_w_star": {"final": final_summary(d1 < 1e-6)},
                "final_loss": {"final": final_summary(tr1["loss"][:, -1].numpy())}, "seconds": seconds["K=1"]},
        "K=2 (plane)": {"converged_to_w_star": {"final": final_summary(loss2 < 1e-8)},
                        "final_loss": {"final": final_summary(loss2)}, "seconds": seconds["K=2 (plane)"]},
    }
    for key, entry in metrics_sym.items():
        summary[key] = {"converged_to_w_star": {"final": final_summary(entry["final_loss_by_run"] < 1e-8)},
                        "final_loss": {"final": final_summary(entry["final_loss_by_run"])}, "seconds": seconds[key]}
    table = {label: {"reached w* (fraction)": entry["converged_to_w_star"]["final"]["mean"],
                     "final loss (mean)": entry["final_loss"]["final"]["mean"]} for label, entry in summary.items()}
    write_metrics(out, {
        "simulation": "relu-dynamics", "runs": runs, "steps": steps, "seconds": time.perf_counter() - started,
        "summary": summary, "table": table,
        "k1": {"final_distance": d1, "started_in_omega": theory.in_omega(start1, w_star1[0]).numpy()},
        "k2": {"final_loss": loss2}, "symmetric": metrics_sym,
        "symmetric_fixed_point": {f"K={K}": theory.symmetric_fixed_point(K) for K in Ks},
    })
    return {"out": str(out), "figures": [str(f) for f in figures], "table": table, "summary": summary}


run_relu_dynamics = single_threaded(_run_relu_dynamics)


register(Simulation(
    "relu-dynamics", "population-gradient descent of ReLU nets: K=1, K=2 in the plane, symmetric (x, y) dynamics",
    "Tian ICML 2017 (dynamics)", DEFAULTS,
    runner=run_relu_dynamics,
    protocol="Tian ICML 2017's population-gradient setting (Gaussian input, closed-form expected gradient)",
))
