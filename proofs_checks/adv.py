"""Claims on adversarial samples in the teacher-student setting (Yang et al., AISTATS 2021; Tian's talk):
low-rank input leaves the student's out-of-plane weights untrained, adversarial training with oracle pairs
repairs them, logit beats label training, CCAT stays below logit AT, augmentation helps CCAT.

Every comparison is paired over runs: run r of two regimes shares its seed, so its oracle, data and
student initialisation; the statistic is the mean paired difference over its standard error, which must
exceed z (5 by default). Power: the same check on the reversed statement (the difference's sign flipped)
must fail. Sensitivity: the orderings declare the generic mutation ``effect``
(:func:`teachtheory.claims.effect_shift`: the favoured arm handicapped by a fraction of the compared
quantity), adv.fullrank_spec the predicted correlation 1 of a specialized node. Each verdict reports the
measured numbers whether or not the talk's statement reproduces. ``adv.image_logit_vs_label`` uses the
real-image oracle (scikit-learn digits, trained, pruned to 45-32-32-20).

References:
    Yang, Chen, Cai, Chen, Li & Tian, "Understanding Robustness in Teacher-Student Setting: A New
    Perspective", AISTATS 2021. Stutz, Hein & Schiele, ICML 2020 (CCAT). Madry et al., ICLR 2018 (PGD).
    Tian, teacher-student talk ("Understanding Adversarial Samples using Teacher-Student").
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from teachtheory import nets
from teachtheory.adversarial import AdversarialConfig, digits_oracle, train_adversarial, train_on_image
from teachtheory.claims import CheckContext, Verdict, one_sided_better, register_table
from teachtheory.plotting import plt, save_figure
from teachtheory.random import RunStreams, as_seeds
from teachtheory.stats import mean_se
from teachtheory.teacher_student import activation_correlations

# per scale: runs and the shared configuration of every regime
SETTINGS = {
    "quick": {"runs": 16, "config": {"epochs": 30, "record_every": 10, "train_size": 1000, "eval_size": 500}},
    "full": {"runs": 32, "config": {"epochs": 100, "record_every": 10, "train_size": 2000, "eval_size": 1000}},
}
ALIGNMENT_TOLERANCE = 0.05  # a specialized node's correlation, predicted 1, may fall short by this much
THREAT = {"eps": 0.1, "norm": "linf", "train_steps": 5, "attack_steps": 10}
REGIMES = {
    "st": {"regime": "st"},
    "st-full-rank": {"regime": "st", "rank": None},
    "at-logit": {"regime": "at"},
    "at-label": {"regime": "at", "target": "label"},
    "st-label": {"regime": "st", "target": "label"},
    "ccat": {"regime": "ccat", "target": "label", "rho": 10.0},
    "ccat-augment": {"regime": "ccat", "target": "label", "rho": 10.0, "augment": 0.3},
}


@lru_cache(maxsize=2)
def _runs(scale: str, seed: int) -> dict:
    """Every regime trained once per (scale, seed), shared by the adv.* checks."""
    setting = SETTINGS[scale]
    out = {}
    for name, changes in REGIMES.items():
        cfg = AdversarialConfig(**setting["config"], **THREAT, **changes)
        out[name] = train_adversarial(cfg, runs=setting["runs"], seed=seed, keep_networks=name.startswith("st"))
    return out


def _ms(values: np.ndarray) -> str:
    mean, se = mean_se(values)
    return f"{mean:.3f} ± {se:.3f}"


def _greater(ctx: CheckContext, comparisons: dict[str, tuple[np.ndarray, np.ndarray]], message: str,
             details: dict, figure: str | None = None) -> Verdict:
    """Holds iff every paired difference a - b has mean > z SE (power: b - a, which must then fail); each
    comparison is :func:`teachtheory.claims.one_sided_better`'s, so the ``effect`` mutation applies to each."""
    rows = {}
    for name, (a, b) in comparisons.items():
        v = one_sided_better(b, a, z=ctx.z, what=name, power=ctx.power)
        rows[name] = {"difference": v.details["gap_mean"], "se": v.details["gap_se"], "z": v.statistic,
                      "level": v.details["level"], "detectable": v.details["detectable"]}
    worst = float(min(row["z"] for row in rows.values()))
    holds = worst > ctx.z
    summary = "; ".join(f"{k}: diff {v['difference']:+.3f} ± {v['se']:.3f} ({v['z']:.1f} SE)" for k, v in rows.items())
    return Verdict("", "holds" if holds else "fails", statistic=worst, tolerance=ctx.z,
                   tolerance_rule=f"paired difference over runs > {ctx.z:g} x its standard error (every comparison)",
                   message=f"{message}; {summary}" + (" [power: reversed statement]" if ctx.power else ""),
                   details={"comparisons": rows, "power": ctx.power, "threat": THREAT, **details}, figure=figure)


