"""Simulation ``l2t-dln``: L2T-DLN's Algorithm 1 (MLP student, dynamic loss network, LSTM teacher) on the digits
against fixed-loss baselines and L2T-DLF, with the DLN-optimiser, stage-length and validation-ratio ablations.

Two protocols (see :mod:`teachtheory.l2t.protocol` and the docs' protocol page):

* the toolkit's own (default): ``--steps`` counts student SGD steps; a small teacher (20, 20, 1) at Adam 1e-2,
  N = 10; the stage-length ablation at the main run's number of teacher rounds (student steps reported beside);
  a row with the paper-size teacher for comparison.
* ``--preset hai2023`` (the paper text): ``--steps`` counts teacher rounds (the paper fixes 10 epochs of teacher
  training: 60 rounds on the digits); the paper-size teacher, N = 25, the data redivided per epoch of validation
  rounds; Tables 1, 4, 5 and 6, and the options of the authors' released code (code, not paper) as extra rows.

Every L2T row reports whether the teacher still helps as rounds accumulate: the validation loss, the teacher
output's |g| and saturated fraction, and the cosine of the DLN update with -grad phi.

References:
    Hai et al., "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023, Tables 1, 4, 5 and 6;
    Wu et al., "Learning to Teach with Dynamic Loss Functions", NeurIPS 2018 (the L2T-DLF baseline).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from teachtheory.io import write_json
from teachtheory.simulation import ONE_RUN_NOTE, Simulation, register, write_metrics

from .common import Progress, labelled_progress, prepare_output, single_threaded

__all__ = ["DEFAULTS", "DEFAULTS_HAI2023", "HAI2023", "NOT_IMPLEMENTED", "SETTINGS", "SGD_MOVING_LR",
           "run_hai2023", "run_l2t_dln"]

SETTINGS = {
    "small": {"ablation_lengths": (5, 10, 25), "optimizers": ("adam", "sgd", "rmsprop"), "eval_every_steps": 100},
    "full": {"ablation_lengths": (1, 5, 10, 15, 25, 50), "optimizers": ("adam", "sgd", "rmsprop"),
             "eval_every_steps": 250},
}
HAI2023 = {
    "small": {"ablation_lengths": (5, 10, 25), "ratios": (0.1, 0.5, 0.9), "eval_every_steps": 500},
    "full": {"ablation_lengths": (1, 5, 10, 15, 25, 50, 75), "ratios": (0.1, 0.25, 0.5, 0.75, 0.9),
             "eval_every_steps": 500},
}
DEFAULTS = {"small": {"runs": 5, "steps": 1200}, "full": {"runs": 5, "steps": 6000}}
# hai2023: steps = teacher rounds; 60 = the paper's 10 epochs of 6 validation batches on the digits
DEFAULTS_HAI2023 = {"small": {"runs": 5, "steps": 60}, "full": {"runs": 10, "steps": 60}}
# SGD on the DLN at this lr moves it about as far per round as Adam at 1e-3 (|grad phi| ~ 0.5, P = 5081)
SGD_MOVING_LR = 0.1
NOT_IMPLEMENTED = {
    "ARLF": "Barron's adaptive robust loss is a regression loss; the L2T-DLN paper does not say how it was applied "
            "to classification (residual, scale, the adaptive shape's partition function), so no faithful row",
    "SLF": "the L2T-DLN paper cites the stochastic loss function (Liu & Lai) without its teacher, its loss pool "
           "or its sampling; no implementable description in the paper",
    "ALA": "adaptive loss alignment (Huang et al.) trains its teacher by reinforcement learning over 200-step "
           "stages; the L2T-DLN paper gives neither the state, the reward nor the policy",
}


def _pm(mean: float, std: float | None) -> str:
    """mean ± std for a table; "-" for the spread of one run."""
    return f"{mean:.2f} ± " + ("-" if std is None else f"{std:.2f}")


def _optimizer_label(opt: str) -> str:
    return {"sgd": "SGD", "rmsprop": "RMSProp", "adam": "Adam"}[opt]


def _toolkit_jobs(settings: dict, main_N: int) -> list:
    from teachtheory.l2t import BASELINES, PROTOCOLS, Job

    paper = PROTOCOLS["hai2023"]
    jobs = [Job(name, kind="baseline", loss=name) for name in BASELINES]
    jobs.append(Job("L2T-DLF (Wu et al. 2018)", kind="dlf"))
    jobs.append(Job("DLN fixed (no teacher)", optimizer="fixed"))
    jobs += [Job(f"DLN + {_optimizer_label(opt)}", optimizer=opt) for opt in settings["optimizers"]]
    jobs.append(Job(f"DLN + SGD (lr {SGD_MOVING_LR:g})", optimizer="sgd", changes={"dln_lr": SGD_MOVING_LR}))
    jobs += [Job(f"L2T-DLN (LSTM), N={N}", N=N) for N in sorted(set(settings["ablation_lengths"]) | {main_N})]
    jobs.append(Job("L2T-DLN, paper-size LSTM (64, 64, 64, 1), Adam 1e-3",
                    changes={"lstm_hidden": paper["lstm_hidden"], "teacher_lr": paper["teacher_lr"]}))
    return jobs


def _hai2023_jobs(settings: dict, main_N: int) -> list:
    from teachtheory.l2t import BASELINES, Job

    jobs = [Job(name, kind="baseline", loss=name) for name in BASELINES]
    jobs.append(Job("L2T-DLF (Wu et al. 2018)", kind="dlf"))
    jobs.append(Job("DLN fixed (no teacher)", optimizer="fixed"))
    jobs += [Job(f"DLN + {_optimizer_label(opt)}", optimizer=opt) for opt in ("adam", "sgd", "rmsprop")]
    jobs.append(Job(f"DLN + SGD (lr {SGD_MOVING_LR:g})", optimizer="sgd", changes={"dln_lr": SGD_MOVING_LR}))
    jobs += [Job(f"L2T-DLN (LSTM), N={N}", N=N) for N in sorted(set(settings["ablation_lengths"]) | {main_N})]
    jobs += [Job(f"L2T-DLN, validation ratio {r:g}", changes={"val_ratio": r}) for r in settings["ratios"] if r != 0.5]
    jobs.append(Job("L2T-DLN, authors' DLN input (code)", changes={"dln": "authors"}))
    jobs.append(Job("L2T-DLN, authors' stage III (code)", changes={"stage3": "restart", "same_val_batch": True}))
    jobs.append(Job("L2T-DLN, same validation batch in I and III", changes={"same_val_batch": True}))
    return jobs


def _run(out, scale: str, runs: int, steps: int, seed: int, device: str, formats: Sequence[str], progress: Progress,
         *, protocol_name: str) -> dict:
    """Run the jobs of a protocol; ``steps`` = student steps (toolkit) or teacher rounds (hai2023)."""
    from teachtheory.l2t import PROTOCOLS, DynamicLossNetwork, LSTMTeacher, MLPStudent, make_task, run_job

    protocol = PROTOCOLS[protocol_name]
    paper = protocol_name == "hai2023"
    settings = {**protocol, **(HAI2023 if paper else SETTINGS)[scale]}
    out = prepare_output(out, runs, steps, device)
    dtype = torch.float32
    main_N = protocol["stage_length"]
    steps_per_round = 2 * main_N
    rounds = steps if paper else max(1, steps // steps_per_round)
    student_steps = rounds * steps_per_round  # the main L2T-DLN row's student steps: the baselines get as many
    jobs = (_hai2023_jobs if paper else _toolkit_jobs)(settings, main_N)
    tasks: dict[float, object] = {}

    def task_for(ratio: float):
        if ratio not in tasks:
            tasks[ratio] = make_task({**settings, "val_ratio": ratio}, seed, runs, dtype=dtype, device=device)
        return tasks[ratio]

    task = task_for(settings["val_ratio"])
    name = "hai2023 (paper text)" if paper else "toolkit (this toolkit's small setting)"
    config = {
        "simulation": "l2t-dln", "protocol": name, "preset": "hai2023" if paper else None,
        "reference": "Hai et al., NeurIPS 2023 (L2T-DLN), Tables 1, 4, 5, 6", "scale": scale, "runs": runs,
        "steps_argument": "teacher rounds" if paper else "student SGD steps", "rounds": rounds,
        "student_steps": student_steps, "seed": seed, "device": device,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "student": MLPStudent(64, 10, protocol["student_hidden"]).to_spec(),
        "dln": DynamicLossNetwork(protocol["dln_hidden"], act=protocol["dln_act"]).to_spec(),
        "teacher": LSTMTeacher(protocol["lstm_hidden"]).to_spec(),
        "data": {"name": "sklearn digits (8x8, 10 classes)", "pool": int(task.X.shape[0]),
                 "test": int(task.X_test.shape[0]), "train_per_division": task.n_train,
                 "validation_per_division": task.n_val, "validation_batches_per_epoch": task.val_batches_per_epoch},
        "jobs": {job.label: {"kind": job.kind, "optimizer": job.optimizer, "N": job.N, "changes": job.changes}
                 for job in jobs},
        "not_implemented": NOT_IMPLEMENTED,
        "notes": [f"every stage-length row takes the main run's {rounds} teacher rounds (the paper's Table 5 fixes "
                  "the rounds); its student steps are reported beside it",
                  "baselines (fixed losses, L2T-DLF) take as many student SGD steps as the main L2T-DLN row, on the "
                  "whole pool; L2T-DLN trains on the training part of a division, validates on the rest",
                  "L2T-DLF: the teacher is trained online along one student run (Wu et al. train it over whole "
                  "student trainings first)",
                  "a teacher round's time is for all runs batched together, on this machine (one intra-op thread)"],
        "torch": torch.__version__,
    }
    write_json(out / "config.json", config)

    def job_steps(job) -> int:
        return student_steps if job.kind in ("baseline", "dlf") else rounds * 2 * (job.N or main_N)

    total = sum(job_steps(job) for job in jobs)
    done, started = 0, time.perf_counter()
    results, curves, histories, snapshots = {}, {}, {}, {}
    for job in jobs:
        t0 = time.perf_counter()
        jt = task_for(job.changes.get("val_ratio", settings["val_ratio"]))
        per_round = job_steps(job) // rounds
        report = labelled_progress(progress, job.label, done, total)
        entry, res = run_job(job, protocol, jt, rounds=rounds, steps=student_steps, dtype=dtype, device=device,
                             eval_every_steps=settings["eval_every_steps"],
                             progress=lambda r, _n, report=report, per_round=per_round: report(r * per_round, 0))
        entry["seconds"] = time.perf_counter() - t0
        results[job.label] = entry
        if res.get("curve") is not None:
            curves[job.label] = (res["curve_steps"], res["curve"].double().cpu().numpy() * 100)
        if job.kind == "l2t" and job.optimizer != "fixed":
            histories[job.label] = {k: res[k].double().mean(0).cpu().numpy().tolist()
                                    for k in ("val_loss", "update_cosine", "g_abs_mean", "g_saturated")
                                    if res.get(k) is not None}
        if job.label == f"L2T-DLN (LSTM), N={main_N}":
            snapshots = {"initial": DynamicLossNetwork(protocol["dln_hidden"], act=protocol["dln_act"]).init(
                jt.streams.seeds, dtype=dtype, device=device), "final": res["state"].phi}
        done += job_steps(job)
        if progress is not None:
            progress(job.label, done, total)
    main_label = f"L2T-DLN (LSTM), N={main_N}"
    table = {label: _row(entry) for label, entry in results.items()}
    lengths = sorted(e["N"] for e in results.values() if e["kind"] == "l2t" and e["optimizer"] == "lstm"
                     and f"L2T-DLN (LSTM), N={e['N']}" in results)
    ablation = {str(N): {k: results[f"L2T-DLN (LSTM), N={N}"].get(k) for k in
                         ("mean", "std", "se", "rounds", "student_steps", "seconds_per_round")} for N in lengths}
    comparison = _comparison(results, main_label)
    metrics = {"simulation": "l2t-dln", "protocol": name, "runs": runs, "rounds": rounds,
               "student_steps": student_steps, "methods": results, "ablation_N": ablation, "comparison": comparison,
               "not_implemented": NOT_IMPLEMENTED, "histories": histories,
               "curves": {k: {"steps": v[0], "accuracy": v[1]} for k, v in curves.items()},
               "seconds": time.perf_counter() - started}
    write_metrics(out, metrics)
    figures = _figures(out, results, curves, histories, lengths, main_N, snapshots, formats, runs, rounds, name,
                       protocol)
    warnings_found = []
    falling = [N for a, N in zip(lengths, lengths[1:]) if results[f"L2T-DLN (LSTM), N={N}"]["mean"]
               < results[f"L2T-DLN (LSTM), N={a}"]["mean"]]
    if falling:
        warnings_found.append(f"l2t-dln ({name}): at {rounds} fixed rounds the accuracy does not rise with N "
                              f"at N = {falling}")
    return {"out": str(out), "figures": [str(f) for f in figures], "table": table, "metrics": metrics,
            "warnings": warnings_found}


def _row(entry: dict) -> dict:
    """One CLI table row: accuracy, rounds and student steps, seconds per round, the teacher's diagnostics."""
    def fmt(key, spec=".3g"):
        value = entry.get(key)
        return "-" if value is None else format(value, spec)

    return {"accuracy %": _pm(entry["mean"], entry["std"]), "rounds": "-" if entry.get("rounds") is None
            else entry["rounds"], "student steps": entry["student_steps"],
            "s/round": entry.get("seconds_per_round", "-"), "val loss last": fmt("val_loss_last"),
            "cos first/last": "-" if entry.get("cosine_first") is None
            else f"{entry['cosine_first']:.2f} / {entry['cosine_last']:.2f}",
            "|g| last": fmt("g_abs_last", ".2f"), "seconds": entry["seconds"]}


