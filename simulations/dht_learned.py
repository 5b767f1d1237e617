"""DHT's performative teaching (Sec. 4.2, Table 2) and privacy-preserving teaching (Sec. 5.3, Figs. 9-10).

``dht-performative``: SGD, the random policy on the epsilon-cap and performative teaching, trained on the 8x8 digits
for an MLP and ConvNets of growing depth; final test accuracy mean ± SD (and SE) over runs, like Table 2.
``dht-privacy``: unconstrained greedy DHT and private DHT (hinge + constraint) through ``teach()``; convergence
(Fig. 9) and the private perceptual distance of the synthesized samples over teaching (Fig. 10).

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 4.2, Table 2; Sec. 5.3,
    Figs. 9-10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from teachtheory.references import cite
from teachtheory.simulation import Simulation, register, write_metrics
from teachtheory.stats import mean_se
from teachtheory.threads import intra_op_threads

# (kind, depth): depth counts MLP hidden layers or ConvNet blocks (8x8 images allow at most 3 blocks)
LEARNERS = {"small": (("mlp", 1), ("convnet", 1), ("convnet", 2)),
            "full": (("mlp", 1), ("mlp", 2), ("convnet", 1), ("convnet", 2), ("convnet", 3))}
WIDTH = {"small": 32, "full": 64}


def _stats(values) -> dict:
    """Mean, SD (as the paper reports) and SE over runs; with one run both spreads are NaN, never 0."""
    v = np.asarray(values, float)
    mean, se = mean_se(v)
    return {"mean": float(mean), "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"), "se": float(se)}


def run_performative(out: Path, scale: str, runs: int, steps: int, seed: int, device: str, formats=("png",),
                     progress=None) -> dict:
    """Table 2: final test accuracy of each learner under SGD, the random policy and performative teaching."""
    import matplotlib.pyplot as plt

    from teachtheory.distill.nets import NetSpec
    from teachtheory.plotting import save_figure, se_band
    from teachtheory.teachers.performative import POLICIES, digits_images, train_performative

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = digits_images(seed=seed)
    table: dict = {}
    fig, axes = plt.subplots(1, len(LEARNERS[scale]), figsize=(4 * len(LEARNERS[scale]), 3.2), squeeze=False)
    with intra_op_threads(1):
        for ax, (kind, depth) in zip(axes[0], LEARNERS[scale]):
            spec = NetSpec(kind, (1, 8, 8), 10, width=WIDTH[scale], depth=depth)
            name = f"{kind.upper()}-{depth}"
            table[name] = {}
            for policy in POLICIES:
                result = train_performative(spec, data, policy=policy, runs=runs, steps=steps, seed=seed,
                                            batch_size=32, lr=0.02)
                acc = result.test_accuracy.numpy()
                table[name][policy] = _stats(100 * result.final.numpy())
                se_band(ax, result.steps, *mean_se(acc), label=policy)
            ax.set(title=name, xlabel="step", ylabel="test accuracy")
            ax.legend()
    save_figure(fig, out / "performative", formats)
    result = {"reference": cite("dht", "Sec. 4.2, Table 2"), "scale": scale, "runs": runs, "steps": steps,
              "test_accuracy_percent": table}
    write_metrics(out, result)
    return result


# Figs. 9-10 setting, shared with the claim dht.privacy
PRIVACY = {"project_dim": 16, "steps": 60, "lr": 0.1, "private": 50, "epsilon": 2.0, "factor": 1.25, "iterations": 20}


def privacy_trajectories(runs: int, seed: int, steps: int, settings: dict = PRIVACY, *, with_sgd: bool = True):
    """SGD (optional), greedy DHT and private DHT through ``teach()`` on the same runs.

    Returns the trajectories by teacher and the private perceptual distances of private DHT's samples, [R, T, m].
    """
    import torch

    from teachtheory import problems
    from teachtheory.engine import teach
    from teachtheory.learners import Softmax
    from teachtheory.teachers import RandomTeacher
    from teachtheory.teachers.dht import DHTTeacher
    from teachtheory.teachers.privacy import PrivateDHTTeacher, train_perceptual

    s = settings
    problem = problems.digits(runs=runs, seed=seed, project_dim=s["project_dim"], learner="softmax")
    pool = problem.X[0]
    phi = train_perceptual(pool, problem.y[0].argmax(-1), seed=seed)
    distances: list = []
    teachers = {"SGD": RandomTeacher()} if with_sgd else {}
    teachers |= {"DHT": DHTTeacher(iterations=s["iterations"], restarts=2),
                 "private DHT": PrivateDHTTeacher(phi, pool[:s["private"]], s["epsilon"], iterations=s["iterations"],
                                                  distances=distances)}
    with intra_op_threads(1):
        trajs = {k: teach(problem, Softmax(problem.dim, 10), t, steps, s["lr"], seed=seed + 1,
                          record=("distance",)) for k, t in teachers.items()}
    return trajs, torch.stack(distances, 1)


def run_privacy(out: Path, scale: str, runs: int, steps: int, seed: int, device: str, formats=("png",),
                progress=None) -> dict:
    """Figs. 9-10: convergence of DHT and private DHT, and the private perceptual distance over teaching."""
    import matplotlib.pyplot as plt

    from teachtheory.plotting import plot_metric, save_figure, se_band

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = PRIVACY
    trajs, distances = privacy_trajectories(runs, seed, steps)
    D = distances.numpy().min(-1)  # [R, T]: the step's sample
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    plot_metric(trajs, "distance", ax=a)
    a.set_title("convergence (Fig. 9)")
    se_band(b, np.arange(1, steps + 1), *mean_se(D), label="private DHT")
    b.axhline(s["epsilon"], color="k", ls="--", label="epsilon")
    b.set(title="private perceptual distance (Fig. 10)", xlabel="step", ylabel="min distance to privacy set")
    b.legend()
    save_figure(fig, out / "privacy", formats)
    result = {"reference": cite("dht", "Sec. 5.3, Figs. 9-10"), "scale": scale, "runs": runs, "steps": steps,
              "settings": s, "final_distance": {k: _stats(t["distance"][:, -1]) for k, t in trajs.items()},
              "min_private_distance": float(D.min())}
    write_metrics(out, result)
    return result


register(Simulation(
    name="dht-performative",
    description="performative teaching (greedy DHT in the representation space, Algorithm 1) vs SGD and the random "
                "policy on the same epsilon-cap; MLP and ConvNets of growing depth on the 8x8 digits",
    reference=cite("dht", "Sec. 4.2, Table 2"),
    defaults={"small": {"runs": 5, "steps": 300}, "full": {"runs": 5, "steps": 3000}},
    runner=run_performative,
    protocol="the toolkit's own: MLP and ConvNets on the 8x8 digits (the paper: small CNNs on CIFAR)",
))
register(Simulation(
    name="dht-privacy",
    description="privacy-preserving teaching: greedy DHT with the privacy hinge and constraint in a perceptual space "
                "vs unconstrained DHT and SGD; convergence and the private perceptual distance over teaching",
    reference=cite("dht", "Sec. 5.3, Eq. (10), Figs. 9-10"),
    defaults={"small": {"runs": 5, "steps": 60}, "full": {"runs": 10, "steps": 300}},
    runner=run_privacy,
    protocol=("the toolkit's own: softmax regression on digits projected to 16 dimensions, a perceptual network "
              'trained by the tool (the paper gives no sizes)'),
))
