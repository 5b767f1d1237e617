"""Simulations ``specialization`` and ``specialization-deep``: student specialization in teacher-student ReLU networks.

* ``specialization`` (:func:`run_specialization`): two-layer teacher with fan-out strengths 1/j^p, an
  over-realised student trained by SGD; recovery rate against the teacher index for several p, the
  L-shape scatter (best correlation against fan-out norm), sorted best-correlation curves, alignment
  over time, and the augmentation comparison (none / teacher-agnostic / teacher-aware) on a small D.
* ``specialization-deep`` (:func:`run_specialization_deep`): the same for a multi-layer teacher, per layer.

Each writes ``config.json``, ``metrics.json`` and PNG figures into its output folder.

References:
    Y. Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input Dimension", ICML 2020.
    Y. Tian, "Understanding Deep Models With Teacher-student Setting" (talk).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from teachtheory.io import write_json
from teachtheory.simulation import ONE_RUN_NOTE, Simulation, register, write_metrics
from teachtheory.teacher_student import (
    TeacherStudentConfig,
    TeacherStudentResult,
    figure_alignment_over_time,
    figure_l_shape,
    figure_recovery_by_node,
    figure_sorted_best_corr,
    l_shape_statistics,
    specialization_config,
    train_teacher_student,
)

from .common import Progress, final_summary, labelled_progress, prepare_output, single_threaded

__all__ = ["DEFAULTS", "DEFAULTS_DEEP", "DEFAULTS_TIAN2020", "STRENGTHS", "TIAN2020", "run_specialization",
           "run_specialization_deep", "run_tian2020", "tian2020_config"]

STRENGTHS = {"small": (0.0, 1.0, 2.0, 2.5), "full": (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)}
DEFAULTS = {"small": {"runs": 16, "steps": 4000}, "full": {"runs": 32, "steps": 20000}}
DEFAULTS_DEEP = {"small": {"runs": 8, "steps": 4000}, "full": {"runs": 16, "steps": 20000}}


def _summary_entry(res: TeacherStudentResult, layer: int = -1) -> dict:
    rec = res.recovered[layer].mean(1)  # per run
    return {"recovery_rate": {"final": final_summary(rec)}, "eval_loss": {"final": final_summary(res.eval_loss[:, -1])},
            "g1_inf": {"final": final_summary(res.g1_inf[:, -1])}, "seconds": res.seconds}


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


def _train_all(configs: dict, runs: int, steps: int, seed: int, device: str,
               progress: Progress) -> dict[str, TeacherStudentResult]:
    """Train every configuration (all runs batched), progress reported over all of them."""
    total = steps * len(configs)
    return {label: train_teacher_student(cfg, runs=runs, seed=seed, device=device,
                                         progress=labelled_progress(progress, label, i * steps, total))
            for i, (label, cfg) in enumerate(configs.items())}


def _finish(out: Path, simulation: str, runs: int, steps: int, started: float, results: dict, summary: dict,
            table: dict, figures: list) -> dict:
    """Write metrics.json and return the runner's result."""
    write_metrics(out, {
        "simulation": simulation, "runs": runs, "steps": steps, "seconds": time.perf_counter() - started,
        "summary": summary, "table": table, "results": {label: _result_json(res) for label, res in results.items()},
    })
    return {"out": str(out), "figures": [str(f) for f in figures], "table": table, "summary": summary,
            "results": results}


