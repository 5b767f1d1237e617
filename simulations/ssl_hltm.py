"""Simulation ``ssl-hltm``: SimCLR and a BYOL ablation on hierarchical latent tree model data (Tian's talk).

SimCLR (InfoNCE with temperature, L2-normalised output) trains a deep ReLU encoder on positive pairs
that share the HLTM root and resample everything below it. Over training it tracks how well hidden
units correlate with the latent variables of every tree level (best |corr| over units, averaged over
the level's latents) and tr V_{z0}[Kbar_l] per layer (the covariance operator of Tian et al. 2020,
estimated without bias from two halves of a class-balanced sample). The BYOL variant switches the
predictor, the EMA target and BatchNorm, as in the seed's STL-10 table; the ablation table reports
what is measured here: root correlation of the top hidden layer (start -> end), of the output, a
linear-probe accuracy of z0 against the Bayes-optimal accuracy (exact posterior by belief
propagation), the spread of the normalised output (0: collapsed), and the final loss.

References:
    Tian, Yu, Chen, Ganguli, "Understanding Self-Supervised Learning with Dual Deep Networks", 2020,
    Sec. 5-6 (HLTM, BYOL); Tian's talk, slide "Hierarchical Latent Tree Models", "BYOL Setting".
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from teachtheory.io import write_json
from teachtheory.plotting import plt, save_figure, se_band
from teachtheory.random import RunStreams, as_seeds
from teachtheory.simulation import ONE_RUN_NOTE, Simulation, register, write_metrics
from teachtheory.ssl import HLTM
from teachtheory.ssl.training import (
    BYOLConfig,
    SimCLRConfig,
    linear_probe_accuracy,
    train_byol,
    train_simclr,
)
from teachtheory.threads import intra_op_threads

from .common import prepare_output

__all__ = ["SETTINGS", "byol_variants", "run_ssl_hltm"]

SETTINGS = {
    "small": {"depth": 5, "delta": 0.8, "hidden": (64, 64), "out": 32, "batch": 128, "lr": 0.05, "eval_every": 50,
              "eval_samples": 2048},
    "full": {"depth": 5, "delta": 0.8, "hidden": (128, 128), "out": 64, "batch": 256, "lr": 0.05, "eval_every": 100,
             "eval_samples": 8192},
}


def byol_variants() -> list[tuple[str, dict]]:
    """The seed's ablation grid: predictor x EMA x BN (labels as in the table: '-', 'EMA', 'P, BN', ...)."""
    out = []
    for pred, ema, bn in itertools.product((False, True), (False, True), (False, True)):
        parts = [name for name, on in (("P", pred), ("EMA", ema), ("BN", bn)) if on]
        out.append(("BYOL " + (", ".join(parts) if parts else "-"), {"predictor": pred, "ema": ema, "bn": bn}))
    return out


def _mean_se(x: torch.Tensor) -> tuple[float, float | None]:
    """Mean and standard error over runs (the first axis); SE None for one run."""
    x = x.to(torch.float64)
    n = x.shape[0]
    return float(x.mean()), (float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else None)


def _fmt(mean: float, se: float | None, digits: int = 3) -> str:
    """mean ± SE for the table; "-" when there is no SE (one run)."""
    return f"{mean:.{digits}f} ± " + ("-" if se is None else f"{se:.{digits}f}")


def _se_curve(x: torch.Tensor, runs: int) -> dict:
    """{"se": per-point SE over runs} or, for one run, {"se": None, "se_note": why}."""
    if runs < 2:
        return {"se": None, "se_note": ONE_RUN_NOTE}
    return {"se": x.std(0) / math.sqrt(runs)}


def _pairs(**pairs: tuple[float, float | None]) -> dict:
    """(mean, SE) pairs for metrics.json as [mean, SE] lists; a None SE (one run) gets a sibling ``<key>_note``."""
    out: dict = {}
    for key, (mean, se) in pairs.items():
        out[key] = [mean, se]
        if se is None:
            out[f"{key}_note"] = "[mean, SE]: " + ONE_RUN_NOTE
    return out


def _bayes_and_input_probe(model: HLTM, runs: int, seed: int, n: int) -> dict:
    """Bayes-optimal accuracy of z0 (exact posterior) and a linear probe on the raw leaves."""
    streams = RunStreams(as_seeds(seed + 7_919_000, runs))
    quarter = n // 4
    root = torch.cat([-torch.ones(runs, quarter), torch.ones(runs, quarter)] * 2, 1).to(torch.float64)
    levels, x = model.sample_tree(streams, 0, n, 1, torch.float64, tag="eval", root=root)
    x = x[:, :, 0]
    z = levels[0][:, :, 0, 0]
    post = model.root_posterior(x)
    bayes = ((post > 0.5).to(torch.float64) * 2 - 1 == z).to(torch.float64).mean(1)
    half = n // 2
    probe = linear_probe_accuracy(x[:, :half], z[:, :half], x[:, half:], z[:, half:])
    return {"bayes": bayes, "input_probe": probe}


