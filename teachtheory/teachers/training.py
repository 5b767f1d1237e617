r"""Training a teaching policy, two ways, batched over runs.

* **Unrolling** (LAST Sec. 4; DHT Sec. 3.3.1): roll the learner's update v steps forward with the policy's
  actions, :math:`w_{i} = w_{i-1} - \eta \nabla_w \ell(w_{i-1}; \pi_\theta(\cdot))` (SGD, or Adam with its
  moments carried through the unroll: ``learner_optimizer="adam"``), and back-propagate the objective of DHT
  Sec. 3.3.1 as printed,

  .. math:: J(\theta) = \|w_v(\theta) - w^*\|^2 + \lambda \sum_{i=1}^{v}
            \ell\big(\pi_\theta(x_i, y_i, w_i^{SG}, w^*);\, y_i \mid w_i^{SG}\big),
            \qquad w_i^{SG} = \mathrm{StopGradient}(w_i),

  the second term being the auxiliary intermediate loss: the learner's loss, at the stop-gradient iterate
  :math:`w_i^{SG}` (the state the i-th example is given at), on the input the policy makes from the sampled
  example, scored against that example's label :math:`y_i` as printed; its gradient reaches :math:`\theta`
  only through the transformed input, never through :math:`w_i`. A policy's label change (``kind="label"``,
  the label part of ``"both"``, Mixup's mixed label) is not in the term: for a label-only policy the
  term does not depend on :math:`\theta` and changes nothing; for Mixup it is the loss of the mixed input
  against the first example's label.
  The black-box surrogate (BLAST, LAST Sec. 4) replaces :math:`\|w - w^*\|^2` with the learner's own loss
  on a validation set. Training runs along one trajectory in windows of v steps (truncated
  back-propagation), restarting at w0 (and the learner optimiser's state) every ``episode_steps``; the
  graph runs through :func:`teachtheory.unroll.rollout`.
* **Policy gradient** (REINFORCE, Williams 1992) over a discretised action set: B episodes per run,
  reward :math:`r_t = -\|w_{t+1} - w^*\|` (or, black-box, the validation accuracy of :math:`w_{t+1}`),
  return :math:`G_t = \sum_{s \ge t} r_s`, and the leave-one-out mean of the other episodes' returns at
  the same step as the baseline. The learner's steps follow the same ``learner_optimizer``.

Each function returns a :class:`PolicyTraining` whose ``teacher`` is an ordinary teacher of ``teach()``.
Both sample their training examples from their own stream (``"policy-train"``), not from the stream a
teacher uses at teaching time, so a policy is evaluated on examples it was not trained on.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Secs. 3.3 and 6.2 (Fig. 12) and Sec. 4 (BLAST);
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 3.3.1;
    Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
    learning", Machine Learning 8, 1992.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..problems import Problem
from ..random import RunStreams, as_seeds
from ..unroll import LearnerOptimizer, rollout
from .base import gather_pool
from .learned import LearnedTeacher, TeachingPolicy

__all__ = ["OBJECTIVES", "REWARDS", "PolicyTraining", "plan_labels", "train_reinforce", "train_unrolled",
           "unrolled_objective"]

OBJECTIVES = ("distance", "loss")
REWARDS = ("distance", "accuracy")
TRAIN_STREAM = "policy-train"
TRAIN_ACTION_STREAM = "policy-train-action"
TRAIN_PARTNER_STREAM = "policy-train-partner"


@dataclass
class PolicyTraining:
    """Result of a policy training.

    Attributes:
        teacher: the trained policy as a :class:`LearnedTeacher`.
        params: its parameters (leading run axis R).
        history: per iteration, the per-run training objective (unrolling: the window's final objective;
            REINFORCE: the mean over episodes of the final distance or accuracy), array [iterations, R].
        config: what produced it.
    """

    teacher: LearnedTeacher
    params: tuple[torch.Tensor, ...]
    history: np.ndarray
    config: dict = field(default_factory=dict)


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _check_problem(policy: TeachingPolicy, problem: Problem) -> None:
    if not isinstance(policy, TeachingPolicy):
        raise TypeError(f"policy must be a TeachingPolicy, got {type(policy).__name__}")
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem, got {type(problem).__name__}")
    problem.check_learner(policy.learner)


def _non_negative_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")


def _check_training(policy: TeachingPolicy, problem: Problem, mode: str, trainers: tuple[str, str], goal: str,
                    value: str, choices: tuple[str, str]) -> None:
    """The trainers' shared checks: the problem, the policy's mode, and the goal (``choices[0]`` needs w*)."""
    _check_problem(policy, problem)
    if policy.mode != mode:
        raise ValueError(f"{trainers[0]} needs a {mode} policy (mode='{mode}'); use {trainers[1]}")
    if value not in choices:
        raise ValueError(f"{goal} must be one of {', '.join(choices)}, got {value!r}")
    if value == choices[0] and not policy.omniscient:
        raise ValueError(f"{goal}='{choices[0]}' needs w*: use an omniscient policy or {goal}='{choices[1]}'")


def _validation(problem: Problem, validation) -> tuple[torch.Tensor, torch.Tensor]:
    """The black-box teacher's validation set: given, or the pool with its true labels."""
    if validation is None:
        return problem.X, problem.y
    X, y = validation
    if X.dim() != 3 or y.shape[:2] != X.shape[:2]:
        raise ValueError(f"validation must be (X [R|1, n, d], y [R|1, n(, K)]), got {tuple(X.shape)}, {tuple(y.shape)}")
    return X, y


