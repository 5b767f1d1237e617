"""Claims of parameterized LAST (LAST Sec. 4): a label policy trained by unrolling v learner steps.

* ``last.parameterized.v1-greedy``: at v = 1 the unrolled objective ||w_1(y) - w*||^2 is the greedy LAST
  objective, so its minimiser is the greedy label (stationarity of the unrolled gradient at the greedy
  label, and the unrolled label optimisation landing on it).
* ``last.parameterized.horizon``: unrolling v > 1 steps beats the greedy teacher at the horizon it was
  trained for (the unrolled labels, free per step, against greedy LAST on the same inputs).
* ``last.parameterized.beats-sgd``: the amortised label policy trained by unrolling beats SGD through
  ``teach()`` on examples it was not trained on.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Secs. 3.3 and 6.2, Fig. 12.
"""

from __future__ import annotations

import torch

from teachtheory import problems
from teachtheory.claims import (
    CheckContext,
    Verdict,
    bound_verdict,
    one_sided_better,
    power_suffix,
    register_table,
    required_runs,
)
from teachtheory.engine import teach
from teachtheory.learners import LeastSquares, Logistic
from teachtheory.random import RunStreams, as_seeds
from teachtheory.stats import mean_se
from teachtheory.teachers import RandomTeacher, synthesize_labels
from teachtheory.teachers.learned import TeachingPolicy
from teachtheory.teachers.training import plan_labels, train_unrolled
from teachtheory.unroll import rollout


def _draws(R: int, v: int, seed: int, dim: int = 6):
    problem = problems.linear_regression(dim=dim, pool_size=50, runs=R, seed=seed, noise=0.1)
    streams = RunStreams(as_seeds(seed + 77, R))
    index = streams.integers("claim-x", 0, problem.pool_size, (v,))
    X = problem.X.expand(R, -1, -1)
    x = X.gather(1, index[..., None].expand(R, v, dim)).reshape(R, v, 1, dim)
    y = problem.y.expand(R, -1).gather(1, index).reshape(R, v, 1)
    return problem, LeastSquares(dim), x, y


# -- last.parameterized.v1-greedy -------------------------------------------------------------


def _v1_case(name: str, R: int, seed: int):
    """(problem, learner, x [R, 1, 1, d], true y [R, 1, 1]) of one v1-greedy case."""
    if name == "lsr":
        return _draws(R, 1, seed)
    problem = problems.gaussian_clusters(pool_size=40, runs=R, seed=seed, dim=3, test_size=0, init_scale=1.0)
    x = problem.X.expand(R, -1, -1)[:, :1].reshape(R, 1, 1, problem.dim)
    y = problem.y.expand(R, -1)[:, :1].reshape(R, 1, 1)
    return problem, Logistic(problem.dim), x, y


# Adam starts of the label plan, around the greedy label and away from it. The logistic objective is not convex in
# y: r(y) = -y sigmoid(-y <w, x>) turns once, so y splits into two basins at the turning point and a start on the far
# side can drift to the flat end y -> inf (r -> 0) instead; greedy - 1 and greedy + 1 put a start in each basin.
V1_STARTS = (-1.0, 1.0)
V1_FIXED_STARTS = (-4.0, 0.0, 4.0)


def check_v1_greedy(ctx: CheckContext) -> Verdict:
    """At v = 1 the greedy LAST label is a global minimiser of the unrolled objective (LSR and logistic)."""
    R, lr = ctx.pick(16, 64), 0.1
    iterations = ctx.pick(1500, 4000)
    worst, cases = {"gradient": 0.0, "beaten": 0.0, "reached": 0.0, "label": 0.0}, {}
    for name in ("lsr", "logistic"):
        problem, learner, x, y = _v1_case(name, R, ctx.seed)
        w0, w_star = problem.w0, problem.w_star.expand_as(problem.w0)
        # the closed form under test (LAST Eq. 1 at the learner's step size); power: the true label instead
        greedy = synthesize_labels(learner, w0, w_star, x[:, 0], y[:, 0], ctx.perturb("eta", lr))
        claimed = y[:, 0] if ctx.power else greedy
        label = claimed.clone().requires_grad_(True)
        with torch.enable_grad():
            out = rollout(lambda ws, i, f=learner.mean_grad, xi=x[:, 0], y1=label: (ws[0] - lr * f(ws[0], xi, y1),),
                          (w0,), 1)
            values = ((out.iterates[-1][0] - w_star) ** 2).sum(-1)
            (grad,) = torch.autograd.grad(values.sum(), label)
        values = values.detach()
        # scale of the gradient: d/dy of ||e||^2-sized terms, 2 lr ||x|| ||e||
        scale = 2 * lr * x[:, 0, 0].norm(dim=-1) * (w0 - w_star).norm(dim=-1)
        size = ((w0 - w_star) ** 2).sum(-1)  # the objective's scale, ||w0 - w*||^2
        starts = [claimed + s for s in V1_STARTS] + [torch.full_like(claimed, s) for s in V1_FIXED_STARTS]
        S = len(starts)
        planned, plan_values = plan_labels(learner, w0.repeat(S, 1), w_star.repeat(S, 1), x.repeat(S, 1, 1, 1),
                                           torch.cat(starts)[:, None], lr, iterations=iterations, plan_lr=0.05)
        plan_values = plan_values.reshape(S, R)
        best = plan_values.min(0).values
        gaps = {
            "gradient": float((grad.reshape(R, -1).abs().amax(-1) / scale).max()),
            # no label the plan found is better than the claimed one (it is the minimum) ...
            "beaten": float(((values - best) / size).max()),
            # ... and the plan reaches its value (the minimum is attained there)
            "reached": float(((best - values) / size).max()),
        }
        if name == "lsr":  # strictly convex in y: the minimiser is unique, so the labels agree too
            at = plan_values.argmin(0)
            chosen = planned.reshape(S, R, -1)[at, torch.arange(R)]
            gaps["label"] = float((chosen - claimed.reshape(R, -1)).abs().max() / (1.0 + claimed.abs().max()))
        for key, value in gaps.items():
            worst[key] = max(worst[key], value)
        cases[name] = gaps
    tolerances = {"gradient": 1e-10, "beaten": 1e-12, "reached": 1e-8, "label": 1e-4}
    ratio = max(worst[k] / tolerances[k] for k in tolerances)
    return bound_verdict(
        ratio, 1.0,
        f"relative unrolled gradient at the greedy label <= {tolerances['gradient']:g} and no Adam-planned label "
        f"below its objective by more than {tolerances['beaten']:g} (float64 rounding); the best of {len(V1_STARTS)} "
        f"+ {len(V1_FIXED_STARTS)} Adam starts within {tolerances['reached']:g} of its objective, and (LSR, unique "
        f"minimiser) within {tolerances['label']:g} of the label (optimiser tolerances); objective gaps relative to "
        "||w0 - w*||^2",
        f"max relative gradient {worst['gradient']:.2e}, greedy beaten by {worst['beaten']:.1e}, plan short by "
        f"{worst['reached']:.1e}, LSR label gap {worst['label']:.1e}" + power_suffix(ctx, "the true label"),
        details=cases)


