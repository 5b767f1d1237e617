"""Greedy data hallucination teaching (DHT): synthesise x inside the data box for a uniform label.

The paper constrains "the value of each dimension to be within the minimum and maximum of the original
dataset" (Sec. 5.1), which reads two ways: per feature ([min_i X_ij, max_i X_ij] for each j,
``box="per-feature"``, the default) or one global range ([min X, max X] for every feature,
``box="global"``, how the authors' released code reads it). In both, a constant feature of the pool
(a bias column of ones) is kept at its value and never optimised.

Solves min_{x in box} eta^2 ||grad l(w; x, y)||^2 - 2 eta <w - w*, grad l(w; x, y)>, y drawn
uniformly from the label space, by projected Adam from several starts: the best pool example
carrying label y (so the result is never worse than any pool example with that label) and
random points of the box. The best iterate over all starts is kept. Optionally the label is
then synthesised by LAST for the generated x.

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Eq. (4), Sec. 5.1.
"""

from __future__ import annotations

import torch

from ..constraints import LabelSet
from ..theory.dht import solve_scaling_lsr
from .base import Teacher, TeachingBatch, TeachingContext
from .imt import scores_along
from .last import _as_label_set, synthesize_labels

__all__ = ["BOXES", "DHTTeacher", "ScalingMapTeacher", "box_search", "feasible_box", "hallucinate"]

BOXES = ("per-feature", "global")


def feasible_box(X: torch.Tensor, box: str = "per-feature") -> tuple[torch.Tensor, torch.Tensor]:
    """The hallucinated input's feasible box (lo, hi), each [Rp, d], from the pool X [Rp, n, d].

    ``"per-feature"``: each feature's own pool range. ``"global"``: one range [min X, max X] over every
    non-constant feature. A constant feature (a bias column) keeps lo = hi = its value in both.

    Raises:
        ValueError: ``box`` is not one of :data:`BOXES`.
    """
    if box not in BOXES:
        raise ValueError(f"box must be one of {', '.join(map(repr, BOXES))}; got {box!r}")
    lo, hi = X.amin(1), X.amax(1)
    if box == "global":
        constant = lo == hi  # [Rp, d]: the bias column stays fixed, and its 1 does not widen the range
        g_lo = torch.where(constant, torch.inf, lo).amin(-1, keepdim=True)
        g_hi = torch.where(constant, -torch.inf, hi).amax(-1, keepdim=True)
        lo, hi = torch.where(constant, lo, g_lo), torch.where(constant, hi, g_hi)
    return lo, hi


