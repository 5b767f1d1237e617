"""Claims of teacher-student ReLU networks (Tian's teacher-student talk): Tian 2017's population gradient and dynamics,
and Tian 2020's student specialization.

References:
    Y. Tian, "An Analytical Formula of Population Gradient for two-layered ReLU network and its
    Applications in Convergence and Critical Point Analysis", ICML 2017.
    Y. Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input
    Dimension", ICML 2020.
    Y. Tian, "Understanding Deep Models With Teacher-student Setting" (talk).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from teachtheory.claims import CheckContext, Claim, Verdict, case_seeds, register
from teachtheory.plotting import plt, save_figure
from teachtheory.references import cite
from teachtheory.teacher_student import final_correlations

SOURCE_2020 = cite("tian2020")
WRONG_CONSTANT = 1.0 / math.pi  # the power checks' deliberately wrong 1/(2 pi)




def _figure_path(ctx: CheckContext, claim_id: str):
    return ctx.figure_path(claim_id)


def _save(fig, path) -> str | None:
    if path is None:
        plt.close(fig)
        return None
    (written,) = save_figure(fig, path)
    return str(written)


def _scatter_panel(ax, theory_values, estimate, se, title, label="Monte Carlo ± SE") -> None:
    t, e, s = (np.asarray(v, float).ravel() for v in (theory_values, estimate, se))
    ax.errorbar(t, e, yerr=s, fmt="o", ms=2.5, lw=0.8, alpha=0.7, label=label)
    lo, hi = float(min(t.min(), e.min())), float(max(t.max(), e.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="closed form")
    ax.set_xlabel("closed form")
    ax.set_ylabel("estimate")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


# -- specialization claims (shared, cached training runs) --------------------------------------


@lru_cache(maxsize=4)
def _spec_runs(scale: str, seed: int) -> dict:
    """Trained teacher-student batches for the spec.* claims, shared by the three checks.

    The runs' seeds are hashed from (seed, setting, run index) (:func:`teachtheory.claims.case_seeds`), so
    different --seed values train disjoint runs (seed + r would reuse seed - 1's runs shifted by one).
    """
    from teachtheory.teacher_student import specialization_config, train_teacher_student

    quick = scale == "quick"
    runs = 8 if quick else 32
    steps = 1500 if quick else 10000
    strengths = (0.0, 1.0, 2.0) if quick else (0.0, 1.0, 2.0, 2.5)
    out = {}
    for p in strengths:
        cfg = specialization_config("small", steps, strength_decay=p, record_every=max(1, steps // 40))
        out[("two-layer", p)] = train_teacher_student(cfg, runs=runs, seed=case_seeds(seed, runs, f"spec-p{p:g}"),
                                                      keep_networks=True)
    if not quick:
        cfg = specialization_config("small", steps, teacher_widths=(10, 15), multi=4, strength_decay=0.0,
                                    train_size=8000, record_every=max(1, steps // 40))
        out[("deep", 0.0)] = train_teacher_student(cfg, runs=16, seed=case_seeds(seed, 16, "spec-deep"),
                                                   keep_networks=True)
    return out


def _null_order(runs: int) -> list[int]:
    return [(r + 1) % runs for r in range(runs)]


def check_alignment(ctx: CheckContext) -> Verdict:
    """Two-layer teacher with equal fan-out strengths (p = 0), students 5x over-realised, trained by SGD
    until the gradient is small; every observed teacher node (boundary inside the data) should have a
    student node with activation correlation above 0.95 on held-out data. Full scale adds a 3-layer
    teacher (10-15 hidden nodes). Power: each student is paired with another run's teacher (a null
    model): recovery must collapse."""
    results = _spec_runs(ctx.scale, ctx.seed)
    cases = [("two-layer", results[("two-layer", 0.0)])]
    if ("deep", 0.0) in results:
        cases.append(("deep", results[("deep", 0.0)]))
    rows, all_rec, premise = {}, [], []
    for name, res in cases:
        corr = final_correlations(res, _null_order(res.runs)) if ctx.power else res.corr
        for layer, rho in enumerate(corr):
            observed = (res.teacher_active[layer] > 0.01) & (res.teacher_active[layer] < 0.99)
            rec = rho.max(-1) >= res.config.threshold
            all_rec.append(rec[observed])
            rows[f"{name} layer {layer + 1}"] = {"recovered": int(rec[observed].sum()), "observed": int(observed.sum()),
                                                 "min_best_corr": float(rho.max(-1)[observed].min())}
        premise.append({"case": name, "g1_inf_start": float(res.g1_inf[:, 0].mean()),
                        "g1_inf_end": float(res.g1_inf[:, -1].mean()), "eval_loss_end": float(res.eval_loss[:, -1].mean())})
    rec = np.concatenate([r.ravel() for r in all_rec])
    unaligned = int((~rec).sum())
    figure = None
    path = _figure_path(ctx, "spec.alignment")
    if path is not None:
        from teachtheory.teacher_student import figure_alignment_over_time

        (written,) = figure_alignment_over_time(cases[0][1], path, ("png",),
                                                title="spec.alignment: p = 0, best correlation per teacher node")
        figure = str(written)
    holds = unaligned == 0
    return Verdict(
        "", "holds" if holds else "fails", statistic=float(unaligned), tolerance=0.0,
        tolerance_rule="the theorem is universal: number of observed teacher nodes without a student node at "
                       "correlation >= 0.95 must be 0 (pooled over runs and layers)",
        message=f"{rec.size - unaligned}/{rec.size} observed teacher nodes aligned; "
                + "; ".join(f"{k}: {v['recovered']}/{v['observed']} (min best corr {v['min_best_corr']:.3f})"
                            for k, v in rows.items())
                + "; premise: max_x ||g_1||_inf " + ", ".join(f"{p['g1_inf_start']:.2g} -> {p['g1_inf_end']:.2g}"
                                                            for p in premise)
                + (" [power: students paired with other runs' teachers]" if ctx.power else ""),
        details={"layers": rows, "premise": premise, "power": ctx.power},
        figure=figure,
    )


register(Claim(
    id="spec.alignment", source=f"{SOURCE_2020}, alignment theorems (talk: 'Main results: Alignment could happen!')",
    statement=r"\mathbf{g}_1(x) \approx 0\ \forall x \in D \ \wedge\ \partial E^*_j \cap E_k \ne \emptyset"
              r"\ \Rightarrow\ \exists k': \rho_{jk'} > 0.95",
    assumptions=["Gaussian input, teacher nodes observed (active on 1-99% of held-out inputs; checked)",
                 ("student over-realised (5x), both layers trained by SGD (momentum 0.9, batch 64) to small gradient "
                  "(max_x ||g_1(x)||_inf reported)"),
                 "equal teacher strengths (p = 0) so that every node is learnable within the budget"],
    check=check_alignment, statistical=True,
    method="batched SGD on teacher-student MLPs; held-out activation correlations; null pairing for power",
))


def _spearman(x: np.ndarray, y: np.ndarray, never: float) -> float:
    """Spearman rank correlation; y = inf (never aligned) ranks after every finite time (as ``never``)."""
    from scipy.stats import spearmanr

    y = np.where(np.isfinite(y), y, never)
    if np.all(y == y[0]) or np.all(x == x[0]):
        return 0.0  # no ordering to measure (all aligned at the same record, or none)
    value = spearmanr(x, y).statistic
    return float(value) if np.isfinite(value) else 0.0


def check_strength(ctx: CheckContext) -> Verdict:
    """Teacher fan-out scaled by 1/j^p: per run, the Spearman correlation between the teacher index j
    (1 = strongest) and the time to alignment (never = last) should be positive for p > 0 (stronger
    first); mean over runs and p > 0 must exceed z SE. Recovery rate against j is reported (weak nodes
    slower or never). p = 0 is the exchangeable control (mean should be ~0). Power: the claim with the
    exponent's sign flipped (strength j^p: weak-first ordering) must fail."""
    results = _spec_runs(ctx.scale, ctx.seed)
    strengths = sorted(p for (kind, p) in results if kind == "two-layer")
    per_p, pooled = {}, []
    for p in strengths:
        res = results[("two-layer", p)]
        tta = res.time_to_alignment[-1]
        m = tta.shape[1]
        j = np.arange(1, m + 1)
        order = (m + 1 - j) if ctx.power else j  # power: claims node m is the strongest
        rhos = np.array([_spearman(order, tta[r], float(res.steps[-1]) + 1.0) for r in range(res.runs)])
        rate, _ = res.recovery_rate()
        per_p[p] = {"spearman_mean": float(rhos.mean()), "spearman_se": float(rhos.std(ddof=1) / math.sqrt(len(rhos))),
                    "recovery_by_node": rate.round(3).tolist(),
                    "median_time_to_alignment": [float(np.median(tta[:, k])) for k in range(m)]}
        if p > 0:
            pooled.append(rhos)
    rhos = np.concatenate(pooled)
    mean, se = float(rhos.mean()), float(rhos.std(ddof=1) / math.sqrt(len(rhos)))
    statistic = mean / se if se > 0 else (math.inf if mean > 0 else -math.inf)
    figure = None
    path = _figure_path(ctx, "spec.strength")
    if path is not None:
        from teachtheory.teacher_student import figure_recovery_by_node

        (written,) = figure_recovery_by_node({f"p={p:g}": results[("two-layer", p)] for p in strengths}, path, ("png",),
                                             title="spec.strength: recovery and time to alignment vs teacher index")
        figure = str(written)
    holds = statistic > ctx.z
    weakest = {p: v["recovery_by_node"][-1] for p, v in per_p.items()}
    return Verdict(
        "", "holds" if holds else "fails", statistic=statistic, tolerance=ctx.z,
        tolerance_rule=f"mean Spearman(j, time to alignment) over runs with p > 0, divided by its SE, must exceed {ctx.z:g}",
        message=f"Spearman(j, time to alignment) = {mean:.3f} ± {se:.3f} over {len(rhos)} runs (p > 0); by p: "
                + ", ".join(f"p={p:g}: {v['spearman_mean']:.2f}" for p, v in per_p.items())
                + "; recovery of the weakest node by p: " + ", ".join(f"{p:g}: {r:.2f}" for p, r in weakest.items())
                + (" [power: ordering reversed]" if ctx.power else ""),
        details={"per_p": per_p},
        figure=figure,
    )