# -- last.parameterized.horizon ---------------------------------------------------------------


def check_horizon(ctx: CheckContext) -> Verdict:
    """For v > 1, labels optimised over the horizon end closer to w* than greedy labels on the same inputs."""
    R, v, lr = ctx.pick(96, 256), 5, 0.1
    problem, learner, x, y = _draws(R, v, ctx.seed + 1)
    w0, w_star = problem.w0, problem.w_star.expand_as(problem.w0)
    w, greedy = w0, []
    for i in range(v):
        g = synthesize_labels(learner, w, w_star, x[:, i], y[:, i], lr)
        greedy.append(g)
        w = w - lr * learner.mean_grad(w, x[:, i], g)
    greedy_value = ((w - w_star) ** 2).sum(-1).numpy()
    _, planned = plan_labels(learner, w0, w_star, x, torch.stack(greedy, 1), lr, iterations=ctx.pick(400, 1500))
    return one_sided_better(planned.numpy(), greedy_value, z=ctx.z, power=ctx.power,
                            what=f"||w_v - w*||^2 at v={v}: greedy minus unrolled",
                            details={"v": v, "lr": lr, "ratio_mean": float((planned.numpy() / greedy_value).mean())})


# -- last.parameterized.beats-sgd -------------------------------------------------------------


# Sized with claims.required_runs: a 16-run pilot measured a final-distance gap of 0.063 +- 0.025 (2.5 SE; 112 runs
# needed for 5 SE at 95% power), a 128-run one 0.085 +- 0.0086 (9.8 SE; 59 runs needed). Both teachers end near the
# noise floor at T = 100, so the gap is small against the spread between runs although the policy is far ahead
# mid-trajectory (e.g. 0.27 against 0.62 at t = 50).
BEATS_SGD_RUNS = (64, 128)


def check_beats_sgd(ctx: CheckContext) -> Verdict:
    """A policy trained by unrolling (v = 1) ends closer to w* than SGD on the same samples."""
    R, dim = ctx.pick(*BEATS_SGD_RUNS), 10
    problem = problems.linear_regression(dim=dim, pool_size=100, runs=R, seed=ctx.seed + 2, noise=0.1)
    learner, lr, T = LeastSquares(dim), 0.5 / dim, 100
    res = train_unrolled(TeachingPolicy(learner, hidden=(32,)), problem, lr=lr, horizon=1,
                         iterations=ctx.pick(800, 3000), episode_steps=T, policy_lr=3e-3, seed=ctx.seed)
    learned = teach(problem, learner, res.teacher, T, lr, seed=ctx.seed + 1000)["distance"]
    sgd = teach(problem, learner, RandomTeacher(), T, lr, seed=ctx.seed + 1000)["distance"]
    gap, se = mean_se(sgd[:, -1] - learned[:, -1])
    mean_gap, mean_gap_se = mean_se(sgd.mean(1) - learned.mean(1))
    return one_sided_better(learned[:, -1], sgd[:, -1], z=ctx.z, power=ctx.power,
                            what=f"||w_T - w*|| at T={T}: SGD minus unrolled policy",
                            details={"T": T, "lr": lr, "training_first_last": [float(res.history[0].mean()),
                                                                             float(res.history[-1].mean())],
                                     "runs_needed": required_runs(float(gap), float(se), R, z=ctx.z),
                                     "trajectory_mean_gap": [float(mean_gap), float(mean_gap_se)],
                                     "distance_at_half": [float(learned[:, T // 2].mean()),
                                                          float(sgd[:, T // 2].mean())]})


register_table(__name__, globals())