def box_search(objective, starts: torch.Tensor, lo: torch.Tensor, width: torch.Tensor, *, iterations: int,
               step_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected Adam in the box [lo, lo + width] from every start: (best point [..., d], its value [...]).

    ``objective`` maps points [..., d] (the starts' shape) to one value each [...], to be minimised; each start
    keeps the best of its ``iterations`` + 1 iterates (the start itself included, so never worse than it).
    """
    with torch.enable_grad():
        best_x = starts.clone()
        best_val = objective(starts)
        # Optimise in box coordinates u in [0, 1]^d so one Adam step is step_fraction of the box.
        u = ((starts - lo) / width).clone().requires_grad_(True)
        opt = torch.optim.Adam([u], lr=step_fraction)
        for k in range(iterations + 1):
            opt.zero_grad()
            current = lo + width * u
            value = objective(current)
            improved = value.detach() < best_val
            best_val = torch.where(improved, value.detach(), best_val)
            best_x = torch.where(improved[..., None], current.detach(), best_x)
            if k == iterations:
                break
            value.sum().backward()
            opt.step()
            with torch.no_grad():
                u.clamp_(0.0, 1.0)
    return best_x, best_val


def _scores(ctx: TeachingContext, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            constants: dict | None = None) -> torch.Tensor:
    """DHT Eq. (4) = IMT's score of the examples (x, y), [R, n]."""
    return scores_along(ctx.learner, w, ctx.direction(w), x, y, ctx.lr, constants)


def hallucinate(
    ctx: TeachingContext, w: torch.Tensor, y: torch.Tensor, step: int, *, iterations: int, restarts: int,
    step_fraction: float, box: str = "per-feature",
) -> torch.Tensor:
    """Greedy DHT inputs for labels y [R, m(, K)]; returns x [R, m, d] inside the feasible box
    (:func:`feasible_box` of the pool, ``box`` = "per-feature" or "global")."""
    X, Y = ctx.pool()
    R, m = y.shape[:2]
    n, d = X.shape[1], X.shape[2]
    X_box = ctx.problem.X
    if torch.is_grad_enabled() and X_box.requires_grad:
        lo, hi = feasible_box(X_box, box)  # [Rp, d]
    else:  # a constant of the pool: found once, not at every step
        lo, hi = ctx.pool_memo(("dht-box", box), lambda: feasible_box(X_box, box))
    lo, hi = lo[:, None, None, :], hi[:, None, None, :]
    # Start 0: per slot, the best pool example among those whose label equals the drawn one.
    starts = []
    for slot in range(m):  # loop over batch slots only (m is small); the pool is scored at once
        y_slot = y[:, slot]
        y_pool = y_slot[:, None].expand(R, n, *y.shape[2:])
        all_scores = _scores(ctx, w, X, y_pool, ctx.pool_constants())  # the unexpanded pool: one GEMM when shared
        same = (Y.expand(R, *Y.shape[1:]) == y_pool) if Y.dim() == 2 else (Y.expand(R, *Y.shape[1:]) == y_pool).all(-1)
        scores = torch.where(same, all_scores, torch.inf)
        best = scores.argmin(-1)
        fallback = ~torch.isfinite(scores.gather(-1, best[:, None]))[:, 0]
        best = torch.where(fallback, all_scores.argmin(-1), best)
        starts.append(X.expand(R, n, d).gather(1, best[:, None, None].expand(R, 1, d))[:, 0])
    pool_start = torch.stack(starts, 1)  # [R, m, d]
    random_starts = lo + (hi - lo) * ctx.streams.uniform("dht-start", step, (restarts, m, d), dtype=X.dtype)
    x = torch.cat([pool_start[:, None], random_starts], 1)  # [R, S, m, d]
    S = x.shape[1]
    y_rep = y[:, None].expand(R, S, *y.shape[1:]).reshape(R, S * m, *y.shape[2:])

    e, y_vector = ctx.direction(w), ctx.learner.label_vector(y_rep)  # fixed during the search

    def objective(points):
        return scores_along(ctx.learner, w, e, points.reshape(R, S * m, d), y_rep, ctx.lr,
                            y_vector=y_vector).reshape(R, S, m)

    best_x, best_val = box_search(objective, x, lo, (hi - lo).clamp_min(1e-12), iterations=iterations,
                                  step_fraction=step_fraction)
    pick = best_val.argmin(1)  # [R, m]
    return best_x.gather(1, pick[:, None, :, None].expand(R, 1, m, d))[:, 0]


class DHTTeacher(Teacher):
    """Omniscient greedy DHT (Eq. 4), with optional LAST label synthesis afterwards.

    Args:
        iterations: projected Adam steps per start.
        restarts: random starts in the box besides the best pool example.
        step_fraction: Adam step as a fraction of each coordinate's box width.
        synthesize: a label set for LAST label synthesis after x is generated (e.g. the DHT
            paper's "nonneg+ball-origin:2" on two-class one-hot labels), or None to keep the drawn label.
        beta: weight of the first layer in LAST Eq. (4) for the label synthesis (MLP learners only).
        box: the feasible set of x, "per-feature" or "global" (see :func:`feasible_box`).
    """

    name = "dht"
    omniscient = True

    def __init__(self, iterations: int = 50, restarts: int = 4, step_fraction: float = 0.05,
                 synthesize: LabelSet | str | None = None, beta: float = 1.0, box: str = "per-feature") -> None:
        if box not in BOXES:
            raise ValueError(f"box must be one of {', '.join(map(repr, BOXES))}; got {box!r}")
        self.box = box
        if iterations < 0 or restarts < 0:
            raise ValueError(f"iterations and restarts must be non-negative, got {iterations}, {restarts}")
        if step_fraction <= 0:
            raise ValueError(f"step_fraction must be positive, got {step_fraction}")
        self.iterations, self.restarts, self.step_fraction = int(iterations), int(restarts), float(step_fraction)
        self.label_set = None if synthesize is None else _as_label_set(synthesize)
        self.beta = float(beta)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Labels drawn from the label space, inputs hallucinated for them (labels then optionally synthesised)."""
        values = ctx.problem.label_values
        if values is None:
            raise ValueError("DHT needs a discrete label space: the problem has no label_values (classification only)")
        pick = ctx.streams.integers("dht-label", step, values.shape[0], (ctx.batch_size,)).to(values.device)
        y = values[pick]  # [R, m(, K)]
        x = hallucinate(ctx, w, y, step, iterations=self.iterations, restarts=self.restarts,
                        step_fraction=self.step_fraction, box=self.box)
        if self.label_set is not None:
            y = synthesize_labels(ctx.learner, w, ctx.w_star, x, y, ctx.lr, self.label_set, self.beta)
        return TeachingBatch(x=x, y=y)

    def to_spec(self) -> dict:
        """Specification dictionary: search iterations, restarts, step fraction, label synthesis, beta and box."""
        return {"name": self.name, "iterations": self.iterations, "restarts": self.restarts,
                "step_fraction": self.step_fraction,
                "synthesize": None if self.label_set is None else self.label_set.spec(), "beta": self.beta,
                "box": self.box}


class ScalingMapTeacher(Teacher):
    """DHT Thm 1 teacher for LSR: sample x uniformly, feed x~ = beta x with the pool label, beta chosen
    so that grad l(x~) = c1 ||w - w*|| grad l(x) (beta solves beta(beta m - y)/(m - y) = c1 ||e||).

    ``diagnostics`` (a list or None) collects, per step, the fraction of samples where no real
    beta exists (the vertex beta = y/(2m) is then used) and the range of beta.
    """

    name = "dht-scaling"
    omniscient = True

    def __init__(self, c1: float, diagnostics: list | None = None) -> None:
        if c1 <= 0:
            raise ValueError(f"c1 must be positive, got {c1}")
        self.c1 = float(c1)
        self.diagnostics = diagnostics

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform samples whose labels are scaled so each step's gradient norm matches c1 ||w - w*||."""
        batch = self.sample_uniform(ctx, step)
        m = (w[:, None, :] * batch.x).sum(-1)
        target = (self.c1 * (w - ctx.w_star).norm(dim=-1))[:, None].expand_as(m)
        beta, feasible = solve_scaling_lsr(m, batch.y, target)
        if self.diagnostics is not None:
            self.diagnostics.append((float((~feasible).double().mean()), float(beta.abs().min()),
                                     float(beta.abs().max())))
        return TeachingBatch(x=beta[..., None] * batch.x, y=batch.y, index=batch.index)

    def to_spec(self) -> dict:
        """Specification dictionary: name and c1."""
        return {"name": self.name, "c1": self.c1}
