"""DHT's remark after Thm 1: a scaling map recovers label synthesis, so DHT is always at least as good.

For least squares a scaling x~ = beta x multiplies the gradient by g_s = beta (beta m - y)/(m - y) (m = <w, x>),
a parabola in beta with a one-sided range; a synthesized label multiplies it by (m - y')/(m - y), any real number.
The check compares the closed-form range with a brute-force sweep over beta, and the best one-step distance of a
scaling map with greedy LAST's on drawn states.

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 3.4 and Appendix A, Eq. (13).
"""

from __future__ import annotations

import torch

from teachtheory.claims import CheckContext, Verdict, conclude, outcome, register_table
from teachtheory.random import RunStreams, as_seeds
from teachtheory.theory import dht as theory
from teachtheory.theory import last as last_theory

BETAS = torch.linspace(-30.0, 30.0, 20001, dtype=torch.float64)  # the brute-force sweep (step 3e-3)


def check_scaling_recovers_last(ctx: CheckContext) -> Verdict:
    """(1) Range of g_s: closed form vs max/min over a dense beta sweep (cases with the vertex inside the sweep).
    (2) Drawn LSR states: greedy LAST's one-step change (unconstrained label) vs the best scaling map over the
    sweep: the printed claim needs DHT <= LAST everywhere; the corrected form: equal where LAST's multiplier
    is inside the range, and DHT's best is the range's end otherwise."""
    cases, d, lr = ctx.pick(150, 2000), 4, 0.3
    streams = RunStreams(as_seeds(ctx.seed, cases))
    w, w_star, x = (streams.normal(tag, 0, (d,)) for tag in ("w", "w_star", "x"))
    y = (x * w_star).sum(-1) + 0.5 * streams.normal("noise", 0, (1,))[:, 0]
    m = (w * x).sum(-1)
    low, high = theory.scaling_multiplier_range_lsr(m, y)
    low, high = ctx.perturb("vertex", low), ctx.perturb("vertex", high)
    # (1) the range against the sweep, where the vertex beta = y/(2m) lies well inside it
    inside = (y / (2 * m)).abs() < 20
    sweep = theory.scaling_multiplier_lsr(m[:, None], y[:, None], BETAS[None])  # [cases, B]
    finite = torch.where(torch.isfinite(low), low, high)
    swept = torch.where(torch.isfinite(low), sweep.min(-1).values, sweep.max(-1).values)
    scale = finite.abs().clamp_min(1.0)
    range_gap = float(((swept - finite).abs() / scale)[inside].max())
    example_low, example_high = theory.scaling_multiplier_range_lsr(torch.tensor(1.0, dtype=torch.float64),
                                                                    torch.tensor(2.0, dtype=torch.float64))
    # (2) one-step changes: LAST's greedy label vs every scaling on the sweep (label y kept)
    e_sq = ((w - w_star) ** 2).sum(-1)
    label = last_theory.greedy_label_lsr(w, w_star, x, lr)
    last_change = last_theory.one_step_change(w, w_star, theory.lsr_grad(w, x, label), lr)
    xs = BETAS[None, :, None] * x[:, None, :]
    dht_changes = last_theory.one_step_change(w[:, None], w_star[:, None], theory.lsr_grad(w[:, None], xs, y[:, None]),
                                              lr)
    dht_best = dht_changes.min(-1).values
    excess = (dht_best - last_change) / e_sq  # > 0: the scaling map is worse than LAST
    # LAST's multiplier of grad l(x): c* = (m - y*)/(m - y); inside the range the scaling reaches it
    c_star = (m - label) / (m - y)
    reachable = (c_star >= low) & (c_star <= high)
    # outside: the best multiplier is the range's end (the objective is convex in the multiplier)
    c_end = torch.where(c_star < low, low, high)
    end_change = last_theory.one_step_change(w, w_star, c_end[:, None] * theory.lsr_grad(w, x, y), lr)
    tol = 1e-3  # the sweep's resolution (step 3e-3 in beta), relative to ||e||^2
    reachable_gap = float(excess[reachable & inside].abs().max())
    end_gap = float(((dht_best - end_change) / e_sq)[~reachable & inside].abs().max())
    worse = ~reachable & (excess > tol)
    printed_ok = not bool((excess > tol).any())
    corrected_ok = range_gap <= tol and reachable_gap <= tol and end_gap <= tol
    frac = float(worse.float().mean())
    return conclude(
        outcome(printed_ok, corrected_ok), max(range_gap, reachable_gap, end_gap), tol,
        f"relative gaps to a beta sweep over [-30, 30] (step 3e-3) <= {tol:g}: range ends, DHT = LAST where LAST's "
        "multiplier is reachable, DHT = the range's end otherwise; printed: DHT's best <= LAST's everywhere",
        f"g_s range: m = 1, y = 2 gives ({float(example_low):g}, {float(example_high):g}] while a LAST label reaches "
        f"any multiplier (y' = 3: 2); on {cases} drawn LSR states LAST's multiplier is out of reach in "
        f"{float((~reachable).float().mean()):.1%} and the best scaling map is strictly worse in {frac:.1%} (worst "
        f"excess {float(excess.max()):.3g} ||e||^2); closed-form range vs sweep {range_gap:.1e}",
        details={"range_gap": range_gap, "reachable_gap": reachable_gap, "end_gap": end_gap,
                 "fraction_unreachable": float((~reachable).float().mean()), "fraction_dht_worse": frac,
                 "worst_excess": float(excess.max()), "example_m1_y2": [float(example_low), float(example_high)],
                 "corrected_form": r"g_s = \beta(\beta m - y)/(m - y) \in [v, \infty) \text{ if } m(m-y) > 0,\ "
                                   r"(-\infty, v] \text{ if } m(m-y) < 0,\ v = -\frac{y^2}{4m(m-y)}:\ "
                                   r"\text{a scaling map recovers LAST's step iff } \frac{m - y^*}{m - y}"
                                   r" \text{ is in this range}",
                 "corrected_holds": bool(corrected_ok), "printed_holds": bool(printed_ok)},
    )


register_table(__name__, globals())