def _init_params(policy, streams, problem, params):
    if params is None:
        params = policy.init(streams, dtype=problem.X.dtype, device=problem.X.device)
    else:
        policy.architecture.layers(tuple(params))
    return tuple(p.detach().clone().requires_grad_(True) for p in params)


def _learner_optimizer(learner_optimizer, betas, eps) -> LearnerOptimizer:
    """The learner's update rule from the trainers' arguments (a name, or a LearnerOptimizer as given)."""
    if isinstance(learner_optimizer, LearnerOptimizer):
        return learner_optimizer
    if not isinstance(learner_optimizer, str):
        raise TypeError(f"learner_optimizer must be 'sgd', 'adam' or a LearnerOptimizer, got "
                        f"{type(learner_optimizer).__name__}")
    return LearnerOptimizer(learner_optimizer, betas, eps)


@dataclass
class _Unroller:
    """What one window of :func:`train_unrolled` needs: the sampled examples per global step, the learner's
    update with the policy's action, the auxiliary term at the stop-gradient state, and the objective."""

    policy: TeachingPolicy
    problem: Problem
    streams: RunStreams
    lr: float
    batch_size: int
    objective: str
    validation: tuple[torch.Tensor, torch.Tensor]
    optimizer: LearnerOptimizer
    episode_steps: int

    def value(self, w: torch.Tensor) -> torch.Tensor:
        """The objective per run: ||w - w*||^2 or the mean learner loss on the validation set."""
        if self.objective == "distance":
            return ((w - self.problem.w_star.expand_as(w)) ** 2).sum(-1)
        return self.policy.learner.loss(w, *self.validation).mean(-1)

    def transformed(self, theta, w: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The examples of global step i (the training stream) after the policy's action at w: (x', y', y), the
        last being the sampled label."""
        X, Y, n = self.problem.X, self.problem.y, self.problem.pool_size
        x, y = gather_pool(X, Y, self.streams.integers(TRAIN_STREAM, i, n, (self.batch_size,)).to(X.device))
        partner = None
        if self.policy.kind == "mixup":
            index = self.streams.integers(TRAIN_PARTNER_STREAM, i, n, (self.batch_size,)).to(X.device)
            partner = gather_pool(X, Y, index)
        e = self.policy.direction(w, self.problem.w_star.expand_as(w), self.validation)
        return (*self.policy.apply(theta, w, x, y, e, partner), y)

    def start(self) -> tuple[torch.Tensor, ...]:
        """The state at an episode's start: w0 and the optimiser's fresh state."""
        w0 = self.problem.w0.detach()
        return (w0, *self.optimizer.init(w0))

    def window(self, theta, state, start: int, horizon: int, aux: bool):
        """Roll ``horizon`` steps from ``state`` at global step ``start``: (objective [R], auxiliary sum [R] or
        None, final state). The optimiser's step count is the step within the episode."""
        learner = self.policy.learner

        def step(ws, i):
            w = ws[0]
            x2, y2, _ = self.transformed(theta, w, i)
            grad = learner.mean_grad(w, x2, y2)
            w, moments = self.optimizer.step(w, grad, tuple(ws[1:]), self.lr, i % self.episode_steps)
            return (w, *moments)

        def auxiliary(ws, i):  # DHT Sec. 3.3.1: l(pi_theta(x_i, y_i, w_i^SG, w*); y_i | w_i^SG), ws already detached
            w = ws[0]
            x2, _, y = self.transformed(theta, w, i)
            return learner.loss(w, x2, y).mean(-1)

        result = rollout(step, state, horizon, start=start, aux=auxiliary if aux else None)
        final = result.iterates[-1]
        total_aux = torch.stack(result.aux).sum(0) if aux and result.aux else None
        return self.value(final[0]), total_aux, final


def _unroller(policy, problem, *, lr, batch_size, objective, validation, learner_optimizer, learner_betas,
              learner_eps, episode_steps, streams) -> _Unroller:
    return _Unroller(policy, problem, streams, lr, batch_size, objective, _validation(problem, validation),
                     _learner_optimizer(learner_optimizer, learner_betas, learner_eps), episode_steps)


def unrolled_objective(
    policy: TeachingPolicy,
    problem: Problem,
    params: Sequence[torch.Tensor],
    *,
    lr: float,
    horizon: int,
    batch_size: int = 1,
    objective: str = "distance",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    learner_optimizer: str | LearnerOptimizer = "sgd",
    seed: int | Sequence[int] = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The two terms of :func:`train_unrolled`'s first window (from w0), differentiable in ``params``.

    The arguments are :func:`train_unrolled`'s (``learner_optimizer``: ``"sgd"``, ``"adam"`` with its defaults, or
    a :class:`~teachtheory.unroll.LearnerOptimizer` with other betas and epsilon).

    Returns:
        (main [R], aux [R]): :math:`\|w_v - w^*\|^2` (or the validation loss) and
        :math:`\sum_{i=1}^{v} \ell(\pi_\theta(x_i, y_i, w_i^{SG}, w^*); y_i \mid w_i^{SG})`, the batch-mean
        learner loss on the transformed inputs with their sampled labels at the stop-gradient iterates (DHT
        Sec. 3.3.1). The training
        objective is ``main + aux_weight * aux`` summed over runs; the examples are those ``train_unrolled``
        draws with the same ``seed``.
    """
    _check_training(policy, problem, "continuous", ("unrolled_objective", "train_reinforce"), "objective", objective,
                    OBJECTIVES)
    lr, horizon = _positive_float("lr", lr), _positive_int("horizon", horizon)
    unroller = _unroller(policy, problem, lr=lr, batch_size=_positive_int("batch_size", batch_size),
                         objective=objective, validation=validation, learner_optimizer=learner_optimizer,
                         learner_betas=(0.9, 0.999), learner_eps=1e-8, episode_steps=horizon,
                         streams=RunStreams(as_seeds(seed, problem.runs), device=problem.X.device))
    policy.architecture.layers(tuple(params))
    with torch.enable_grad():
        main, aux, _ = unroller.window(tuple(params), unroller.start(), 0, horizon, True)
    return main, aux


def train_unrolled(
    policy: TeachingPolicy,
    problem: Problem,
    *,
    lr: float,
    horizon: int,
    iterations: int,
    episode_steps: int | None = None,
    batch_size: int = 1,
    policy_lr: float = 1e-3,
    aux_weight: float = 0.0,
    objective: str = "distance",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    learner_optimizer: str | LearnerOptimizer = "sgd",
    learner_betas: tuple[float, float] = (0.9, 0.999),
    learner_eps: float = 1e-8,
    seed: int | Sequence[int] = 0,
    params: Sequence[torch.Tensor] | None = None,
    name: str = "unrolled",
) -> PolicyTraining:
    r"""Train a continuous policy by unrolling ``horizon`` (v) learner steps (Adam on theta).

    Minimises, per window of v steps, :math:`\|w_v(\theta) - w^*\|^2 + \lambda \sum_{i=1}^{v}
    \ell(\pi_\theta(x_i, y_i, w_i^{SG}, w^*); y_i \mid w_i^{SG})` (Qiu, Liu et al., "Iterative Teaching by Data
    Hallucination", AISTATS 2023, Sec. 3.3.1; see the module docstring and :func:`unrolled_objective`).

    Args:
        policy: a ``mode="continuous"`` policy (label or input).
        problem: R runs; run r trains its own policy on its own pool, target and w0.
        lr: the learner's step size eta (Adam's step size with ``learner_optimizer="adam"``). horizon: v >= 1.
        iterations: policy updates.
        episode_steps: restart at w0 after this many learner steps (default: ``horizon``, every window
            starts at w0); must be a multiple of ``horizon``.
        batch_size: examples per learner step. policy_lr: Adam step size.
        aux_weight: lambda of the auxiliary term, the learner's loss on the transformed inputs (with the sampled
            labels) at the stop-gradient iterates (DHT Sec. 3.3.1); 0 drops it.
        objective: ``"distance"`` (||w - w*||^2, omniscient) or ``"loss"`` (mean learner loss on the
            validation set, black-box).
        validation: (X, y) for ``objective="loss"``; default the pool with its true labels.
        learner_optimizer: the learner's update unrolled: ``"sgd"`` or ``"adam"`` (functional Adam, moments
            carried through the unroll and reset at each episode's start), or a
            :class:`~teachtheory.unroll.LearnerOptimizer`.
        learner_betas: Adam's (beta1, beta2), the decay rates of its first and second moment estimates.
        learner_eps: Adam's epsilon, added to the root of the second moment estimate.
        seed: per-run seeds for the initial policy and the training examples.
        params: initial policy parameters (default: ``policy.init``).
        name: the trained teacher's name.

    Returns:
        :class:`PolicyTraining`.
    """
    _check_training(policy, problem, "continuous", ("train_unrolled", "train_reinforce"), "objective", objective,
                    OBJECTIVES)
    lr, policy_lr = _positive_float("lr", lr), _positive_float("policy_lr", policy_lr)
    horizon, iterations = _positive_int("horizon", horizon), _positive_int("iterations", iterations)
    batch_size = _positive_int("batch_size", batch_size)
    episode_steps = horizon if episode_steps is None else _positive_int("episode_steps", episode_steps)
    if episode_steps % horizon:
        raise ValueError(f"episode_steps={episode_steps} must be a multiple of horizon={horizon}")
    _non_negative_number("aux_weight", aux_weight)
    streams = RunStreams(as_seeds(seed, problem.runs), device=problem.X.device)
    unroller = _unroller(policy, problem, lr=lr, batch_size=batch_size, objective=objective, validation=validation,
                         learner_optimizer=learner_optimizer, learner_betas=learner_betas, learner_eps=learner_eps,
                         episode_steps=episode_steps, streams=streams)
    theta = _init_params(policy, streams, problem, params)
    opt = torch.optim.Adam(theta, lr=policy_lr)

    history = []
    state = unroller.start()
    for it in range(iterations):
        if (it * horizon) % episode_steps == 0:
            state = unroller.start()
        with torch.enable_grad():
            main, aux, final = unroller.window(theta, state, it * horizon, horizon, aux_weight > 0)
            total = main.sum()
            if aux is not None:
                total = total + aux_weight * aux.sum()
            opt.zero_grad()
            total.backward()
        opt.step()
        state = tuple(t.detach() for t in final)
        if not torch.isfinite(state[0]).all():
            raise FloatingPointError(f"the learner diverged while training the policy (iteration {it}); lower lr={lr}")
        history.append(main.detach().cpu().numpy())
    params_out = tuple(p.detach() for p in theta)
    config = {"method": "unrolled", "horizon": horizon, "iterations": iterations, "episode_steps": episode_steps,
              "lr": lr, "policy_lr": policy_lr, "aux_weight": float(aux_weight), "objective": objective,
              "batch_size": batch_size, "learner_optimizer": unroller.optimizer.to_spec(), "policy": policy.to_spec()}
    return PolicyTraining(LearnedTeacher(policy, params_out, name=name), params_out, np.stack(history), config)


def _repeat_runs(t: torch.Tensor, R: int, B: int) -> torch.Tensor:
    """[R or 1, ...] -> [R*B or 1, ...], each run's row repeated for its B episodes."""
    return t if t.shape[0] == 1 else t.repeat_interleave(B, 0)


