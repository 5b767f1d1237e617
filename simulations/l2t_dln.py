"""Simulation ``l2t-dln``: L2T-DLN's Algorithm 1 (MLP student, dynamic loss network, LSTM teacher) on the digits
against fixed-loss baselines, with the DLN-optimiser and stage-length ablations.

References:
    Hai et al., "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023, Tables 1, 5 and 6.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from teachtheory.io import write_json
from teachtheory.simulation import ONE_RUN_NOTE, Simulation, register, write_metrics
from teachtheory.threads import intra_op_threads

from .common import prepare_output

__all__ = ["COMMON", "DEFAULTS", "SETTINGS", "run_l2t_dln"]

SETTINGS = {
    "small": {
        "student_hidden": (32,), "lstm_hidden": (20, 20, 1), "teacher_lr": 1e-2, "stage_length": 10,
        "ablation_lengths": (5, 10, 25), "optimizers": ("adam", "sgd", "rmsprop"), "eval_every_steps": 100,
    },
    "full": {
        "student_hidden": (32,), "lstm_hidden": (64, 64, 64, 1), "teacher_lr": 1e-3, "stage_length": 25,
        "ablation_lengths": (1, 5, 10, 15, 25, 50), "optimizers": ("adam", "sgd", "rmsprop"), "eval_every_steps": 250,
    },
}
COMMON = {"student_lr": 0.1, "dln_lr": 1e-3, "batch_size": 25, "val_batch_size": 100, "val_ratio": 0.5,
          "test_fraction": 0.3, "dln_hidden": (40, 40, 40, 40), "dln_act": "leaky_relu", "dln_inputs": "probabilities"}
DEFAULTS = {"small": {"runs": 5, "steps": 1200}, "full": {"runs": 5, "steps": 6000}}


def _summary(acc: torch.Tensor) -> dict:
    """Accuracy in % over runs: per run, mean, std and SE (None with a note for one run)."""
    a = acc.detach().double().cpu().numpy() * 100
    if a.size < 2:
        return {"per_run": a.tolist(), "mean": float(a.mean()), "std": None, "std_note": ONE_RUN_NOTE,
                "se": None, "se_note": ONE_RUN_NOTE}
    return {"per_run": a.tolist(), "mean": float(a.mean()), "std": float(a.std(ddof=1)),
            "se": float(a.std(ddof=1) / math.sqrt(a.size))}


def _pm(mean: float, std: float | None) -> str:
    """mean ± std for a table; "-" for the spread of one run."""
    return f"{mean:.2f} ± " + ("-" if std is None else f"{std:.2f}")


def run_l2t_dln(out: Path, scale: str, runs: int, steps: int, seed: int, device: str, formats=("png",),
                progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Baselines, L2T-DLN and its ablations on the 10-class digits; ``steps`` = student SGD steps per run
    (every method gets the same number), ``runs`` independent seeds batched together."""
    from teachtheory.l2t import (
        BASELINES,
        L2TDLN,
        DynamicLossNetwork,
        L2TConfig,
        LSTMTeacher,
        MLPStudent,
        load_digits_task,
        train_fixed_loss,
    )

    settings = {**COMMON, **SETTINGS[scale]}
    out = prepare_output(out, runs, steps, device)
    dtype = torch.float32
    task = load_digits_task(seed, runs, test_fraction=settings["test_fraction"], val_ratio=settings["val_ratio"],
                            batch_size=settings["batch_size"], val_batch_size=settings["val_batch_size"], dtype=dtype,
                            device=device)
    student = MLPStudent(64, 10, settings["student_hidden"], act="relu")
    dln = DynamicLossNetwork(settings["dln_hidden"], act=settings["dln_act"], inputs=settings["dln_inputs"])
    main_N = settings["stage_length"]
    lengths = tuple(sorted(set(settings["ablation_lengths"]) | {main_N}))
    config = {
        "simulation": "l2t-dln", "reference": "Hai et al., NeurIPS 2023 (L2T-DLN), Tables 1, 5-6", "scale": scale,
        "runs": runs,
        "student_steps": steps, "seed": seed, "device": device, "settings": settings,
        "student": student.to_spec(), "dln": dln.to_spec(), "teacher": LSTMTeacher(settings["lstm_hidden"]).to_spec(),
        "data": {"name": "sklearn digits (8x8, 10 classes)", "pool": int(task.X.shape[0]),
                 "test": int(task.X_test.shape[0]),
                 "train_per_division": task.n_train, "validation_per_division": task.n_val},
        "notes": [("every method takes the same number of student SGD steps (lr 0.1, batch 25); baselines train on the "
                   "whole pool, L2T-DLN on the training half of a division redrawn every epoch"),
                  ("a teacher round = 2N student steps + 2 reverse-mode hypergradients + 1 teacher step; its time is "
                   "for all runs batched together, on this machine's CPU (single intra-op thread)")]
                 + ([("small scale: LSTM (20, 20, 1) and teacher lr 1e-2 instead of the paper's (64, 64, 64, 1) and "
                      "1e-3, because a small run has only steps/(2N) teacher rounds")] if scale == "small" else []),
        "torch": torch.__version__,
    }
    write_json(out / "config.json", config)
    jobs: list[tuple[str, str, dict]] = [(name, "baseline", {"loss": name}) for name in BASELINES]
    jobs.append(("DLN fixed (no teacher)", "l2t", {"optimizer": "fixed", "N": main_N}))
    for opt in settings["optimizers"]:
        jobs.append((f"DLN + {'SGD' if opt == 'sgd' else 'RMSProp' if opt == 'rmsprop' else 'Adam'}", "l2t",
                     {"optimizer": opt, "N": main_N}))
    for N in lengths:
        jobs.append((f"L2T-DLN (LSTM), N={N}", "l2t", {"optimizer": "lstm", "N": N}))
    total = len(jobs) * steps
    done = 0
    results: dict[str, dict] = {}
    curves: dict[str, tuple[list, np.ndarray]] = {}
    dln_snapshots = {}
    started = time.perf_counter()
    with intra_op_threads(1):
        for label, kind, spec in jobs:
            t0 = time.perf_counter()
            if kind == "baseline":
                res = train_fixed_loss(student, task, spec["loss"], steps, settings["student_lr"], dtype=dtype,
                                       device=device, eval_every=settings["eval_every_steps"])
                entry = {"kind": "baseline", **_summary(res["test_accuracy"]), "seconds": time.perf_counter() - t0,
                         "student_steps": steps}
            else:
                N = spec["N"]
                rounds = max(1, steps // (2 * N))
                cfg = L2TConfig(stage_length=N, student_lr=settings["student_lr"], dln_lr=settings["dln_lr"],
                                teacher_lr=settings["teacher_lr"], optimizer=spec["optimizer"])
                alg = L2TDLN(student, dln, task, cfg, LSTMTeacher(settings["lstm_hidden"]))
                eval_rounds = max(1, settings["eval_every_steps"] // (2 * N))

                def report(r, total_rounds, label=label, base=done, N=N):
                    if progress is not None:
                        progress(label, base + 2 * N * r, total)

                res = alg.run(rounds, dtype=dtype, device=device, eval_every=eval_rounds, progress=report)
                sec = res["seconds"].numpy()
                entry = {"kind": "l2t", "optimizer": spec["optimizer"], "N": N, "rounds": rounds,
                         "student_steps": int(res["steps"]), **_summary(res["test_accuracy"]),
                         "seconds": time.perf_counter() - t0,
                         "seconds_per_round": float(sec.mean()), "seconds_per_round_median": float(np.median(sec)),
                         "final_val_loss": res["val_loss"][:, -1].double().cpu().numpy().tolist()}
                if spec["optimizer"] == "lstm" and N == main_N:
                    dln_snapshots = {"initial": dln.init(task.streams.seeds, dtype=dtype, device=device),
                                     "final": res["state"].phi}
            if res.get("curve") is not None:
                curves[label] = (res["curve_steps"], res["curve"].double().cpu().numpy() * 100)
            results[label] = entry
            done += steps
            if progress is not None:
                progress(label, done, total)

    main_label = f"L2T-DLN (LSTM), N={main_N}"
    table = {}
    for label, entry in results.items():
        if entry["kind"] == "l2t" and entry["optimizer"] == "lstm" and entry["N"] != main_N:
            continue
        table[label] = {"accuracy %": _pm(entry["mean"], entry["std"]),
                        "s/round": entry.get("seconds_per_round", "-"), "seconds": entry["seconds"]}
    for N in lengths:
        entry = results[f"L2T-DLN (LSTM), N={N}"]
        table[f"ablation N={N}"] = {"accuracy %": _pm(entry["mean"], entry["std"]),
                                    "s/round": entry["seconds_per_round"], "seconds": entry["seconds"]}
    best_baseline = max((e["mean"], k) for k, e in results.items() if e["kind"] == "baseline")
    main = results[main_label]
    diff = np.asarray(main["per_run"]) - np.asarray(results[best_baseline[1]]["per_run"])
    comparison = {
        "best_baseline": best_baseline[1], "best_baseline_mean": best_baseline[0], "l2t_dln_mean": main["mean"],
        "paired_difference_mean": float(diff.mean()),
        **({"paired_difference_se": float(diff.std(ddof=1) / math.sqrt(diff.size))} if diff.size > 1 else
           {"paired_difference_se": None, "paired_difference_se_note": ONE_RUN_NOTE}),
        "l2t_beats_best_baseline": bool(diff.mean() > 0),
    }
    # a teacher round is 2N student steps: below 2N the L2T runs take one whole round, more steps than asked
    unequal = {label: e["student_steps"] for label, e in results.items() if e["student_steps"] != steps}
    listed = ", ".join(f"{k}: {v}" for k, v in unequal.items())
    message = (f"l2t-dln: steps={steps} is not a multiple of every 2N, so these methods took other numbers of "
               f"student steps: {listed}")
    warnings_found = [message] if unequal else []
    metrics = {"simulation": "l2t-dln", "runs": runs, "student_steps": steps, "methods": results,
               "unequal_student_steps": unequal,
               "ablation_N": {str(N): {k: results[f"L2T-DLN (LSTM), N={N}"][k] for k in
                                       ("mean", "std", "std_note", "rounds", "seconds_per_round", "seconds")
                                       if k in results[f"L2T-DLN (LSTM), N={N}"]} for N in lengths},
               "comparison": comparison, "curves": {k: {"steps": v[0], "accuracy": v[1]} for k, v in curves.items()},
               "seconds": time.perf_counter() - started}
    write_metrics(out, metrics)
    figures = _figures(out, results, curves, lengths, main_N, dln, dln_snapshots, formats, runs, steps)
    return {"out": str(out), "figures": [str(f) for f in figures], "table": table, "metrics": metrics,
            "warnings": warnings_found}


def _figures(out, results, curves, lengths, main_N, dln, snapshots, formats, runs, steps) -> list:
    from teachtheory.plotting import plt, save_figure

    written = []
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    ax = axes[0]
    labels = [k for k, e in results.items()
              if not (e["kind"] == "l2t" and e["optimizer"] == "lstm" and e["N"] != main_N)]
    means = [results[k]["mean"] for k in labels]
    stds = [np.nan if results[k]["std"] is None else results[k]["std"] for k in labels]
    colours = ["C0" if results[k]["kind"] == "baseline" else ("C3" if results[k].get("optimizer") == "lstm" else "C1")
               for k in labels]
    y = np.arange(len(labels))
    ax.barh(y, means, xerr=stds, color=colours, capsize=3)
    for yi, k in zip(y, labels):
        ax.scatter(results[k]["per_run"], np.full(len(results[k]["per_run"]), yi), color="k", s=6, zorder=3)
    ax.set_yticks(y, labels, fontsize=8)
    lo = min(min(results[k]["per_run"]) for k in labels)
    ax.set_xlim(max(0.0, lo - 5), 100)
    ax.set_xlabel("test accuracy % (mean ± std, dots: runs)")
    ax.set_title(f"digits, MLP student, {steps} SGD steps, R={runs}", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax = axes[1]
    for k in labels:
        if k in curves:
            s, c = curves[k]
            m = c.mean(0)
            line = ax.plot(s, m, lw=1.4, label=k)[0]
            if c.shape[0] > 1:
                se = c.std(0, ddof=1) / math.sqrt(c.shape[0])
                ax.fill_between(s, m - se, m + se, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("student SGD step")
    ax.set_ylabel("test accuracy % (mean ± SE)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[2]
    acc = [results[f"L2T-DLN (LSTM), N={N}"]["mean"] for N in lengths]
    err = [np.nan if results[f"L2T-DLN (LSTM), N={N}"]["std"] is None else results[f"L2T-DLN (LSTM), N={N}"]["std"]
           for N in lengths]
    sec = [results[f"L2T-DLN (LSTM), N={N}"]["seconds_per_round"] for N in lengths]
    ax.errorbar(lengths, acc, yerr=err, marker="o", color="C3", capsize=3, label="test accuracy (mean ± std)")
    ax.set_xlabel("student-stage length N")
    ax.set_ylabel("test accuracy %", color="C3")
    ax.set_xscale("log")
    ax2 = ax.twinx()
    ax2.plot(lengths, sec, "s--", color="C2", label="seconds per teacher round")
    ax2.set_ylabel(f"seconds per teacher round ({runs} runs batched)", color="C2")
    ax.set_title("Table 5 shape: length of the student stage", fontsize=10)
    ax.grid(alpha=0.3)
    fig.suptitle("l2t-dln: L2T-DLN vs fixed losses (Table 1), DLN optimisers (Table 6), stage length (Table 5)",
                 fontsize=11)
    fig.tight_layout()
    written += save_figure(fig, out / "l2t_dln", formats)
    if snapshots:
        grid = torch.linspace(0, 1, 41, dtype=snapshots["initial"][0].dtype, device=snapshots["initial"][0].device)
        P0, P1 = torch.meshgrid(grid, grid, indexing="ij")
        pairs = torch.stack([P0, P1], -1).reshape(1, -1, 2)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key in zip(axes, ("initial", "final")):
            phi = tuple(p[:1].detach() for p in snapshots[key])
            with torch.no_grad():
                z = dln.value(phi, pairs).reshape(41, 41).cpu().numpy()
            im = ax.contourf(grid.cpu().numpy(), grid.cpu().numpy(), z.T, levels=20, cmap="viridis")
            fig.colorbar(im, ax=ax)
            ax.set_xlabel("prediction for the correct class")
            ax.set_ylabel("prediction for a wrong class")
            ax.set_title(f"DLN value, {key} (run 0)", fontsize=10)
        fig.suptitle(f"l2t-dln: the dynamic loss network before and after L2T-DLN (N={main_N}), cf. paper Fig. 3",
                     fontsize=11)
        fig.tight_layout()
        written += save_figure(fig, out / "dln_surface", formats)
    return written


register(Simulation(
    name="l2t-dln",
    description="L2T-DLN (Algorithm 1: MLP student, DLN, LSTM teacher) vs CE, label smoothing, L-softmax, smooth 0-1; "
                "DLN optimiser and stage-length ablations, on the embedded digits",
    reference="Hai et al., NeurIPS 2023 (L2T-DLN), Tables 5-6",
    defaults=DEFAULTS,
    runner=run_l2t_dln,
))