register(Claim(
    id="spec.strength", source=f"{SOURCE_2020}, finite-sample alignment (talk: 'Lesson 1: Stronger teacher node learns faster')",
    statement=r"\|v^*_j\| \propto j^{-p}:\ \text{teacher nodes with larger } \alpha_{kj} = v_k^\top v^*_j"
              r"\text{ align first; weak nodes slower or never}",
    assumptions=["two-layer teacher, fan-out of node j scaled by 1/j^p, p in {0, 1, 2} (quick) / {0, 1, 2, 2.5} (full)",
                 "same SGD budget for every p"],
    check=check_strength, statistical=True,
    method="Spearman rank correlation of teacher index and time to alignment per run; mean ± SE over runs",
))


def check_l_shape(ctx: CheckContext) -> Verdict:
    """At the end of training, the share of squared fan-out norm carried by unspecialised student nodes
    (best correlation < 0.8, observed: active on 5-95% of held-out inputs) should be near zero. "Near
    zero" is measured against the no-L baseline: the share the same nodes carried at initialisation
    (when fan-out is independent of alignment). Holds iff mean share + z SE <= baseline/10 (an order of
    magnitude). Power: the same statistic with students paired to other runs' teachers (no node is
    specialised, so no L) must fail."""
    from teachtheory.teacher_student import l_shape_statistics

    results = _spec_runs(ctx.scale, ctx.seed)
    shares, baselines, per_p = [], [], {}
    for (kind, p), res in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if kind != "two-layer":
            continue
        if ctx.power:
            rho = final_correlations(res, _null_order(res.runs))[-1]  # [R, m, n]
            best = rho.max(1)
            act = res.student_active_history[:, -1]
            observed = (act > 0.05) & (act < 0.95)
            unspec = (best < 0.8) & observed
            fo = res.fanout[-1]
            share = (fo**2 * unspec).sum(-1) / (fo**2).sum(-1)
            base = (res.fanout_history[:, 0] ** 2 * unspec).sum(-1) / (res.fanout_history[:, 0] ** 2).sum(-1)
        else:
            stats = l_shape_statistics(res)
            share, base = stats["share"][:, -1], stats["baseline"]
        shares.append(share)
        baselines.append(base)
        per_p[p] = {"share_mean": float(share.mean()), "baseline_mean": float(base.mean())}
    share = np.concatenate(shares)
    baseline = float(np.concatenate(baselines).mean())
    mean, se = float(share.mean()), float(share.std(ddof=1) / math.sqrt(share.size))
    tolerance = baseline / 10
    figure = None
    path = _figure_path(ctx, "spec.l-shape")
    if path is not None:
        from teachtheory.teacher_student import figure_l_shape

        (written,) = figure_l_shape({f"p={p:g}": r for (k, p), r in results.items() if k == "two-layer"}, path, ("png",),
                                    title="spec.l-shape: best correlation vs fan-out norm at the end")
        figure = str(written)
    holds = mean + ctx.z * se <= tolerance
    return Verdict(
        "", "holds" if holds else "fails", statistic=mean, tolerance=tolerance,
        tolerance_rule=f"mean + {ctx.z:g} SE of the unspecialised share of squared fan-out must be <= 1/10 of its "
                       "no-L baseline (the share the same nodes held at initialisation)",
        message=f"unspecialised observed nodes carry {mean:.4f} ± {se:.4f} of the squared fan-out (baseline at init "
                f"{baseline:.3f}); by p: " + ", ".join(f"p={p:g}: {v['share_mean']:.4f}" for p, v in per_p.items())
                + (" [power: students paired with other runs' teachers]" if ctx.power else ""),
        details={"per_p": per_p, "runs": int(share.size)},
        figure=figure,
    )


register(Claim(
    id="spec.l-shape", source=f"{SOURCE_2020}, unaligned student nodes (talk: 'L-shape curve at convergence')",
    statement=r"\text{at convergence, } \max_j \rho_{jk} < 1 \Rightarrow \|v_k\| \approx 0"
              r"\ (\text{best correlation vs fan-out norm forms an L})",
    assumptions=["two-layer teacher-student as in spec.alignment, p in {0, 1, 2} (quick)",
                 ("only observed student nodes (active on 5-95% of held-out inputs) count as unspecialised; "
                  "dead or always-on nodes are outside the theorem")],
    check=check_l_shape, statistical=True,
    method="share of squared fan-out norm held by unspecialised nodes, mean ± SE over runs, vs its value at init",
))