def _comparison(results: dict, main_label: str) -> dict:
    """The main L2T-DLN row against the best fixed-loss baseline: paired difference over runs."""
    best = max((e["mean"], k) for k, e in results.items() if e["kind"] == "baseline")
    diff = np.asarray(results[main_label]["per_run"]) - np.asarray(results[best[1]]["per_run"])
    out = {"best_baseline": best[1], "best_baseline_mean": best[0], "l2t_dln_mean": results[main_label]["mean"],
           "paired_difference_mean": float(diff.mean()), "l2t_beats_best_baseline": bool(diff.mean() > 0)}
    if diff.size > 1:
        out["paired_difference_se"] = float(diff.std(ddof=1) / math.sqrt(diff.size))
    else:
        out.update(paired_difference_se=None, paired_difference_se_note=ONE_RUN_NOTE)
    return out


def _figures(out, results, curves, histories, lengths, main_N, snapshots, formats, runs, rounds, protocol_name,
             protocol) -> list:
    from teachtheory.l2t import DynamicLossNetwork
    from teachtheory.plotting import plt, save_figure

    written = []
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2))
    ax = axes[0]
    labels = [k for k, e in results.items()
              if not (e["kind"] == "l2t" and e["optimizer"] == "lstm" and k.startswith("L2T-DLN (LSTM), N=")
                      and e["N"] != main_N)]
    y = np.arange(len(labels))
    colours = ["C0" if results[k]["kind"] in ("baseline", "dlf") else ("C3" if results[k].get("optimizer") == "lstm"
               else "C1") for k in labels]
    ax.barh(y, [results[k]["mean"] for k in labels], color=colours, capsize=3,
            xerr=[np.nan if results[k]["std"] is None else results[k]["std"] for k in labels])
    for yi, k in zip(y, labels):
        ax.scatter(results[k]["per_run"], np.full(len(results[k]["per_run"]), yi), color="k", s=6, zorder=3)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlim(max(0.0, min(min(results[k]["per_run"]) for k in labels) - 5), 100)
    ax.set_xlabel("test accuracy % (mean ± std, dots: runs)")
    ax.set_title(f"digits, MLP student, {rounds} teacher rounds, R={runs}", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax = axes[1]
    for k in labels:
        if k in curves:
            s, c = curves[k]
            line = ax.plot(s, c.mean(0), lw=1.2, label=k)[0]
            if c.shape[0] > 1:
                se = c.std(0, ddof=1) / math.sqrt(c.shape[0])
                ax.fill_between(s, c.mean(0) - se, c.mean(0) + se, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("student SGD step")
    ax.set_ylabel("test accuracy % (mean ± SE)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    ax = axes[2]
    rows = [results[f"L2T-DLN (LSTM), N={N}"] for N in lengths]
    ax.errorbar(lengths, [e["mean"] for e in rows], yerr=[np.nan if e["se"] is None else e["se"] for e in rows],
                marker="o", color="C3", capsize=3)
    for N, e in zip(lengths, rows):
        ax.annotate(f"{e['student_steps']} steps", (N, e["mean"]), fontsize=7, textcoords="offset points",
                    xytext=(4, -10))
    ax.set_xlabel("student-stage length N")
    ax.set_ylabel("test accuracy % (mean ± SE)", color="C3")
    ax.set_xscale("log")
    ax2 = ax.twinx()
    ax2.plot(lengths, [e["seconds_per_round"] for e in rows], "s--", color="C2")
    ax2.set_ylabel(f"seconds per teacher round ({runs} runs batched)", color="C2")
    ax.set_title(f"Table 5 shape: N at a fixed {rounds} teacher rounds", fontsize=10)
    ax.grid(alpha=0.3)
    fig.suptitle(f"l2t-dln, protocol {protocol_name}: L2T-DLN vs fixed losses and L2T-DLF (Table 1), DLN optimisers "
                 "(Table 6), stage length (Table 5)", fontsize=11)
    fig.tight_layout()
    written += save_figure(fig, out / "l2t_dln", formats)
    if histories:
        fig, axes = plt.subplots(1, 3, figsize=(17, 4.4))
        for label, hist in histories.items():
            for ax, key in zip(axes, ("val_loss", "update_cosine", "g_abs_mean")):
                if key in hist:
                    ax.plot(np.arange(1, len(hist[key]) + 1), hist[key], lw=1, label=label)
        for ax, what in zip(axes, ("validation loss (mean over runs)", "cosine(DLN update, -grad phi)",
                                   "teacher output mean |g| (LSTM rows)")):
            ax.set_xlabel("teacher round")
            ax.set_ylabel(what)
            ax.grid(alpha=0.3)
        axes[1].axhline(0, color="k", lw=0.8)
        axes[0].set_yscale("log")
        axes[2].legend(fontsize=6)
        fig.suptitle(f"l2t-dln, protocol {protocol_name}: does the teacher still help? (instability diagnostics)",
                     fontsize=11)
        fig.tight_layout()
        written += save_figure(fig, out / "diagnostics", formats)
    if snapshots:
        dln = DynamicLossNetwork(protocol["dln_hidden"], act=protocol["dln_act"])
        grid = torch.linspace(0, 1, 41, dtype=snapshots["initial"][0].dtype, device=snapshots["initial"][0].device)
        P0, P1 = torch.meshgrid(grid, grid, indexing="ij")
        rows_in = dln.rows(P0, P1).reshape(1, -1, dln.in_dim)
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key in zip(axes, ("initial", "final")):
            with torch.no_grad():
                z = dln.value(tuple(p[:1].detach() for p in snapshots[key]), rows_in).reshape(41, 41).cpu().numpy()
            im = ax.contourf(grid.cpu().numpy(), grid.cpu().numpy(), z.T, levels=20, cmap="viridis")
            fig.colorbar(im, ax=ax)
            ax.set_xlabel("prediction for the correct class")
            ax.set_ylabel("prediction for a wrong class")
            ax.set_title(f"DLN value, {key} (run 0)", fontsize=10)
        fig.suptitle(f"l2t-dln, protocol {protocol_name}: the DLN before and after L2T-DLN (N={main_N}), cf. paper "
                     "Fig. 3", fontsize=11)
        fig.tight_layout()
        written += save_figure(fig, out / "dln_surface", formats)
    return written


def _run_l2t_dln(out: Path, scale: str = "small", runs: int = 5, steps: int = 1200, seed: int = 0,
                 device: str = "cpu", formats=("png",), progress: Progress = None) -> dict:
    """The toolkit's own protocol: ``steps`` = student SGD steps of the main row (its rounds = steps / 2N fix every
    row's rounds), ``runs`` independent seeds batched together."""
    return _run(out, scale, runs, steps, seed, device, formats, progress, protocol_name="toolkit")


def _run_hai2023(out: Path, scale: str = "small", runs: int = 5, steps: int = 60, seed: int = 0, device: str = "cpu",
                 formats=("png",), progress: Progress = None) -> dict:
    """The paper's protocol (Hai et al. 2023, Sec. 5): ``steps`` = teacher rounds (60 = the paper's 10 epochs on
    the digits; up to the authors' ~2,500 for the long-run instability)."""
    return _run(out, scale, runs, steps, seed, device, formats, progress, protocol_name="hai2023")


run_l2t_dln = single_threaded(_run_l2t_dln)
run_hai2023 = single_threaded(_run_hai2023)

register(Simulation(
    name="l2t-dln",
    description="L2T-DLN (Algorithm 1: MLP student, DLN, LSTM teacher) vs CE, label smoothing, L-softmax, smooth 0-1, "
                "L2T-DLF; DLN optimiser, stage-length (fixed rounds) and validation-ratio ablations, on the digits",
    reference="Hai et al., NeurIPS 2023 (L2T-DLN), Tables 1, 4-6; protocol: the toolkit's own (small teacher, "
              "steps = student steps); --preset hai2023: the paper text (steps = teacher rounds)",
    defaults=DEFAULTS,
    runner=run_l2t_dln,
    presets={"hai2023": run_hai2023},
    preset_defaults={"hai2023": DEFAULTS_HAI2023},
))
