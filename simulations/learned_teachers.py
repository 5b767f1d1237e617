"""Simulations of learned teaching policies: parameterized LAST (LAST Secs. 3.3 and 6.2, Fig. 12), black-box
LAST (BLAST, LAST Sec. 4), DHT's learner-conditioned data transformation (DHT Sec. 3.3.1, Fig. 4) with the black-box
policy over the full teaching space (Fig. 8), and DHT's GAN- and VAE-based generative teachers (Sec. 3.3.2,
Figs. 5-7: convergence, and the synthesized samples as image grids and scatter plots).

To add a simulation: a case in :func:`build_case` (problem, learner, lr, metrics, teachers), its name in
``CASES``, optionally a figure in ``EXTRA_FIGURES`` (drawn from the trained teachers after teaching), and a
``register(Simulation(...))`` naming the cases.

Each trains its policies (one per run, all runs batched) and then runs every teacher through ``teach()`` on
the same problems and the same teaching-time samples; the policies were trained on a different sample
stream. Results: ``metrics.json`` (final distance / test accuracy, mean, SD and SE over runs, training
time), one ``.npz`` trajectory per teacher and case, and a convergence figure per case.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Secs. 3.3 and 6.2 (Fig. 12), Sec. 4 (BLAST);
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 3.3.1 (Fig. 4), Sec. 3.3.2
    (Figs. 5-7), Sec. 5.2 (Fig. 8).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from teachtheory import problems
from teachtheory.engine import Trajectory, teach
from teachtheory.learners import MLP, LeastSquares, Logistic, Softmax
from teachtheory.learners.convnet import ConvNet
from teachtheory.problems import Problem
from teachtheory.references import cite
from teachtheory.simulation import Simulation, register, write_metrics
from teachtheory.teachers import DHTTeacher, LASTTeacher, RandomTeacher
from teachtheory.teachers.generative import GenerativePolicy, GenerativeTeacher, pretrain_vae, train_generative
from teachtheory.teachers.learned import MixupTeacher, TeachingPolicy, default_actions
from teachtheory.teachers.training import train_reinforce, train_unrolled
from teachtheory.threads import intra_op_threads

__all__ = ["CASES", "CNN_SETTINGS", "SETTINGS", "build_case", "cnn_problem", "run_case"]

# aux_weight: lambda of DHT Sec. 3.3.1's auxiliary loss term for train_unrolled (the paper leaves it unset; in the
# learner's loss units, 1 outweighs ||w_v - w*||^2 and the policies fall behind SGD); gen_aux_weight: the same term in
# train_generative.
SETTINGS = {
    "small": {"hidden": (32,), "horizon": 5, "unroll_iterations": 800, "pg_iterations": 60,
              "pg_episodes": 8, "pg_episode_steps": 20, "policy_lr": 3e-3, "pg_policy_lr": 1e-2, "aux_weight": 0.1,
              "lsr_dim": 10, "lsr_pool": 100, "mlp_hidden": 8, "dht_iterations": 20, "dht_restarts": 2,
              "input_bound": 0.5, "mixup_dim": 16, "mixup_batch": 8, "gen_hidden": (64,), "gen_iterations": 200,
              "gen_policy_lr": 1e-2, "gen_aux_weight": 1.0, "vae_iterations": 800, "vae_latent": 4},
    "full": {"hidden": (64, 64), "horizon": 10, "unroll_iterations": 5000, "pg_iterations": 600,
             "pg_episodes": 32, "pg_episode_steps": 50, "policy_lr": 1e-3, "pg_policy_lr": 3e-3, "aux_weight": 0.1,
             "lsr_dim": 20, "lsr_pool": 200, "mlp_hidden": 16, "dht_iterations": 50, "dht_restarts": 4,
             "input_bound": 0.5, "mixup_dim": None, "mixup_batch": 32, "gen_hidden": (128, 128),
             "gen_iterations": 2000, "gen_policy_lr": 3e-3, "gen_aux_weight": 1.0,
             "vae_iterations": 5000, "vae_latent": 8},
}


# DHT Sec. 4.1's setting: a small ConvNet trained with Adam (lr = Adam's step size). The policies are trained through
# the same Adam steps (learner_optimizer="adam": unrolled with the moments in the graph, or sampled episodes) that the
# learner takes at teaching time.
CNN_SETTINGS = {
    "small": {"width": 8, "pool": 300, "test": 500, "lr": 3e-3, "batch": 8, "hidden": (16,),
              "horizon": 4, "unroll_iterations": 6, "episode_steps": 8, "pg_iterations": 6, "pg_episodes": 4,
              "pg_episode_steps": 8, "policy_lr": 3e-3, "pg_policy_lr": 1e-2, "aux_weight": 0.1},
    "full": {"width": 32, "pool": None, "test": None, "lr": 1e-3, "batch": 32, "hidden": (64,),
             "horizon": 5, "unroll_iterations": 200, "episode_steps": 50, "pg_iterations": 200, "pg_episodes": 8,
             "pg_episode_steps": 50, "policy_lr": 1e-3, "pg_policy_lr": 3e-3, "aux_weight": 0.1},
}
CIFAR_ENV = "TEACHTHEORY_CIFAR10"  # the folder the cifar10 preset reads (as the adversarial-ts preset does)
UPDATES = {"mixup-cnn": "adam", "mixup-cifar10": "adam"}  # learner update rule per case (default SGD)
for _scale, _cnn in CNN_SETTINGS.items():
    SETTINGS[_scale]["cnn"] = _cnn


def cnn_problem(dataset: str, runs: int, seed: int, device: str = "cpu", *, width: int = 8, pool: int | None = 300,
                test: int | None = 500) -> tuple[Problem, ConvNet]:
    """A Mixup-teaching problem for a ConvNet learner: 8x8 digits or CIFAR-10 (read from the folder named by the
    environment variable ``TEACHTHEORY_CIFAR10``) as :func:`teachtheory.distill.data.load_dataset` gives them
    (normalised per channel), flattened, one-hot labels, a class-balanced subset of ``pool`` training and ``test``
    test examples (None: all) shared by the runs, and per-run ConvNet initialisations. Black-box: w* is a
    placeholder (w0 of the first run), only losses and accuracies are measured.

    Raises:
        ValueError: an unknown dataset, or CIFAR-10 without its folder.
    """
    from teachtheory.distill.data import load_dataset

    if dataset not in ("digits", "cifar10"):
        raise ValueError(f"dataset must be 'digits' or 'cifar10', got {dataset!r}")
    folder = None
    if dataset == "cifar10":
        folder = os.environ.get(CIFAR_ENV)
        if not folder:
            raise ValueError(f"CIFAR-10 is read from the folder named by the environment variable {CIFAR_ENV} (the "
                             "python batches data_batch_1 .. data_batch_5 and test_batch); it is not set")
    data = load_dataset(dataset, root=folder)
    if pool is not None or test is not None:
        data = data.subset(pool, test, seed=0)  # the same class-balanced subset for every seed
    eye = torch.eye(10, dtype=torch.float32)
    X, X_test = data.x_train.flatten(1)[None], data.x_test.flatten(1)[None]
    y, y_test, shape = eye[data.y_train][None], eye[data.y_test][None], data.image_shape
    learner = ConvNet(shape, 10, width=width, depth=1 if shape[-1] <= 8 else 2)
    w0 = learner.init(runs, seed, dtype=torch.float32)
    problem = Problem(X, y, w0[:1].clone(), w0, X_test, y_test, torch.eye(10, dtype=torch.float32),
                      f"{dataset}-convnet", {"dataset": dataset, "pool": int(X.shape[1]), "learner": learner.to_spec()})
    return problem.to(device), learner


def mixup_teachers(problem: Problem, learner, s: dict, seed: int, train_lr: float, batch: int,
                   learner_optimizer: str = "sgd") -> dict:
    """ERM, Beta(1, 1) and {0, 0.5, 1} Mixup and the two black-box Mixup policies (unrolled on the validation loss,
    policy gradient on the validation accuracy; validation = the pool with its true labels), as :func:`build_case`
    returns them; the policies are trained through the learner's ``learner_optimizer`` steps of size ``train_lr``."""
    cont = TeachingPolicy(learner, kind="mixup", omniscient=False, hidden=tuple(s["hidden"]))
    disc = TeachingPolicy(learner, kind="mixup", mode="discrete", omniscient=False, hidden=tuple(s["hidden"]))
    v = s["horizon"]
    return {
        "ERM (SGD)": RandomTeacher(), "Mixup Beta(1, 1)": MixupTeacher("beta", 1.0),
        "Mixup {0, 0.5, 1}": MixupTeacher("discrete"),
        f"Mixup policy, unrolled (loss, v={v})": lambda: train_unrolled(
            cont, problem, lr=train_lr, horizon=v, iterations=max(1, s["unroll_iterations"] // v),
            episode_steps=s["episode_steps"], policy_lr=s["policy_lr"], aux_weight=s["aux_weight"],
            objective="loss", batch_size=batch, learner_optimizer=learner_optimizer, seed=seed,
            name="mixup-unrolled"),
        "Mixup policy, policy gradient (accuracy)": lambda: train_reinforce(
            disc, problem, lr=train_lr, episode_steps=s["pg_episode_steps"], iterations=s["pg_iterations"],
            episodes=s["pg_episodes"], policy_lr=s["pg_policy_lr"], reward="accuracy",
            batch_size=batch, learner_optimizer=learner_optimizer, seed=seed, name="mixup-reinforce"),
    }


def _lsr(settings, runs, seed, device):
    dim = settings["lsr_dim"]
    problem = problems.linear_regression(dim=dim, pool_size=settings["lsr_pool"], runs=runs, seed=seed, noise=0.1,
                                         device=device)
    return problem, LeastSquares(dim), 0.5 / dim, ("distance", "loss")


def _mlp(settings, runs, seed, device):
    hidden = settings["mlp_hidden"]
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, learner="mlp", hidden=hidden, device=device,
                                init_scale=1.0)
    return problem, MLP(problem.dim, hidden, 2), 0.05, ("distance", "test_accuracy")