def train_reinforce(
    policy: TeachingPolicy,
    problem: Problem,
    *,
    lr: float,
    episode_steps: int,
    iterations: int,
    episodes: int = 16,
    batch_size: int = 1,
    policy_lr: float = 1e-2,
    reward: str = "distance",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    entropy: float = 0.0,
    learner_optimizer: str | LearnerOptimizer = "sgd",
    learner_betas: tuple[float, float] = (0.9, 0.999),
    learner_eps: float = 1e-8,
    seed: int | Sequence[int] = 0,
    params: Sequence[torch.Tensor] | None = None,
    sample: bool = False,
    name: str = "reinforce",
) -> PolicyTraining:
    """Train a discrete policy by REINFORCE with a leave-one-out baseline (Adam on theta).

    Args:
        policy: a ``mode="discrete"`` label or Mixup policy.
        problem: R runs, each with its own policy. lr: the learner's step size (Adam's with ``"adam"``).
        episode_steps: learner steps per episode (from w0, and from a fresh optimiser state). iterations: policy
            updates.
        episodes: B >= 2 episodes per run per update (the baseline needs at least two).
        reward: ``"distance"`` (r_t = -||w_{t+1} - w*||, omniscient) or ``"accuracy"`` (validation
            accuracy of w_{t+1}, black-box; classification learners).
        validation: (X, y) for the accuracy reward; default the pool with its true labels.
        entropy: weight of an entropy bonus on the action distribution (0: none).
        learner_optimizer, learner_betas, learner_eps: the learner's update rule in the episodes, as in
            :func:`train_unrolled` (``"sgd"`` or ``"adam"`` with Adam's (beta1, beta2) and epsilon).
        sample: whether the returned teacher samples its actions (default: argmax).

    Returns:
        :class:`PolicyTraining`; ``history`` holds the mean over episodes of the final distance
        (or accuracy) per run.
    """
    _check_training(policy, problem, "discrete", ("train_reinforce", "train_unrolled"), "reward", reward, REWARDS)
    if reward == "accuracy" and not policy.learner.classification:
        raise ValueError(f"reward='accuracy' needs a classifier, got {policy.learner.name}")
    lr, policy_lr = _positive_float("lr", lr), _positive_float("policy_lr", policy_lr)
    episode_steps, iterations = _positive_int("episode_steps", episode_steps), _positive_int("iterations", iterations)
    B, batch_size = _positive_int("episodes", episodes, 2), _positive_int("batch_size", batch_size)
    _non_negative_number("entropy", entropy)
    update = _learner_optimizer(learner_optimizer, learner_betas, learner_eps)
    learner = policy.learner
    R, n = problem.runs, problem.pool_size
    streams = RunStreams(as_seeds(seed, R), device=problem.X.device)
    theta = _init_params(policy, streams, problem, params)
    opt = torch.optim.Adam(theta, lr=policy_lr)
    X, Y = _repeat_runs(problem.X, R, B), _repeat_runs(problem.y, R, B)
    Xv, Yv = _validation(problem, validation)
    Xv, Yv = _repeat_runs(Xv, R, B), _repeat_runs(Yv, R, B)
    w_star = _repeat_runs(problem.w_star.expand_as(problem.w0), R, B)
    w0 = _repeat_runs(problem.w0, R, B)
    m = batch_size

    def measure(w):
        if reward == "distance":
            return -(w - w_star).norm(dim=-1)
        return learner.accuracy(w, Xv, Yv)

    history = []
    for it in range(iterations):
        w = w0.clone()
        moments = update.init(w)
        logps, rewards, entropies = [], [], []
        with torch.enable_grad():
            for t in range(episode_steps):
                k = it * episode_steps + t
                index = streams.integers(TRAIN_STREAM, k, n, (B, m)).reshape(R * B, m).to(X.device)
                x, y = gather_pool(X, Y, index)
                partner = None
                if policy.kind == "mixup":
                    other = streams.integers(TRAIN_PARTNER_STREAM, k, n, (B, m)).reshape(R * B, m).to(X.device)
                    partner = gather_pool(X, Y, other)
                feats = policy.state(w, x, y, policy.direction(w, w_star, (Xv, Yv)), partner)
                raw = policy.network(theta, feats.reshape(R, B * m, -1))
                logp = torch.log_softmax(raw, -1).reshape(R * B, m, -1)
                u = streams.uniform(TRAIN_ACTION_STREAM, k, (B, m), dtype=logp.dtype).reshape(R * B, m, 1)
                action = (logp.detach().exp().cumsum(-1) < u).sum(-1).clamp_max(logp.shape[-1] - 1)
                logps.append(logp.gather(-1, action[..., None])[..., 0].sum(-1))  # [R*B]
                if entropy > 0:
                    entropies.append(-(logp.exp() * logp).sum(-1).mean(-1))
                with torch.no_grad():
                    grad = learner.mean_grad(w, *policy.take(action, x, y, partner))
                    w, moments = update.step(w, grad, moments, lr, t)
                    rewards.append(measure(w))
            r = torch.stack(rewards, 1).reshape(R, B, episode_steps)
            returns = r.flip(-1).cumsum(-1).flip(-1)  # G_t = sum_{s >= t} r_s
            baseline = (returns.sum(1, keepdim=True) - returns) / (B - 1)  # leave-one-out mean
            advantage = (returns - baseline).reshape(R * B, episode_steps)
            logp_all = torch.stack(logps, 1)  # [R*B, T]
            loss = -(logp_all * advantage).sum(-1).reshape(R, B).mean(1).sum()
            if entropy > 0:
                loss = loss - entropy * torch.stack(entropies, 1).sum(-1).reshape(R, B).mean(1).sum()
            opt.zero_grad()
            loss.backward()
        opt.step()
        if not torch.isfinite(w).all():
            raise FloatingPointError(f"the learner diverged while training the policy (iteration {it}); lower lr={lr}")
        final = r[..., -1]
        history.append((final if reward == "accuracy" else -final).mean(1).cpu().numpy())
    params_out = tuple(p.detach() for p in theta)
    config = {"method": "reinforce", "episode_steps": episode_steps, "iterations": iterations, "episodes": B,
              "lr": lr, "policy_lr": policy_lr, "reward": reward, "entropy": float(entropy), "batch_size": batch_size,
              "learner_optimizer": update.to_spec(), "policy": policy.to_spec()}
    teacher = LearnedTeacher(policy, params_out, sample=sample, name=name)
    return PolicyTraining(teacher, params_out, np.stack(history), config)


