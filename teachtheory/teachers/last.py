"""Label synthesis teaching (LAST): the omniscient greedy teacher and its label solvers.

The greedy label minimises G(y) = ||w - eta grad l(w; x, y) - w*||^2 over a feasible label set. With
the learner's output Jacobian and residual r = dl/dz, G = r^T A r - 2 b^T r (the closed forms of
:mod:`teachtheory.theory.last`); the solver depends only on how the label enters r, the learner's
``label_kind``:

* "real" (least squares, scalar or vector): r = z - y, G is an isotropic quadratic in y, so the
  constrained label is the Euclidean projection of the unconstrained one.
* "probabilities" (softmax regression; the two-layer MLP of LAST Eq. (4), with the layer weight
  beta): r = (s 1^T - I) y, a quadratic in y; on labels summing to one and with an isotropic A
  (softmax regression) it is isotropic there too.
* "binary-logit" (logistic regression, scalar y): G = a r(y)^2 - 2 b r(y) with r(y) = -y sigmoid(-y m),
  not a quadratic in y; solved exactly on an interval by enumerating the turning point, the roots of
  r(y) = b/a on each monotone branch, and the interval ends.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Eq. (1)-(4), Alg. 1, Sec. 3.5.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from ..constraints import LabelSet, Unconstrained, interval, parse_label_set
from ..learners import LABEL_KINDS, Learner, OutputJacobian
from ..learners.linear import LinearLearner
from ..theory.last import (
    LOGISTIC_CRITICAL_MARGIN,
    LabelQuadratic,
    greedy_label_lsr,
    greedy_lsr_change,
    label_quadratic,
    residual_quadratic,
    softmax_plane_centre,
)
from .base import Teacher, TeachingBatch, TeachingContext, gather_pool
from .imt import select_examples

__all__ = [
    "LASTTeacher", "MixedTeacher", "JointGreedyLSRTeacher", "synthesize_labels", "greedy_label_quadratic",
    "solve_label_quadratic", "logistic_greedy_label",
]


def _as_label_set(constraint: LabelSet | str | None) -> LabelSet:
    """A LabelSet from a LabelSet, a spec string or None (no constraint)."""
    if constraint is None:
        return Unconstrained()
    if isinstance(constraint, str):
        return parse_label_set(constraint)
    if isinstance(constraint, LabelSet):
        return constraint
    raise TypeError(f"constraint must be a LabelSet, a spec string or None, got {type(constraint).__name__}")


def solve_label_quadratic(
    H: torch.Tensor,
    q: torch.Tensor,
    label_set: LabelSet,
    *,
    isotropic: bool,
    prediction: torch.Tensor | None,
    truth: torch.Tensor,
    iterations: int = 20000,
) -> torch.Tensor:
    """argmin_y y^T H y - 2 q^T y over ``label_set``, batched over leading dims.

    Isotropic H (= a I): projection of q / a. Discrete sets: enumeration of the candidates.
    Unconstrained: a minimiser by least squares, the one with sum(y) = 1 when H has the
    softmax null direction. Other convex sets: accelerated projected gradient (FISTA with adaptive
    restart) with step 1 / lambda_max(H), started from the projected truth, to a per-example
    optimality tolerance (a RuntimeWarning if ``iterations`` is not enough).
    """
    K = q.shape[-1]
    if label_set.is_discrete:
        cand = label_set.candidates(K, dtype=q.dtype, device=q.device)  # [C, K]
        feasible = label_set.contains(
            cand.expand(*q.shape[:-1], *cand.shape),
            prediction=None if prediction is None else prediction.unsqueeze(-2),
            truth=truth.unsqueeze(-2),
        ) if not _is_plain_discrete(label_set) else None
        values = torch.einsum("ck,...kl,cl->...c", cand, H, cand) - 2.0 * torch.einsum("...k,ck->...c", q, cand)
        if feasible is not None:
            if not feasible.any(-1).all():
                raise ValueError("constraint: the feasible label set is empty for some example")
            values = torch.where(feasible, values, torch.inf)
        return cand[values.argmin(-1)]
    if isotropic:
        a = H[..., 0, 0]
        safe = a > 0
        centre = torch.where(safe[..., None], q / torch.where(safe, a, 1.0)[..., None], truth)
        return label_set.project(centre, prediction=prediction, truth=truth)
    if isinstance(label_set, Unconstrained):
        # Minimisers form an affine set when H is singular; add the equality sum(y) = 1, which
        # only picks a point of that set when 1 is not orthogonal to the null space.
        ones = torch.ones(*q.shape[:-1], 1, K, dtype=q.dtype, device=q.device)
        kkt = torch.cat([torch.cat([H, ones.transpose(-1, -2)], -1),
                         torch.cat([ones, torch.zeros(*q.shape[:-1], 1, 1, dtype=q.dtype, device=q.device)], -1)], -2)
        rhs = torch.cat([q, torch.ones(*q.shape[:-1], 1, dtype=q.dtype, device=q.device)], -1)
        sol = torch.linalg.lstsq(kkt, rhs.unsqueeze(-1), driver="gelsd").solution[..., :K, 0]
        return sol
    return _projected_gradient(H, q, label_set, prediction=prediction, truth=truth, max_iterations=iterations)


def _projected_gradient(H, q, label_set, *, prediction, truth, max_iterations):
    """FISTA with adaptive restart (O'Donoghue & Candes 2015), run per example until the
    projected-gradient residual ||y - P(y - grad/L)|| is below tol (1 + ||y||). Converged
    examples are frozen, so an example's label does not depend on the rest of the batch."""
    tol = 1e-12 if q.dtype == torch.float64 else 1e-6
    lipschitz = (2.0 * torch.linalg.eigvalsh(H)[..., -1]).clamp_min(1e-300)[..., None]

    def grad(v):
        return 2.0 * ((H @ v.unsqueeze(-1))[..., 0] - q)

    def step(v):
        return label_set.project(v - grad(v) / lipschitz, prediction=prediction, truth=truth)

    y = label_set.project(truth.clone(), prediction=prediction, truth=truth)
    z = y.clone()
    t = torch.ones(q.shape[:-1] + (1,), dtype=q.dtype, device=q.device)
    active = torch.ones(q.shape[:-1] + (1,), dtype=torch.bool, device=q.device)
    for iteration in range(max_iterations):
        y_next = step(z)
        t_next = (1.0 + torch.sqrt(1.0 + 4.0 * t * t)) / 2.0
        z_next = y_next + ((t - 1.0) / t_next) * (y_next - y)
        # Restart the momentum where it points uphill.
        restart = ((grad(z) * (y_next - y)).sum(-1, keepdim=True) > 0)
        z_next = torch.where(restart, y_next, z_next)
        t_next = torch.where(restart, torch.ones_like(t_next), t_next)
        y = torch.where(active, y_next, y)
        z = torch.where(active, z_next, z)
        t = torch.where(active, t_next, t)
        if iteration % 10 == 9:
            residual = (step(y) - y).norm(dim=-1, keepdim=True)
            active = active & (residual > tol * (1.0 + y.norm(dim=-1, keepdim=True)))
            if not active.any():
                return y
    warnings.warn(
        f"LAST label solver: {int(active.sum())} of {active.numel()} labels did not reach the optimality "
        f"tolerance in {max_iterations} iterations", RuntimeWarning, stacklevel=3,
    )
    return y


def _sums_to_one(label_set: LabelSet) -> bool:
    """True when every label of the set satisfies sum(y) = 1 (simplex, one-hot, or an intersection with one)."""
    from ..constraints import Intersection, OneHot, Simplex

    members = label_set.sets if isinstance(label_set, Intersection) else (label_set,)
    return any(isinstance(m, (Simplex, OneHot)) for m in members)


def _is_plain_discrete(label_set: LabelSet) -> bool:
    """True for the plain discrete sets (one-hot, signs), whose candidates need no feasibility check."""
    from ..constraints import OneHot, Signs

    return isinstance(label_set, (OneHot, Signs))


def _logistic_residual(y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The "binary-logit" residual r(y) = -y sigmoid(-y m), whose shape in y the exact solver below relies on."""
    return -y * torch.sigmoid(-y * m)


def logistic_greedy_label(
    a: torch.Tensor, b: torch.Tensor, m: torch.Tensor, truth: torch.Tensor, label_set: LabelSet,
    bisection_steps: int = 90,
) -> torch.Tensor:
    """Exact greedy label for logistic regression: argmin_y a r(y)^2 - 2 b r(y), r(y) = -y sigmoid(-y m).

    In u = y m the residual is f(u)/m with f(u) = -u sigmoid(-u), decreasing for u < u0 and
    increasing for u > u0 (u0 sigmoid(u0) = 1). The minimiser over an interval is a root of
    r(y) = b/a inside it, or else the interval point where r is nearest b/a: an end or the
    turning point. All candidates are evaluated and the best is kept.

    Args:
        a: eta^2 ||x||^2; b: eta <w - w*, x>; m: <w, x>; truth: the true label; all of one shape.
        label_set: a scalar label set (interval-like or {-1, +1}).
    """
    dtype = m.dtype
    scalar_truth = truth.unsqueeze(-1)
    if label_set.is_discrete:
        cand = label_set.candidates(1, dtype=dtype, device=m.device)[:, 0]  # [C]
        r = _logistic_residual(cand, m.unsqueeze(-1))
        values = a.unsqueeze(-1) * r * r - 2.0 * b.unsqueeze(-1) * r
        return cand[values.argmin(-1)]
    lo, hi = interval(label_set, prediction=m.unsqueeze(-1), truth=scalar_truth)
    lo, hi = lo[..., 0].expand(m.shape).to(dtype), hi[..., 0].expand(m.shape).to(dtype)
    target_r = torch.where(a > 0, b / torch.where(a > 0, a, 1.0), 0.0)
    small = m.abs() < 1e-12
    safe_m = torch.where(small, 1.0, m)
    target_u = safe_m * target_r  # f(u) = m r
    u0 = LOGISTIC_CRITICAL_MARGIN
    f_min = -(u0 - 1.0)

    def f(u):
        return -u * torch.sigmoid(-u)

    def bisect(left, right, increasing):
        for _ in range(bisection_steps):
            mid = 0.5 * (left + right)
            above = f(mid) > target_u
            go_left = above if increasing else ~above
            right = torch.where(go_left, mid, right)
            left = torch.where(go_left, left, mid)
        return 0.5 * (left + right)

    far = target_u.abs() + 50.0
    root_dec = bisect(-far, torch.full_like(m, u0), increasing=False)  # branch u <= u0
    root_inc = bisect(torch.full_like(m, u0), torch.full_like(m, 800.0), increasing=True)  # branch u >= u0
    candidates = [root_dec / safe_m, root_inc / safe_m, torch.full_like(m, u0) / safe_m]
    candidates = [torch.where(small, -2.0 * target_r, c) for c in candidates]  # m = 0: r = -y/2
    finite_lo = torch.where(torch.isfinite(lo), lo, torch.nan)
    finite_hi = torch.where(torch.isfinite(hi), hi, torch.nan)
    stack = torch.stack([*(torch.minimum(torch.maximum(c, lo), hi) for c in candidates), finite_lo, finite_hi], -1)
    r = _logistic_residual(stack, m.unsqueeze(-1))
    values = a.unsqueeze(-1) * r * r - 2.0 * b.unsqueeze(-1) * r
    values = torch.where(torch.isnan(stack), torch.inf, values)
    del f_min
    return torch.gather(stack, -1, values.argmin(-1, keepdim=True))[..., 0]


def _one_step_pieces(
    learner: Learner, w: torch.Tensor, w_star: torch.Tensor, x: torch.Tensor, lr: float, beta: float,
    jac: OutputJacobian | None = None, constants: dict | None = None, e: torch.Tensor | None = None,
) -> tuple[OutputJacobian, torch.Tensor, torch.Tensor]:
    """(output Jacobian, A, b) with ||w - lr grad l - w*||_c^2 - ||w - w*||_c^2 = r^T A r - 2 b^T r.

    c weighs the parameter block "first" (an MLP's first layer) by beta, LAST Eq. (4). ``jac``: the output
    Jacobian of x along w - w*, when the caller has it; else made with the learner's ``constants`` of x and
    ``e`` = w - w*, when the caller has them."""
    if learner.label_kind not in LABEL_KINDS:
        raise ValueError(f"learner: label_kind {learner.label_kind!r} is unknown; accepted: {', '.join(LABEL_KINDS)}")
    if jac is None:
        jac = learner.output_jacobian(w, x, w - w_star if e is None else e, constants)
    weights = [beta if name == "first" else 1.0 for name in jac.jvp]
    A, b = residual_quadratic(list(jac.jvp.values()), list(jac.gram.values()), lr, weights)
    return jac, A, b


def greedy_label_quadratic(
    learner: Learner, w: torch.Tensor, w_star: torch.Tensor, x: torch.Tensor, lr: float, beta: float = 1.0,
) -> LabelQuadratic:
    """The greedy LAST objective ||w - lr grad l(w; x, y) - w*||^2 as a quadratic in y, per example of x [R, m, d].

    Only for learners whose residual is affine in the label (``label_kind`` "real" or "probabilities");
    ``beta`` weighs an MLP's first layer (LAST Eq. 4).

    References: LAST Eq. (1)-(2), Eq. (4).
    """
    if learner.label_kind not in ("real", "probabilities"):
        raise ValueError(
            f"learner: the residual of label_kind {learner.label_kind!r} is not affine in the label, so the greedy "
            "objective is not a quadratic; accepted: 'real', 'probabilities'"
        )
    jac, A, b = _one_step_pieces(learner, w, w_star, x, lr, beta)
    return _quadratic_from(learner, jac, A, b)


def _quadratic_from(learner: Learner, jac: OutputJacobian, A: torch.Tensor, b: torch.Tensor) -> LabelQuadratic:
    """r^T A r - 2 b^T r as a quadratic in y, for the affine residual of the learner's label kind."""
    if learner.label_kind == "real":  # r = z - y
        return label_quadratic(A, b, jac.z)
    return label_quadratic(A, b, None, learner.residual_label_jacobian(jac.z))  # r = (s 1^T - I) y


def synthesize_labels(
    learner: Learner,
    w: torch.Tensor,
    w_star: torch.Tensor,
    x: torch.Tensor,
    y_true: torch.Tensor,
    lr: float,
    label_set: LabelSet | str | None = None,
    beta: float = 1.0,
) -> torch.Tensor:
    """Greedy LAST labels for the examples x [R, m, d] (LAST Eq. 1, Eq. 4 for the MLP).

    Returns labels shaped like ``y_true``.
    """
    return _synthesize(learner, w, w_star, x, y_true, lr, _as_label_set(label_set), beta)[0]


def _lsr_denominators(lr: float) -> Callable[[dict], tuple]:
    """For :meth:`TeachingContext.sample_derived`: from the squared norms s [..., m] of a block of examples,
    (where(s > 0, eta s, 1) [..., m, 1], s > 0 or None when every s is positive), the divisor and mask of
    the closed-form least-squares label (the numbers of a step alone: the same elementwise operations)."""

    def make(constants: dict) -> tuple:
        s = constants["sqnorm"][..., None]
        safe = s > 0
        if bool(safe.all()):  # no x = 0 in the block: the masks below would keep every value
            return lr * s, None
        return torch.where(safe, lr * s, 1.0), safe

    return make


def _synthesize(learner: Learner, w: torch.Tensor, w_star: torch.Tensor, x: torch.Tensor, y_true: torch.Tensor,
                lr: float, label_set: LabelSet, beta: float, constants: dict | None = None,
                e: torch.Tensor | None = None, denominators: tuple | None = None,
                ) -> tuple[torch.Tensor, OutputJacobian | None]:
    """(:func:`synthesize_labels` for a LabelSet, the output Jacobian of x at w when the labels came from the
    closed form of linear least squares, else None).

    ``constants``: the learner's constants of x, when the caller has them. ``e``: w - w_star, when the caller has
    it. ``denominators``: (eta s, mask or None) of x from :func:`_lsr_denominators` for the closed form of linear
    least squares, made from ``constants["sqnorm"]``.
    """
    jac = None
    if learner.label_kind == "real" and not label_set.is_discrete:
        jac = learner.output_jacobian(w, x, w - w_star if e is None else e, constants)
        if len(jac.gram) == 1 and next(iter(jac.gram.values())).dim() < jac.z.dim() and (
                beta == 1.0 or "first" not in jac.gram):
            # One block with J J^T = s I (linear least squares): the quadratic is isotropic in y and its
            # centre is the label that zeroes the step along e, z - J e / (eta s) (LAST Eq. 3).
            truth = learner.label_vector(y_true)
            (jvp,), (s,) = jac.jvp.values(), jac.gram.values()
            if denominators is not None and s is constants.get("sqnorm"):
                divisor, safe = denominators
            else:
                s = s[..., None]
                safe = s > 0  # s = 0 (x = 0): every label gives the same step; keep the true one
                divisor = torch.where(safe, lr * s, 1.0)
            # z + (-1) * (J e / (eta s)) is z - J e / (eta s) exactly, in one call
            centre = torch.addcdiv(jac.z, jvp, divisor, value=-1)
            if safe is not None:
                centre = torch.where(safe, centre, truth)
            y = centre if type(label_set) is Unconstrained else label_set.project(centre, prediction=jac.z,
                                                                                    truth=truth)
            return (y[..., 0] if learner.scalar_labels else y), jac
    jac, A, b = _one_step_pieces(learner, w, w_star, x, lr, beta, jac, constants, e)
    if learner.label_kind == "binary-logit":
        z = jac.z[..., 0]
        return logistic_greedy_label(A.expand(z.shape), b[..., 0], z, y_true, label_set), None
    truth = learner.label_vector(y_true)
    # The learner's label_prediction, from the outputs at hand: z itself, or the class probabilities.
    prediction = jac.z if learner.label_kind == "real" else torch.softmax(jac.z, -1)
    if learner.label_kind == "probabilities" and A.dim() < b.dim() and _sums_to_one(label_set):
        # On {sum y = 1} the objective with an isotropic A (softmax regression) is isotropic in y:
        # the label is an exact projection.
        centre = softmax_plane_centre(prediction, b, A.clamp_min(torch.finfo(A.dtype).tiny))
        return label_set.project(centre, prediction=prediction, truth=truth), None
    quad = _quadratic_from(learner, jac, A, b)
    y = solve_label_quadratic(quad.H, quad.q, label_set, isotropic=quad.isotropic, prediction=prediction, truth=truth)
    return (y[..., 0] if learner.scalar_labels else y), None


class LASTTeacher(Teacher):
    """Omniscient greedy LAST (Alg. 1): x sampled uniformly from the pool, label synthesised.

    Args:
        constraint: the feasible label set (a LabelSet or a spec such as "ball:0.5", "onehot",
            "simplex"); None for no constraint.
        beta: weight of the first layer in LAST Eq. (4) (MLP learners only).
    """

    name = "last"
    omniscient = True

    def __init__(self, constraint: LabelSet | str | None = None, beta: float = 1.0) -> None:
        self.label_set = _as_label_set(constraint)
        if beta < 0:
            raise ValueError(f"beta must be non-negative, got {beta}")
        self.beta = float(beta)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """A uniformly sampled pool x with its greedy label."""
        batch = self.sample_uniform(ctx, step)
        learner, lr, label_set = ctx.learner, ctx.lr, self.label_set
        constants = ctx.sample_constants(step)
        denominators = None
        if learner.label_kind == "real" and not label_set.is_discrete and "sqnorm" in constants:
            # the closed form's divisors, a block of steps at a time (used only where "sqnorm" is the Gram)
            denominators = ctx.sample_derived(step, ("last-lsr", lr), _lsr_denominators(lr))
        y, jac = _synthesize(learner, w, ctx.w_star, batch.x, batch.y, lr, label_set, self.beta, constants,
                             ctx.direction(w), denominators)
        if jac is not None and batch.x.shape[1] == 1 and isinstance(learner, LinearLearner):
            batch.outputs = (w, w._version, batch.x, jac.z)  # the learner's step reuses z = <w, x>
        batch.y = y
        return batch

    def to_spec(self) -> dict:
        """Name, constraint spec and beta."""
        return {"name": self.name, "constraint": self.label_set.spec(), "beta": self.beta}


class MixedTeacher(Teacher):
    """Mixed teaching (LAST Sec. 3.5): IMT selects x with the true labels, then LAST synthesises y."""

    name = "mixed"
    omniscient = True

    def __init__(self, constraint: LabelSet | str | None = None, beta: float = 1.0) -> None:
        self.label_set = _as_label_set(constraint)
        self.beta = float(beta)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """IMT's pool example, then its greedy label."""
        batch = select_examples(ctx, w)
        batch.y = synthesize_labels(ctx.learner, w, ctx.w_star, batch.x, batch.y, ctx.lr, self.label_set, self.beta)
        return batch

    def to_spec(self) -> dict:
        """Name, constraint spec and beta."""
        return {"name": self.name, "constraint": self.label_set.spec(), "beta": self.beta}


class JointGreedyLSRTeacher(Teacher):
    """The pool example and label that jointly minimise the one-step distance (unconstrained LSR only).

    With its greedy label every x gives the Kaczmarz step, a change of -<e, x>^2 / ||x||^2 in ||e||^2
    (LAST Eq. 3), so the joint optimum is the x with the largest cos^2(x, w - w*), taught with that
    label. Per step it is at least as good as mixed teaching, which only optimises x with the true
    labels (LAST Sec. 3.5).
    """

    name = "joint-greedy"
    omniscient = True

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """The best pool example under its greedy label, with that label."""
        learner = ctx.learner
        if learner.label_kind != "real" or learner.output_dim != 1:
            raise ValueError(f"learner: joint greedy teaching needs scalar least squares (label_kind 'real', one "
                             f"output), got {learner.name} with label_kind {learner.label_kind!r}")
        X, y = ctx.pool()
        jac = learner.output_jacobian(w, X, w - ctx.w_star, ctx.pool_constants())
        change = greedy_lsr_change(jac.jvp["all"][..., 0], jac.gram["all"])
        index = change.argmin(-1, keepdim=True)
        x, _ = gather_pool(X, y, index)
        label = greedy_label_lsr(w[:, None, :], ctx.w_star[:, None, :], x, ctx.lr)
        return TeachingBatch(x=x, y=label, index=index)