def _logistic(settings, runs, seed, device):
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, device=device)
    return problem, Logistic(problem.dim), 0.05, ("distance", "test_accuracy")


def _scalar_actions(problem, count=11):
    """Label offsets on a geometric grid around 0 (fine near the truth, up to the label scale)."""
    top = float(problem.y.abs().max())
    positive = top * torch.logspace(-3, 0, (count - 1) // 2, base=2.0 ** 3, dtype=problem.X.dtype)
    return torch.cat([-positive.flip(0), torch.zeros(1, dtype=problem.X.dtype), positive])


def build_case(case: str, settings: dict, runs: int, steps: int, seed: int, device: str):
    """(problem, learner, lr, metrics, {label: (train(problem) -> PolicyTraining) or Teacher}) for one case.

    Unrolled training episodes last ``steps`` learner steps (the evaluation horizon), restarting at w0."""
    s = {**settings, "episode_steps": steps}
    if case in ("last-lsr", "last-mlp"):
        problem, learner, lr, metrics = (_lsr if case == "last-lsr" else _mlp)(s, runs, seed, device)
        actions = _scalar_actions(problem) if learner.scalar_labels else default_actions(learner, 4, 2.0)
        cont = TeachingPolicy(learner, hidden=s["hidden"])
        disc = TeachingPolicy(learner, mode="discrete", hidden=s["hidden"], actions=actions)
        v = s["horizon"]
        teachers = {
            "SGD": RandomTeacher(), "greedy LAST": LASTTeacher(),
            "unrolled (v=1)": lambda: train_unrolled(cont, problem, lr=lr, horizon=1, iterations=s["unroll_iterations"],
                                                     episode_steps=s["episode_steps"], policy_lr=s["policy_lr"],
                                                     seed=seed, name="unrolled-v1"),
            f"unrolled (v={v}, aux)": lambda: train_unrolled(
                cont, problem, lr=lr, horizon=v, iterations=max(1, s["unroll_iterations"] // v),
                episode_steps=s["episode_steps"], policy_lr=s["policy_lr"], aux_weight=s["aux_weight"], seed=seed,
                name=f"unrolled-v{v}"),
            "policy gradient": lambda: train_reinforce(disc, problem, lr=lr, episode_steps=s["pg_episode_steps"],
                                                       iterations=s["pg_iterations"], episodes=s["pg_episodes"],
                                                       policy_lr=s["pg_policy_lr"], seed=seed, name="reinforce"),
        }
        return problem, learner, lr, metrics, teachers
    if case == "blast":
        problem, learner, lr, metrics = _logistic(s, runs, seed, device)
        cont = TeachingPolicy(learner, omniscient=False, hidden=s["hidden"])
        disc = TeachingPolicy(learner, mode="discrete", omniscient=False, hidden=s["hidden"],
                              actions=torch.tensor([-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0],
                                                   dtype=problem.X.dtype))
        v = s["horizon"]
        teachers = {
            "SGD": RandomTeacher(), "greedy LAST (omniscient)": LASTTeacher(),
            f"BLAST unrolled (loss, v={v})": lambda: train_unrolled(
                cont, problem, lr=lr, horizon=v, iterations=max(1, s["unroll_iterations"] // v),
                episode_steps=s["episode_steps"], policy_lr=s["policy_lr"], aux_weight=s["aux_weight"],
                objective="loss", seed=seed, name="blast-unrolled"),
            "BLAST policy gradient (accuracy)": lambda: train_reinforce(
                disc, problem, lr=lr, episode_steps=s["pg_episode_steps"], iterations=s["pg_iterations"],
                episodes=s["pg_episodes"], policy_lr=s["pg_policy_lr"], reward="accuracy", seed=seed,
                name="blast-reinforce"),
        }
        return problem, learner, lr, metrics, teachers
    if case == "dht-transform":
        problem, learner, lr, metrics = _logistic(s, runs, seed, device)
        policy = TeachingPolicy(learner, kind="input", bound=s["input_bound"], hidden=s["hidden"])
        blind = TeachingPolicy(learner, kind="both", omniscient=False, bound=s["input_bound"], hidden=s["hidden"])
        v = s["horizon"]
        teachers = {
            "SGD": RandomTeacher(),
            "greedy DHT": DHTTeacher(iterations=s["dht_iterations"], restarts=s["dht_restarts"]),
            f"transformation policy (v={v}, aux)": lambda: train_unrolled(
                policy, problem, lr=lr, horizon=v, iterations=max(1, s["unroll_iterations"] // v),
                episode_steps=s["episode_steps"], policy_lr=s["policy_lr"], aux_weight=s["aux_weight"], seed=seed,
                name="dht-transform"),
            f"black-box full space (x and y, loss, v={v})": lambda: train_unrolled(
                blind, problem, lr=lr, horizon=v, iterations=max(1, s["unroll_iterations"] // v),
                episode_steps=s["episode_steps"], policy_lr=s["policy_lr"], aux_weight=s["aux_weight"],
                objective="loss", seed=seed, name="dht-blackbox"),
        }
        return problem, learner, lr, metrics, teachers
    if case == "mixup":
        problem = problems.digits(runs=runs, seed=seed, project_dim=s["mixup_dim"], learner="softmax", device=device)
        learner, lr, metrics = Softmax(problem.dim, 10), 0.1, ("loss", "test_accuracy")
        return problem, learner, lr, metrics, mixup_teachers(problem, learner, s, seed, lr, s["mixup_batch"])
    if case in ("mixup-cnn", "mixup-cifar10"):
        c = s["cnn"]
        problem, learner = cnn_problem("digits" if case == "mixup-cnn" else "cifar10", runs, seed, device,
                                       width=c["width"], pool=c["pool"], test=c["test"])
        teachers = mixup_teachers(problem, learner, c, seed, c["lr"], c["batch"], learner_optimizer=UPDATES[case])
        return problem, learner, c["lr"], ("loss", "test_accuracy"), teachers
    if case in ("gen-digits", "gen-moons"):
        problem, learner, lr, metrics = _generative_problem(case, runs, seed, device)
        return problem, learner, lr, metrics, generative_teachers(problem, learner, lr, s, seed)
    raise ValueError(f"case must be one of {', '.join(CASES)}, got {case!r}")


def _generative_problem(case, runs, seed, device):
    """DHT Fig. 5's two settings: raw 8x8 digits 3 vs 5 (the stand-in for MNIST 3/5, pixels kept so the samples
    are images) and the half-moons, both with a logistic learner."""
    if case == "gen-digits":
        problem = problems.digits35(runs=runs, seed=seed, project_dim=None, device=device)
    else:
        problem = problems.moons(pool_size=200, runs=runs, seed=seed, device=device)
    return problem, Logistic(problem.dim), 0.05, ("distance", "test_accuracy")


def generative_teachers(problem, learner, lr: float, s: dict, seed: int) -> dict:
    """SGD, greedy DHT and the GAN- and VAE-based teachers (trained by unrolling v steps with the auxiliary
    term; the VAE pre-trained on the pool first), as :func:`build_case` returns them."""
    v, hidden = s["horizon"], tuple(s["gen_hidden"])
    common = {"lr": lr, "horizon": v, "iterations": max(1, s["gen_iterations"]), "episode_steps": s["episode_steps"],
              "policy_lr": s["gen_policy_lr"], "aux_weight": s["gen_aux_weight"], "seed": seed}

    def gan():
        return train_generative(GenerativePolicy(learner, kind="gan", hidden=hidden), problem, name="gan", **common)

    def vae():
        fit = pretrain_vae(problem, learner, latent=s["vae_latent"], hidden=hidden, iterations=s["vae_iterations"],
                           seed=seed)
        training = train_generative(GenerativePolicy(learner, kind="vae", latent=s["vae_latent"], hidden=hidden),
                                    problem, vae=fit, name="vae", **common)
        training.config["vae_negative_elbo_first_last"] = [float(fit.history[0].mean()),
                                                           float(fit.history[-50:].mean())]
        return training

    return {"SGD": RandomTeacher(), "greedy DHT": DHTTeacher(iterations=s["dht_iterations"],
                                                            restarts=s["dht_restarts"]),
            f"GAN-based (v={v}, aux)": gan, f"VAE-based (v={v}, aux, KL)": vae}


def _stats(values: np.ndarray) -> dict:
    R = values.size
    sd = float(values.std(ddof=1)) if R > 1 else 0.0
    return {"mean": float(values.mean()), "sd": sd, "se": sd / math.sqrt(R) if R > 1 else 0.0}


def run_case(case: str, out: Path, scale: str, runs: int, steps: int, seed: int, device: str,
             formats=("png",), progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train the case's policies, run every teacher through ``teach()``, write trajectories and a figure."""
    from teachtheory.plotting import convergence_figure, save_figure

    settings = SETTINGS[scale]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problem, learner, lr, metrics, teachers = build_case(case, settings, runs, steps, seed, device)
    trajectories: dict[str, Trajectory] = {}
    used: dict = {}
    summary: dict = {}
    for label, entry in teachers.items():
        train_seconds = 0.0
        training = None
        if callable(entry) and not hasattr(entry, "teach"):
            start = time.perf_counter()
            training = entry()
            train_seconds = time.perf_counter() - start
            teacher = training.teacher
        else:
            teacher = entry
        batch = settings["mixup_batch"] if case == "mixup" else settings["cnn"]["batch"] if case in UPDATES else 1
        traj = teach(problem, learner, teacher, steps, lr, batch_size=batch, seed=seed + 10_000, record=metrics,
                     update=UPDATES.get(case, "sgd"),
                     progress=None if progress is None else (lambda t, label=label: progress(label, t, steps)))
        trajectories[label] = traj
        used[label] = teacher
        traj.save(out / f"{case}__{file_slug(label)}.npz")
        summary[label] = {m: _stats(traj[m][:, -1]) for m in metrics}
        summary[label]["train_seconds"] = train_seconds
        summary[label]["teach_seconds"] = float(traj.seconds[-1])
        if training is not None:
            summary[label]["training"] = training.config
            summary[label]["training_objective_first_last"] = [float(training.history[0].mean()),
                                                              float(training.history[-1].mean())]
    fig = convergence_figure(trajectories, metrics, title=f"{case}: learned teachers ({scale} scale, {runs} runs)")
    save_figure(fig, out / case, formats)
    if case in EXTRA_FIGURES:
        samples = save_samples(out / f"{case}.samples.npz", used, problem)
        EXTRA_FIGURES[case](samples, out / f"{case}__samples", formats)
    return {"case": case, "lr": lr, "steps": steps, "runs": runs, "problem": problem.name, "learner": learner.to_spec(),
            "teachers": summary}


def file_slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-").lower()


def save_samples(path: Path, teachers: dict, problem) -> dict:
    """The synthesized inputs (run 0, every step) of the generative teachers, their learner states, the pool and
    w*, written to ``path`` (npz) and returned as a dict of arrays."""
    data = {"pool_X": problem.X[0].cpu().numpy(), "pool_y": problem.y[0].cpu().numpy(),
            "w_star": problem.w_star[0].cpu().numpy()}
    for teacher in teachers.values():
        if isinstance(teacher, GenerativeTeacher) and teacher.samples:
            steps = sorted(teacher.samples)
            key = teacher.policy.kind
            data[f"{key}_steps"] = np.asarray(steps)
            data[f"{key}_x"] = np.stack([teacher.samples[t] for t in steps])  # [T, m, d]
            data[f"{key}_y"] = np.stack([teacher.labels[t] for t in steps])  # [T, m]
            data[f"{key}_w"] = np.stack([teacher.states[t] for t in steps])  # [T, p]
    np.savez_compressed(path, **data)
    return data


def _kinds(samples: dict) -> list[str]:
    return [k for k in ("vae", "gan") if f"{k}_x" in samples]


def digit_grid(samples: dict, path: Path, formats, columns: int = 10) -> list[Path]:
    """DHT Fig. 7 on 8x8 digits: a row of pool examples, then per teacher (VAE, GAN) the synthesized input at
    ``columns`` steps evenly spread over teaching, in pixel units (the standardisation undone)."""
    import matplotlib.pyplot as plt

    from teachtheory.plotting import save_figure

    raw, _ = problems.digits_arrays((3, 5))
    mean, std = raw.mean(0).numpy(), raw.std(0).clamp_min(1e-8).numpy()
    rows = [("pool", samples["pool_X"][:columns], None)]
    for kind in _kinds(samples):
        steps = samples[f"{kind}_steps"]
        pick = np.linspace(0, len(steps) - 1, columns).round().astype(int)
        rows.append((kind.upper(), samples[f"{kind}_x"][pick, 0], steps[pick]))
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.1 * columns, 1.25 * len(rows)), squeeze=False)
    for r, (name, images, steps) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.imshow((images[c] * std + mean).reshape(8, 8), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if steps is not None:
                ax.set_title(f"t={int(steps[c])}", fontsize=7)
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("synthesized teaching examples (run 0; labels: the sampled examples' true labels)", fontsize=9)
    return save_figure(fig, path, formats)


def moons_scatter(samples: dict, path: Path, formats, panels: int = 3, window: int = 10) -> list[Path]:
    """DHT Fig. 6 on the half-moons: per teacher (rows) and teaching time (columns), the last ``window``
    synthesized examples by label over the faint pool, with w*'s boundary (solid) and the learner's (dashed)."""
    import matplotlib.pyplot as plt

    from teachtheory.plotting import save_figure

    kinds = _kinds(samples)
    fig, axes = plt.subplots(len(kinds), panels, figsize=(3.2 * panels, 3.0 * len(kinds)), squeeze=False)
    X, y = samples["pool_X"], samples["pool_y"]
    grid = np.linspace(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 50)

    def boundary(ax, w, **line):
        if abs(w[1]) > 1e-12:  # w0 x0 + w1 x1 + w2 = 0
            ax.plot(grid, -(w[0] * grid + w[2]) / w[1], **line)

    for r, kind in enumerate(kinds):
        steps, xs, ys, ws = (samples[f"{kind}_{k}"] for k in ("steps", "x", "y", "w"))
        for c, at in enumerate(np.linspace(min(window, len(steps) - 1), len(steps) - 1, panels).round().astype(int)):
            ax = axes[r, c]
            ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", alpha=0.15, s=8)
            recent = slice(max(0, at - window), at + 1)
            ax.scatter(xs[recent, :, 0].ravel(), xs[recent, :, 1].ravel(), c=ys[recent].ravel(), cmap="coolwarm",
                       edgecolors="k", s=25)
            boundary(ax, samples["w_star"], color="tab:orange", label="w*")
            boundary(ax, ws[at], color="tab:green", linestyle="--", label="learner")
            ax.set_ylim(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5)
            ax.set_title(f"{kind.upper()}, t = {int(steps[at])}", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("synthesized teaching examples (run 0)", fontsize=9)
    return save_figure(fig, path, formats)


EXTRA_FIGURES = {"gen-digits": digit_grid, "gen-moons": moons_scatter}
CASES = ("last-lsr", "last-mlp", "blast", "dht-transform", "mixup", "mixup-cnn", "mixup-cifar10", "gen-digits",
         "gen-moons")


def _runner(cases: tuple[str, ...], reference: str):
    def run(out: Path, scale: str, runs: int, steps: int, seed: int, device: str, formats=("png",),
            progress: Callable[[str, int, int], None] | None = None) -> dict:
        out = Path(out)
        with intra_op_threads(1):
            results = {case: run_case(case, out, scale, runs, steps, seed, device, formats, progress)
                       for case in cases}
        result = {"reference": reference, "scale": scale, "settings": {k: list(v) if isinstance(v, tuple) else v
                                                                       for k, v in SETTINGS[scale].items()},
                  "cases": results}
        write_metrics(out, result)
        return result
    return run


def _replot(folder: Path, formats: tuple[str, ...]) -> list[Path]:
    from teachtheory.plotting import convergence_figure, save_figure

    folder = Path(folder)
    written: list[Path] = []
    for case in CASES:
        files = sorted(folder.glob(f"{case}__*.npz"))
        if not files:
            continue
        trajs = {f.stem.split("__", 1)[1]: Trajectory.load(f) for f in files}
        metrics = tuple(next(iter(trajs.values())).metrics)
        written += save_figure(convergence_figure(trajs, metrics, title=f"{case}: learned teachers"), folder / case,
                               formats)
        saved = folder / f"{case}.samples.npz"
        if case in EXTRA_FIGURES and saved.exists():
            with np.load(saved) as data:
                written += EXTRA_FIGURES[case](dict(data), folder / f"{case}__samples", formats)
    return written


# name, cases, reference, (runs, steps) at small and at full scale, protocol, description
CATALOGUE = (
    ("last-parameterized", ("last-lsr", "last-mlp"), cite("last", "Secs. 3.3 and 6.2, Fig. 12"), (8, 200), (32, 1000),
     "the toolkit's own sizes: least squares d=10 and a two-layer MLP on digits 3 vs 5",
     "parameterized LAST: label policies trained by unrolling (v=1, v>1 with the auxiliary term) and by "
     "policy gradient, vs greedy LAST and SGD, for least squares and a two-layer MLP"),
    ("blast", ("blast",), cite("last", "Sec. 4"), (8, 200), (32, 1000),
     "the toolkit's own sizes: logistic regression on digits 3 vs 5",
     "black-box LAST (no w*): label policies trained on the learner's own loss (unrolling) and on "
     "validation accuracy (policy gradient), logistic regression on digits 3 vs 5"),
    ("dht-mixup", ("mixup",), cite("dht", "Sec. 4.1, Table 1"), (8, 200), (5, 2000),
     "the toolkit's own: softmax regression on the ten 8x8 digits, a stand-in for the paper's small CNN with Adam; "
     "--preset cnn: a small ConvNet with Adam on the digits (policies trained through its Adam steps); "
     "--preset cifar10: the paper's data when the user has it",
     "Mixup teaching: learner-conditioned Mixup coefficients from a black-box policy trained by unrolling "
     "(validation loss) and by policy gradient (validation accuracy) vs ERM, Beta(1, 1) and {0, 0.5, 1} "
     "Mixup; softmax regression on the ten digits (a stand-in); presets cnn (the paper's small ConvNet "
     "with Adam, 8x8 digits) and cifar10 (the same on CIFAR-10 read from $TEACHTHEORY_CIFAR10)"),
    ("dht-transform", ("dht-transform",), cite("dht", "Sec. 3.3.1, Figs. 4 and 8"), (8, 200), (32, 1000),
     "the toolkit's own: logistic regression on digits 3 vs 5 (the paper: half-moons and MNIST)",
     "DHT's learner-conditioned data transformation policy (unrolled, auxiliary term) and the black-box "
     "policy over the full teaching space (x and y, no w*) vs greedy DHT and SGD, logistic regression on "
     "digits 3 vs 5"),
    ("dht-generative", ("gen-digits", "gen-moons"), cite("dht", "Sec. 3.3.2, Figs. 5-7"), (8, 100), (10, 300),
     "the toolkit's own (the paper gives no sizes): raw 8x8 digits 3 vs 5 and half-moons",
     "DHT's generative teachers: a GAN-based teacher (generator + discriminator + teaching objective) and "
     "a VAE-based one (pre-trained conditional VAE, teaching in its latent space with the KL constraint), "
     "both unrolled, vs greedy DHT and SGD; logistic regression on raw 8x8 digits 3 vs 5 and on the "
     "half-moons; synthesized samples as image grids and scatter plots"),
)
# presets of a catalogue entry: name -> {preset: (cases, small (runs, steps), full (runs, steps))}
PRESETS = {"dht-mixup": {"cnn": (("mixup-cnn",), (4, 100), (5, 2000)),
                         "cifar10": (("mixup-cifar10",), (2, 100), (5, 5000))}}


def _sizes(small, full) -> dict:
    return {scale: {"runs": r, "steps": t} for scale, (r, t) in (("small", small), ("full", full))}


for _name, _cases, _reference, _small, _full, _protocol, _description in CATALOGUE:
    _presets = PRESETS.get(_name, {})
    register(Simulation(
        name=_name, description=_description, reference=_reference, protocol=_protocol,
        defaults=_sizes(_small, _full), runner=_runner(_cases, _reference), replot=_replot,
        presets={p: _runner(cases, _reference) for p, (cases, _, _) in _presets.items()},
        preset_defaults={p: _sizes(small, full) for p, (_, small, full) in _presets.items()},
    ))
