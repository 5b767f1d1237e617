r"""Algorithm 1 of L2T-DLN (three-stage asynchronous optimisation), batched over runs, and the
fixed-loss baselines it is compared with.

One *teacher round* k (Algorithm 1, lines 5-24):

1. student stage: N SGD steps of the student on the DLN loss :math:`L_{\phi^m}` (Eq. 2);
2. DLN stage: :math:`\nabla\phi^m = \partial e_{val}(\theta^{N})/\partial\phi^m` by reverse-mode
   differentiation through those N steps (Eqs. 4-6), then
   :math:`\phi^{m+1} = \phi^m + \gamma\, g`, :math:`(g, h) = T_\varphi(\nabla\phi^m, h)` (Eq. 3);
3. teacher stage: N more student steps with :math:`L_{\phi^{m+1}}`; the hypergradient
   :math:`\nabla\phi^{m+1}` of the new validation error is carried back to the teacher through
   Eq. (3) (:math:`\nabla\varphi = \gamma (\partial g/\partial\varphi)^\top\nabla\phi^{m+1}`, Eq. 8) and the
   teacher takes an Adam step.

The student is never reset: a round advances it by 2N steps. The teacher's LSTM state is carried
across rounds (truncated back-propagation: one round). Ablations (Table 6): the DLN is updated by
Adam, SGD or RMSProp on :math:`\nabla\phi^m` instead of the LSTM (stage 3 is then a plain student
stage), or not at all (``"fixed"``: the student trains on the initial DLN).

Options that follow the authors' released code rather than the paper text (code, not paper):
``stage3="restart"`` runs stage III again from the round's starting student :math:`\theta^0` on the same
training batches and the same validation batch, and keeps its end point, so a round advances the
student N steps, not 2N; ``same_val_batch=True`` uses one validation batch for stages I and III (implied by
``"restart"``); ``resplit="validation-epoch"`` redraws the training/validation division after every
``task.val_batches_per_epoch`` rounds (one validation batch per round, as the authors' loop over the
validation loader) instead of after every pass of student steps over the training part.

Every round records the diagnostics that show whether the teacher still helps: the validation loss,
the mean teacher output :math:`|g|` and the fraction of coordinates with :math:`|g| > 0.9` (the LSTM's
output saturates at 1), and the cosine between the DLN update and :math:`-\nabla\phi^m` (a positive
cosine: the update points downhill on the stage-I validation error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..nets import flatten, unflatten
from ..unroll import chain_to, hypergradient, sgd_steps
from ..validation import check_bool, check_choice
from .data import DigitsTask
from .dln import DynamicLossNetwork
from .losses import get_loss, per_run_cross_entropy
from .student import MLPStudent
from .teacher import LSTMTeacher

__all__ = ["HISTORY", "L2TDLN", "OPTIMIZERS", "RESPLITS", "STAGE3", "L2TConfig", "train_fixed_loss"]

OPTIMIZERS = ("lstm", "adam", "sgd", "rmsprop", "fixed")
STAGE3 = ("continue", "restart")
RESPLITS = ("student-epoch", "validation-epoch")
SATURATION = 0.9  # |g| above this counts as a saturated teacher output (the LSTM's output lies in (-1, 1))


@dataclass
class L2TConfig:
    """Settings of Algorithm 1 (paper values as defaults: student SGD lr 0.1, DLN lr 1e-3, teacher Adam 1e-3).

    Attributes:
        stage_length: N, student steps per stage. optimizer: who updates the DLN (one of OPTIMIZERS).
        weight: the example weight w of Eq. (2). checkpoint_every: passed to the hypergradient.
        stage3: ``"continue"`` (paper text: stage III continues from theta^N, 2N student steps a round) or
            ``"restart"`` (the authors' code: from the round's theta^0 on the same batches, N steps a round).
        same_val_batch: one validation batch for stages I and III (always so with ``"restart"``).
        resplit: ``"student-epoch"`` (a new division after each pass of student steps over the training
            part) or ``"validation-epoch"`` (after each pass of rounds over the validation part).
    """

    stage_length: int = 25
    student_lr: float = 0.1
    dln_lr: float = 1e-3
    teacher_lr: float = 1e-3
    optimizer: str = "lstm"
    weight: float = 1.0
    checkpoint_every: int | None = None
    stage3: str = "continue"
    same_val_batch: bool = False
    resplit: str = "student-epoch"

    def __post_init__(self) -> None:
        if isinstance(self.stage_length, bool) or not isinstance(self.stage_length, int) or self.stage_length < 1:
            raise ValueError(f"stage_length must be a positive integer, got {self.stage_length!r}")
        for name in ("student_lr", "dln_lr", "teacher_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name, allowed in (("optimizer", OPTIMIZERS), ("stage3", STAGE3), ("resplit", RESPLITS)):
            check_choice(getattr(self, name), name, allowed)
        check_bool(self.same_val_batch, "same_val_batch")

    @property
    def steps_per_round(self) -> int:
        """Student steps a round advances the student: 2N, or N with the authors' stage III."""
        return self.stage_length if self.stage3 == "restart" else 2 * self.stage_length


