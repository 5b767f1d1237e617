"""The gradient-rescaling teachers of LAST's theorems (Sec. 3.4).

A synthesised label rescales the gradient, grad' = g(y) grad (for least squares the label
y = <w,x> - g (<w,x> - y_true) realises any real g). These teachers pick g directly:

* :class:`ScaledGradientTeacher`: g = c1 ||w - w*|| (Theorem 1).
* :class:`ArmijoTeacher`: the largest g on a geometric grid satisfying the Armijo condition
  l(w - eta g grad l) <= l(w) - c2 eta g ||grad l||^2 (Theorem 2; black-box: no w* needed).
* :class:`HessianTeacher`: g = eta^-1 (Hess f(alpha w* + (1 - alpha) w))^-1 on the full pool
  (Theorem 3; alpha = 0 is Newton's method).

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Thm 1-3.
"""

from __future__ import annotations

import torch

from .base import Teacher, TeachingBatch, TeachingContext

__all__ = ["ScaledGradientTeacher", "ArmijoTeacher", "HessianTeacher"]


class ScaledGradientTeacher(Teacher):
    """g(y) = c1 ||w_t - w*|| for uniformly sampled x (LAST Thm 1)."""

    name = "scaled"
    omniscient = True

    def __init__(self, c1: float) -> None:
        if c1 <= 0:
            raise ValueError(f"c1 must be positive, got {c1}")
        self.c1 = float(c1)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform samples with gradient scale g = c1 ||w - w*|| per run."""
        batch = self.sample_uniform(ctx, step)
        g = self.c1 * (w - ctx.w_star).norm(dim=-1)
        batch.grad_scale = g[:, None].expand(batch.x.shape[:2])
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name and c1."""
        return {"name": self.name, "c1": self.c1}


class ArmijoTeacher(Teacher):
    """Backtracking g: the largest g_max shrink^k (k < max_halvings) meeting Armijo with c2 (LAST Thm 2).

    All grid values are tried at once; an example where none qualifies gets the smallest.
    """

    name = "armijo"
    omniscient = False

    def __init__(self, g_max: float = 10.0, c2: float = 0.5, shrink: float = 0.5, max_halvings: int = 40) -> None:
        if g_max <= 0 or not 0 < c2 < 1 or not 0 < shrink < 1 or max_halvings < 1:
            raise ValueError(
                f"need g_max > 0, 0 < c2 < 1, 0 < shrink < 1, max_halvings >= 1; got {g_max}, {c2}, {shrink}, "
                f"{max_halvings}"
            )
        self.g_max, self.c2, self.shrink, self.max_halvings = float(g_max), float(c2), float(shrink), int(max_halvings)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform samples with the per-example gradient scale found by Armijo backtracking."""
        batch = self.sample_uniform(ctx, step)
        learner, lr = ctx.learner, ctx.lr
        R, m = batch.x.shape[:2]
        grads = learner.grad(w, batch.x, batch.y)  # [R, m, p]
        base = learner.loss(w, batch.x, batch.y)  # [R, m]
        grid = self.g_max * self.shrink ** torch.arange(self.max_halvings, dtype=w.dtype, device=w.device)  # [G]
        G = grid.numel()
        trial = w[:, None, None, :] - lr * grid[None, None, :, None] * grads[:, :, None, :]  # [R, m, G, p]
        x_rep = batch.x[:, :, None].expand(R, m, G, batch.x.shape[-1]).reshape(R * m * G, 1, -1)
        y_rep = batch.y[:, :, None].expand(R, m, G, *batch.y.shape[2:]).reshape(R * m * G, 1, *batch.y.shape[2:])
        trial_loss = learner.loss(trial.reshape(R * m * G, -1), x_rep, y_rep).reshape(R, m, G)
        sq = (grads * grads).sum(-1)
        ok = trial_loss <= base[..., None] - self.c2 * lr * grid * sq[..., None]
        first = torch.where(ok.any(-1), ok.to(torch.int64).argmax(-1), torch.full_like(base, G - 1, dtype=torch.int64))
        batch.grad_scale = grid[first]
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name, g_max, c2 and shrink."""
        return {"name": self.name, "g_max": self.g_max, "c2": self.c2, "shrink": self.shrink}


class HessianTeacher(Teacher):
    """Full-pool step preconditioned by eta^-1 Hess f(alpha w* + (1 - alpha) w)^-1 (LAST Thm 3)."""

    name = "hessian"
    omniscient = True

    def __init__(self, alpha: float = 1.0, damping: float = 0.0) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if damping < 0:
            raise ValueError(f"damping must be non-negative, got {damping}")
        self.alpha, self.damping = float(alpha), float(damping)
        self.omniscient = alpha > 0

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """The full pool with the step preconditioned by the inverse Hessian at the anchor point."""
        X, y = ctx.pool()
        R, p = w.shape
        # alpha = 0 (Newton) must not read w*: the teacher is then not omniscient.
        anchor = w if self.alpha == 0 else self.alpha * ctx.w_star.expand_as(w) + (1.0 - self.alpha) * w
        learner = ctx.learner

        def mean_loss(v, Xr, yr):
            return learner.loss(v[None], Xr[None], yr[None]).mean()

        Xr, yr = X.expand(R, *X.shape[1:]), y.expand(R, *y.shape[1:])
        hess = torch.func.vmap(torch.func.hessian(mean_loss))(anchor, Xr, yr)  # [R, p, p]
        eye = torch.eye(p, dtype=w.dtype, device=w.device)
        precond = torch.linalg.inv(hess + self.damping * eye) / ctx.lr
        return TeachingBatch(x=Xr, y=yr, preconditioner=precond)

    def to_spec(self) -> dict:
        """Specification dictionary: name, alpha and damping."""
        return {"name": self.name, "alpha": self.alpha, "damping": self.damping}