def _final(res, name: str) -> np.ndarray:
    return np.asarray(getattr(res, name))[:, -1]


def _finals(a, b, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The final ``name`` per run of two results, the pair that :func:`_greater` compares."""
    return _final(a, name), _final(b, name)


def _vs(a, b, name: str) -> str:
    """``"mean ± SE vs mean ± SE"`` of the final ``name`` of two results."""
    return f"{_ms(_final(a, name))} vs {_ms(_final(b, name))}"


def _robust_above(ctx: CheckContext, regimes: tuple[str, str], labels: tuple[str, str], name: str,
                  shown: tuple[str, str]) -> Verdict:
    """Final oracle-robust accuracy of regime ``regimes[0]`` above that of ``regimes[1]`` (paired over runs, the
    comparison called ``name``); the message names the two by ``labels`` and adds, for context, both final values of
    the metric ``shown = (label, metric)``."""
    better, worse = (_runs(ctx.scale, ctx.seed)[regime] for regime in regimes)
    msg = (f"oracle-robust accuracy: {labels[0]} {_ms(_final(better, 'robust_oracle'))}, {labels[1]} "
           f"{_ms(_final(worse, 'robust_oracle'))}; {shown[0]} {_vs(better, worse, shown[1])}")
    return _greater(ctx, {name: _finals(better, worse, "robust_oracle")}, msg, {})


# -- the checks ------------------------------------------------------------------------------------


def check_fullrank_spec(ctx: CheckContext) -> Verdict:
    """Full-rank input, standard training: every teacher node has a first-layer student node whose held-out
    activation correlation is within 0.05 of the predicted 1 (counted over runs; 0 unaligned required), and the
    plane split has no out-of-plane part (premise). Power: students paired with another run's oracle must not
    align. Mutation ``alignment``: the predicted correlation 1 (a correlation cannot exceed 1, so x(1 + eps) is
    caught once eps exceeds 0.05 minus the worst gap, and x(1 - eps) once eps exceeds the worst gap + 0.05)."""
    res = _runs(ctx.scale, ctx.seed)["st-full-rank"]
    best = res.best_corr[:, -1]
    if ctx.power:
        student, oracle, X = res.extra["student"], res.extra["oracle"], res.extra["X_eval"]
        order = [(r + 1) % res.runs for r in range(res.runs)]
        with torch.no_grad():
            t_act = nets.forward([(w[order], b[order]) for w, b in oracle.teacher.layers()], X, act="relu").post[1]
            s_act = nets.forward(student, X, act="relu").post[1]
            best = activation_correlations(t_act.double(), s_act.double()).amax(-1).numpy()
    predicted = ctx.perturb("alignment", 1.0)
    unaligned = int((np.abs(best - predicted) > ALIGNMENT_TOLERANCE).sum())
    eps_out = float(np.abs(res.eps_out).max())
    holds = unaligned == 0 and eps_out < 1e-5
    return Verdict("", "holds" if holds else "fails", statistic=float(unaligned), tolerance=0.0,
                   tolerance_rule=f"universal: number of teacher nodes whose best student correlation differs from "
                                  f"the predicted 1 by more than {ALIGNMENT_TOLERANCE:g} must be 0 (pooled over runs)",
                   message=f"{best.size - unaligned}/{best.size} teacher nodes aligned (min best corr "
                           f"{best.min():.3f}); clean accuracy {_ms(_final(res, 'clean_acc'))}; max eps_out "
                           f"{eps_out:.1e}" + (" [power: other runs' oracles]" if ctx.power else ""),
                   details={"min_best_corr": float(best.min()), "max_eps_out": eps_out, "power": ctx.power})


def check_st_out_of_plane(ctx: CheckContext) -> Verdict:
    """Low-rank input (r = 5 of d = 20): after ST the out-of-plane component eps_out of the empirical model
    stays large: larger than after AT with oracle pairs (paired over runs). Premise, checked: ST's first-layer
    gradient lies in the data plane, so (I - P) W1 is exactly its initial value."""
    runs = _runs(ctx.scale, ctx.seed)
    st, at = runs["st"], runs["at-logit"]
    msg = (f"eps_out: ST {_ms(_final(st, 'eps_out'))} (start {_ms(st.eps_out[:, 0])}), AT {_ms(_final(at, 'eps_out'))};"
           f" eps_in: ST {_ms(_final(st, 'eps_in'))}, AT {_ms(_final(at, 'eps_in'))}")
    frozen = _frozen_out_of_plane(st)
    verdict = _greater(ctx, {"eps_out ST - AT": _finals(st, at, "eps_out")},
                       msg + f"; premise: max relative change of (I - P) W1 under ST {frozen:.1e}",
                       {"premise_out_of_plane_frozen": frozen})
    # float32 rounding accumulates with the updates (2.8e-6 after quick scale's 30 epochs, 2.4e-5 after full scale's
    # 100); a gradient with an out-of-plane part would move (I - P) W1 by O(lr), orders of magnitude more
    if frozen > 1e-4:
        verdict.verdict = "fails"
    return verdict


def _frozen_out_of_plane(res) -> float:
    """max |(I - P)(W1_end - W1_start)| / max |W1_start| of an ST run (float32 rounding only)."""
    from teachtheory.teacher_student import TeacherStudentConfig, make_student_network

    cfg = res.config
    init = make_student_network(TeacherStudentConfig(input_dim=cfg.input_dim, teacher_widths=cfg.teacher_widths,
                                                     output_dim=cfg.output_dim, multi=cfg.multi),
                                RunStreams(as_seeds(torch.as_tensor(res.seeds))), torch.float32).weights[0]
    P = res.extra["oracle"].plane
    change = res.extra["student"][0][0] - init
    return float((change - P @ change).abs().max() / init.abs().max())


def check_lowrank_vulnerable(ctx: CheckContext) -> Verdict:
    """ST students of a full-rank oracle are more robust to the oracle adversary than ST students of a
    low-rank one (the untrained out-of-plane weights are the attack surface), at equal clean accuracy."""
    return _robust_above(ctx, ("st-full-rank", "st"), ("full rank", "low rank"), "full - low", ("clean", "clean_acc"))


def check_at_rises(ctx: CheckContext) -> Verdict:
    """AT with oracle pairs: oracle-robust accuracy rises with epochs (last record above the first after
    the start), and ends above ST's."""
    runs = _runs(ctx.scale, ctx.seed)
    at, st = runs["at-logit"], runs["st"]
    curve = " -> ".join(f"{v:.3f}" for v in at.robust_oracle.mean(0))
    figure = None
    path = ctx.figure_path("adv.at_rises")
    if path is not None:
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
        for label, res in (("AT (oracle pairs)", at), ("ST", st), ("CCAT", runs["ccat"])):
            mean = res.robust_oracle.mean(0)
            se = res.robust_oracle.std(0, ddof=1) / math.sqrt(res.runs)
            line = ax.plot(res.epochs, mean, "o-", ms=3, label=label)[0]
            ax.fill_between(res.epochs, mean - se, mean + se, color=line.get_color(), alpha=0.2, lw=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("oracle-robust accuracy (mean ± SE)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        (written,) = save_figure(fig, path)
        plt.close(fig)
        figure = str(written)
    return _greater(ctx, {"AT end - AT first record": (at.robust_oracle[:, -1], at.robust_oracle[:, 1]),
                          "AT end - ST end": _finals(at, st, "robust_oracle")},
                    f"AT oracle-robust accuracy over epochs {at.epochs.tolist()}: {curve}", {}, figure)


def check_logit_vs_label(ctx: CheckContext) -> Verdict:
    """Standard training on the oracle's logits gives students more robust to the oracle adversary than training
    on its labels (the talk's table is under ST: 62.8% vs 25.8% at 300 epochs, CIFAR-10 oracle); the same pair
    under AT with oracle pairs is reported, not tested."""
    runs = _runs(ctx.scale, ctx.seed)
    logit, label = runs["st"], runs["st-label"]
    at_logit, at_label = runs["at-logit"], runs["at-label"]
    msg = (f"ST oracle-robust accuracy: logit {_ms(_final(logit, 'robust_oracle'))}, label "
           f"{_ms(_final(label, 'robust_oracle'))} (talk: 0.628 vs 0.258); clean {_vs(logit, label, 'clean_acc')}; "
           f"under AT (not tested): {_vs(at_logit, at_label, 'robust_oracle')}")
    return _greater(ctx, {"logit - label (ST)": _finals(logit, label, "robust_oracle")},
                    msg, {"talk": {"logit": 0.628, "label": 0.258, "epochs": 300, "regime": "st"}})


def check_label_eps(ctx: CheckContext) -> Verdict:
    """Label training (cross-entropy on argmax f*) against logit training, both ST: it lowers eps_out but
    not eps_in (eps_in ends larger than under logit training)."""
    runs = _runs(ctx.scale, ctx.seed)
    logit, label = runs["st"], runs["st-label"]
    msg = (f"eps_out: logit {_ms(_final(logit, 'eps_out'))}, label {_ms(_final(label, 'eps_out'))}; eps_in: logit "
           f"{_ms(_final(logit, 'eps_in'))}, label {_ms(_final(label, 'eps_in'))}")
    return _greater(ctx, {"eps_out logit - label": _finals(logit, label, "eps_out"),
                          "eps_in label - logit": _finals(label, logit, "eps_in")}, msg,
                    {"note": "eps_out is measured relative to the in-plane norm; under ST (I - P) W1 is frozen, so a "
                             "lower eps_out means a larger in-plane norm, not a trained out-of-plane part"})


def check_ccat_below(ctx: CheckContext) -> Verdict:
    """CCAT (oracle labels, rho = 10) is well below logit AT in oracle-robust accuracy."""
    return _robust_above(ctx, ("at-logit", "ccat"), ("logit AT", "CCAT"), "AT - CCAT", ("data-robust", "robust_data"))


def check_augment(ctx: CheckContext) -> Verdict:
    """Input augmentation (isotropic Gaussian noise, std 0.3, labelled by the oracle) raises CCAT's
    oracle-robust accuracy."""
    runs = _runs(ctx.scale, ctx.seed)
    plain, aug = runs["ccat"], runs["ccat-augment"]
    msg = (f"CCAT oracle-robust accuracy: with augmentation {_ms(_final(aug, 'robust_oracle'))}, without "
           f"{_ms(_final(plain, 'robust_oracle'))}; data-robust {_vs(aug, plain, 'robust_data')}; eps_out "
           f"{_vs(aug, plain, 'eps_out')}")
    return _greater(ctx, {"augmented - plain": _finals(aug, plain, "robust_oracle")}, msg, {})


# the real-image oracle: scikit-learn digits, trained (no augmentation), pruned to the talk's widths
IMAGE = {"quick": {"runs": 6, "oracle": {"epochs": 20, "finetune": 10}, "epochs": 20},
         "full": {"runs": 16, "oracle": {"epochs": 40, "finetune": 20}, "epochs": 30},
         "widths": (45, 32, 32, 20), "lr": 0.01, "threat": {**THREAT, "eps": 0.05}}


@lru_cache(maxsize=2)
def _image_runs(scale: str, seed: int) -> dict:
    """The digits oracle and logit / label ST students against it, once per (scale, seed)."""
    setting = IMAGE[scale]
    streams = RunStreams(as_seeds(seed, setting["runs"]))
    image = digits_oracle(streams, widths=IMAGE["widths"], **setting["oracle"])
    out = {"image": image}
    for name, target in (("st-logit", "logit"), ("st-label", "label")):
        out[name] = train_on_image(image, streams.seeds, regime="st", target=target, epochs=setting["epochs"],
                                   record_every=setting["epochs"], lr=IMAGE["lr"], **IMAGE["threat"])
    return out


def check_image_logit_vs_label(ctx: CheckContext) -> Verdict:
    """The real-image oracle (digits, pruned to 45-32-32-20): standard training on its logits is more robust to
    the oracle adversary than on its labels (the talk: 62.8% vs 25.8% at 300 epochs, pruned CIFAR-10 oracle)."""
    runs = _image_runs(ctx.scale, ctx.seed)
    logit, label, image = runs["st-logit"], runs["st-label"], runs["image"]
    msg = (f"digits oracle (held-out accuracy {_ms(image.accuracy.numpy())}, plane rank "
           f"{float(image.rank.double().mean()):.0f} of 64): oracle-robust accuracy logit "
           f"{_ms(_final(logit, 'robust_oracle'))}, label {_ms(_final(label, 'robust_oracle'))} (talk: 0.628 vs "
           f"0.258); clean {_vs(logit, label, 'clean_acc')}; data-robust {_vs(logit, label, 'robust_data')}")
    return _greater(ctx, {"logit - label": _finals(logit, label, "robust_oracle")}, msg,
                    {"talk": {"logit": 0.628, "label": 0.258, "epochs": 300, "regime": "st"}, "oracle": "digits",
                     "eps": IMAGE["threat"]["eps"], "epochs": IMAGE[ctx.scale]["epochs"]})


register_table(__name__, globals())
