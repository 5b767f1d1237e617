"""The bilevel distillers at small scale, one panel per paper's main result, on scikit-learn digits (and a
synthetic text task for TDD), mean ± SE over the evaluation networks:

* DD (Wang et al., 2018, Table 1 / Fig. 3): accuracy of networks trained by the set's own schedule against
  the number of unrolled GD steps and epochs, from random and from fixed initialisation;
* DD poisoning (Sec. 3.5 / Table 3): accuracy on the attacked class and on the others, before and after one
  GD step on the poisoned images, on trained classifiers never seen while distilling;
* SLDD (Sucholutsky & Schonlau, 2021, Table 1): accuracy against the number of distilled images M, soft
  labels against DD's hard labels, with fewer images than classes; the distillation ratio r_M and the A%
  distillation size d_A against the full training set;
* TDD (same paper, Table 2): the same on the synthetic text task;
* LD (Bohdal et al., 2020, Table 1): learned labels of random real images, ridge-regression pseudo-gradient and
  unrolled, against the same images with hard labels, at 1 and 10 images per class.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from teachtheory.distill import distill, evaluate, evaluate_full, load_dataset
from teachtheory.distill.dd import dd_poison, replay
from teachtheory.distill.sldd import distillation_ratio, distillation_size
from teachtheory.distill.tdd import resolve_dataset
from teachtheory.io import write_json
from teachtheory.plotting import plt, save_figure
from teachtheory.simulation import Simulation, register, write_metrics

__all__ = ["run_distill_bilevel"]

SETTINGS = {"small": {"sizes": (5, 10, 20), "ld_ipcs": (1, 10), "epochs": 200, "unrolls": ((1, 1), (2, 1), (2, 3))},
            "full": {"sizes": (2, 5, 10, 20, 50), "ld_ipcs": (1, 10), "epochs": 300,
                     "unrolls": ((1, 1), (2, 1), (5, 1), (2, 3), (5, 3))}}


def _row(res) -> dict:
    return {"mean": res.mean, "se": res.se, "accuracy": res.accuracy.tolist()}


def run_distill_bilevel(out, scale: str = "small", runs: int = 16, steps: int = 200, seed: int = 0,
                        device: str = "cpu", formats=("png",), progress: Callable[[str, int, int], None] | None = None,
                        width: int = 32, ceiling_epochs: int = 50, pretrain_epochs: int = 20) -> dict:
    """Run every panel (see the module docstring) and write config.json, metrics.json, bilevel.md and the figure.

    ``ceiling_epochs``: epochs of the full-training-set ceilings; ``pretrain_epochs``: of the poisoned classifiers.
    """
    out = Path(out)
    settings = SETTINGS["full" if scale == "full" else "small"]
    say = progress or (lambda stage, done, total: None)
    config = {"simulation": "distill-bilevel", "scale": scale, "runs": runs, "steps": steps, "seed": seed,
              "device": device, "width": width, "ceiling_epochs": ceiling_epochs,
              "pretrain_epochs": pretrain_epochs, **settings}
    write_json(out / "config.json", config)
    started = time.perf_counter()
    data = load_dataset("digits", device=device)
    common = {"steps": steps, "seed": seed, "width": width}
    metrics: dict = {"simulation": "distill-bilevel"}
    # DD: unroll length x initialisation, evaluated by the set's own schedule (ipc = the most GD steps)
    ipc = max(g for g, _ in settings["unrolls"])
    dd_rows = {}
    for k, (gd_steps, epochs) in enumerate(settings["unrolls"]):
        for init in ("random", "fixed"):
            say(f"dd {gd_steps} steps x {epochs} epochs, {init}", k, len(settings["unrolls"]))
            syn = distill("dd", data, ipc, gd_steps=gd_steps, epochs=epochs, init=init, image_init="noise",
                          device=device, **common)
            dd_rows[f"{gd_steps}x{epochs} {init}"] = _row(replay(syn, data, runs=runs, seed=seed)) | {
                "lrs": syn.provenance["lrs"]}
    metrics["dd"] = {"ipc": ipc, "rows": dd_rows}
    # poisoning
    say("dd poisoning", 0, 1)
    _, report = dd_poison(data, attacked=0, target=8, steps=steps, seed=seed, width=width, held_out=runs,
                          pretrain_epochs=pretrain_epochs)
    metrics["poison"] = report
    # SLDD against DD over M, and r_M / d_A against the full set
    ceiling = evaluate_full(data, width=width, runs=runs, epochs=ceiling_epochs, seed=seed, device=device)
    sldd_rows = {}
    for M in settings["sizes"]:
        say(f"sldd M={M}", M, max(settings["sizes"]))
        soft = distill("sldd", data, max(1, M // data.num_classes), size=M, image_init="real", device=device,
                       **common)
        row = {"soft": _row(replay(soft, data, runs=runs, seed=seed))}
        if M % data.num_classes == 0:
            hard = distill("dd", data, M // data.num_classes, image_init="real", device=device, **common)
            row["hard"] = _row(replay(hard, data, runs=runs, seed=seed))
        row["r_M"] = distillation_ratio(row["soft"]["mean"], ceiling.mean)
        sldd_rows[M] = row
    sizes = list(sldd_rows)
    accs = [sldd_rows[m]["soft"]["mean"] for m in sizes]
    metrics["sldd"] = {"rows": sldd_rows, "ceiling": _row(ceiling),
                       "d_A": {a: distillation_size(sizes, accs, ceiling.mean, a) for a in (50, 70, 90)}}
    # TDD on the synthetic text task
    text = resolve_dataset("text-synthetic")
    text_full = evaluate_full(text, width=width, runs=runs, epochs=ceiling_epochs, seed=seed, device=device)
    tdd_rows = {}
    for M in (2, 4, 8):
        say(f"tdd M={M}", M, 8)
        syn = distill("tdd", text, max(1, M // text.num_classes), size=M, device=device, **common)
        tdd_rows[M] = _row(replay(syn, text, runs=runs, seed=seed)) | {"tokens": syn.provenance["tokens"][:2]}
    metrics["tdd"] = {"rows": tdd_rows, "ceiling": _row(text_full)}
    # LD: rr and unroll against hard labels on the same base images
    ld_rows = {}
    for ipc_ld in settings["ld_ipcs"]:
        say(f"ld ipc={ipc_ld}", ipc_ld, max(settings["ld_ipcs"]))
        row = {"hard": _row(evaluate(distill("random", data, ipc_ld, seed=seed), data, width=width, runs=runs,
                                     epochs=settings["epochs"], seed=seed, device=device))}
        for mode in ("rr", "unroll"):
            syn = distill("ld", data, ipc_ld, mode=mode, device=device, **common)
            row[mode] = _row(evaluate(syn, data, width=width, runs=runs, epochs=settings["epochs"], seed=seed,
                                      device=device))
        ld_rows[ipc_ld] = row
    metrics["ld"] = {"rows": ld_rows}
    metrics["timing"] = {"seconds": time.perf_counter() - started}
    lines = _table(metrics)
    (out / "bilevel.md").write_text("\n".join(lines) + "\n")
    figures = save_figure(_figure(metrics), out / "bilevel", formats)
    write_metrics(out, metrics)
    return {"out": str(out), "figures": [str(f) for f in figures], "table": lines}


def _cell(row: dict) -> str:
    return f"{100 * row['mean']:.1f} ± {100 * row['se']:.1f}"


def _table(m: dict) -> list[str]:
    lines = ["# bilevel distillation at small scale (digits; test accuracy %, mean ± SE over networks)", "",
             f"DD (ipc {m['dd']['ipc']}, the set's own schedule): "
             + "; ".join(f"{k}: {_cell(v)}" for k, v in m["dd"]["rows"].items()), ""]
    p = m["poison"]
    lines += [f"DD poisoning (class {p['attacked']} -> {p['target']}): attacked class "
              f"{_cell(p['before_attacked_class'])} -> {_cell(p['after_attacked_class'])}, other classes "
              f"{_cell(p['before_other_classes'])} -> {_cell(p['after_other_classes'])}", ""]
    lines += ["| M images | SLDD (soft) | DD (hard) | r_M (%) |", "|---|---|---|---|"]
    for M, row in m["sldd"]["rows"].items():
        lines.append(f"| {M} | {_cell(row['soft'])} | {_cell(row['hard']) if 'hard' in row else '-'} | "
                     f"{row['r_M']:.1f} |")
    lines += ["", f"full training set {_cell(m['sldd']['ceiling'])}; d_A: {m['sldd']['d_A']}", "",
              "TDD (synthetic text, soft labels): "
              + "; ".join(f"M={k}: {_cell(v)}" for k, v in m["tdd"]["rows"].items())
              + f"; full set {_cell(m['tdd']['ceiling'])}", "", "| ipc | hard labels | LD (ridge) | LD (unrolled) |",
              "|---|---|---|---|"]
    for ipc, row in m["ld"]["rows"].items():
        lines.append(f"| {ipc} | {_cell(row['hard'])} | {_cell(row['rr'])} | {_cell(row['unroll'])} |")
    return lines


def _bars(ax, labels, rows, title):
    ax.bar(range(len(rows)), [100 * r["mean"] for r in rows], yerr=[100 * r["se"] for r in rows], capsize=2,
           color="#0072B2", alpha=0.8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, rotation=45, fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")


def _figure(m: dict):
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    _bars(axes[0], list(m["dd"]["rows"]), list(m["dd"]["rows"].values()), "DD: steps x epochs, init")
    p = m["poison"]
    _bars(axes[1], ["attacked before", "attacked after", "others before", "others after"],
          [p["before_attacked_class"], p["after_attacked_class"], p["before_other_classes"],
           p["after_other_classes"]], f"DD poisoning ({p['attacked']} -> {p['target']})")
    sizes = list(m["sldd"]["rows"])
    axes[2].errorbar(sizes, [100 * m["sldd"]["rows"][s]["soft"]["mean"] for s in sizes],
                     yerr=[100 * m["sldd"]["rows"][s]["soft"]["se"] for s in sizes], marker="o", label="SLDD (soft)")
    hard = [s for s in sizes if "hard" in m["sldd"]["rows"][s]]
    axes[2].errorbar(hard, [100 * m["sldd"]["rows"][s]["hard"]["mean"] for s in hard],
                     yerr=[100 * m["sldd"]["rows"][s]["hard"]["se"] for s in hard], marker="s", label="DD (hard)")
    axes[2].set_xscale("log")
    axes[2].set_xlabel("distilled images M")
    axes[2].set_title("SLDD vs DD", fontsize=9)
    axes[2].legend(fontsize=7)
    labels, rows = [], []
    for ipc, row in m["ld"]["rows"].items():
        for key in ("hard", "rr", "unroll"):
            labels.append(f"ipc {ipc} {key}")
            rows.append(row[key])
    _bars(axes[3], labels, rows, "LD: learned vs hard labels")
    axes[0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    return fig


def _replot(folder: Path, formats) -> list[Path]:
    import json

    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    return save_figure(_figure(metrics), Path(folder) / "bilevel", formats)


register(Simulation(
    "distill-bilevel", "bilevel dataset distillation: DD (+ poisoning), SLDD, TDD and LD at small scale",
    "Wang et al. 2018; Sucholutsky & Schonlau 2021; Bohdal et al. 2020 (main tables, small scale)",
    {"small": {"runs": 16, "steps": 200}, "full": {"runs": 32, "steps": 1000}},
    runner=run_distill_bilevel, replot=_replot,
    protocol=("the toolkit's own at small scale: 8x8 digits and a synthetic text task, ConvNet width 32 (the "
              'papers: MNIST, CIFAR-10, text sets)'),
))
