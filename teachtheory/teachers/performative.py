"""Performative teaching (DHT Sec. 4.2, Algorithm 1): greedy data hallucination in a network's representation space.

A network is split into an encoder g1 (parameters v) and a linear softmax classifier g2 (parameters w). At every
training step the teacher estimates a target w* for the classifier by a few gradient steps on the mini-batch's
features with the encoder fixed, then replaces each feature f by the greedy DHT example f~ on the spherical cap
{||f~|| = ||f||, angle(f~, f) <= epsilon}, i.e. the minimiser of DHT's Eq. (4)

    eta^2 ||grad_w l(f~, y | w)||^2 - 2 eta <w - w*, grad_w l(f~, y | w)>,

and the whole network takes its SGD step on f + stop_gradient(f~ - f): the classifier sees f~, the encoder's
gradient is the one of the hallucinated feature. The random policy draws f~ uniformly on the same cap; SGD leaves
f unchanged. The target moves with the encoder (performativity), so no fixed w* exists and the teacher is
black-box with respect to the network.

This is a training procedure rather than a :class:`~teachtheory.teachers.base.Teacher` of ``teach()``: the teacher
acts on features inside the network, which ``teach()``'s (input, label) batches cannot express.

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 4.2, Eq. (8), Algorithm 1,
    Table 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..distill.nets import NetSpec
from ..random import RunStreams, as_seeds

__all__ = ["POLICIES", "PerformativeResult", "cap_project", "random_on_cap", "greedy_features",
           "train_performative", "digits_images"]

POLICIES = ("sgd", "random", "performative")
_TINY = 1e-12


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(_TINY)


def cap_project(f: torch.Tensor, center: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Project f [..., h] onto the cap {||f|| = ||center||, angle(f, center) <= epsilon} (epsilon in radians)."""
    radius = center.norm(dim=-1, keepdim=True)
    c, u = _unit(center), _unit(f)
    cos = (u * c).sum(-1, keepdim=True)
    boundary = math.cos(epsilon) * c + math.sin(epsilon) * _unit(u - cos * c)
    return radius * torch.where(cos < math.cos(epsilon), boundary, u)


