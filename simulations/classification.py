"""Simulations ``moons`` and ``digits35``: logistic regression taught by SGD, IMT, the LAST variants, mixed teaching
and DHT, on half-moons and on scikit-learn's digits 3 vs 5.

Three protocols (``simulate moons --preset NAME``; no preset is the toolkit's own):

- toolkit (default): a bias column, centred moons (noise 0.1), per-feature DHT box, a +-1 logistic learner,
  w* the L2-regularised Newton fit, lr 0.1 (moons) / 0.05 (digits), distance ||w - w*||.
- ``qiu2023``: DHT Fig. 3 under the authors' protocol: a two-output softmax learner without bias on uncentred
  moons (noise 0.2, 800-point pool, 200 test points) or on digits 3/5 in [-1, 1] projected to 24 dimensions by a
  N(0, 0.1^2) matrix; lr 1e-3; w0 ~ U(-1/sqrt(d), 1/sqrt(d)) (a default linear layer); w* trained by SGD from w0
  (29 epochs, lr 1e-3 then 1e-4 after epoch 25); one global DHT box [min X, max X]; labels y >= 0, ||y||_2 <= 2;
  the metric ``direction_gap`` = ||W/||W||_F - W*/||W*||_F||_2^2 (spectral norm, as the authors plot it).
  MNIST is not shipped: the 8x8 digits stand in (pixels mapped to [-1, 1], the same projection scheme, a
  265-point pool and 100 test points) unless the environment variable ``TEACHTHEORY_MNIST`` names a folder
  with MNIST's IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]): then a 1000-point pool of
  MNIST 3/5 as in the paper.
- ``liu2021``: LAST Fig. 8 as the paper states it: the toolkit's logistic learner and data, with the soft
  label set written as the paper's two-class simplex (y = 2p - 1, p in [0, 1]: the box [-1, 1]) and the DHT
  curves left out (they are not in LAST's figure).

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Fig. 8.
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Fig. 3 and Sec. 5.1.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np
import torch

from teachtheory import problems
from teachtheory.learners import Logistic, Softmax
from teachtheory.problems import Problem
from teachtheory.random import RunStreams
from teachtheory.simulation import Setup, Simulation, register
from teachtheory.teachers.presets import classification_teachers, dht_fig3_teachers, last_fig8_teachers
from teachtheory.validation import check_seeds

from .common import TEACHING_MEMORY_PER_RUN_STEP, teaching_preset

__all__ = ["DEFAULTS", "MNIST_ENV", "QIU2023", "QIU2023_DEFAULTS", "QIU2023_ORDERING", "QIU2023_PUBLISHED", "SETTINGS",
           "build_digits35", "build_digits35_liu2021", "build_digits35_qiu2023", "build_moons", "build_moons_liu2021",
           "build_moons_qiu2023", "direction_gap", "load_mnist35", "qiu2023_beside_paper", "sgd_target"]

# per scale: the size of the moons pool (digits35 uses the whole data set at both scales)
SETTINGS = {"small": {"moons_pool": 200}, "full": {"moons_pool": 1000}}
DEFAULTS = {"small": {"runs": 16, "steps": 300}, "full": {"runs": 64, "steps": 1000}}
LABELS = "+-1; one-hot = {-1, +1}; soft = [-1, 1]; DHT + label: |y| <= 2"
REFERENCE = "LAST Fig. 8 / DHT Fig. 3, toolkit protocol (--preset qiu2023 / liu2021: the papers')"

# DHT Fig. 3 (Sec. 5.1 and the authors' released settings): ten seeds, 300 iterations, lr 1e-3
QIU2023 = {"lr": 1e-3, "moons_pool": 800, "moons_test": 200, "moons_noise": 0.2, "mnist_pool": 1000,
           "test": 100, "project_dim": 24, "project_std": 0.1, "target_epochs": 30, "target_milestone": 25,
           "label_set": "nonneg+ball-origin:2", "box": "global"}
QIU2023_DEFAULTS = {"small": {"runs": 10, "steps": 300}, "full": {"runs": 30, "steps": 300}}
QIU2023_REFERENCE = "DHT Fig. 3, authors' protocol (qiu2023)"
# DHT Fig. 3 as published: the authors' released per-seed runs at iteration 300, mean ± SE over seeds, in their
# metric ||W/||W|| - W*/||W*|| ||^2 (moons: 10 seeds; the right panel is MNIST 3/5: 15 seeds)
QIU2023_PUBLISHED = {
    "moons": {"SGD": (2.235, 0.162), "IMT": (1.419, 0.192), "DHT": (0.837, 0.105), "SGD + label": (1.711, 0.165),
              "IMT + label": (1.002, 0.174), "DHT + label": (0.582, 0.111)},
    "digits35": {"SGD": (0.984, 0.072), "IMT": (0.195, 0.012), "DHT": (0.093, 0.005), "SGD + label": (0.576, 0.046),
                 "IMT + label": (0.087, 0.005), "DHT + label": (0.010, 0.002)},
}
QIU2023_ORDERING = "DHT below SGD and IMT, and DHT + label below every other teacher (the paper's Fig. 3)"
LIU2021_REFERENCE = "LAST Fig. 8, paper protocol (liu2021)"
MNIST_ENV = "TEACHTHEORY_MNIST"


def _setup(problem: Problem, steps: int, lr: float, notes: dict) -> Setup:
    """The teachers of both figures on a logistic learner (DHT and the soft labels in the box [-2, 2])."""
    return Setup(problem, Logistic(problem.dim), classification_teachers("box:-2:2"), steps, lr=lr,
                 metrics=("distance", "test_accuracy"), notes=notes)


def build_moons(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """Half-moons (noise 0.1), one pool shared by the runs, 500 test points."""
    problem = problems.moons(pool_size=SETTINGS[scale]["moons_pool"], runs=runs, seed=seed, noise=0.1, test_size=500,
                             device=device)
    return _setup(problem, steps, 0.1, {"labels": LABELS, "pool": "shared by all runs; runs differ in w0 and sampling",
                                        "protocol": "toolkit"})


def build_digits35(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """Digits 3 vs 5, projected to 24 dimensions by a seeded Gaussian matrix."""
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, device=device)
    return _setup(problem, steps, 0.05,
                  {"data": "scikit-learn digits 3 vs 5, projected to 24 dims by a seeded Gaussian matrix",
                   "labels": LABELS, "protocol": "toolkit"})


# -- LAST Fig. 8 as the paper states it ---------------------------------------------------------------


def _liu2021_setup(problem: Problem, steps: int, lr: float, notes: dict) -> Setup:
    notes = {**notes, "protocol": "liu2021",
             "soft labels": "the two-class simplex (p, 1 - p) of the paper, as y = 2p - 1 in [-1, 1]",
             "one-hot labels": "{-1, +1}", "target": "L2-regularised logistic fit on the pool (the paper's w* is "
                                                   "an optimal classifier; it does not say how it was found)"}
    return Setup(problem, Logistic(problem.dim), last_fig8_teachers(), steps, lr=lr,
                 metrics=("distance", "test_accuracy"), notes=notes)


def build_moons_liu2021(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """LAST Fig. 8 (left): half-moons with the figure's line-up (SGD, IMT, LAST one-hot / soft / NC, mixed)."""
    problem = problems.moons(pool_size=SETTINGS[scale]["moons_pool"], runs=runs, seed=seed, noise=0.1, test_size=500,
                             device=device)
    return _liu2021_setup(problem, steps, 0.1, {"data": "centred half-moons, noise 0.1, a bias column"})


