r"""Oracle and data adversaries by projected gradient ascent (PGD), batched over runs and examples.

For a student f and a teacher (oracle) f*, both run-batched :mod:`teachtheory.nets` networks, and inputs
x [R, n, d]:

* the *oracle adversary* maximises :math:`\tfrac12\|f(x') - f^*(x')\|^2` over the ball :math:`B(x, \epsilon)`;
  the gradient flows through both networks, so x' is a point where the student truly disagrees with the
  oracle;
* the *data adversary* maximises a loss :math:`L[f(x'), y]` against a target y fixed at the clean point
  (the teacher's logits f*(x) for ``loss="l2"``, or its label argmax f*(x) for ``loss="ce"``).

Steps follow Madry et al.: signed gradient steps for :math:`L_\infty`, normalised gradient steps for
:math:`L_2`, each followed by the projection onto the ball; an optional subspace projector restricts the
perturbation to a plane (the in-plane / out-of-plane attacks). Every run and example is attacked
independently: the gradient of the summed loss is the per-example gradient because examples never
interact.

References:
    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to Adversarial
    Attacks", ICLR 2018 (PGD). Yang, Chen, Cai, Chen, Li & Tian, "Understanding Robustness in Teacher-Student
    Setting: A New Perspective", AISTATS 2021 (oracle and data adversaries).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .. import nets

__all__ = ["NORMS", "data_adversary", "logits", "oracle_adversary", "pgd", "project"]

NORMS = ("linf", "l2")


def logits(layers: Sequence[nets.Layer], x: torch.Tensor) -> torch.Tensor:
    """Output of a ReLU network with a linear read-out, [R, n, K]."""
    return nets.forward(layers, x, act="relu").output


def _check(eps, norm, steps, step_size) -> None:
    if isinstance(eps, torch.Tensor):
        if not bool(torch.all(torch.isfinite(eps) & (eps >= 0))):
            raise ValueError("eps must hold non-negative finite radii")
    elif not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a non-negative finite number, got {eps!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if step_size is not None and not (isinstance(step_size, (int, float)) and step_size > 0):
        raise ValueError(f"step_size must be a positive number or None, got {step_size!r}")


def project(delta: torch.Tensor, eps: float | torch.Tensor, norm: str,
            plane: torch.Tensor | None = None) -> torch.Tensor:
    """Project perturbations delta [R, n, d] onto the ball of radius eps (and into ``plane``).

    Args:
        eps: one radius, or one per example as a tensor [R, n, 1].
        plane: optional projector [R, d, d] (symmetric, idempotent); the result then lies in its range and
            in the ball. For L2 projecting into the plane first keeps the ball projection exact; for
            L_inf the in-plane vector is scaled down until it fits (clipping would leave the plane).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if plane is not None:
        delta = torch.matmul(delta, plane)
    if norm == "l2":
        size = delta.norm(dim=-1, keepdim=True)
    elif plane is None:
        return torch.maximum(torch.minimum(delta, torch.as_tensor(eps).to(delta)), -torch.as_tensor(eps).to(delta))
    else:
        size = delta.abs().amax(dim=-1, keepdim=True)
    return delta * torch.clamp(torch.as_tensor(eps).to(delta) / size.clamp_min(1e-30), max=1.0)


def pgd(objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float | torch.Tensor, *,
        norm: str = "linf",
        steps: int = 10, step_size: float | None = None, plane: torch.Tensor | None = None,
        start: torch.Tensor | None = None, keep_best: bool = False) -> torch.Tensor:
    """Maximise a per-example objective over B(x, eps) by projected gradient ascent.

    Args:
        objective: maps x' [R, n, d] to per-example values [R, n] (each depending on its own example only).
        x: clean inputs [R, n, d].
        eps: radius, or one per example as a tensor [R, n, 1]; norm: "linf" or "l2". steps: ascent steps (0
            returns ``x`` or the projected start).
        step_size: default 2.5 eps / steps (Madry et al.); with per-example radii, per-example steps.
        plane: optional projector [R, d, d] restricting the perturbation (see :func:`project`).
        start: optional initial perturbation [R, n, d] (e.g. random), projected first.
        keep_best: return, per example, the iterate with the largest objective (Stutz et al.'s choice in
            CCAT) instead of the last one.

    Returns:
        x' = x + delta [R, n, d], detached.
    """
    _check(eps, norm, steps, step_size)
    if x.dim() != 3:
        raise ValueError(f"x must be [R, n, d], got shape {tuple(x.shape)}")
    x = x.detach()
    if isinstance(eps, (int, float)) and eps == 0 or steps == 0 and start is None:
        return x.clone()
    alpha = 2.5 * eps / max(steps, 1) if step_size is None else step_size
    delta = torch.zeros_like(x) if start is None else project(start.detach(), eps, norm, plane)
    best, best_value = delta, None
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            value = objective(x + delta)
            if value.shape != x.shape[:2]:
                raise ValueError(f"objective must return [R, n] = {tuple(x.shape[:2])}, got {tuple(value.shape)}")
            (grad,) = torch.autograd.grad(value.sum(), delta)
        with torch.no_grad():
            if keep_best:
                better = value.detach() > best_value if best_value is not None else torch.ones_like(value, dtype=bool)
                best = torch.where(better[..., None], delta.detach(), best)
                best_value = value.detach() if best_value is None else torch.maximum(value.detach(), best_value)
            if plane is not None:  # ascend along the plane's part of the gradient
                grad = torch.matmul(grad, plane)
            if norm == "linf":
                step = grad.sign()
            else:
                step = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-30)
            delta = project(delta.detach() + alpha * step, eps, norm, plane)
    if keep_best:
        with torch.no_grad():
            better = objective(x + delta) > best_value
            delta = torch.where(better[..., None], delta, best)
    return (x + delta).detach()


def oracle_adversary(student: Sequence[nets.Layer], teacher: Sequence[nets.Layer], x: torch.Tensor, eps: float,
                     **kwargs) -> torch.Tensor:
    r"""x' = argmax over B(x, eps) of :math:`\tfrac12\|f(x') - f^*(x')\|^2` (gradient through both networks).

    Keyword arguments go to :func:`pgd` (norm, steps, step_size, plane, start).
    """
    def objective(z):
        return 0.5 * ((logits(student, z) - logits(teacher, z)) ** 2).sum(-1)

    return pgd(objective, x, eps, **kwargs)


def data_adversary(student: Sequence[nets.Layer], x: torch.Tensor, target: torch.Tensor, eps: float, *,
                   loss: str = "l2", **kwargs) -> torch.Tensor:
    r"""x' = argmax over B(x, eps) of L[f(x'), y] with y fixed at the clean point.

    Args:
        target: logits [R, n, K] for ``loss="l2"`` (:math:`\tfrac12\|f(x') - y\|^2`), labels [R, n] (int) for
            ``loss="ce"`` (cross-entropy).
        **kwargs: passed on to :func:`pgd`.
    """
    if loss == "l2":
        if not target.is_floating_point():
            raise TypeError("target must hold float logits [R, n, K] for loss='l2'")

        def objective(z):
            return 0.5 * ((logits(student, z) - target) ** 2).sum(-1)
    elif loss == "ce":
        if target.is_floating_point() or target.dim() != 2:
            raise TypeError("target must hold integer labels [R, n] for loss='ce'")

        def objective(z):
            out = logits(student, z)
            return F.cross_entropy(out.transpose(1, 2), target, reduction="none")
    else:
        raise ValueError(f"loss must be 'l2' or 'ce', got {loss!r}")
    return pgd(objective, x, eps, **kwargs)