def plan_labels(
    learner,
    w0: torch.Tensor,
    w_star: torch.Tensor,
    x: torch.Tensor,
    y0: torch.Tensor,
    lr: float,
    *,
    iterations: int = 200,
    plan_lr: float = 0.05,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Open-loop unrolled label plan: the labels y_1..y_v for given inputs that minimise ||w_v - w*||^2.

    The non-amortised limit of the unrolled policy (a free label per step), optimised by Adam from
    ``y0`` through :func:`teachtheory.unroll.rollout`. At v = 1 its minimiser is the greedy LAST label.

    Args:
        learner: the learner. w0 [R, p], w_star [R|1, p].
        x: inputs [R, v, m, d]; y0: initial labels [R, v, m(, K)] (e.g. the greedy ones).
        lr: the learner's step size. iterations, plan_lr: Adam on the labels.

    Returns:
        (labels [R, v, m(, K)], objective ||w_v - w*||^2 per run [R]).
    """
    if x.dim() != 4 or y0.shape[:3] != x.shape[:3]:
        raise ValueError(f"x must be [R, v, m, d] and y0 [R, v, m(, K)], got {tuple(x.shape)}, {tuple(y0.shape)}")
    lr, plan_lr = _positive_float("lr", lr), _positive_float("plan_lr", plan_lr)
    iterations = _positive_int("iterations", iterations, 0)
    v = x.shape[1]
    w_star = w_star.expand_as(w0)
    labels = y0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([labels], lr=plan_lr)

    def objective():
        def step(ws, i):
            (w,) = ws
            return (w - lr * learner.mean_grad(w, x[:, i], labels[:, i]),)

        final = rollout(step, (w0.detach(),), v).iterates[-1][0]
        return ((final - w_star) ** 2).sum(-1)

    with torch.enable_grad():
        for _ in range(iterations):
            opt.zero_grad()
            objective().sum().backward()
            opt.step()
        with torch.no_grad():
            value = objective()
    return labels.detach(), value.detach()