def build_digits35_liu2021(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """LAST Fig. 8 (right): digits 3 vs 5 projected to 24 dimensions, the figure's line-up."""
    problem = problems.digits35(runs=runs, seed=seed, project_dim=24, device=device)
    return _liu2021_setup(problem, steps, 0.05, {"data": "scikit-learn digits 3/5 (MNIST stand-in), 24 dims"})


# -- DHT Fig. 3 under the authors' protocol -------------------------------------------------------------


def direction_gap(w: torch.Tensor, w_star: torch.Tensor, classes: int = 2) -> torch.Tensor:
    """||W/||W||_F - W*/||W*||_F||_2^2 per run, [R]: the squared spectral norm of the gap between the normalised
    weight matrices (DHT Fig. 3's y-axis as the authors compute it); 0 when the directions agree, at most 4."""
    W = w.reshape(w.shape[0], -1, classes)
    W_star = w_star.reshape(w_star.shape[0], -1, classes).to(W.dtype)
    gap = W / W.flatten(1).norm(dim=-1)[:, None, None] - W_star / W_star.flatten(1).norm(dim=-1)[:, None, None]
    return torch.linalg.matrix_norm(gap, ord=2) ** 2


def sgd_target(learner, X: torch.Tensor, y: torch.Tensor, w0: torch.Tensor, *, lr: float = 1e-3, epochs: int = 30,
               milestone: int = 25) -> torch.Tensor:
    """w* as the DHT authors obtain it: SGD with batch size 1 from w0 through the pool in order, ``epochs - 1``
    epochs (the first pass only evaluates), the step size divided by 10 from epoch ``milestone`` on; [R, p].

    ``learner`` is linear (gradient x r^T with r = dl/dz); X [1, n, d] is shared by the runs, y [1, n, K].
    """
    R, d = w0.shape[0], X.shape[-1]
    W = w0.reshape(R, d, -1).clone()
    xs, ys = X[0], y[0]
    for epoch in range(1, epochs):
        step = lr * (0.1 if epoch >= milestone else 1.0)
        for x, target in zip(xs, ys):  # sequential by nature: one example per update
            W -= step * x[None, :, None] * learner.residual(x @ W, target)[:, None, :]
    return W.reshape(R, -1)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX array (MNIST's format: magic, dimension sizes, unsigned bytes), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{MNIST_ENV}: {str(path)!r} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(shape):
        raise ValueError(f"{MNIST_ENV}: {str(path)!r} holds {body.size} bytes for shape {shape}")
    return body.reshape(shape)


def load_mnist35(folder: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's training digits 3 and 5 from ``folder``'s IDX files: (X [n, 784] in [-1, 1], labels 0 = 3, 1 = 5).

    Raises:
        ValueError: the folder lacks the files or they are not MNIST IDX files.
    """
    folder = Path(folder)
    found = {}
    for key, stem in (("images", "train-images-idx3-ubyte"), ("labels", "train-labels-idx1-ubyte")):
        paths = [p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()]
        if not paths:
            raise ValueError(f"{MNIST_ENV}={str(folder)!r} has no {stem}[.gz] (MNIST's IDX training files)")
        found[key] = _read_idx(paths[0])
    images, labels = found["images"], found["labels"]
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{MNIST_ENV}: images {images.shape} and labels {labels.shape} do not match")
    keep = (labels == 3) | (labels == 5)
    X = torch.tensor(images[keep].reshape(int(keep.sum()), -1), dtype=torch.float64) / 255.0 * 2.0 - 1.0
    return X, torch.tensor((labels[keep] == 5).astype(np.int64))


def _qiu2023_problem(X: torch.Tensor, labels: torch.Tensor, n_pool: int, runs: int, seed: int, name: str,
                     meta: dict, device: str) -> Problem:
    """Pool (the first ``n_pool`` rows) and test split, one-hot two-class labels, w0 ~ U(-1/sqrt(d), 1/sqrt(d)) per
    run (a default linear layer without bias), w* trained by SGD from each run's w0 (:func:`sgd_target`)."""
    d = X.shape[1]
    learner = Softmax(d, 2)
    Y = torch.nn.functional.one_hot(labels, 2).to(torch.float64)
    Xp, Yp = X[None, :n_pool], Y[None, :n_pool]
    streams = RunStreams(check_seeds(seed, runs))
    bound = 1.0 / math.sqrt(d)
    w0 = (2.0 * streams.uniform("w0-qiu2023", 0, (learner.num_params,)) - 1.0) * bound
    w_star = sgd_target(learner, Xp, Yp, w0, lr=QIU2023["lr"], epochs=QIU2023["target_epochs"],
                        milestone=QIU2023["target_milestone"])
    problem = Problem(Xp, Yp, w_star, w0, X[None, n_pool:], Y[None, n_pool:], torch.eye(2, dtype=torch.float64),
                      name, {**meta, "protocol": "qiu2023", "target": "SGD from w0 (authors' code)",
                             "w0": "U(-1/sqrt(d), 1/sqrt(d)), no bias"})
    return problem.to(device)


def _qiu2023_setup(problem: Problem, steps: int, notes: dict) -> Setup:
    return Setup(problem, Softmax(problem.dim, 2), dht_fig3_teachers(QIU2023["label_set"], box=QIU2023["box"]), steps,
                 lr=QIU2023["lr"], metrics=("distance", "test_accuracy"),
                 notes={"protocol": "qiu2023", "labels": "one-hot two-class; + label: y >= 0, ||y||_2 <= 2",
                        "box": "global [min X, max X] (the authors' reading of the paper's sentence)",
                        "direction_gap": "||W/||W||_F - W*/||W*||_F||_2^2, the authors' plotted metric", **notes})


def build_moons_qiu2023(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """DHT Fig. 3 (left), authors' protocol: uncentred make_moons-style data (noise 0.2), 800 pool, 200 test."""
    n_pool, n_test = QIU2023["moons_pool"], QIU2023["moons_test"]
    drawn = problems.moons(pool_size=n_pool, runs=1, seed=seed, noise=QIU2023["moons_noise"], test_size=n_test,
                           learner="softmax", bias=False)
    shift = torch.tensor([0.5, 0.25], dtype=torch.float64)  # undo problems.moons' centring: scikit-learn's layout
    X = torch.cat([drawn.X[0], drawn.X_test[0]]) + shift
    labels = torch.cat([drawn.y[0], drawn.y_test[0]]).argmax(-1)
    problem = _qiu2023_problem(X, labels, n_pool, runs, seed, f"moons-qiu2023(n={n_pool})",
                               {"generator": "moons", "noise": QIU2023["moons_noise"], "centred": False}, device)
    return _qiu2023_setup(problem, steps, {"data": "two moons (noise 0.2), not centred, no bias column"})


def build_digits35_qiu2023(scale: str, runs: int, steps: int, seed: int, device: str) -> Setup:
    """DHT Fig. 3 (right), authors' protocol: 3/5 images in [-1, 1], projected to 24 dims by N(0, 0.1^2).

    MNIST from the folder in the environment variable ``TEACHTHEORY_MNIST`` (1000-point pool); else the 8x8
    digits (265-point pool), the data the toolkit ships.
    """
    folder = os.environ.get(MNIST_ENV)
    if folder:
        X, labels = load_mnist35(folder)
        n_pool, source = QIU2023["mnist_pool"], f"MNIST 3/5 from {folder} (28x28)"
    else:
        X, labels = problems.digits_arrays((3, 5))
        X = 2.0 * X - 1.0
        n_pool, source = X.shape[0] - QIU2023["test"], "scikit-learn digits 3/5 (8x8; MNIST stand-in)"
    shared = RunStreams(check_seeds(seed, 1))
    order = torch.argsort(shared.uniform("qiu2023-shuffle", 0, (X.shape[0],))[0])
    X, labels = X[order][:n_pool + QIU2023["test"]], labels[order][:n_pool + QIU2023["test"]]
    projection = QIU2023["project_std"] * shared.normal("qiu2023-projection", 0, (X.shape[1], QIU2023["project_dim"]))
    problem = _qiu2023_problem(X @ projection[0], labels, n_pool, runs, seed, f"digits35-qiu2023(n={n_pool})",
                               {"generator": "digits35", "source": source, "project_dim": QIU2023["project_dim"]},
                               device)
    return _qiu2023_setup(problem, steps, {"data": f"{source}, in [-1, 1], projected to 24 dims by N(0, 0.1^2)"})


_PRESET_METRIC = ("direction_gap", direction_gap)


def qiu2023_beside_paper(name: str, summary: dict) -> dict:
    """The run's final direction gaps beside DHT Fig. 3's published ones, and whether the paper's ordering
    (:data:`QIU2023_ORDERING`) appears in the run's means (an ordering of means; ``dht.fig3-order`` tests it
    with standard errors)."""
    final = {label: entry["direction_gap"]["final"]["mean"] for label, entry in summary.items()}
    others = [label for label in final if label != "DHT + label"]
    shown = (final["DHT"] < min(final["SGD"], final["IMT"])
             and all(final["DHT + label"] < final[label] for label in others))
    published = QIU2023_PUBLISHED[name]
    return {"metric": "direction_gap", "published": {label: {"mean": m, "se": se} for label, (m, se) in
                                                     published.items()},
            "published_source": "Qiu, Liu et al. (AISTATS 2023), Fig. 3: the authors' released runs at iteration 300"
                                + (" (MNIST 3/5; this run uses the 8x8 digits unless TEACHTHEORY_MNIST is set)"
                                   if name == "digits35" else ""),
            "ordering": QIU2023_ORDERING, "ordering_shown": bool(shown),
            "ordering_shown_by_paper": True}


def _presets(name: str, build, build_qiu, build_liu) -> dict:
    return {"toolkit": teaching_preset(name, REFERENCE, build),
            "qiu2023": teaching_preset(name, QIU2023_REFERENCE, build_qiu, _PRESET_METRIC,
                                       paper=lambda summary: qiu2023_beside_paper(name, summary)),
            "liu2021": teaching_preset(name, LIU2021_REFERENCE, build_liu)}


def _preset_defaults() -> dict:
    return {"toolkit": DEFAULTS, "qiu2023": QIU2023_DEFAULTS, "liu2021": DEFAULTS}


register(Simulation("moons", "logistic regression on half-moons: SGD, IMT, LAST variants, mixed, DHT", REFERENCE,
                    DEFAULTS, build_moons,
                    memory_per_run_step=TEACHING_MEMORY_PER_RUN_STEP,
                    presets=_presets("moons", build_moons, build_moons_qiu2023, build_moons_liu2021),
                    preset_defaults=_preset_defaults()))
register(Simulation("digits35", "logistic regression on digits 3 vs 5: SGD, IMT, LAST variants, mixed, DHT", REFERENCE,
                    DEFAULTS, build_digits35,
                    memory_per_run_step=TEACHING_MEMORY_PER_RUN_STEP,
                    presets=_presets("digits35", build_digits35, build_digits35_qiu2023, build_digits35_liu2021),
                    preset_defaults=_preset_defaults()))
