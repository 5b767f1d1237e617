"""Distil, evaluate and write the result: the pipeline behind ``teachtheory distill``.

:func:`run_distill` distils a set, evaluates it under the protocol on several networks (the ConvNet
with and without DSA augmentation, a second ConvNet depth for transfer, the MLP, and kernel ridge
regression for KIP's sets), measures the full-training-set ceiling, and writes into a result folder
built as a transaction (:func:`teachtheory.io.result_folder`): ``synthetic.npz``, ``images.png`` (the
images as a grid, one column per class), ``learning_curve.png`` (test accuracy against epoch of
the evaluation networks, and the distillation loss), ``accuracy.md`` (the table), ``config.json``,
``metrics.json`` and ``run.json``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import check_writable_folder, result_folder, write_json
from ..plotting import BAND_ALPHA, plt, save_figure
from .api import METHODS, distill, load_any
from .data import DATASETS, FILE_DATASETS, DistillData
from .evaluate import EvalResult, evaluate, evaluate_full
from .nets import transfer_depth
from .synthetic import SyntheticSet

__all__ = [
    "CPU_WIDTH",
    "auto_epochs",
    "auto_width",
    "check_inputs",
    "format_table",
    "image_grid_figure",
    "learning_curve_figure",
    "parse_options",
    "run_distill",
]

CPU_WIDTH = 32  # ConvNet width used on CPU unless --width says otherwise (the field's is 128)
CPU_EPOCHS, FIELD_EPOCHS = 300, 1000


def auto_width(device: str | torch.device, width: int | None) -> int:
    """The ConvNet width: the given one, else 128 (the field's) on CUDA and 32 on CPU, for speed."""
    if width is not None:
        return width
    return 128 if torch.device(device).type == "cuda" else CPU_WIDTH


def auto_epochs(device: str | torch.device, epochs: int | None) -> int:
    """Evaluation epochs: the given number, else 1000 (the field's) on CUDA and 300 on CPU."""
    if epochs is not None:
        return epochs
    return FIELD_EPOCHS if torch.device(device).type == "cuda" else CPU_EPOCHS


def image_grid_figure(syn: SyntheticSet, data: DistillData, max_rows: int = 10):
    """The set's images in pixel units, one column per class and up to ``max_rows`` images per class."""
    K = syn.num_classes
    images = data.denormalise(syn.images.detach().cpu().float())
    labels = syn.hard_labels.cpu()
    per_class = [torch.nonzero(labels == c).flatten()[:max_rows] for c in range(K)]
    rows = max(1, max(p.numel() for p in per_class))
    signal = images.dim() == 3
    fig, axes = plt.subplots(rows, K, figsize=(1.1 * K, 1.1 * rows if not signal else 0.8 * rows), squeeze=False)
    lo, hi = float(images.min()), float(images.max())
    for c in range(K):
        for r in range(rows):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r >= per_class[c].numel():
                ax.axis("off")
                continue
            img = images[per_class[c][r]]
            if signal:
                ax.plot(img[0].numpy(), lw=0.8)
                ax.set_ylim(lo, hi)
            elif img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=min(lo, 0.0), vmax=max(hi, 1.0))
            else:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            if r == 0:
                ax.set_title(str(c), fontsize=8)
    fig.suptitle(f"{syn.method} on {syn.dataset}, {syn.ipc} per class", fontsize=9)
    fig.tight_layout()
    return fig