def _run_specialization(out, scale: str = "small", runs: int = 16, steps: int = 4000, seed: int = 0,
                       device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
    """Two-layer student specialization: recovery against teacher index for several p, the L shape,
    sorted best-correlation curves, alignment over time, and augmentation on a small training set.

    Writes config.json, metrics.json, recovery_by_node, l_shape, sorted_best_corr, alignment_over_time and
    augmentation figures into ``out``. Returns {"out", "figures", "summary", "results"}.
    """
    out = prepare_output(out, runs, steps, device)
    strengths = STRENGTHS["full" if scale == "full" else "small"]
    aug_p = 1.5
    aug_base = {"train_size": 300 if scale != "full" else 1000, "strength_decay": aug_p}
    aug_settings = {"D only": {"augment": "none"}, "teacher-agnostic": {"augment": "agnostic", "augment_count": 2},
                    "teacher-aware": {"augment": "aware", "augment_count": 2}}
    configs = {f"p={p:g}": specialization_config(scale, steps, strength_decay=p) for p in strengths}
    aug_configs = {f"aug: {k}": specialization_config(scale, steps, **aug_base, **v) for k, v in aug_settings.items()}
    write_json(out / "config.json", {
        "simulation": "specialization",
        "reference": "Tian ICML 2020 (specialization experiments); Tian's teacher-student talk", "scale": scale,
        "runs": runs, "steps": steps, "seed": seed, "device": device, "torch": torch.__version__,
        "strength_configs": {k: c.to_dict() for k, c in configs.items()},
        "augmentation_configs": {k: c.to_dict() for k, c in aug_configs.items()},
        "notes": {"augmentation": "agnostic: x +- delta e_k for 2 random axes per sample; aware: boundary projection "
                                  "+- delta w_j/||w_j|| for 2 random teacher nodes per sample; both add 4|D| points"},
    })
    started = time.perf_counter()
    results = _train_all({**configs, **aug_configs}, runs, steps, seed, device, progress)
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
    return _finish(out, "specialization", runs, steps, started, results, summary, table, figures)


def _run_specialization_deep(out, scale: str = "small", runs: int = 8, steps: int = 4000, seed: int = 0,
                            device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
    """Multi-layer teacher (hidden widths 10-15 small, 10-15-20 full), student 4x over-realised,
    p in {0, 1}: per-layer recovery, L shape and sorted best correlations."""
    out = prepare_output(out, runs, steps, device)
    widths = (10, 15) if scale != "full" else (10, 15, 20)
    configs = {f"p={p:g}": specialization_config(scale, steps, teacher_widths=widths, multi=4, strength_decay=p,
                                                 input_dim=20, train_size=8000 if scale != "full" else 20000)
               for p in (0.0, 1.0)}
    write_json(out / "config.json", {
        "simulation": "specialization-deep",
        "reference": "Tian ICML 2020 (multi-layer case); Tian's teacher-student talk",
        "scale": scale, "runs": runs, "steps": steps, "seed": seed, "device": device, "torch": torch.__version__,
        "configs": {k: c.to_dict() for k, c in configs.items()},
    })
    started = time.perf_counter()
    results = _train_all(configs, runs, steps, seed, device, progress)
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
    return _finish(out, "specialization-deep", runs, steps, started, results, summary, table, figures)


run_specialization = single_threaded(_run_specialization)
run_specialization_deep = single_threaded(_run_specialization_deep)



register(Simulation(
    "specialization-deep", "multi-layer ReLU teacher-student: per-layer recovery, L shape",
    "Tian ICML 2020 (multi-layer)", DEFAULTS_DEEP,
    runner=run_specialization_deep,
    protocol="the toolkit's own (N(0, I) input, Gaussian teachers, momentum SGD)",
))


# -- the tian2020 preset ------------------------------------------------------------------------------------

TIAN2020 = {
    "small": {"widths": (5, 10), "multiples": (1, 2, 5, 10)},
    "full": {"widths": (5, 10, 20), "multiples": (1, 2, 5, 10)},
}
DEFAULTS_TIAN2020 = {"small": {"runs": 4, "steps": 3000}, "full": {"runs": 8, "steps": 50000}}


def tian2020_config(m: int, multiple: int, steps: int, **changes) -> TeacherStudentConfig:
    """One cell of the tian2020 preset: inputs N(0, 1.5^2 I_100), a two-layer teacher with m hidden nodes and
    discrete weights, a student with ``multiple`` x m nodes started N(0, 0.005^2), plain SGD (lr 0.01, batch
    16, no momentum) on fresh samples each step; fan-out strengths 1/j (p = 1)."""
    base = {"input_dim": 100, "teacher_widths": (m,), "output_dim": m, "multi": multiple, "strength_decay": 1.0,
            "data_std": 1.5, "train_size": None, "eval_size": 2000, "batch_size": 16, "lr": 0.01, "momentum": 0.0,
            "steps": steps, "record_every": max(1, steps // 20), "student_init_std": 0.005,
            "teacher_weights": "discrete"}
    return TeacherStudentConfig(**(base | changes))


def _run_tian2020(out, scale: str = "small", runs: int = 4, steps: int = 3000, seed: int = 0, device: str = "cpu",
                  formats: Sequence[str] = ("png",), progress: Progress = None) -> dict:
    """Tian ICML 2020's specialization setup, cell by cell: widths m x over-realisation multiples, recovery per
    teacher node (by realised strength), the L shape, and the table of recovery against the multiple.

    Small scale: m in {5, 10} and a short budget (this machine's CPU); full: m in {5, 10, 20}."""
    out = prepare_output(out, runs, steps, device)
    grid = TIAN2020["full" if scale == "full" else "small"]
    configs = {f"m={m}, x{k}": tian2020_config(m, k, steps) for m in grid["widths"] for k in grid["multiples"]}
    write_json(out / "config.json", {
        "simulation": "specialization", "preset": "tian2020", "scale": scale,
        "reference": "Tian ICML 2020 (specialization experiments: Gaussian input, discrete teacher, small init, SGD)",
        "runs": runs, "steps": steps, "seed": seed, "device": device, "torch": torch.__version__,
        "configs": {k: c.to_dict() for k, c in configs.items()},
        "notes": {"teacher": "discrete entries in {-1, 0, +1}, fan-out strengths 1/j exactly (realised); "
                              "m outputs (our choice where the reference is not explicit)",
                  "budget": "small: a short CPU budget; the paper trains far longer (full scale)"},
    })
    started = time.perf_counter()
    results = _train_all(configs, runs, steps, seed, device, progress)
    figures = []
    for m in grid["widths"]:
        cells = {f"x{k}": results[f"m={m}, x{k}"] for k in grid["multiples"]}
        figures += figure_recovery_by_node(cells, out / f"recovery_by_node_m{m}", formats,
                                           title=f"tian2020, m={m}: recovery per teacher node vs over-realisation")
        figures += figure_l_shape(cells, out / f"l_shape_m{m}", formats, title=f"tian2020, m={m}: L shape")
    summary = {label: _summary_entry(res) for label, res in results.items()}
    table = {label: _table_row(res) for label, res in results.items()}
    return _finish(out, "specialization (tian2020)", runs, steps, started, results, summary, table, figures)


run_tian2020 = single_threaded(_run_tian2020)

register(Simulation(
    "specialization", "two-layer ReLU teacher-student: recovery vs teacher strength 1/j^p, L shape, augmentation",
    "Tian ICML 2020 (specialization experiments)", DEFAULTS,
    runner=run_specialization, presets={"tian2020": run_tian2020},
    preset_defaults={"tian2020": DEFAULTS_TIAN2020},
    protocol=("the toolkit's own (N(0, I) input, d=20, Gaussian teachers, momentum SGD); --preset tian2020: the "
              'reference setup of Tian ICML 2020'),
))