def random_on_cap(center: torch.Tensor, epsilon: float, normal: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """A random point of the cap around center [..., h] from standard normal draws [..., h] and uniform ones [...].

    The tangent direction is uniform; the angle is epsilon U^(1/(h-1)), the law of the distance to the centre of a
    uniform point in an (h-1)-ball, i.e. uniform on the cap up to its curvature (exact as epsilon -> 0).
    """
    c = _unit(center)
    tangent = _unit(normal - (normal * c).sum(-1, keepdim=True) * c)
    theta = epsilon * uniform.clamp_min(0)[..., None] ** (1.0 / max(center.shape[-1] - 1, 1))
    return center.norm(dim=-1, keepdim=True) * (torch.cos(theta) * c + torch.sin(theta) * tangent)


def _scores(f, y, W, b, dW, db, lr):
    """DHT Eq. (4) for a softmax head (logits f W^T + b): [R, m] for features f [R, m, h], one-hot y [R, m, K]."""
    r = torch.softmax(torch.baddbmm(b[:, None, :], f, W.transpose(1, 2)), -1) - y
    grad_sq = (r * r).sum(-1) * ((f * f).sum(-1) + 1.0)  # ||r [f; 1]^T||_F^2
    inner = (r * torch.baddbmm(db[:, None, :], f, dW.transpose(1, 2))).sum(-1)
    return lr * lr * grad_sq - 2.0 * lr * inner


def greedy_features(f: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, W_star: torch.Tensor,
                    b_star: torch.Tensor, lr: float, epsilon: float, iterations: int = 10) -> torch.Tensor:
    """Greedy DHT features on the epsilon-cap around f [R, m, h] for one-hot labels y [R, m, K].

    Projected normalised gradient descent on Eq. (4) from f itself, keeping each example's best iterate, so the
    result never scores worse than f. Head W [R, K, h], b [R, K]; target W_star, b_star likewise.
    """
    f, dW, db = f.detach(), (W - W_star).detach(), (b - b_star).detach()
    W, b = W.detach(), b.detach()
    best, best_val = f, _scores(f, y, W, b, dW, db, lr)
    step = 0.5 * epsilon * f.norm(dim=-1, keepdim=True)
    current = f
    with torch.enable_grad():
        for _ in range(iterations):
            point = current.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(_scores(point, y, W, b, dW, db, lr).sum(), point)
            current = cap_project(current - step * _unit(g), f, epsilon)
            value = _scores(current, y, W, b, dW, db, lr)
            improved = value < best_val
            best_val = torch.where(improved, value, best_val)
            best = torch.where(improved[..., None], current, best)
    return best


def digits_images(test_fraction: float = 0.3, seed: int = 0, dtype: torch.dtype = torch.float32):
    """The 8x8 digits as images: (X_train [n, 1, 8, 8], y_train [n], X_test, y_test), centred by the train mean."""
    from ..problems import digits_arrays

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    X, y = digits_arrays()
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    X, y = X[order].to(dtype).reshape(-1, 1, 8, 8), y[order]
    n_test = int(round(test_fraction * X.shape[0]))
    train, test = slice(n_test, None), slice(0, n_test)
    mean = X[train].mean(0, keepdim=True)
    return X[train] - mean, y[train], X[test] - mean, y[test]


@dataclass
class PerformativeResult:
    """Test accuracy of R trained networks: ``steps`` [n_rec] recorded, ``test_accuracy`` [R, n_rec], ``final`` [R];
    ``train_loss`` [R, n_rec] is the mini-batch loss on the (possibly hallucinated) features."""

    steps: list
    test_accuracy: torch.Tensor
    train_loss: torch.Tensor
    final: torch.Tensor


def _check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    return policy


def _accuracy(spec: NetSpec, params: dict, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (spec(params, X).argmax(-1) == y).to(X.dtype).mean(-1)


def train_performative(spec: NetSpec, data: tuple, *, policy: str, runs: int, steps: int, seed: int = 0,
                       batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 5e-4,
                       epsilon: float = 0.3, star_steps: int = 5, star_lr: float = 0.5, iterations: int = 10,
                       record_every: int | None = None) -> PerformativeResult:
    """Train R networks of ``spec`` by SGD (momentum, weight decay), with features changed by ``policy``.

    Args:
        spec: the learner (encoder = ``spec.embed``, classifier = its head).
        data: (X_train [n, C, *s], y_train [n] int, X_test, y_test).
        policy: ``sgd`` (no teaching), ``random`` (uniform on the epsilon-cap) or ``performative`` (greedy DHT on
            the cap, target from ``star_steps`` head steps of size ``star_lr`` on the batch's features).
        runs: R networks, each with its own initialisation and mini-batch order (same for every policy at a seed).
        epsilon: the cap's angular radius in radians.
        iterations: projected steps of the greedy search.
        record_every: test accuracy every this many steps (default: steps // 10).
    """
    _check_policy(policy)
    for name, value in (("runs", runs), ("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 < epsilon < math.pi:
        raise ValueError(f"epsilon must be an angle in (0, pi) radians, got {epsilon!r}")
    X, y, X_test, y_test = data
    if X.shape[0] != y.shape[0] or X_test.shape[0] != y_test.shape[0]:
        raise ValueError("data: inputs and labels must have the same number of examples")
    streams = RunStreams(as_seeds(seed + torch.arange(runs)))
    params = {k: v.requires_grad_(True) for k, v in spec.init(runs, streams=streams, dtype=X.dtype).items()}
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    every = max(1, steps // 10) if record_every is None else int(record_every)
    rec_steps, accs, losses = [], [], []
    K = spec.num_classes
    for t in range(steps):
        index = streams.integers("performative-batch", t, X.shape[0], (batch_size,))  # [R, m]
        xb, yb = X[index], F.one_hot(y[index], K).to(X.dtype)
        features = spec.embed(params, xb)  # [R, m, h]
        W, b = params["head.weight"], params["head.bias"]
        if policy == "sgd":
            target = features
        else:
            if policy == "random":
                new = random_on_cap(features.detach(), epsilon,
                                    streams.normal("performative-dir", t, features.shape[1:], X.dtype),
                                    streams.uniform("performative-angle", t, features.shape[1:2], X.dtype))
            else:
                W_star, b_star = _estimate_head(features.detach(), yb, W.detach(), b.detach(), star_steps, star_lr)
                new = greedy_features(features, yb, W, b, W_star, b_star, lr, epsilon, iterations)
            target = features + (new - features).detach()  # the encoder's gradient flows through f
        logits = torch.baddbmm(b[:, None, :], target, W.transpose(1, 2))
        loss = -(yb * torch.log_softmax(logits, -1)).sum(-1).mean(-1)  # [R]
        grads = torch.autograd.grad(loss.sum(), list(params.values()))
        with torch.no_grad():
            for (k, p), g in zip(params.items(), grads):
                velocity[k].mul_(momentum).add_(g + weight_decay * p)
                p.sub_(lr * velocity[k])
        if (t + 1) % every == 0 or t + 1 == steps:
            rec_steps.append(t + 1)
            accs.append(_accuracy(spec, params, X_test, y_test))
            losses.append(loss.detach())
    acc = torch.stack(accs, 1)
    return PerformativeResult(rec_steps, acc, torch.stack(losses, 1), acc[:, -1])


def _estimate_head(f, y, W, b, steps, lr):
    """Algorithm 1, steps 3-5: the head after ``steps`` gradient steps on the batch features with the encoder fixed."""
    m = f.shape[1]
    for _ in range(steps):
        r = torch.softmax(torch.baddbmm(b[:, None, :], f, W.transpose(1, 2)), -1) - y  # [R, m, K]
        W = W - lr * torch.bmm(r.transpose(1, 2), f) / m
        b = b - lr * r.mean(1)
    return W, b
