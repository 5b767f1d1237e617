"""Named protocols for L2T-DLN experiments on the digits, and one function that runs any method under one.

A protocol is a dict of settings. ``"hai2023"`` is the paper text (Hai et al., NeurIPS 2023, Sec. 5.1-5.3):
student SGD lr 0.1, DLN lr 1e-3, LSTM teacher (64, 64, 64, 1) trained by Adam at 1e-3, N = 25, batches 25
and 100, validation ratio 50%, stage III continuing from theta^N, the data redivided after every epoch and
the teacher trained for 10 epochs. The paper does not define an epoch of teacher training; as in the
authors' released code, an epoch here is one pass of rounds over the validation part (one validation batch a
round), so 10 epochs are 10 x ``task.val_batches_per_epoch`` rounds (60 on the digits). ``"authors-code"``
changes what the released code does differently (code, not paper): the DLN input, biases and init, and the
restarted stage III on the same batches and validation batch. ``"toolkit"`` is this toolkit's own small
setting: a smaller teacher (20, 20, 1) with Adam at 1e-2, N = 10, the division redrawn per pass of student
steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .algorithm import L2TDLN, L2TConfig, train_fixed_loss
from .data import DigitsTask, load_digits_task
from .dlf import L2TDLF, DLFConfig
from .dln import DynamicLossNetwork
from .student import MLPStudent
from .teacher import LSTMTeacher

__all__ = ["PROTOCOLS", "Job", "diagnostics", "make_task", "run_job", "summary"]

_COMMON = {"student_hidden": (32,), "student_lr": 0.1, "dln_lr": 1e-3, "batch_size": 25, "val_batch_size": 100,
           "val_ratio": 0.5, "test_fraction": 0.3, "dln_hidden": (40, 40, 40, 40), "dln_act": "leaky_relu",
           "dln": "paper", "same_val_batch": False, "dlf_teacher_lr": 1e-2}
PROTOCOLS: dict[str, dict] = {
    "hai2023": {**_COMMON, "lstm_hidden": (64, 64, 64, 1), "teacher_lr": 1e-3, "stage_length": 25,
                "stage3": "continue", "resplit": "validation-epoch", "epochs": 10},
    "authors-code": {**_COMMON, "lstm_hidden": (64, 64, 64, 1), "teacher_lr": 1e-3, "stage_length": 25,
                     "stage3": "restart", "same_val_batch": True, "resplit": "validation-epoch", "dln": "authors",
                     "epochs": 10},
    "toolkit": {**_COMMON, "lstm_hidden": (20, 20, 1), "teacher_lr": 1e-2, "stage_length": 10,
                "stage3": "continue", "resplit": "student-epoch", "epochs": None},
}


@dataclass
class Job:
    """One row of an experiment: a fixed loss (``kind="baseline"``), the L2T-DLF baseline (``"dlf"``) or
    Algorithm 1 (``"l2t"``) with a DLN optimiser, under a protocol with ``changes`` applied.

    Attributes:
        label: the row's name. kind: "baseline", "dlf" or "l2t". loss: the fixed loss (baselines).
        optimizer: who updates the DLN (l2t). N: stage length (l2t, dlf; None: the protocol's).
        changes: protocol settings overridden for this row (e.g. {"dln_lr": 1.0}).
    """

    label: str
    kind: str = "l2t"
    loss: str = "CE"
    optimizer: str = "lstm"
    N: int | None = None
    changes: dict = field(default_factory=dict)


def make_task(settings: dict, seed: int, runs: int, *, dtype=torch.float32, device="cpu") -> DigitsTask:
    """The digits task of a protocol's settings (validation ratio, batch sizes, test fraction)."""
    return load_digits_task(seed, runs, test_fraction=settings["test_fraction"], val_ratio=settings["val_ratio"],
                            batch_size=settings["batch_size"], val_batch_size=settings["val_batch_size"], dtype=dtype,
                            device=device)


def summary(acc) -> dict:
    """Accuracy in % over runs: per run, mean, std and SE (None with a note for one run)."""
    from ..simulation import ONE_RUN_NOTE

    a = np.asarray(acc.detach().double().cpu() if isinstance(acc, torch.Tensor) else acc, float) * 100
    if a.size < 2:
        return {"per_run": a.tolist(), "mean": float(a.mean()), "std": None, "std_note": ONE_RUN_NOTE,
                "se": None, "se_note": ONE_RUN_NOTE}
    return {"per_run": a.tolist(), "mean": float(a.mean()), "std": float(a.std(ddof=1)),
            "se": float(a.std(ddof=1) / math.sqrt(a.size))}


def _window(values: torch.Tensor, first: bool) -> float:
    """Mean over runs and over the first (or last) 10% of rounds (at least one) of a [R, rounds] history."""
    k = max(1, values.shape[-1] // 10)
    part = values[..., :k] if first else values[..., -k:]
    return float(part.double().mean())


def diagnostics(res: dict) -> dict:
    """Whether the teacher still helps, from a run's histories: validation loss (first/min/last 10%), the
    update's cosine with -grad phi (first/last 10%, and the first round from which its 5-round moving mean
    over runs stays <= 0), the teacher output's mean |g| and saturated fraction (last 10%)."""
    out = {}
    val = res.get("val_loss")
    if val is not None:
        curve = val.double().mean(0)
        out.update({"val_loss_first": _window(val, True), "val_loss_last": _window(val, False),
                    "val_loss_min": float(curve.min())})
    cos = res.get("update_cosine")
    if cos is not None:
        mean = cos.double().mean(0).numpy()
        smooth = np.convolve(mean, np.ones(5) / 5, mode="valid") if mean.size >= 5 else mean
        downhill = np.nonzero(smooth > 0)[0]
        out.update({"cosine_first": _window(cos, True), "cosine_last": _window(cos, False),
                    "cosine_nonpositive_from": None if downhill.size and downhill[-1] == smooth.size - 1
                    else int(downhill[-1] + 1) if downhill.size else 0})
    for key, name in (("g_abs_mean", "g_abs_last"), ("g_saturated", "g_saturated_last")):
        if res.get(key) is not None:
            out[name] = _window(res[key], False)
    return out


def _dln(settings: dict) -> DynamicLossNetwork:
    if settings["dln"] == "authors":
        return DynamicLossNetwork.authors_code(settings["dln_hidden"], act=settings["dln_act"])
    return DynamicLossNetwork(settings["dln_hidden"], act=settings["dln_act"])


def run_job(job: Job, protocol: dict, task: DigitsTask, *, rounds: int, steps: int, dtype=torch.float32,
            device="cpu", eval_every_steps: int = 0, progress=None) -> tuple[dict, dict]:
    """Run one row: Algorithm 1 for ``rounds`` teacher rounds, or a baseline / L2T-DLF for ``steps`` student
    steps. Returns (entry for metrics.json: accuracy summary, rounds, student steps, seconds per round,
    diagnostics; the raw result with histories and curves)."""
    settings = {**protocol, **job.changes}
    student = MLPStudent(task.X.shape[1], task.classes, settings["student_hidden"], act="relu")
    if job.kind == "baseline":
        res = train_fixed_loss(student, task, job.loss, steps, settings["student_lr"], dtype=dtype, device=device,
                               eval_every=eval_every_steps)
        return {"kind": "baseline", **summary(res["test_accuracy"]), "student_steps": steps, "rounds": None}, res
    N = job.N or settings["stage_length"]
    if job.kind == "dlf":
        dlf = L2TDLF(student, task, DLFConfig(stage_length=N, student_lr=settings["student_lr"],
                                              teacher_lr=settings["dlf_teacher_lr"]))
        res = dlf.run(steps, dtype=dtype, device=device)
        entry = {"kind": "dlf", **summary(res["test_accuracy"]), "student_steps": res["steps"],
                 "rounds": res["rounds"], "N": N, **diagnostics(res)}
        return entry, res
    if job.kind != "l2t":
        raise ValueError(f"job.kind must be 'baseline', 'dlf' or 'l2t', got {job.kind!r}")
    cfg = L2TConfig(stage_length=N, student_lr=settings["student_lr"], dln_lr=settings["dln_lr"],
                    teacher_lr=settings["teacher_lr"], optimizer=job.optimizer, stage3=settings["stage3"],
                    same_val_batch=settings["same_val_batch"], resplit=settings["resplit"])
    alg = L2TDLN(student, _dln(settings), task, cfg, LSTMTeacher(settings["lstm_hidden"]))
    eval_rounds = max(1, eval_every_steps // cfg.steps_per_round) if eval_every_steps else 0
    res = alg.run(rounds, dtype=dtype, device=device, eval_every=eval_rounds, progress=progress)
    sec = res["seconds"].numpy()
    entry = {"kind": "l2t", "optimizer": job.optimizer, "N": N, "rounds": rounds, "student_steps": int(res["steps"]),
             **summary(res["test_accuracy"]), "seconds_per_round": float(sec.mean()),
             "seconds_per_round_median": float(np.median(sec)),
             "cpu_seconds_per_round": float(res["cpu_seconds"].numpy().mean()),
             "final_val_loss": res["val_loss"][:, -1].double().cpu().numpy().tolist(), **diagnostics(res)}
    return entry, res
