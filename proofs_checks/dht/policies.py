"""Claims of DHT's learned teaching policies (DHT Sec. 3.3): the learner-conditioned data transformation and the
generative teachers.

* ``dht.policies.transform``: a policy x' = x + eps tanh(pi_theta(x, y, w_t - w*, ...)), trained by unrolling v
  learner steps with the stop-gradient auxiliary term, brings the learner closer to w* than SGD on the same
  samples.
* ``dht.policies.blackbox``: the black-box policy over the full teaching space (x and y changed, no w*: the
  state and the unrolled objective use only the learner's loss on a validation set) reaches a higher test
  accuracy than SGD over teaching (DHT Sec. 5.2, Fig. 8: "the knowledge about the target classifier is not
  indispensable to achieve fast convergence in terms of test accuracy").
* ``dht.policies.gan-vs-vae``: the GAN-based teacher brings the learner closer to w* than the VAE-based one
  (DHT Sec. 5.1, Fig. 5: "The GAN-based teacher is able to outperform the VAE-based teacher in both
  experiments").

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 3.3.1, Fig. 4; Sec. 3.3.2,
    Sec. 5.1, Fig. 5; Sec. 5.2, Fig. 8.
"""

from __future__ import annotations

from teachtheory import problems
from teachtheory.claims import CheckContext, Verdict, one_sided_better, register_table
from teachtheory.engine import teach
from teachtheory.learners import Logistic
from teachtheory.teachers import RandomTeacher
from teachtheory.teachers.generative import GenerativePolicy, pretrain_vae, train_generative
from teachtheory.teachers.learned import TeachingPolicy
from teachtheory.teachers.training import train_unrolled

# lambda of DHT Sec. 3.3.1's auxiliary loss term (a hyperparameter the paper leaves unset). The term is in the
# learner's loss units: at 1 it outweighs ||w_v - w*||^2 and the trained policies fall behind SGD.
AUX_WEIGHT = 0.1


def check_transform(ctx: CheckContext) -> Verdict:
    """Unrolled input-transformation policy vs SGD: the paired final distance-to-w* gap."""
    problem = problems.digits35(runs=ctx.pick(8, 32), seed=ctx.seed + 4, project_dim=24)
    learner, lr, steps, v, eps = Logistic(problem.dim), 0.05, 100, 5, 0.5
    policy = TeachingPolicy(learner, kind="input", bound=eps, hidden=(32,))
    res = train_unrolled(policy, problem, lr=lr, horizon=v, iterations=ctx.pick(80, 600), episode_steps=steps,
                         policy_lr=3e-3, aux_weight=AUX_WEIGHT, seed=ctx.seed)
    learned = teach(problem, learner, res.teacher, steps, lr, seed=ctx.seed + 1000)["distance"][:, -1]
    sgd = teach(problem, learner, RandomTeacher(), steps, lr, seed=ctx.seed + 1000)["distance"][:, -1]
    return one_sided_better(learned, sgd, z=ctx.z, power=ctx.power,
                            what=f"||w_T - w*|| at T={steps}: SGD minus transformation policy",
                            details={"v": v, "eps": eps, "lr": lr})


# -- dht.policies.blackbox --------------------------------------------------------------------------------------


def check_blackbox(ctx: CheckContext) -> Verdict:
    """Black-box full-space policy vs SGD: the paired gap of the test accuracy averaged over teaching."""
    problem = problems.digits35(runs=ctx.pick(8, 32), seed=ctx.seed + 6, project_dim=24)
    learner, lr, steps, v, eps = Logistic(problem.dim), 0.05, 100, 5, 0.5
    policy = TeachingPolicy(learner, kind="both", omniscient=False, bound=eps, hidden=(32,))
    res = train_unrolled(policy, problem, lr=lr, horizon=v, iterations=ctx.pick(80, 600), episode_steps=steps,
                         policy_lr=3e-3, aux_weight=AUX_WEIGHT, objective="loss", seed=ctx.seed)
    record = ("test_accuracy",)
    learned = teach(problem, learner, res.teacher, steps, lr, seed=ctx.seed + 1000, record=record)["test_accuracy"]
    sgd = teach(problem, learner, RandomTeacher(), steps, lr, seed=ctx.seed + 1000, record=record)["test_accuracy"]
    # higher accuracy is better: compare the negated curves' means
    return one_sided_better(-learned.mean(1), -sgd.mean(1), z=ctx.z, power=ctx.power,
                            what=f"test accuracy averaged over T={steps} steps: black-box policy minus SGD",
                            details={"v": v, "eps": eps, "lr": lr, "final_accuracy": [float(learned[:, -1].mean()),
                                                                                      float(sgd[:, -1].mean())]})


# -- dht.policies.gan-vs-vae ------------------------------------------------------------------------------------


def check_gan_vs_vae(ctx: CheckContext) -> Verdict:
    """GAN-based vs VAE-based teacher, both unrolled with the same budget: the paired final distance-to-w* gap."""
    problem = problems.digits35(runs=ctx.pick(8, 16), seed=ctx.seed + 5, project_dim=None)
    learner, lr, steps, v = Logistic(problem.dim), 0.05, ctx.pick(50, 100), 5
    common = {"lr": lr, "horizon": v, "iterations": ctx.pick(60, 300), "episode_steps": steps, "policy_lr": 1e-2,
              "aux_weight": 1.0, "seed": ctx.seed}
    gan = train_generative(GenerativePolicy(learner, kind="gan"), problem, **common)
    fit = pretrain_vae(problem, learner, iterations=ctx.pick(400, 1500), seed=ctx.seed)
    vae = train_generative(GenerativePolicy(learner, kind="vae"), problem, vae=fit, **common)
    teachers = {"gan": gan.teacher, "vae": vae.teacher, "sgd": RandomTeacher()}
    final = {name: teach(problem, learner, t, steps, lr, seed=ctx.seed + 1000, record=("distance",))["distance"][:, -1]
             for name, t in teachers.items()}
    return one_sided_better(final["gan"], final["vae"], z=ctx.z, power=ctx.power,
                            what=f"||w_T - w*|| at T={steps}: VAE-based minus GAN-based",
                            details={"v": v, "lr": lr, "final_distance_mean": {k: float(d.mean())
                                                                                for k, d in final.items()},
                                     "discriminator": gan.config.get("discriminator")})


register_table(__name__, globals())
