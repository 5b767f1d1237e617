"""Claims of DHT's performative teaching (Sec. 4.2, Table 2) and privacy-preserving teaching (Sec. 5.3, Eq. 10).

``dht.performative``: greedy hallucination of the features on an epsilon-cap of the representation sphere gives a
higher test accuracy than plain SGD and than a random point of the same cap. Small scale: a one-hidden-layer MLP
(width 32) on the 8x8 digits, SGD with momentum, paired over runs sharing initialisation and mini-batches.

``dht.privacy``: greedy DHT with the privacy hinge and constraint keeps every synthesized sample at least epsilon
(squared perceptual distance) away from the privacy set at every step, while its final distance to w* stays within
a stated factor of unconstrained greedy DHT's.

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 4.2, Algorithm 1, Table 2;
    Sec. 5.3, Eq. (10), Figs. 9-10.
"""

from __future__ import annotations

from simulations.dht_learned import PRIVACY, privacy_trajectories
from teachtheory.claims import CheckContext, Verdict, combine, one_sided_better, register_table
from teachtheory.distill.nets import NetSpec
from teachtheory.teachers.performative import digits_images, train_performative

PERFORMATIVE = {"width": 32, "depth": 1, "steps": 300, "batch_size": 32, "lr": 0.02, "epsilon": 0.3}


def check_performative(ctx: CheckContext) -> Verdict:
    """SGD, the random policy and performative teaching on the same runs: paired test-error gaps."""
    s = PERFORMATIVE
    R = ctx.pick(8, 16)
    spec = NetSpec("mlp", (1, 8, 8), 10, width=s["width"], depth=s["depth"])
    data = digits_images(seed=ctx.seed)
    error = {policy: 1 - train_performative(spec, data, policy=policy, runs=R, steps=s["steps"], seed=ctx.seed,
                                            batch_size=s["batch_size"], lr=s["lr"], epsilon=s["epsilon"]).final.numpy()
             for policy in ("sgd", "random", "performative")}
    parts = [one_sided_better(error["performative"], error[base], z=ctx.z, what=f"performative vs {base} (test error)",
                              power=ctx.power) for base in ("sgd", "random")]
    return combine(parts, f"performative test error below SGD's and the random policy's by > {ctx.z:g} SE "
                          f"(paired over {R} runs)",
                   "; ".join(p.message for p in parts),
                   details={"test_error_mean": {k: float(v.mean()) for k, v in error.items()}, "settings": s})


def check_privacy(ctx: CheckContext) -> Verdict:
    """Every private sample at least epsilon from the privacy set; final distance within the factor of DHT's."""
    s = PRIVACY
    R = ctx.pick(8, 16)
    trajs, distances = privacy_trajectories(R, ctx.seed, s["steps"], with_sgd=False)
    out = {"final": {k: t["distance"][:, -1] for k, t in trajs.items()}, "private_distance": distances.numpy()}
    factor = s["factor"]
    worst = float(out["private_distance"].min())
    part = one_sided_better(out["final"]["private DHT"], factor * out["final"]["DHT"], z=ctx.z, power=ctx.power,
                            what=f"private DHT vs {factor:g} x unconstrained DHT (final ||w - w*||)")
    feasible = worst >= s["epsilon"]
    return combine([part], f"min private perceptual distance >= epsilon at every step and final distance below "
                           f"{factor:g} x DHT's by > {ctx.z:g} SE (paired over {R} runs)",
                   f"min private distance {worst:.3f} (epsilon {s['epsilon']:g}); {part.message}",
                   conditions=feasible, details={"min_private_distance": worst, "settings": s,
                                                 "final_mean": {k: float(v.mean()) for k, v in out["final"].items()}})


register_table(__name__, globals())