def run_ssl_hltm(out: Path, scale: str, runs: int, steps: int, seed: int, device: str, formats=("png",),
                 progress: Callable[[str, int, int], None] | None = None) -> dict:
    """SimCLR and the BYOL ablation on HLTM data; writes config.json, metrics.json and figures into ``out``."""
    out = prepare_output(out, runs, steps, device)
    s = SETTINGS[scale]
    model = HLTM(s["depth"], s["delta"])
    widths = (model.input_dim, *s["hidden"], s["out"])
    dtype = torch.float32
    simclr_cfg = SimCLRConfig(widths=widths, batch=s["batch"], lr=s["lr"], eval_every=s["eval_every"],
                              eval_samples=s["eval_samples"])
    variants = byol_variants()
    labels = ["SimCLR"] + [label for label, _ in variants]
    config = {
        "simulation": "ssl-hltm", "scale": scale, "runs": runs, "steps": steps, "seed": seed, "device": device,
        "model": {"kind": "HLTM", "depth": s["depth"], "delta": s["delta"], "leaves": model.input_dim,
                  "positive_pair": "same root, everything below resampled"},
        "simclr": simclr_cfg.__dict__, "byol_variants": dict(variants),
        "byol_common": {k: v for k, v in BYOLConfig(widths=widths).__dict__.items()
                        if k not in ("predictor", "ema", "bn", "extra")},
        "torch": torch.__version__, "dtype": str(dtype),
    }
    config["byol_common"].update({"batch": s["batch"], "lr": s["lr"], "eval_every": s["eval_every"],
                                  "eval_samples": s["eval_samples"]})
    write_json(out / "config.json", config)
    total = steps * len(labels)
    started = time.perf_counter()
    results: dict[str, dict] = {}
    # small [R, batch, width] tensors: one intra-op thread on CPU (OpenMP waits dominate otherwise)
    with intra_op_threads(1 if torch.device(device).type == "cpu" else None):
        for i, label in enumerate(labels):
            def report(done: int, total_steps: int, label=label, offset=i * steps) -> None:
                if progress is not None:
                    progress(label, offset + done, total)

            if label == "SimCLR":
                results[label] = train_simclr(model, runs, steps, seed, simclr_cfg, dtype=dtype, device=device,
                                              progress=report)
            else:
                cfg = BYOLConfig(widths=widths, batch=s["batch"], lr=s["lr"], eval_every=s["eval_every"],
                                 eval_samples=s["eval_samples"], **dict(variants)[label])
                results[label] = train_byol(model, runs, steps, seed, cfg, dtype=dtype, device=device,
                                            progress=report)
        reference = _bayes_and_input_probe(model, runs, seed, s["eval_samples"])

    top = len(s["hidden"]) - 1  # index of the top hidden layer in the tracked layers (hidden..., output)
    table: dict[str, dict] = {}
    metrics: dict = {"simulation": "ssl-hltm", "runs": runs, "steps": steps, "layers": [f"hidden {k + 1}" for k in
                     range(len(s["hidden"]))] + ["output"], "tree_levels": list(range(s["depth"] + 1)), "methods": {}}
    for label, r in results.items():
        corr = r["corr"]  # [R, E, layers, levels]
        root_top_start, root_top_end = _mean_se(corr[:, 0, top, 0]), _mean_se(corr[:, -1, top, 0])
        row = {
            "root corr top hidden (start)": _fmt(*root_top_start),
            "root corr top hidden (end)": _fmt(*root_top_end),
            "root corr output (end)": _fmt(*_mean_se(corr[:, -1, -1, 0])),
            "probe acc z0 (end)": _fmt(*_mean_se(r["probe"][:, -1])),
            "spread (end)": _fmt(*_mean_se(r["spread"][:, -1])) if "spread" in r else "-",
            "loss (last 10%)": _fmt(*_mean_se(r["loss"][:, -max(1, steps // 10):].mean(1))),
        }
        table[label] = row
        entry = {
            "steps": r["steps"], "corr_mean": corr.mean(0), "probe_mean": r["probe"].mean(0),
            "loss_mean": r["loss"].mean(0), "seconds": r["seconds"], "config": r["config"],
            "final": _pairs(root_corr_top_hidden=root_top_end, root_corr_top_hidden_start=root_top_start),
        }
        for key in ("corr", "probe", "cov_trace", "spread"):
            if key in r:
                entry[f"{key}_mean"] = r[key].mean(0)
                entry.update({f"{key}_{k}": v for k, v in _se_curve(r[key], runs).items()})
        metrics["methods"][label] = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in entry.items()}
    bayes, input_probe = _mean_se(reference["bayes"]), _mean_se(reference["input_probe"])
    table["reference: Bayes-optimal / probe on leaves"] = {
        "probe acc z0 (end)": f"{_fmt(*bayes)} / {_fmt(*input_probe)}"}
    metrics["reference"] = _pairs(bayes_accuracy=bayes, input_linear_probe=input_probe)
    metrics["seconds"] = time.perf_counter() - started
    metrics["table"] = table
    write_metrics(out, metrics)
    figures = [str(p) for p in _simclr_figure(out / "simclr_training", results["SimCLR"], metrics, formats)]
    figures += [str(p) for p in _ablation_figure(out / "byol_ablation", results, top, formats)]
    return {"out": str(out), "figures": figures, "table": table, "metrics": metrics}


def _simclr_figure(path: Path, r: dict, metrics: dict, formats) -> list[Path]:
    steps = r["steps"].numpy()
    corr, cov = r["corr"].numpy(), r["cov_trace"].numpy()
    R = corr.shape[0]
    layers = metrics["layers"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for k, name in enumerate(layers):
        se_band(axes[0], steps, corr[:, :, k, 0].mean(0), corr[:, :, k, 0].std(0) / math.sqrt(R), name, alpha=0.25)
        se_band(axes[1], steps, cov[:, :, k].mean(0), cov[:, :, k].std(0) / math.sqrt(R), name, alpha=0.25)
    axes[0].set_ylabel("best |corr(unit, z0)|")
    axes[0].set_title("hidden units vs the root latent", fontsize=10)
    axes[1].set_ylabel(r"tr $V_{z_0}[\bar K_l]$ (split-half, unbiased)")
    axes[1].set_yscale("symlog", linthresh=1e-3)
    axes[1].set_title("covariance operator per layer", fontsize=10)
    levels = np.arange(corr.shape[3])
    for k, name in enumerate(layers):
        line = axes[2].plot(levels, corr[:, -1, k].mean(0), "-o", ms=3, label=f"{name}, end")[0]
        axes[2].plot(levels, corr[:, 0, k].mean(0), "--", color=line.get_color(), lw=1, label=f"{name}, start")
    axes[2].set_xlabel("tree level (0 = root z0)")
    axes[2].set_ylabel("best |corr|, mean over the level's latents")
    axes[2].set_title("all latent levels: start (dashed) vs end", fontsize=10)
    for ax in axes[:2]:
        ax.set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"ssl-hltm: SimCLR on HLTM (R={R}, mean ± SE)", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, formats)


def _ablation_figure(path: Path, results: dict, top: int, formats) -> list[Path]:
    labels = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.2))
    for label in labels:
        r = results[label]
        R = r["corr"].shape[0]
        c = r["corr"][:, :, top, 0].numpy()
        se_band(axes[0], r["steps"].numpy(), c.mean(0), c.std(0) / math.sqrt(R), label, alpha=0.25,
                ls="-" if ("P," in label or label.endswith(" P") or label == "SimCLR") else "--")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("best |corr(unit, z0)|, top hidden layer")
    axes[0].set_title("root correlation during training", fontsize=10)
    axes[0].legend(fontsize=7, ncol=2)
    axes[0].grid(alpha=0.3)
    x = np.arange(len(labels))
    start = [float(results[k]["corr"][:, 0, top, 0].mean()) for k in labels]
    end = [float(results[k]["corr"][:, -1, top, 0].mean()) for k in labels]
    end_se = [_mean_se(results[k]["corr"][:, -1, top, 0])[1] for k in labels]
    end_se = [np.nan if v is None else v for v in end_se]  # one run: no error bar
    spread = [float(results[k]["spread"][:, -1].mean()) if "spread" in results[k] else np.nan for k in labels]
    axes[1].bar(x - 0.2, start, 0.4, color="lightgrey", label="root corr, start")
    axes[1].bar(x + 0.2, end, 0.4, yerr=end_se, capsize=2, label="root corr, end")
    axes[1].plot(x, spread, "kD", ms=4, label="output spread, end (0 = collapsed)")
    axes[1].set_xticks(x)
    axes[1].set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    axes[1].set_title("ablation (top hidden layer)", fontsize=10)
    axes[1].legend(fontsize=7)
    axes[1].grid(alpha=0.3, axis="y")
    fig.suptitle("ssl-hltm: BYOL switches (P = predictor, EMA target, BN) vs SimCLR", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, formats)


register(Simulation(
    name="ssl-hltm",
    description="SimCLR on HLTM data (latent correlations, V[Kbar] per layer) and a BYOL predictor/EMA/BN ablation",
    reference="Tian et al. 2020 Sec. 5-6",
    defaults={"small": {"runs": 4, "steps": 500}, "full": {"runs": 16, "steps": 3000}},
    runner=run_ssl_hltm,
    protocol=("the toolkit's own: hierarchical latent tree models of small depth, as defined in Tian et al. 2020 "
              'Sec. 5'),
))