@dataclass
class L2TState:
    theta: tuple
    phi: tuple
    teacher: tuple | None
    teacher_state: tuple | None
    step: int = 0
    round: int = 0
    dln_optimizer: object = None
    teacher_optimizer: object = None
    history: dict = field(default_factory=lambda: {key: [] for key in HISTORY})


HISTORY = ("val_loss", "seconds", "cpu_seconds", "grad_norm", "update_norm", "update_cosine", "g_abs_mean",
           "g_saturated")


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-run cosine of two [R, P] tensors, in float64 (a blown-up gradient overflows float32 products);
    0 where either is zero."""
    a, b = a.double(), b.double()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-300)


class L2TDLN:
    """Algorithm 1 on a :class:`DigitsTask` with an MLP student, a DLN and an LSTM teacher (or an optimizer)."""

    def __init__(self, student: MLPStudent, dln: DynamicLossNetwork, task: DigitsTask, config: L2TConfig,
                 teacher: LSTMTeacher | None = None) -> None:
        if config.optimizer == "lstm" and teacher is None:
            teacher = LSTMTeacher()
        self.student, self.dln, self.task, self.config, self.teacher = student, dln, task, config, teacher
        self._last_val: torch.Tensor | None = None
        self._epoch: int | None = None  # the division in force this round (None: by student step)

    # -- losses -----------------------------------------------------------------------------
    def train_loss(self, theta, phi, i: int) -> torch.Tensor:
        """Sum over runs of the DLN loss on the student's step-i mini-batch (per-run gradients)."""
        x, y = self.task.train_batch(i, self._epoch)
        return self.dln.loss(phi, self.student.forward(theta, x), y).sum()

    def val_loss(self, index: int, step: int) -> Callable:
        """e_val: cross entropy on validation mini-batch ``index`` (sum over runs; per-run kept)."""
        x, y = self.task.val_batch(index, step, self._epoch)

        def loss(theta) -> torch.Tensor:
            per_run = per_run_cross_entropy(self.student.forward(theta, x), y)
            self._last_val = per_run.detach()
            return per_run.sum()

        return loss

    # -- state ------------------------------------------------------------------------------
    def init(self, seed, *, dtype=torch.float32, device="cpu") -> L2TState:
        """Initial state: student and DLN parameters per run, and the optimiser of the DLN or its LSTM teacher.

        Args:
            seed: one seed per run (None: the task's seeds).
            dtype: floating dtype of the parameters.
            device: torch device of the parameters.
        """
        seeds = self.task.streams.seeds if seed is None else seed
        R = self.task.runs
        theta = self.student.init(seeds, None if not isinstance(seeds, int) else R, dtype=dtype, device=device)
        phi = self.dln.init(seeds, None if not isinstance(seeds, int) else R, dtype=dtype, device=device)
        state = L2TState(theta=theta, phi=phi, teacher=None, teacher_state=None)
        opt = self.config.optimizer
        if opt == "lstm":
            state.teacher = tuple(p.requires_grad_(True) for p in self.teacher.init(
                seeds, None if not isinstance(seeds, int) else R, dtype=dtype, device=device))
            state.teacher_state = self.teacher.init_state(R, flatten(phi).shape[-1], dtype=dtype, device=device)
            state.teacher_optimizer = torch.optim.Adam(state.teacher, lr=self.config.teacher_lr)
        elif opt in ("adam", "sgd", "rmsprop"):
            state.phi = tuple(p.detach().requires_grad_(True) for p in phi)
            cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}[opt]
            state.dln_optimizer = cls(state.phi, lr=self.config.dln_lr)
        return state

    # -- one round of Algorithm 1 -----------------------------------------------------------
    def round(self, state: L2TState) -> L2TState:
        """One round of Algorithm 1 of Hai et al. (NeurIPS 2023): student stages with a DLN update between them."""
        cfg, N = self.config, self.config.stage_length
        start, cpu_start = time.perf_counter(), time.process_time()
        k = state.round
        restart = cfg.stage3 == "restart"
        self._epoch = k // self.task.val_batches_per_epoch if cfg.resplit == "validation-epoch" else None
        # stage III's validation batch, its first step and its starting student
        val3 = 2 * k if (cfg.same_val_batch or restart) else 2 * k + 1
        start3 = state.step if restart else state.step + N
        phi = tuple(p.detach() for p in state.phi)
        h = state.history
        if cfg.optimizer == "fixed":
            state.theta = sgd_steps(self.train_loss, state.theta, phi, cfg.steps_per_round, cfg.student_lr,
                                    weight=cfg.weight, start=state.step)
            state.step += cfg.steps_per_round
            with torch.no_grad():
                self.val_loss(val3, state.step)(state.theta)
        else:
            theta0 = state.theta
            # stages I and II: N student steps, then the hypergradient of e_val(theta^N) w.r.t. phi (Eqs. 4-6)
            first = hypergradient(self.train_loss, self.val_loss(2 * k, state.step + N), theta0, phi, N,
                                  cfg.student_lr, weight=cfg.weight, start=state.step,
                                  checkpoint_every=cfg.checkpoint_every)
            theta3 = theta0 if restart else first.theta
            grad_phi = flatten(first.grad_phi)
            h["grad_norm"].append(grad_phi.norm(dim=-1))
            if cfg.optimizer == "lstm":
                with torch.enable_grad():
                    g, new_state = self.teacher.step(state.teacher, grad_phi, state.teacher_state)
                    phi_next_flat = flatten(phi) + cfg.dln_lr * g  # Eq. (3)
                phi_next = unflatten(phi_next_flat.detach(), phi)
                # stage III: N more steps with the new DLN; the teacher learns from e_val(theta^{2N})
                second = hypergradient(self.train_loss, self.val_loss(val3, start3 + N), theta3, phi_next, N,
                                       cfg.student_lr, weight=cfg.weight, start=start3,
                                       checkpoint_every=cfg.checkpoint_every)
                state.theta = second.theta
                teacher_grads = chain_to((phi_next_flat,), state.teacher, (flatten(second.grad_phi),))  # Eq. (8)
                state.teacher_optimizer.zero_grad(set_to_none=True)
                for p, gp in zip(state.teacher, teacher_grads):
                    p.grad = gp
                state.teacher_optimizer.step()
                state.teacher_state = tuple((hs.detach(), c.detach()) for hs, c in new_state)
                g = g.detach()
                h["g_abs_mean"].append(g.abs().mean(-1))
                h["g_saturated"].append((g.abs() > SATURATION).to(g.dtype).mean(-1))
                update = phi_next_flat.detach() - flatten(phi)
                state.phi = phi_next
            else:
                before = flatten(phi)
                for p, gp in zip(state.phi, first.grad_phi):
                    p.grad = gp.clone()
                state.dln_optimizer.step()
                update = flatten(state.phi).detach() - before
                state.theta = sgd_steps(self.train_loss, theta3, tuple(p.detach() for p in state.phi), N,
                                        cfg.student_lr, weight=cfg.weight, start=start3)
                with torch.no_grad():
                    self.val_loss(val3, start3 + N)(state.theta)
            state.step += cfg.steps_per_round
            h["update_norm"].append(update.norm(dim=-1))
            h["update_cosine"].append(_cosine(update, -grad_phi))
        h["val_loss"].append(self._last_val)
        h["seconds"].append(time.perf_counter() - start)
        # this process's CPU time: the round's cost even while other processes share the cores (wall time is not)
        h["cpu_seconds"].append(time.process_time() - cpu_start)
        state.round += 1
        return state

    def run(self, rounds: int, seed=None, *, dtype=torch.float32, device="cpu", eval_every: int = 0,
            progress: Callable[[int, int], None] | None = None) -> dict:
        """``rounds`` teacher rounds from a fresh state; returns final per-run test accuracy, the
        per-round histories [R, rounds] (validation loss, DLN gradient and update norms, the update's cosine
        with -grad phi, the teacher output's mean |g| and saturated fraction), seconds per round and
        (optionally) a test-accuracy curve."""
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
        state = self.init(seed, dtype=dtype, device=device)
        curve_steps, curve = [], []
        for r in range(rounds):
            self.round(state)
            if eval_every and ((r + 1) % eval_every == 0 or r + 1 == rounds):
                curve_steps.append(state.step)
                curve.append(self.test_accuracy(state.theta))
            if progress is not None:
                progress(r + 1, rounds)
        h = state.history
        out = {"test_accuracy": self.test_accuracy(state.theta), "seconds": torch.tensor(h["seconds"]),
               "cpu_seconds": torch.tensor(h["cpu_seconds"]), "steps": state.step, "rounds": rounds,
               "curve_steps": curve_steps,
               "curve": torch.stack(curve, -1) if curve else None, "state": state}
        for key in HISTORY:  # per-run histories [R, rounds]; None for what this optimiser does not record
            if key not in ("seconds", "cpu_seconds"):
                out[key] = torch.stack(h[key], -1) if h[key] else None
        return out

    def test_accuracy(self, theta) -> torch.Tensor:
        """Per-run accuracy [R] of the student parameters ``theta`` on the task's test set."""
        return self.student.accuracy(theta, self.task.X_test[None], self.task.y_test[None])


