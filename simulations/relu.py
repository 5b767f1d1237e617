"""Simulations of teacher-student ReLU networks (Tian's teacher-student talk): student specialization and population dynamics.

Three experiments, each a runner ``(out, scale, runs, steps, seed, device, formats, progress) -> dict``
that writes ``config.json``, ``metrics.json`` (atomic) and PNG figures into ``out``:

* ``specialization`` (:func:`run_specialization`): two-layer teacher with fan-out strengths 1/j^p, an
  over-realised student trained by SGD; recovery rate against the teacher index for several p, the
  L-shape scatter (best correlation against fan-out norm), sorted best-correlation curves, alignment
  over time, and the augmentation comparison (none / teacher-agnostic / teacher-aware) on a small D.
* ``specialization-deep`` (:func:`run_specialization_deep`): the same for a multi-layer teacher, per layer.
* ``relu-dynamics`` (:func:`run_relu_dynamics`): population-gradient descent (Tian 2017) for K = 1
  and K = 2 drawn in the plane, and the symmetric (x, y) dynamics for several K: symmetric against
  perturbed starts.

References:
    Y. Tian, ICML 2017 (population gradient, Lyapunov region, symmetry breaking).
    Y. Tian, ICML 2020 (student specialization). Tian's teacher-student talk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from teachtheory.io import write_json
from teachtheory.plotting import plt, save_figure
from teachtheory.simulation import ONE_RUN_NOTE, Simulation, mean_se, register, write_metrics
from teachtheory.teacher_student import (
    TeacherStudentResult,
    figure_alignment_over_time,
    figure_l_shape,
    figure_recovery_by_node,
    figure_sorted_best_corr,
    figure_symmetric_dynamics,
    l_shape_statistics,
    specialization_config,
    train_teacher_student,
)
from teachtheory.theory import relu as theory
from teachtheory.validation import check_device, check_positive_int

__all__ = [
    "STRENGTHS",
    "run_relu_dynamics",
    "run_specialization",
    "run_specialization_deep",
]

STRENGTHS = {"small": (0.0, 1.0, 2.0, 2.5), "full": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)}
Progress = Callable[[str, int, int], None] | None


# -- runners ---------------------------------------------------------------------------------


def _labelled_progress(progress: Progress, label: str, offset: int, total: int):
    def report(done: int, _total: int) -> None:
        if progress is not None:
            progress(label, offset + done, total)
    return report


def _final(values) -> dict:
    """Mean and SE over runs of per-run values (SE None with a note for one run)."""
    out = mean_se(np.asarray(values, float))
    out["mean"] = float(out["mean"])
    if out["se"] is not None:
        out["se"] = float(out["se"])
    return out


def _summary_entry(res: TeacherStudentResult, layer: int = -1) -> dict:
    rec = res.recovered[layer].mean(1)  # per run
    return {"recovery_rate": {"final": _final(rec)}, "eval_loss": {"final": _final(res.eval_loss[:, -1])},
            "g1_inf": {"final": _final(res.g1_inf[:, -1])}, "seconds": res.seconds}


def _table_row(res: TeacherStudentResult, layer: int = -1) -> dict:
    """One CLI table row: recovery (mean ± SE over runs), weakest teacher node's recovery, loss, gradient."""
    entry = _summary_entry(res, layer)
    rate, _ = res.recovery_rate(layer)
    se = entry["recovery_rate"]["final"]["se"]
    return {"recovery": entry["recovery_rate"]["final"]["mean"], "± SE": "-" if se is None else se,  # "-": one run
            "weakest node": float(rate[-1]), "held-out loss": entry["eval_loss"]["final"]["mean"],
            "max |g1|_inf": entry["g1_inf"]["final"]["mean"], "seconds": float(res.seconds)}


