"""Claims of label synthesis teaching (LAST, seed 001).

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import problems
from ..engine import teach
from ..learners import LeastSquares
from ..random import RunStreams, as_seeds
from ..teachers import LASTTeacher
from ..theory import last as theory
from .core import CheckContext, Claim, Verdict, register, se_verdict
from .figures import theory_vs_measured

SOURCE = "seed 001 LAST"


# -- last.greedy-lsr ------------------------------------------------------------------------


def check_greedy_lsr(ctx: CheckContext) -> Verdict:
    """Symbolic: solve dG/dy = 0 and compare with Eq. (3). Numeric: the LAST teacher's label (the
    library's solver) equals the closed form and a 1-D numerical minimisation of the one-step
    distance, on drawn cases and several step sizes (relative error)."""
    import sympy as sp
    from scipy.optimize import minimize_scalar

    from ..teachers.last import synthesize_labels

    solution, printed, curvature = theory.symbolic_greedy_label_lsr()
    symbolic_gap = sp.simplify(solution - printed)
    cases, d = ctx.pick(200, 2000), 5
    streams = RunStreams(as_seeds(ctx.seed, cases))
    w, w_star, x = (streams.normal(tag, 0, (d,)) for tag in ("w", "w_star", "x"))
    y_true = (x * w_star).sum(-1) + streams.normal("noise", 0, (1,))[:, 0]
    learner = LeastSquares(d)
    teacher_gap = scipy_gap = 0.0
    for lr in (0.05, 0.5, 2.0):
        y_teacher = synthesize_labels(learner, w, w_star, x[:, None, :], y_true[:, None], lr)[:, 0]
        y_closed = theory.greedy_label_lsr(w, w_star, x, lr)
        teacher_gap = max(teacher_gap, float(((y_teacher - y_closed).abs() / y_closed.abs().clamp_min(1.0)).max()))
        for i in range(min(cases, ctx.pick(30, 300))):
            wi, wsi, xi = (t[i].numpy() for t in (w, w_star, x))

            def one_step(y, wi=wi, wsi=wsi, xi=xi, lr=lr):
                return float(np.sum((wi - lr * (wi @ xi - y) * xi - wsi) ** 2))

            centre = float(y_closed[i])
            res = minimize_scalar(one_step, bracket=(centre - 10, centre + 10), tol=1e-12)
            scipy_gap = max(scipy_gap, abs(res.x - centre) / max(1.0, abs(centre)))
    statistic = max(scipy_gap, teacher_gap)
    tolerance = 1e-6
    holds = symbolic_gap == 0 and statistic <= tolerance and bool(curvature.is_positive is not False)
    return Verdict(
        "", "holds" if holds else "fails", statistic=statistic, tolerance=tolerance,
        tolerance_rule="relative error of a 1-D numerical minimiser (scipy Brent, tol 1e-12)",
        message=f"sympy: solve(dG/dy) - Eq.(3) = {symbolic_gap}; teacher vs closed form {teacher_gap:.1e}; "
                f"closed form vs scipy {scipy_gap:.1e}",
        details={"symbolic_solution": str(solution), "curvature": str(curvature)},
    )


register(Claim(
    id="last.greedy-lsr", source=f"{SOURCE}, Eq. (1)-(3)",
    statement=r"y^* = \arg\min_y \|w - \eta \nabla_w \ell(w;x,y) - w^*\|^2 = (1-\lambda)\langle w,x\rangle"
              r" + \lambda\langle w^*,x\rangle,\quad \lambda = \frac{1}{\eta\langle x,x\rangle}",
    assumptions=["least-squares loss l = 1/2 (<w,x> - y)^2", "eta > 0 and x != 0 (then G is strictly convex in y)"],
    check=check_greedy_lsr, method="sympy solve of dG/dy = 0; scipy minimize_scalar on drawn cases",
))


# -- last.kaczmarz --------------------------------------------------------------------------


def check_kaczmarz(ctx: CheckContext) -> Verdict:
    """(a) exact identity e' = (I - x x^T/||x||^2) e through the engine, for several eta;
    (b) x ~ N(0, I_d) fresh each step: E||e_t||^2/||e_0||^2 = (1 - 1/d)^t within z SE;
    (c) finite shared pool: E||e_t||^2 equals the exact covariance recursion, within z SE.
    Power: with ``ctx.power`` the Gaussian rate is replaced by (1 - 1.2/d), which must fail."""
    d = 10
    runs = ctx.pick(4000, 40000)
    steps = ctx.pick(30, 60)
    learner = LeastSquares(d)

    # (a) the identity, one step through the engine, several learning rates
    identity_gap = 0.0
    small = problems.linear_regression(dim=d, pool_size=40, runs=64, seed=ctx.seed)
    for lr in (0.01, 0.3, 5.0):
        traj = teach(small, learner, LASTTeacher(), steps=1, lr=lr, seed=ctx.seed, record=("distance",))
        # replay the sampled x to build the prediction
        streams = RunStreams(as_seeds(ctx.seed, small.runs))
        from ..teachers.base import SAMPLE_STREAM, gather_pool

        index = streams.integers(SAMPLE_STREAM, 0, small.pool_size, (1,))
        x, _ = gather_pool(small.X, small.y, index)
        predicted = theory.kaczmarz_projection(small.w0 - small.w_star, x[:, 0])
        measured = torch.as_tensor(traj.final_w) - small.w_star
        identity_gap = max(identity_gap, float(((measured - predicted).norm(dim=-1) / (small.w0 - small.w_star).norm(dim=-1)).max()))

    # (b) fresh Gaussian x: per-run i.i.d. pools walked in order
    fresh = problems.linear_regression(dim=d, pool_size=steps, runs=runs, seed=ctx.seed + 1, target="given")
    traj = teach(fresh, learner, LASTTeacher(), steps=steps, lr=0.1, seed=ctx.seed, sampling="sequential",
                 record=("distance",))
    ratio = traj["distance"] ** 2 / traj["distance"][:, :1] ** 2
    t = np.arange(steps + 1)
    rate = 1.0 - (1.2 if ctx.power else 1.0) / d
    gauss_theory = rate**t
    gauss = se_verdict(ratio.mean(0), gauss_theory, ratio.std(0, ddof=1) / math.sqrt(runs), z=ctx.z,
                       what="mean ||e_t||^2/||e_0||^2")

    # (c) a finite shared pool: exact expectation from the covariance recursion
    n = 25
    pool = problems.linear_regression(dim=d, pool_size=n, runs=runs, seed=ctx.seed + 2, shared_pool=True)
    traj_pool = teach(pool, learner, LASTTeacher(), steps=steps, lr=0.1, seed=ctx.seed, record=("distance",))
    e0 = pool.w0 - pool.w_star
    sigma0 = e0.T @ e0 / runs
    pool_theory = theory.kaczmarz_expected_sq_error(sigma0, pool.X[0], steps).numpy()
    sq = traj_pool["distance"] ** 2
    pool_check = se_verdict(sq.mean(0), pool_theory, sq.std(0, ddof=1) / math.sqrt(runs), z=ctx.z,
                            what="mean ||e_t||^2")

    figure = theory_vs_measured(ctx.figure_path("last.kaczmarz"), [
        {"t": t, "estimate": ratio.mean(0), "se": ratio.std(0, ddof=1) / math.sqrt(runs), "theory": gauss_theory,
         "theory_label": f"(1 - {'1.2' if ctx.power else '1'}/d)^t", "ylabel": r"$E\|e_t\|^2/\|e_0\|^2$",
         "title": f"x ~ N(0, I_{d}), fresh each step, R={runs}"},
        {"t": t, "estimate": sq.mean(0), "se": sq.std(0, ddof=1) / math.sqrt(runs), "theory": pool_theory,
         "theory_label": "exact covariance recursion", "title": f"finite pool n={n}, uniform sampling"},
    ], title="last.kaczmarz: unconstrained greedy LAST on LSR")
    identity_ok = identity_gap <= 1e-10
    holds = identity_ok and gauss.ok and pool_check.ok
    return Verdict(
        "", "holds" if holds else "fails", statistic=max(gauss.statistic, pool_check.statistic), tolerance=ctx.z,
        tolerance_rule=f"|mean - theory| <= {ctx.z:g} SE at every t (identity: relative error <= 1e-10)",
        message=f"identity rel. error {identity_gap:.1e}; Gaussian rate: {gauss.message}; pool: {pool_check.message}",
        details={"identity_gap": identity_gap, "gaussian": gauss.message, "pool": pool_check.message,
                 "runs": runs, "steps": steps, "d": d},
        figure=figure,
    )


register(Claim(
    id="last.kaczmarz", source=f"{SOURCE}, Eq. (3)",
    statement=r"e_{t+1} = \left(I - \frac{x x^\top}{\|x\|^2}\right) e_t;\quad x\sim N(0,I_d):\ "
              r"E\|e_T\|^2 = (1 - 1/d)^T \|e_0\|^2;\quad \text{pool: } E[\|e_{t+1}\|^2 | e_t] = \|e_t\|^2 - e_t^\top P e_t",
    assumptions=["least-squares learner, unconstrained greedy LAST", "x != 0 almost surely"],
    check=check_kaczmarz, statistical=True,
    method="engine runs; Monte Carlo mean ± SE vs (1-1/d)^t and vs the exact covariance recursion",
))