def train_fixed_loss(student: MLPStudent, task: DigitsTask, loss: str, steps: int, lr: float = 0.1, seed=None, *,
                     dtype=torch.float32, device="cpu", eval_every: int = 0) -> dict:
    """Baseline: SGD on a fixed loss (``losses.BASELINES``) over the whole pool (train + validation),
    batched over runs; same batch size and number of student steps as Algorithm 1."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    fn = get_loss(loss)
    seeds = task.streams.seeds if seed is None else seed
    theta = student.init(seeds, None if not isinstance(seeds, int) else task.runs, dtype=dtype, device=device)
    start = time.perf_counter()
    curve_steps, curve = [], []
    for i in range(steps):
        x, y = task.pool_batch(i)
        with torch.enable_grad():
            leaves = tuple(p.detach().requires_grad_(True) for p in theta)
            grads = torch.autograd.grad(fn(student, leaves, x, y, i).sum(), leaves)
        theta = tuple((p - lr * g).detach() for p, g in zip(theta, grads))
        if eval_every and ((i + 1) % eval_every == 0 or i + 1 == steps):
            curve_steps.append(i + 1)
            curve.append(student.accuracy(theta, task.X_test[None], task.y_test[None]))
    return {"test_accuracy": student.accuracy(theta, task.X_test[None], task.y_test[None]), "theta": theta,
            "seconds": time.perf_counter() - start, "curve_steps": curve_steps,
            "curve": torch.stack(curve, -1) if curve else None}