def learning_curve_figure(results: Sequence[EvalResult], loss_curve: Sequence[float] | None = None,
                          loss_name: str = "distillation loss"):
    """Test accuracy against epoch (mean ± SE over the networks) per evaluation; the distillation loss beside it."""
    panels = 2 if loss_curve else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.6), squeeze=False)
    ax = axes[0][0]
    for res in results:
        mean = res.curve.mean(0)
        se = res.curve.std(0, ddof=1) / math.sqrt(res.curve.shape[0]) if res.curve.shape[0] > 1 else 0 * mean
        line = ax.plot(res.curve_epochs, mean, marker="o", ms=3, label=res.label)[0]
        ax.fill_between(res.curve_epochs, mean - se, mean + se, color=line.get_color(), alpha=BAND_ALPHA, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if loss_curve:
        ax = axes[0][1]
        ax.plot(np.arange(1, len(loss_curve) + 1), loss_curve, lw=1)
        ax.set_xlabel("distillation step")
        ax.set_ylabel(loss_name)
        if min(loss_curve) > 0 and max(loss_curve) / min(loss_curve) > 30:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def format_table(rows: Sequence[dict[str, Any]], title: str = "") -> str:
    """A Markdown table of accuracy rows (evaluation, networks, mean ± SE in %)."""
    lines = [f"# {title}", ""] if title else []
    lines += ["| evaluation | networks | test accuracy (%) |", "|---|---|---|"]
    for row in rows:
        acc = f"{100 * row['mean']:.2f} ± {100 * row['se']:.2f}" if row.get("se") is not None else \
            f"{100 * row['mean']:.2f}"
        lines.append(f"| {row['evaluation']} | {row.get('networks', '-')} | {acc} |")
    return "\n".join(lines) + "\n"


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict; values are read as JSON (numbers, true/false, null) or else kept as text.

    Raises:
        ValueError: an item without ``=`` or with an empty key.
    """
    import json

    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option must look like KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def check_inputs(method: str, dataset: str, ipc: int, eval_runs: int = 8, epochs: int | None = None,
                 width: int | None = None, steps: int | None = None, device: str = "cpu",
                 data_root: str | None = None, ceiling_epochs: int = 50) -> None:
    """Refuse bad command-line input before any work starts.

    Raises:
        ValueError: naming the argument and what it accepts.
    """
    if method not in METHODS:
        raise ValueError(f"METHOD {method!r} is unknown; accepted: {', '.join(METHODS)}")
    from .tdd import is_text_dataset

    if dataset not in DATASETS and not is_text_dataset(dataset):
        raise ValueError(f"--dataset {dataset!r} is unknown; accepted: {', '.join(DATASETS)}, text-synthetic or "
                         "text:FOLDER (token-id files)")
    if dataset in FILE_DATASETS and data_root is None:
        raise ValueError(f"--dataset {dataset} is read from files: pass --data-root naming the folder that holds "
                         "them (nothing is downloaded)")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    for name, value in (("--ipc", ipc), ("--eval-runs", eval_runs), ("--epochs", epochs), ("--width", width),
                        ("--steps", steps), ("--ceiling-epochs", ceiling_epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def run_distill(
    method: str,
    dataset: str,
    ipc: int,
    *,
    out: str | Path,
    eval_runs: int = 8,
    steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    width: int | None = None,
    epochs: int | None = None,
    ceiling_epochs: int = 50,
    data_root: str | None = None,
    json_path: str | Path | None = None,
    force: bool = False,
    formats: tuple[str, ...] = ("png",),
    evaluations: Sequence[str] = ("convnet", "convnet+dsa", "convnet-transfer", "mlp"),
    progress: Callable[[str, int, int], None] | None = None,
    options: dict | None = None,
) -> dict:
    """Distil, evaluate and write the result folder ``out`` (see the module docstring); returns the summary.

    Args:
        evaluations: any of ``convnet``, ``convnet+dsa``, ``convnet-transfer``, ``mlp``.
        ceiling_epochs: epochs of the full-training-set ceiling (mini-batches of 256).
        progress: ``progress(stage, done, total)``.
        options: the method's own options (see :func:`teachtheory.distill.distill`).

    Raises:
        ValueError: bad input (named), an unwritable ``out``; FileExistsError: ``out`` is not empty and not ``force``.
    """
    check_inputs(method, dataset, ipc, eval_runs, epochs, width, steps, device, data_root, ceiling_epochs)
    known = ("convnet", "convnet+dsa", "convnet-transfer", "mlp")
    bad = [e for e in evaluations if e not in known]
    if bad:
        raise ValueError(f"evaluations must be among {', '.join(known)}; got {', '.join(bad)}")
    out = check_writable_folder(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"--out {str(out)!r} exists and is not empty; pass --force to replace it")
    width, epochs = auto_width(device, width), auto_epochs(device, epochs)
    data = load_any(dataset, root=data_root, device=device)
    options = dict(options or {})
    if method in ("dm", "dc", "dsa", "mtt") or (method == "herding" and options.get("features", "trained") != "pixels"):
        options.setdefault("width", width)
    say = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    with result_folder(out, force=force) as folder:
        syn = distill(method, data, ipc, steps=steps, seed=seed, device=device,
                      progress=lambda d, t: say(f"distill {method}", d, t), **options)
        syn.save(folder / "synthetic.npz")
        results: list[EvalResult] = []
        for name in evaluations:
            net = {"convnet": "convnet", "convnet+dsa": "convnet", "mlp": "mlp",
                   "convnet-transfer": f"convnet-d{transfer_depth(data.spatial)}"}[name]
            net_width = width if net.startswith("convnet") else None
            results.append(evaluate(syn, data, net=net, width=net_width, runs=eval_runs, epochs=epochs,
                                    augment=name == "convnet+dsa", seed=seed, device=device,
                                    progress=lambda d, t, name=name: say(f"evaluate {name}", d, t)))
        ceiling = evaluate_full(data, width=width, runs=eval_runs, epochs=ceiling_epochs, seed=seed, device=device,
                                progress=lambda d, t: say("ceiling (full set)", d, t))
        rows = [{"evaluation": r.label, "networks": int(r.accuracy.size), "mean": r.mean, "se": r.se} for r in results]
        if method in ("kip", "label-solve"):
            from .kip import krr_accuracy

            prov = syn.provenance
            acc = krr_accuracy(syn, data, kernel=prov.get("kernel", "ntk"), depth=prov.get("depth", 2),
                               reg=prov.get("reg", 1e-6))
            rows.append({"evaluation": f"{method} ipc={ipc}: KRR ({prov.get('kernel', 'ntk')}, depth "
                                       f"{prov.get('depth', 2)})", "networks": "-", "mean": acc, "se": None})
        rows.append({"evaluation": ceiling.label + f": {ceiling.net['kind']}-w{width}", "networks": eval_runs,
                     "mean": ceiling.mean, "se": ceiling.se})
        title = (f"{method} on {dataset}, {ipc} images per class (ConvNet width {width}"
                 + (", CPU default; the field's is 128" if width == CPU_WIDTH and width != 128 else "")
                 + f"; {epochs} epochs; mean ± SE over {eval_runs} networks)")
        (folder / "accuracy.md").write_text(format_table(rows, title))
        figures = save_figure(image_grid_figure(syn, data), folder / "images", formats)
        figures += save_figure(learning_curve_figure(results, syn.provenance.get("loss_curve"),
                                                     syn.provenance.get("loss_name", "distillation loss")),
                               folder / "learning_curve", formats)
        config = {"command": "distill", "method": method, "dataset": dataset, "ipc": ipc, "eval_runs": eval_runs,
                  "steps": syn.provenance.get("steps"), "seed": seed, "device": device, "width": width,
                  "epochs": epochs, "ceiling_epochs": ceiling_epochs, "evaluations": list(evaluations),
                  "options": {k: v for k, v in options.items()}, "dataset_meta": data.meta}
        write_json(folder / "config.json", config)
        summary = {"method": method, "dataset": dataset, "ipc": ipc, "table": rows,
                   "evaluations": [r.to_json() for r in results], "ceiling": ceiling.to_json(),
                   "learned_lr": syn.lr, "distill": {"seconds": syn.provenance.get("seconds")}}
        from ..simulation import write_metrics, write_run_record

        write_metrics(folder, summary)
        write_run_record(folder, device=device, seconds=time.perf_counter() - started)
    if json_path is not None:
        from ..simulation import split_timings

        write_json(json_path, split_timings(summary)[0])
    return {"out": str(out), "rows": rows, "title": title, "figures": [str(out / f.name) for f in figures],
            "summary": summary}