def _result_json(res: TeacherStudentResult) -> dict:
    out = res.summary()
    if res.runs < 2:  # the training summary writes 0 for the spread of one run: there is none
        out["final_eval_loss"].update(se=None, se_note=ONE_RUN_NOTE)
    for layer in out["layers"]:
        if res.runs < 2:
            layer.update(recovery_se_by_node=None, recovery_se_by_node_note=ONE_RUN_NOTE)
        layer["median_time_to_alignment_by_node_note"] = "inf: the node did not align within the run (in most runs)"
    out["config"] = res.config.to_dict()
    out["steps_recorded"] = res.steps
    out["eval_loss_mean"] = res.eval_loss.mean(0)
    out["g1_inf_mean"] = res.g1_inf.mean(0)
    out["best_corr_mean_by_layer"] = [b.mean(0) for b in res.best_corr]
    out["time_to_alignment"] = [np.where(np.isfinite(t), t, -1.0) for t in res.time_to_alignment]
    out["time_to_alignment_note"] = "-1 = never aligned within the run"
    lstats = l_shape_statistics(res)
    out["l_shape"] = {"unspecialised_fanout_share_final": lstats["share"][:, -1],
                      "baseline_share_at_init": lstats["baseline"]}
    return out


def _check_common(out, runs: int, steps: int, device: str, formats) -> Path:
    check_positive_int(runs, "runs")
    check_positive_int(steps, "steps")
    check_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run_specialization(out, scale: str = "small", runs: int = 16, steps: int = 4000, seed: int = 0,
                       device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
    """Two-layer student specialization: recovery against teacher index for several p, the L shape,
    sorted best-correlation curves, alignment over time, and augmentation on a small training set.

    Writes config.json, metrics.json, recovery_by_node, l_shape, sorted_best_corr, alignment_over_time and
    augmentation figures into ``out``. Returns {"out", "figures", "summary", "results"}.
    """
    out = _check_common(out, runs, steps, device, formats)
    strengths = STRENGTHS["full" if scale == "full" else "small"]
    aug_p = 1.5
    aug_base = {"train_size": 300 if scale != "full" else 1000, "strength_decay": aug_p}
    aug_settings = {"D only": {"augment": "none"}, "teacher-agnostic": {"augment": "agnostic", "augment_count": 2},
                    "teacher-aware": {"augment": "aware", "augment_count": 2}}
    configs = {f"p={p:g}": specialization_config(scale, steps, strength_decay=p) for p in strengths}
    aug_configs = {f"aug: {k}": specialization_config(scale, steps, **aug_base, **v) for k, v in aug_settings.items()}
    write_json(out / "config.json", {
        "simulation": "specialization", "reference": "Tian ICML 2020 (specialization experiments); Tian's teacher-student talk talk", "scale": scale,
        "runs": runs, "steps": steps, "seed": seed, "device": device, "torch": torch.__version__,
        "strength_configs": {k: c.to_dict() for k, c in configs.items()},
        "augmentation_configs": {k: c.to_dict() for k, c in aug_configs.items()},
        "notes": {"augmentation": "agnostic: x +- delta e_k for 2 random axes per sample; aware: boundary projection "
                                  "+- delta w_j/||w_j|| for 2 random teacher nodes per sample; both add 4|D| points"},
    })
    all_configs = {**configs, **aug_configs}
    total = steps * len(all_configs)
    results: dict[str, TeacherStudentResult] = {}
    started = time.perf_counter()
    for i, (label, cfg) in enumerate(all_configs.items()):
        results[label] = train_teacher_student(cfg, runs=runs, seed=seed, device=device,
                                               progress=_labelled_progress(progress, label, i * steps, total))
    strength_results = {k: results[k] for k in configs}
    aug_results = {k.removeprefix("aug: "): results[k] for k in aug_configs}
    figures = []
    figures += figure_recovery_by_node(strength_results, out / "recovery_by_node", formats,
                                       title=f"two-layer specialization, R={runs}: recovery vs teacher strength")
    figures += figure_l_shape(strength_results, out / "l_shape", formats,
                              title="best correlation vs fan-out norm (all student nodes, all runs)")
    figures += figure_sorted_best_corr(strength_results, out / "sorted_best_corr", formats)
    mid = configs[f"p={strengths[len(strengths) // 2]:g}"]
    figures += figure_alignment_over_time(results[f"p={mid.strength_decay:g}"], out / "alignment_over_time", formats)
    figures += figure_recovery_by_node(aug_results, out / "augmentation", formats,
                                       title=f"augmentation on |D| = {aug_base['train_size']} (p = {aug_p:g})")
    summary = {label: _summary_entry(res) for label, res in results.items()}
    table = {label: _table_row(res) for label, res in results.items()}
    write_metrics(out, {
        "simulation": "specialization", "runs": runs, "steps": steps, "seconds": time.perf_counter() - started,
        "summary": summary, "table": table, "results": {label: _result_json(res) for label, res in results.items()},
    })
    return {"out": str(out), "figures": [str(f) for f in figures], "table": table, "summary": summary,
            "results": results}


def _run_specialization_deep(out, scale: str = "small", runs: int = 8, steps: int = 4000, seed: int = 0,
                            device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
    """Multi-layer teacher (hidden widths 10-15 small, 10-15-20 full), student 4x over-realised,
    p in {0, 1}: per-layer recovery, L shape and sorted best correlations."""
    out = _check_common(out, runs, steps, device, formats)
    widths = (10, 15) if scale != "full" else (10, 15, 20)
    configs = {f"p={p:g}": specialization_config(scale, steps, teacher_widths=widths, multi=4, strength_decay=p,
                                                 input_dim=20, train_size=8000 if scale != "full" else 20000)
               for p in (0.0, 1.0)}
    write_json(out / "config.json", {
        "simulation": "specialization-deep", "reference": "Tian ICML 2020 (multi-layer case); Tian's teacher-student talk talk",
        "scale": scale, "runs": runs, "steps": steps, "seed": seed, "device": device, "torch": torch.__version__,
        "configs": {k: c.to_dict() for k, c in configs.items()},
    })
    total = steps * len(configs)
    results: dict[str, TeacherStudentResult] = {}
    started = time.perf_counter()
    for i, (label, cfg) in enumerate(configs.items()):
        results[label] = train_teacher_student(cfg, runs=runs, seed=seed, device=device,
                                               progress=_labelled_progress(progress, label, i * steps, total))
    figures = []
    for layer in range(len(widths)):
        tag = f"layer{layer + 1}"
        figures += figure_recovery_by_node(results, out / f"recovery_by_node_{tag}", formats, layer=layer,
                                           title=f"multi-layer teacher {widths}: hidden layer {layer + 1}")
        figures += figure_sorted_best_corr(results, out / f"sorted_best_corr_{tag}", formats, layer=layer,
                                           title=f"hidden layer {layer + 1}: sorted best correlation")
    figures += figure_l_shape(results, out / "l_shape", formats, layer=-1,
                              title=f"top hidden layer (fan-out = output weights), teacher {widths}")
    figures += figure_alignment_over_time(results["p=0"], out / "alignment_over_time", formats, layer=0,
                                          title="first hidden layer, p = 0")
    summary, table = {}, {}
    for label, res in results.items():
        for layer in range(len(widths)):
            summary[f"{label}, layer {layer + 1}"] = _summary_entry(res, layer)
            table[f"{label}, layer {layer + 1}"] = _table_row(res, layer)
    write_metrics(out, {
        "simulation": "specialization-deep", "runs": runs, "steps": steps, "seconds": time.perf_counter() - started,
        "summary": summary, "table": table, "results": {label: _result_json(res) for label, res in results.items()},
    })
    return {"out": str(out), "figures": [str(f) for f in figures], "table": table, "summary": summary,
            "results": results}


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
    from teachtheory.random import RunStreams, as_seeds

    out = _check_common(out, runs, steps, device, formats)
    Ks = (2, 3, 5, 10) if scale != "full" else (2, 3, 4, 5, 8, 10)
    streams = RunStreams(as_seeds(seed, runs))
    config = {"simulation": "relu-dynamics", "reference": "Tian ICML 2017 (population-gradient dynamics); Tian's teacher-student talk talk", "scale": scale,
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
    tr1 = theory.population_gradient_descent(w0, w_star1, lr=0.1, steps=steps, record_every=1)
    seconds["K=1"] = time.perf_counter() - t0
    report("K=1", 1)
    # K = 2 in the plane, orthonormal teacher e1, e2
    w_star2 = torch.eye(2, dtype=torch.float64)
    a = 2 * math.pi * streams.uniform("k2-angle", 0, (2,))
    r = 1.5 * streams.uniform("k2-radius", 0, (2,)).sqrt()
    W0 = torch.stack([r * torch.cos(a), r * torch.sin(a)], -1)
    t0 = time.perf_counter()
    tr2 = theory.population_gradient_descent(W0, w_star2, lr=0.1, steps=steps, record_every=1)
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
            tr = theory.population_gradient_descent(W_init, eye, lr=2.0 / K, steps=steps,
                                                    record_every=max(1, steps // 1000))
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
        "K=1": {"converged_to_w_star": {"final": _final(d1 < 1e-6)},
                "final_loss": {"final": _final(tr1["loss"][:, -1].numpy())}, "seconds": seconds["K=1"]},
        "K=2 (plane)": {"converged_to_w_star": {"final": _final(loss2 < 1e-8)},
                        "final_loss": {"final": _final(loss2)}, "seconds": seconds["K=2 (plane)"]},
    }
    for key, entry in metrics_sym.items():
        summary[key] = {"converged_to_w_star": {"final": _final(entry["final_loss_by_run"] < 1e-8)},
                        "final_loss": {"final": _final(entry["final_loss_by_run"])}, "seconds": seconds[key]}
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


def _single_threaded_runner(body):
    """Run a simulation body with one intra-op thread on CPU (tiny per-step tensors; see
    :func:`teachtheory.teacher_student.intra_op_threads`); the caller's setting is restored."""
    import functools

    @functools.wraps(body)
    def runner(out, scale: str = "small", runs: int | None = None, steps: int | None = None, seed: int = 0,
               device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
        from teachtheory.threads import intra_op_threads

        kwargs = {k: v for k, v in (("runs", runs), ("steps", steps)) if v is not None}
        with intra_op_threads(1 if not str(device).startswith("cuda") else None):
            return body(out, scale=scale, seed=seed, device=device, formats=formats, progress=progress, **kwargs)

    runner.__name__ = body.__name__.lstrip("_")
    runner.__qualname__ = runner.__name__
    return runner


run_specialization = _single_threaded_runner(_run_specialization)
run_specialization_deep = _single_threaded_runner(_run_specialization_deep)
run_relu_dynamics = _single_threaded_runner(_run_relu_dynamics)


register(Simulation(
    "specialization", "two-layer ReLU teacher-student: recovery vs teacher strength 1/j^p, L shape, augmentation",
    "Tian ICML 2020 (specialization experiments)", {"small": {"runs": 16, "steps": 4000}, "full": {"runs": 32, "steps": 20000}},
    runner=run_specialization))
register(Simulation(
    "specialization-deep", "multi-layer ReLU teacher-student: per-layer recovery, L shape",
    "Tian ICML 2020 (multi-layer)", {"small": {"runs": 8, "steps": 4000}, "full": {"runs": 16, "steps": 20000}},
    runner=run_specialization_deep))
register(Simulation(
    "relu-dynamics", "population-gradient descent of ReLU nets: K=1, K=2 in the plane, symmetric (x, y) dynamics",
    "Tian ICML 2017 (dynamics)", {"small": {"runs": 12, "steps": 3000}, "full": {"runs": 32, "steps": 10000}},
    runner=run_relu_dynamics))
