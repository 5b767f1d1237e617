"""Claim of Mixup teaching (DHT Sec. 4.1, Table 1): a learner-conditioned Mixup policy trained by policy gradient
beats ERM, Beta Mixup and discrete Mixup, while the same policy trained by unrolling does not (the paper's
explanation: the accuracy objective is not smooth).

Small scale: softmax regression on the ten digits (16 projected dimensions) with SGD, instead of the paper's
small CNN with Adam; the policies are black-box (validation = the pool with its true labels). The CNN setting
(ConvNet learner with Adam) is the ``dht-mixup`` simulation's ``cnn`` preset: its policy features are too costly on a
CPU for a quick check well under a minute, so the claim keeps the stand-in.

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 4.1, Table 1.
"""

from __future__ import annotations

import math

import numpy as np

from teachtheory import problems
from teachtheory.claims import CheckContext, Verdict, register_table
from teachtheory.engine import teach
from teachtheory.learners import Softmax
from teachtheory.teachers import RandomTeacher
from teachtheory.teachers.learned import MixupTeacher, TeachingPolicy
from teachtheory.teachers.training import train_reinforce, train_unrolled

# lambda of DHT Sec. 3.3.1's auxiliary loss term (a hyperparameter the paper leaves unset). The term is in the
# learner's loss units: at 1 it outweighs ||w_v - w*||^2 and the trained policies fall behind SGD.
AUX_WEIGHT = 0.1


def _gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = a - b
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


def check_mixup(ctx: CheckContext) -> Verdict:
    """Mixup teachers (learned, Beta, fixed lambda, ERM) through teach(): paired test-accuracy gaps."""
    # full: 16 runs, 100 policy-gradient and 150 unrolled iterations (300 and 400 took 12.4 minutes, a fifth of
    # the one-hour budget of the whole full-scale build)
    R, T, lr, m = ctx.pick(8, 16), 100, 0.1, 8
    problem = problems.digits(runs=R, seed=ctx.seed + 5, project_dim=16, learner="softmax")
    learner = Softmax(problem.dim, 10)
    record = ("test_accuracy",)

    def final(teacher):
        return teach(problem, learner, teacher, T, lr, batch_size=m, seed=ctx.seed + 1000,
                     record=record)["test_accuracy"][:, -1]

    baselines = {"ERM": final(RandomTeacher()), "Beta(1,1)": final(MixupTeacher("beta", 1.0)),
                 "{0,0.5,1}": final(MixupTeacher("discrete"))}
    pg = train_reinforce(TeachingPolicy(learner, kind="mixup", mode="discrete", omniscient=False, hidden=(32,)),
                         problem, lr=lr, episode_steps=10, iterations=ctx.pick(15, 100), episodes=6, batch_size=m,
                         policy_lr=1e-2, reward="accuracy", seed=ctx.seed)
    unrolled = train_unrolled(TeachingPolicy(learner, kind="mixup", omniscient=False, hidden=(32,)), problem, lr=lr,
                              horizon=5, iterations=ctx.pick(20, 150), episode_steps=T, batch_size=m, policy_lr=3e-3,
                              aux_weight=AUX_WEIGHT, objective="loss", seed=ctx.seed)
    acc_pg, acc_un = final(pg.teacher), final(unrolled.teacher)
    best_name = max(baselines, key=lambda k: baselines[k].mean())
    best = baselines[best_name]
    if ctx.power:  # reversed roles: the best baseline must beat the policy-gradient teacher
        acc_pg, best = best, acc_pg
    g_pg, se_pg = _gap(acc_pg, best)
    g_un, se_un = _gap(acc_un, baselines[best_name])
    z_pg = g_pg / se_pg if se_pg > 0 else (math.inf if g_pg > 0 else -math.inf)
    z_un = g_un / se_un if se_un > 0 else (math.inf if g_un > 0 else -math.inf)
    holds = z_pg > ctx.z and z_un <= ctx.z
    details = {"test_accuracy_mean": {k: float(v.mean()) for k, v in baselines.items()}
               | {"policy gradient": float(acc_pg.mean()), "unrolled": float(acc_un.mean())},
               "best_baseline": best_name, "pg_gap": [g_pg, se_pg], "unrolled_gap": [g_un, se_un]}
    return Verdict("", "holds" if holds else "fails", statistic=z_pg, tolerance=ctx.z,
                   tolerance_rule=f"policy gradient minus best baseline > {ctx.z:g} SE and unrolled minus best "
                                  f"baseline <= {ctx.z:g} SE (paired over {R} runs)",
                   message=f"PG - {best_name}: {g_pg:+.4f} ± {se_pg:.4f}; unrolled - {best_name}: {g_un:+.4f} ± "
                           f"{se_un:.4f}" + (" [power: reversed]" if ctx.power else ""),
                   details=details)


register_table(__name__, globals())
