r"""Training a teaching policy, two ways, batched over runs.

* **Unrolling** (LAST Sec. 4; DHT Sec. 3.3.1): roll the learner's SGD update v steps forward with the
  policy's actions, :math:`w_{i} = w_{i-1} - \eta \nabla_w \ell(w_{i-1}; \pi_\theta(\cdot))`, and back-propagate

  .. math:: J(\theta) = \|w_v(\theta) - w^*\|^2 + \lambda \sum_{i=1}^{v}
            \|w_{i-1}^{\mathrm{sg}} - \eta \nabla_w \ell(w_{i-1}^{\mathrm{sg}}; \pi_\theta(\cdot)) - w^*\|^2,

  the second term being the auxiliary intermediate loss of DHT Sec. 3.3.1 with the stop-gradient
  :math:`\mathrm{sg}` on the state entering each step (each term is the greedy one-step objective, so
  it reaches :math:`\theta` only through its own step). The black-box surrogate (BLAST, LAST Sec. 7)
  replaces :math:`\|w - w^*\|^2` with the learner's own loss on a validation set. Training runs along
  one trajectory in windows of v steps (truncated back-propagation), restarting at w0 every
  ``episode_steps``; the graph runs through :func:`teachtheory.unroll.rollout`.
* **Policy gradient** (REINFORCE, Williams 1992) over a discretised action set: B episodes per run,
  reward :math:`r_t = -\|w_{t+1} - w^*\|` (or, black-box, the validation accuracy of :math:`w_{t+1}`),
  return :math:`G_t = \sum_{s \ge t} r_s`, and the leave-one-out mean of the other episodes' returns at
  the same step as the baseline.

Each function returns a :class:`PolicyTraining` whose ``teacher`` is an ordinary teacher of ``teach()``.
Both sample their training examples from their own stream (``"policy-train"``), not from the stream a
teacher uses at teaching time, so a policy is evaluated on examples it was not trained on.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 4 (Fig. 12) and Sec. 7;
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
from ..unroll import rollout
from .base import gather_pool
from .learned import LearnedTeacher, TeachingPolicy

__all__ = ["OBJECTIVES", "REWARDS", "PolicyTraining", "plan_labels", "train_reinforce", "train_unrolled"]

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
    seed: int | Sequence[int] = 0,
    params: Sequence[torch.Tensor] | None = None,
    name: str = "unrolled",
) -> PolicyTraining:
    """Train a continuous policy by unrolling ``horizon`` (v) learner SGD steps (Adam on theta).

    Args:
        policy: a ``mode="continuous"`` policy (label or input).
        problem: R runs; run r trains its own policy on its own pool, target and w0.
        lr: the learner's step size eta. horizon: v >= 1. iterations: policy updates.
        episode_steps: restart at w0 after this many learner steps (default: ``horizon``, every window
            starts at w0); must be a multiple of ``horizon``.
        batch_size: examples per learner step. policy_lr: Adam step size.
        aux_weight: lambda of the stop-gradient auxiliary term (DHT Sec. 3.3.1); 0 drops it.
        objective: ``"distance"`` (||w - w*||^2, omniscient) or ``"loss"`` (mean learner loss on the
            validation set, black-box).
        validation: (X, y) for ``objective="loss"``; default the pool with its true labels.
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
    learner = policy.learner
    R = problem.runs
    streams = RunStreams(as_seeds(seed, R), device=problem.X.device)
    theta = _init_params(policy, streams, problem, params)
    opt = torch.optim.Adam(theta, lr=policy_lr)
    X, Y = problem.X, problem.y
    Xv, Yv = _validation(problem, validation)
    w_star = problem.w_star.expand_as(problem.w0)
    n = problem.pool_size

    def value(w: torch.Tensor) -> torch.Tensor:
        if objective == "distance":
            return ((w - w_star) ** 2).sum(-1)
        return learner.loss(w, Xv, Yv).mean(-1)

    def step(ws, i):
        (w,) = ws
        index = streams.integers(TRAIN_STREAM, i, n, (batch_size,)).to(X.device)
        x, y = gather_pool(X, Y, index)
        partner = None
        if policy.kind == "mixup":
            partner = gather_pool(X, Y, streams.integers(TRAIN_PARTNER_STREAM, i, n, (batch_size,)).to(X.device))
        x2, y2 = policy.apply(theta, w, x, y, policy.direction(w, w_star, (Xv, Yv)), partner)
        return (w - lr * learner.mean_grad(w, x2, y2),)

    history = []
    w = problem.w0.detach()
    clock = 0
    for it in range(iterations):
        if (it * horizon) % episode_steps == 0:
            w, clock = problem.w0.detach(), 0
        with torch.enable_grad():
            result = rollout(step, (w,), horizon, start=it * horizon, stop_gradient_steps=aux_weight > 0)
            final = result.iterates[-1][0]
            main = value(final)
            total = main.sum()
            if aux_weight > 0:
                total = total + aux_weight * sum(value(g[0]).sum() for g in result.greedy)
            opt.zero_grad()
            total.backward()
        opt.step()
        w = final.detach()
        clock += horizon
        if not torch.isfinite(w).all():
            raise FloatingPointError(f"the learner diverged while training the policy (iteration {it}); lower lr={lr}")
        history.append(main.detach().cpu().numpy())
    params_out = tuple(p.detach() for p in theta)
    config = {"method": "unrolled", "horizon": horizon, "iterations": iterations, "episode_steps": episode_steps,
              "lr": lr, "policy_lr": policy_lr, "aux_weight": float(aux_weight), "objective": objective,
              "batch_size": batch_size, "policy": policy.to_spec()}
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
    seed: int | Sequence[int] = 0,
    params: Sequence[torch.Tensor] | None = None,
    sample: bool = False,
    name: str = "reinforce",
) -> PolicyTraining:
    """Train a discrete policy by REINFORCE with a leave-one-out baseline (Adam on theta).

    Args:
        policy: a ``mode="discrete"`` label or Mixup policy.
        problem: R runs, each with its own policy. lr: the learner's step size.
        episode_steps: learner steps per episode (from w0). iterations: policy updates.
        episodes: B >= 2 episodes per run per update (the baseline needs at least two).
        reward: ``"distance"`` (r_t = -||w_{t+1} - w*||, omniscient) or ``"accuracy"`` (validation
            accuracy of w_{t+1}, black-box; classification learners).
        validation: (X, y) for the accuracy reward; default the pool with its true labels.
        entropy: weight of an entropy bonus on the action distribution (0: none).
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
                    w = w - lr * learner.mean_grad(w, *policy.take(action, x, y, partner))
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
              "policy": policy.to_spec()}
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
