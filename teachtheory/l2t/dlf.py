r"""L2T-DLF baseline (Wu et al., "Learning to Teach with Dynamic Loss Functions", NeurIPS 2018), batched over runs.

The student trains on the parametric loss of Wu et al. (Sec. 4.2),

.. math:: l_{\Phi_t}(p, y) = -\sigma\big(y^\top W_t \log p + b\big),

whose coefficients :math:`\Phi_t = (W_t, b)` come from a teacher :math:`\mu_\vartheta(s_t)` that reads the
student's state :math:`s_t` = (training progress t / T, the last validation loss, 1) and forms
:math:`W_t` by attention over a memory of K coefficient matrices,
:math:`W_t = \sum_k \mathrm{softmax}(A s_t)_k M_k`. The teacher's parameters
:math:`\vartheta = (M, A, b)` are trained by reverse-mode differentiation through the student's SGD steps
(:func:`teachtheory.unroll.hypergradient`, the one unrolling engine) on the validation cross entropy,
and updated by Adam.

Differences from Wu et al. (stated, not hidden): the teacher is trained *online*, along one student run
in rounds of N student steps (as L2T-DLN's Algorithm 1 does), instead of over many complete student
trainings followed by a fresh student; the validation objective is the cross entropy, not their smooth
surrogate of accuracy; the state has three features instead of their longer list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..random import RunStreams, as_seeds
from ..unroll import hypergradient
from .data import DigitsTask
from .losses import per_run_cross_entropy
from .student import MLPStudent

__all__ = ["DLFConfig", "L2TDLF", "dlf_loss"]

FEATURES = 3  # progress t/T, last validation loss, 1


def dlf_loss(logits: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Per-run mean over the batch of :math:`-\sigma(y^\top W \log p + b)`: logits [R, B, C], y [R, B],
    W [R, C, C], b [R] -> [R]."""
    logp = torch.log_softmax(logits, -1)
    scores = torch.einsum("rdc,rbc->rbd", W, logp).gather(-1, y[..., None])[..., 0]  # (W log p)_y
    return -torch.sigmoid(scores + b[:, None]).mean(-1)


@dataclass
class DLFConfig:
    """Settings of the L2T-DLF baseline.

    Attributes:
        stage_length: N, student steps per teacher update. student_lr: the student's SGD learning rate.
        teacher_lr: Adam learning rate of the teacher. memory: K, coefficient matrices the teacher attends over.
        init_scale: the memory matrices start at init_scale x identity (+ small noise), so the first loss is
            -sigmoid(init_scale log p_y + b).
    """

    stage_length: int = 10
    student_lr: float = 0.1
    teacher_lr: float = 1e-2
    memory: int = 4
    init_scale: float = 2.0

    def __post_init__(self) -> None:
        for name in ("stage_length", "memory"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("student_lr", "teacher_lr", "init_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")


class L2TDLF:
    """The L2T-DLF baseline on a :class:`DigitsTask` with an MLP student."""

    def __init__(self, student: MLPStudent, task: DigitsTask, config: DLFConfig) -> None:
        self.student, self.task, self.config = student, task, config

    def init_teacher(self, seeds, *, dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, ...]:
        """Teacher parameters per run: memory M [R, K, C, C], attention A [R, F, K], bias b [R]."""
        streams = RunStreams(as_seeds(seeds))
        C, K = self.task.classes, self.config.memory
        eye = torch.eye(C, dtype=torch.float64)
        M = self.config.init_scale * eye + 0.01 * streams.normal("dlf/memory", 0, (K, C, C))
        A = 0.1 * streams.normal("dlf/attention", 0, (FEATURES, K))
        b = torch.zeros(streams.runs, dtype=torch.float64)
        return tuple(p.to(dtype=dtype, device=device) for p in (M, A, b))

    def coefficients(self, varphi, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(W [R, C, C], b [R]) from the teacher parameters and the state features [R, F]."""
        M, A, b = varphi
        attention = torch.softmax(torch.einsum("rf,rfk->rk", features, A), -1)
        return torch.einsum("rk,rkcd->rcd", attention, M), b

    def run(self, steps: int, seed=None, *, dtype=torch.float32, device="cpu") -> dict:
        """Train the student for ``steps`` SGD steps (rounded up to whole rounds of N) while the teacher learns;
        returns the per-run test accuracy [R], the validation loss per round [R, rounds] and seconds."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        cfg, task, student = self.config, self.task, self.student
        N = cfg.stage_length
        rounds = -(-steps // N)
        seeds = task.streams.seeds if seed is None else as_seeds(seed)
        theta = student.init(seeds, dtype=dtype, device=device)
        varphi = tuple(p.requires_grad_(True) for p in self.init_teacher(seeds, dtype=dtype, device=device))
        optimizer = torch.optim.Adam(varphi, lr=cfg.teacher_lr)
        last_val = torch.full((task.runs,), float(torch.log(torch.tensor(float(task.classes)))), dtype=dtype,
                              device=device)
        total = rounds * N
        history, started = [], time.perf_counter()

        def train_loss(th, vp, i: int) -> torch.Tensor:
            x, y = task.train_batch(i)
            ones = torch.ones_like(last_val)
            features = torch.stack([ones * (i / total), last_val, ones], -1)
            W, b = self.coefficients(vp, features)
            return dlf_loss(student.forward(th, x), y, W, b).sum()

        for k in range(rounds):
            x_val, y_val = task.val_batch(k, k * N + N)

            def val_loss(th, x_val=x_val, y_val=y_val) -> torch.Tensor:
                return per_run_cross_entropy(student.forward(th, x_val), y_val).sum()

            res = hypergradient(train_loss, val_loss, theta, tuple(p.detach() for p in varphi), N, cfg.student_lr,
                                start=k * N)
            optimizer.zero_grad(set_to_none=True)
            for p, g in zip(varphi, res.grad_phi):
                p.grad = g
            optimizer.step()
            theta = res.theta
            with torch.no_grad():
                last_val = per_run_cross_entropy(student.forward(theta, x_val), y_val)
            history.append(last_val)
        return {"test_accuracy": student.accuracy(theta, task.X_test[None], task.y_test[None]),
                "val_loss": torch.stack(history, -1), "steps": total, "rounds": rounds,
                "seconds": time.perf_counter() - started, "theta": theta}
