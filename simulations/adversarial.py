"""Simulation ``adversarial-ts``: adversarial samples in the teacher-student setting (Yang et al., AISTATS 2021;
Tian's talk, "Understanding Adversarial Samples using Teacher-Student").

A random two-layer ReLU oracle on rank-5 Gaussian input in d = 20 (and the full-rank control); students
trained by ST, AT with oracle pairs (logit and label targets; in-plane-only and out-of-plane-only
perturbations), and CCAT for several rho, with and without input augmentation. Writes into ``out``:

* ``config.json``; ``metrics.json`` with the three tables (robust accuracy by regime and epoch; the
  in-plane / out-of-plane / unrestricted attack matrix; CCAT by rho) as mean and SE over runs;
* the same students against a real-image oracle trained with and without shift augmentation and pruned to
  45-32-32-20: scikit-learn digits by default (:func:`teachtheory.adversarial.digits_oracle`), or CIFAR-10 from
  the user's copy (``image="cifar10"`` with ``data_root``; on the command line the preset ``cifar10``, which
  reads the folder from the environment variable ``TEACHTHEORY_CIFAR10``; nothing is downloaded);
* ``tables.md``: the tables as markdown, ours (mean ± SE) beside the talk's numbers where we have them;
* ``arrays.npz``: every trace, from which ``replot`` redraws ``robust_over_epochs``, ``eps_traces`` and
  ``sorted_best_nc``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from teachtheory.adversarial import (
    AdversarialConfig,
    attack_matrix,
    cifar_arrays,
    digits_oracle,
    figure_eps_traces,
    figure_robust_over_epochs,
    figure_sorted_best_nc,
    image_oracle,
    result_arrays,
    train_adversarial,
    train_on_image,
)
from teachtheory.adversarial.figures import ARRAYS
from teachtheory.io import write_json
from teachtheory.random import RunStreams, as_seeds
from teachtheory.references import cite
from teachtheory.simulation import Simulation, register, write_metrics
from teachtheory.threads import intra_op_threads

__all__ = ["CIFAR_ENV", "IMAGES", "REGIMES", "RHOS", "TALK", "replot_adversarial_ts", "run_adversarial_ts",
           "run_cifar10"]

Progress = Callable[[str, int, int], None] | None

THREAT = {"eps": 0.1, "norm": "linf", "train_steps": 5, "attack_steps": 10}
SIZES = {"small": {"train_size": 1000, "eval_size": 500}, "full": {"train_size": 4000, "eval_size": 2000}}
RHOS = (5.0, 10.0, 20.0)  # the talk's
REGIMES = {
    "ST": {"regime": "st"},
    "ST (full rank)": {"regime": "st", "rank": None},
    "ST label": {"regime": "st", "target": "label"},
    "AT logit": {"regime": "at"},
    "AT label": {"regime": "at", "target": "label"},
    "AT in-plane": {"regime": "at", "train_plane": "in"},
    "AT out-of-plane": {"regime": "at", "train_plane": "out"},
    **{f"CCAT rho={rho:g}": {"regime": "ccat", "target": "label", "rho": rho} for rho in RHOS},
    "CCAT rho=10 + augment": {"regime": "ccat", "target": "label", "rho": 10.0, "augment": 0.3},
}
MATRIX_ROWS = ("ST", "AT in-plane", "AT out-of-plane", "AT logit")
# the image oracle: digits (or CIFAR-10), trained with and without shift augmentation, pruned to the talk's widths
DIGITS = {"widths": (45, 32, 32, 20), "eps": 0.05, "lr": 0.01, "runs": {"small": 4, "full": 16},
          "oracle": {"epochs": 40, "finetune": 20},
          "regimes": {"ST": {"regime": "st"}, "AT logit": {"regime": "at"},
                      "AT label": {"regime": "at", "target": "label"}, "ST label": {"regime": "st", "target": "label"}}}
# CIFAR-10 changes to DIGITS: the usual 8/255 ball, the first `limit` training images
CIFAR = {"eps": 8 / 255, "limit": 10000}
IMAGES = ("digits", "cifar10")
CIFAR_ENV = "TEACHTHEORY_CIFAR10"  # the folder the preset cifar10 reads
# the talk's tables (CIFAR-10 oracle pruned to 45-32-32-20; oracle-robust accuracy): AT by epochs, logit vs label
# training under ST by epochs, the in-plane / out-of-plane / standard attack matrix, CCAT by rho at 150 epochs
TALK = {
    "by_epochs": {"AT logit": {50: 0.8118, 100: 0.8257, 150: 0.8407, 200: 0.8535, 300: 0.8681},
                  "ST": {50: 0.2312, 100: 0.3072, 150: 0.3672, 200: 0.4852, 300: 0.6277},
                  "ST label": {50: 0.1908, 100: 0.2081, 150: 0.2234, 200: 0.2342, 300: 0.2579}},
    "attack_matrix": {"AT in-plane": {"in": 0.8886, "out": 0.8918, "both": 0.8928},
                      "AT out-of-plane": {"in": 0.8311, "out": 0.8354, "both": 0.8360},
                      "AT logit": {"in": 0.8687, "out": 0.8728, "both": 0.8718}},
    "ccat_by_rho": {"5": 0.4725, "10": 0.5204, "20": 0.4933, "AT logit": 0.8407},
}


def _ms(values) -> dict:
    values = np.asarray(values, float)
    se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else 0.0
    return {"mean": float(values.mean()), "se": se}


def _fmt(entry: dict) -> str:
    return f"{entry['mean']:.3f} ± {entry['se']:.3f}"


def _run(out, scale: str = "small", runs: int = 8, steps: int = 30, seed: int = 0, device: str = "cpu",
         formats: Sequence[str] = ("png",), progress: Progress = None, image: str = "digits",
         data_root=None) -> dict:
    """Train every regime (``steps`` = epochs), attack the finals, write tables, arrays and figures."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    images = _image_data(image, data_root)  # read (and check) the images before any training
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = {**SIZES["full" if scale == "full" else "small"], **THREAT, "epochs": steps,
            "record_every": max(1, steps // 6)}
    configs = {label: AdversarialConfig(**base, **changes) for label, changes in REGIMES.items()}
    write_json(out / "config.json", {
        "simulation": "adversarial-ts", "reference": cite("yang-robust"), "scale": scale, "runs": runs,
        "epochs": steps, "seed": seed, "device": device, "configs": {k: c.to_dict() for k, c in configs.items()},
        "image_oracle": {"image": images["name"], "source": images.get("source", "scikit-learn"), "eps": images["eps"],
                         **{k: v for k, v in DIGITS.items() if k != "eps"}},
        "notes": {"robust accuracy": "oracle: argmax f(x') = argmax f*(x') at the oracle adversary x'; data: argmax "
                                     "f(x') = argmax f*(x) at the cross-entropy data adversary",
                  "CCAT": "oracle labels in place of true ones; accuracy without confidence rejection",
                  "augment": "isotropic Gaussian input noise (std 0.3) labelled by the oracle"},
    })
    started = time.perf_counter()
    arrays, matrix = {}, {}
    total = steps * len(configs)
    for i, (label, cfg) in enumerate(configs.items()):
        def report(done, _total, label=label, offset=i * steps):
            if progress is not None:
                progress(label, offset + done, total)

        res = train_adversarial(cfg, runs=runs, seed=seed, device=device, progress=report,
                                keep_networks=label in MATRIX_ROWS)
        arrays[label] = result_arrays(res)
        if label in MATRIX_ROWS:
            m = attack_matrix(res.extra["student"], res.extra["oracle"], res.extra["X_eval"], eps=cfg.eps,
                              norm=cfg.norm, steps=cfg.attack_steps)
            matrix[label] = {plane: {k: _ms(v.numpy()) for k, v in accs.items()} for plane, accs in m.items()}
    image_rows = _image(images, scale, steps, seed, device)
    np.savez_compressed(out / "arrays.npz", **{f"{label}|{name}": arr[name] for label, arr in arrays.items()
                                               for name in ARRAYS})
    tables = _tables(arrays, matrix)
    tables["image_oracle"] = image_rows
    write_metrics(out, {"simulation": "adversarial-ts", "runs": runs, "epochs": steps,
                        "seconds": time.perf_counter() - started, "tables": tables})
    (out / "tables.md").write_text(_markdown(tables, runs, steps))  # the result folder is already transactional
    figures = _figures(out, arrays, formats)
    return {"out": str(out), "figures": [str(f) for f in figures], "tables": tables}


def _image_data(image: str, data_root) -> dict:
    """The images of the oracle: ``digits`` (no files) or ``cifar10`` from ``data_root`` (checked here, before
    any training: a missing or malformed folder is an error naming it)."""
    if image not in IMAGES:
        raise ValueError(f"image must be one of {', '.join(IMAGES)}, got {image!r}")
    if image == "digits":
        if data_root is not None:
            raise ValueError("data_root is read only with image='cifar10' (the digits come with scikit-learn)")
        return {"name": "digits", "eps": DIGITS["eps"]}
    if data_root is None:
        raise ValueError(f"image 'cifar10' is read from the user's copy: pass data_root (or set {CIFAR_ENV} for the "
                         "preset cifar10) naming the folder with CIFAR-10's python batches data_batch_1 .. "
                         "data_batch_5; nothing is downloaded")
    X, y = cifar_arrays(data_root, CIFAR["limit"])
    if int(y.max()) + 1 != 10 or X.shape[0] < 20:
        raise ValueError(f"data_root {str(data_root)!r}: need at least 20 images covering the 10 CIFAR-10 classes, "
                         f"got {X.shape[0]} images with labels up to {int(y.max())}")
    return {"name": "cifar10", "eps": CIFAR["eps"], "X": X, "y": y, "source": str(data_root)}


def _image(images: dict, scale: str, epochs: int, seed: int, device: str) -> dict:
    """The pruned image oracle with and without augmentation: oracle accuracy, and ST / AT students."""
    runs = DIGITS["runs"]["full" if scale == "full" else "small"]
    streams = RunStreams(as_seeds(seed, runs))
    out = {"image": images["name"], "eps": images["eps"], "source": images.get("source", "scikit-learn"),
           "oracles": {}}
    for augment in (False, True):
        if images["name"] == "digits":
            oracle = digits_oracle(streams, widths=DIGITS["widths"], augment=augment, device=device,
                                   **DIGITS["oracle"])
        else:
            oracle = image_oracle(streams, images["X"], images["y"], channels=3, widths=DIGITS["widths"],
                                  augment=augment, device=device, **DIGITS["oracle"])
        key = "augmentation on" if augment else "augmentation off"
        rows = {"oracle_accuracy": _ms(oracle.accuracy.numpy()),
                "oracle_accuracy_unpruned": _ms(oracle.accuracy_unpruned.numpy()),
                "plane_rank": _ms(oracle.rank.numpy()), "students": {}}
        for label, changes in DIGITS["regimes"].items():
            res = train_on_image(oracle, streams.seeds, device=device, epochs=epochs,
                                 record_every=max(1, epochs // 2), lr=DIGITS["lr"],
                                 **{**THREAT, "eps": images["eps"]}, **changes)
            rows["students"][label] = {"clean": _ms(res.clean_acc[:, -1]),
                                       "robust_oracle": _ms(res.robust_oracle[:, -1]),
                                       "robust_data": _ms(res.robust_data[:, -1]),
                                       "eps_in": _ms(res.eps_in[:, -1]), "eps_out": _ms(res.eps_out[:, -1])}
        out["oracles"][key] = rows
    return out


def _tables(arrays: dict, matrix: dict) -> dict:
    by_regime = {}
    for label, arr in arrays.items():
        by_regime[label] = {
            "epochs": arr["epochs"].tolist(),
            "robust_oracle": [_ms(arr["robust_oracle"][:, t]) for t in range(arr["epochs"].size)],
            "robust_data": [_ms(arr["robust_data"][:, t]) for t in range(arr["epochs"].size)],
            "clean": _ms(arr["clean_acc"][:, -1]), "eps_in": _ms(arr["eps_in"][:, -1]),
            "eps_out": _ms(arr["eps_out"][:, -1]), "talk": TALK["by_epochs"].get(label),
        }
    ccat = {f"{rho:g}": by_regime[f"CCAT rho={rho:g}"]["robust_oracle"][-1] for rho in RHOS}
    ccat["10 + augment"] = by_regime["CCAT rho=10 + augment"]["robust_oracle"][-1]
    ccat["AT logit"] = by_regime["AT logit"]["robust_oracle"][-1]
    return {"robust_by_regime": by_regime, "attack_matrix": matrix, "ccat_by_rho": ccat}


def _talk(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _markdown(tables: dict, runs: int, epochs: int) -> str:
    lines = [f"# adversarial-ts (R = {runs} runs, {epochs} epochs; mean ± SE over runs)", "",
             "The talk's numbers: a CIFAR-10 oracle pruned to 45-32-32-20, trained 50-300 epochs. Ours: a random "
             "ReLU oracle on rank-5 Gaussian input in d = 20, eps = 0.1 (L_inf), and a real-image oracle (below); "
             "robust accuracy without confidence rejection.", "",
             "## Robust accuracy by regime (oracle adversary), final epoch; the talk's at 300 epochs", "",
             "| regime | clean | oracle-robust | data-robust | eps_in | eps_out | talk (oracle-robust, 300 ep.) |",
             "|---|---|---|---|---|---|---|"]
    for label, row in tables["robust_by_regime"].items():
        talk = _talk(None if row["talk"] is None else row["talk"][300])
        lines.append(f"| {label} | {_fmt(row['clean'])} | {_fmt(row['robust_oracle'][-1])} | "
                     f"{_fmt(row['robust_data'][-1])} | {_fmt(row['eps_in'])} | {_fmt(row['eps_out'])} | {talk} |")
    lines += ["", "## Oracle-robust accuracy over epochs (ours), and the talk's (its epochs 50-300)", ""]
    first = next(iter(tables["robust_by_regime"].values()))
    talk_epochs = sorted(next(iter(TALK["by_epochs"].values())))
    lines += ["| regime | " + " | ".join(f"epoch {e}" for e in first["epochs"]) + " | talk: "
              + " / ".join(map(str, talk_epochs)) + " |", "|---|" + "---|" * (len(first["epochs"]) + 1)]
    for label, row in tables["robust_by_regime"].items():
        talk = "-" if row["talk"] is None else " / ".join(_talk(row["talk"][e]) for e in talk_epochs)
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in row["robust_oracle"]) + f" | {talk} |")
    lines += ["", "## Attack matrix: oracle-robust accuracy (rows: training, columns: attack); ours | talk", "",
              "| training | in-plane attack | out-of-plane attack | unrestricted attack |", "|---|---|---|---|"]
    for label, row in tables["attack_matrix"].items():
        talk = TALK["attack_matrix"].get(label, {})
        lines.append(f"| {label} | " + " | ".join(f"{_fmt(row[p]['oracle'])} \\| {_talk(talk.get(p))}"
                                                  for p in ("in", "out", "both")) + " |")
    lines += ["", "## CCAT by rho (oracle-robust accuracy, final epoch; the talk's at 150 epochs)", "",
              "| rho | ours | talk |", "|---|---|---|"]
    lines += [f"| {rho} | {_fmt(v)} | {_talk(TALK['ccat_by_rho'].get(rho))} |"
              for rho, v in tables["ccat_by_rho"].items()]
    image = tables.get("image_oracle")
    if image:
        lines += ["", f"## Real-image oracle ({image['image']}) pruned to {'-'.join(map(str, DIGITS['widths']))} "
                      f"(eps = {image['eps']:.4g})", "",
                  ("| oracle training | oracle accuracy (pruned / unpruned) | student | clean | oracle-robust | "
                   "data-robust | eps_out |"), "|---|---|---|---|---|---|---|"]
        for key, rows in image["oracles"].items():
            for label, row in rows["students"].items():
                lines.append(f"| {key} | {_fmt(rows['oracle_accuracy'])} / {_fmt(rows['oracle_accuracy_unpruned'])} "
                             f"| {label} | {_fmt(row['clean'])} | {_fmt(row['robust_oracle'])} | "
                             f"{_fmt(row['robust_data'])} | {_fmt(row['eps_out'])} |")
    lines.append("")
    return "\n".join(lines)


def _figures(out: Path, arrays: dict, formats) -> list[Path]:
    main = {k: arrays[k] for k in ("ST", "ST (full rank)", "AT logit", "AT label", "CCAT rho=10") if k in arrays}
    figures = []
    figures += figure_robust_over_epochs(main, out / "robust_over_epochs", formats)
    figures += figure_eps_traces({k: arrays[k] for k in ("ST", "ST label", "AT logit", "AT in-plane",
                                                         "AT out-of-plane", "CCAT rho=10") if k in arrays},
                                 out / "eps_traces", formats)
    figures += figure_sorted_best_nc(main, out / "sorted_best_nc", formats)
    return figures


def replot_adversarial_ts(folder: str | Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Redraw the figures from ``arrays.npz``."""
    folder = Path(folder)
    path = folder / "arrays.npz"
    if not path.is_file():
        raise ValueError(f"RESULT_DIR {str(folder)!r} lacks arrays.npz")
    arrays: dict[str, dict] = {}
    with np.load(path) as data:
        for key in data.files:
            label, name = key.split("|", 1)
            arrays.setdefault(label, {})[name] = data[key]
    return _figures(folder, arrays, formats)


def run_adversarial_ts(out, scale: str = "small", runs: int | None = None, steps: int | None = None, seed: int = 0,
                       device: str = "cpu", formats: Sequence[str] = ("png",), progress: Progress = None,
                       image: str = "digits", data_root=None) -> dict:
    """The ``adversarial-ts`` runner (one intra-op thread on CPU: the tensors are small).

    Args:
        image: the real-image oracle's images: ``"digits"`` (scikit-learn's, the default) or ``"cifar10"``.
        data_root: with ``image="cifar10"``, the folder holding CIFAR-10's python batches (or its parent);
            read and checked before any training. Other arguments as for every runner.

    Raises:
        ValueError: a bad argument, or a malformed CIFAR-10 batch (named). FileNotFoundError: ``data_root``
            does not exist or holds no training batch.
    """
    for arg, value in (("runs", runs), ("steps", steps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{arg} must be a positive integer, got {value!r}")
    defaults = SIM.defaults["full" if scale == "full" else "small"]
    with intra_op_threads(1 if not str(device).startswith("cuda") else None):
        return _run(out, scale=scale, runs=runs or defaults["runs"], steps=steps or defaults["steps"], seed=seed,
                    device=device, formats=formats, progress=progress, image=image, data_root=data_root)


def run_cifar10(out, **kwargs) -> dict:
    """The preset ``cifar10``: :func:`run_adversarial_ts` with the CIFAR-10 oracle, its folder read from the
    environment variable ``TEACHTHEORY_CIFAR10`` (``simulate`` has no data-folder option)."""
    folder = os.environ.get(CIFAR_ENV)
    if not folder:
        raise ValueError(f"preset cifar10 reads CIFAR-10 from the folder named by the environment variable {CIFAR_ENV} "
                         "(the python batches data_batch_1 .. data_batch_5, or their parent); it is not set")
    return run_adversarial_ts(out, image="cifar10", data_root=folder, **kwargs)


SIM = register(Simulation(
    "adversarial-ts", "adversarial samples, teacher-student: oracle/data adversaries, ST/AT/CCAT, eps_in/eps_out",
    f"{cite('yang-robust')} (robustness tables)",
    {"small": {"runs": 8, "steps": 30}, "full": {"runs": 32, "steps": 100}},
    runner=run_adversarial_ts, replot=replot_adversarial_ts, presets={"cifar10": run_cifar10},
    preset_defaults={"cifar10": {"small": {"runs": 8, "steps": 30}, "full": {"runs": 32, "steps": 100}}},
    protocol=("the toolkit's own at small scale: random low-rank ReLU oracles and a digits-trained pruned oracle, "
              '30 epochs (the talk: a CIFAR-10 oracle pruned to 45-32-32-20, up to 300 epochs); --preset cifar10 '
              "uses the user's CIFAR-10"),
))
