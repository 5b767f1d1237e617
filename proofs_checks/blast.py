"""Claims of black-box label synthesis (BLAST, LAST Sec. 4): a label policy that never sees w*.

* ``blast.unrolled``: a label policy trained by unrolling v learner steps against the learner's own loss on a
  validation set (the pool with its true labels) lowers that loss faster than SGD.
* ``blast.policy-gradient``: a discrete label policy trained by REINFORCE with validation accuracy as the
  reward reaches a higher held-out accuracy than SGD.

Both run on logistic regression on digits 3 vs 5 (24 projected dimensions); the policies see w, never w*.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 4.
"""

from __future__ import annotations

import torch

from teachtheory import problems
from teachtheory.claims import CheckContext, Verdict, one_sided_better, register_table
from teachtheory.engine import teach
from teachtheory.learners import Logistic
from teachtheory.teachers import RandomTeacher
from teachtheory.teachers.learned import TeachingPolicy
from teachtheory.teachers.training import train_reinforce, train_unrolled

LR, STEPS = 0.05, 100
# lambda of DHT Sec. 3.3.1's auxiliary loss term, as in the DHT policy claims; for this label-only policy the term
# (the loss of the unchanged input against its sampled label) does not depend on the policy and changes nothing.
AUX_WEIGHT = 0.1


def _problem(ctx: CheckContext, runs: int = 8):
    problem = problems.digits35(runs=ctx.pick(runs, 32), seed=ctx.seed + 3, project_dim=24)
    return problem, Logistic(problem.dim)


def check_unrolled(ctx: CheckContext) -> Verdict:
    """Unrolled policy vs SGD on the same samples: the paired final-loss gap over runs."""
    problem, learner = _problem(ctx, runs=16)
    v = 5
    policy = TeachingPolicy(learner, omniscient=False, hidden=(32,))
    res = train_unrolled(policy, problem, lr=LR, horizon=v, iterations=ctx.pick(80, 600), episode_steps=STEPS,
                         policy_lr=3e-3, aux_weight=AUX_WEIGHT, objective="loss", seed=ctx.seed)
    learned = teach(problem, learner, res.teacher, STEPS, LR, seed=ctx.seed + 1000, record=("loss",))["loss"][:, -1]
    sgd = teach(problem, learner, RandomTeacher(), STEPS, LR, seed=ctx.seed + 1000, record=("loss",))["loss"][:, -1]
    return one_sided_better(learned, sgd, z=ctx.z, power=ctx.power,
                            what=f"pool loss at T={STEPS}: SGD minus black-box unrolled policy",
                            details={"v": v, "lr": LR})


def check_policy_gradient(ctx: CheckContext) -> Verdict:
    """REINFORCE label-offset policy vs SGD: the paired final test-error gap over runs."""
    problem, learner = _problem(ctx)
    actions = torch.tensor([-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0], dtype=problem.X.dtype)
    policy = TeachingPolicy(learner, mode="discrete", omniscient=False, hidden=(32,), actions=actions)
    res = train_reinforce(policy, problem, lr=LR, episode_steps=20, iterations=ctx.pick(40, 400), episodes=8,
                          policy_lr=1e-2, reward="accuracy", seed=ctx.seed)
    record = ("test_accuracy",)
    learned = teach(problem, learner, res.teacher, STEPS, LR, seed=ctx.seed + 1000, record=record)
    sgd = teach(problem, learner, RandomTeacher(), STEPS, LR, seed=ctx.seed + 1000, record=record)
    # "better" is the higher accuracy: compare the errors
    return one_sided_better(1 - learned["test_accuracy"][:, -1], 1 - sgd["test_accuracy"][:, -1], z=ctx.z,
                            power=ctx.power, what=f"test error at T={STEPS}: SGD minus black-box policy gradient",
                            details={"lr": LR})


register_table(__name__, globals())
