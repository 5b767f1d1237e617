"""The ``teachtheory`` command line: list, simulate, check, docs, bench.

Errors in what the user typed, and any OSError, print one line (``teachtheory: error: ...``) and
exit with 2; every output path is checked for writability before any work starts. Runs that
diverged print ``teachtheory: warning: ...`` lines (with the step) on stderr; the command succeeds.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .io import check_writable_folder
from .validation import (
    DivergenceWarning,
    NonConvergenceError,
    NonConvergenceWarning,
    check_device,
    check_positive_int,
    check_writable_file,
)

__all__ = ["main", "progress_bar"]

USER_ERRORS = (ValueError, TypeError, KeyError, OSError, FloatingPointError, NonConvergenceError, MemoryError,
               OverflowError)


class UsageError(Exception):
    """A command line argparse refused."""


class _Parser(argparse.ArgumentParser):
    """argparse with errors raised as one-line UsageErrors instead of usage text and exit."""

    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(message)


def _warn(message: str) -> None:
    """One warning line on stderr (plain write, never wrapped)."""
    sys.stderr.write(f"teachtheory: warning: {' '.join(message.split())}\n")
    sys.stderr.flush()


def progress_bar(console: Console) -> Progress:
    """The toolkit's rich progress bar on ``console`` (description, bar, done/total, elapsed, remaining): the
    command line's, and :func:`teachtheory.distill.api.distill`'s with ``progress=True``."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console)


def _cmd_list(args, console: Console) -> int:
    from .simulation import SIMULATIONS, load_simulations

    load_simulations()
    table = Table(title="simulations (teachtheory simulate NAME)")
    table.add_column("name", no_wrap=True)
    for col in ("reproduces", "what", "small (runs x steps)", "full"):
        table.add_column(col)
    for sim in sorted(SIMULATIONS.values(), key=lambda s: s.name):
        small, full = sim.defaults["small"], sim.defaults["full"]
        table.add_row(sim.name, sim.reproduces, sim.description, f"{small['runs']} x {small['steps']}",
                      f"{full['runs']} x {full['steps']}")
    console.print(table)
    return 0


def _cmd_simulate(args, console: Console) -> int:
    from .simulation import check_run_arguments, run_simulation

    formats = ("png", "svg") if args.svg else ("png",)
    preset = getattr(args, "preset", None)
    sim, *_ = check_run_arguments(args.name, args.scale, args.runs, args.steps, args.seed, args.device, formats,
                                  preset=preset)
    out = Path(args.out) if args.out else Path("runs") / (sim.name + (f"-{preset}" if preset else ""))
    check_writable_folder(out, "--out")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise FileExistsError(f"--out {str(out)!r} exists and is not empty; pass --force to replace it")
    with progress_bar(console) as bar:
        task = bar.add_task(sim.name, total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"{sim.name}: {label}")

        result = run_simulation(sim.name, out, scale=args.scale, runs=args.runs, steps=args.steps, seed=args.seed,
                                device=args.device, formats=formats, progress=progress, force=args.force,
                                preset=preset)
    if "trajectories" in result:
        _print_teaching_summary(console, f"{sim.name} ({result.get('reference', sim.reference)})", result["summary"],
                                result.get("paper"))
    elif isinstance(result.get("table"), dict) and result["table"]:
        _print_generic_table(console, f"{sim.name} ({sim.reference})", result["table"])
    figures = ", ".join(Path(f).name for f in result.get("figures", []))
    console.print(f"wrote {out}: config.json, metrics.json, run.json" + (f", {figures}" if figures else ""))
    for message in result.get("warnings", []):
        _warn(message)
    return 0


def _print_teaching_summary(console: Console, title: str, summary: dict, paper: dict | None = None) -> None:
    """The final values per teacher; with ``paper``, the published values beside and whether the paper's
    ordering appears in this run."""
    table = Table(title=f"{title}: final values, mean ± SE over runs (SE -: one run)")
    first = next(iter(summary.values()))
    metrics = sorted(k for k, v in first.items() if isinstance(v, dict) and "final" in v)
    published = (paper or {}).get("published", {})
    table.add_column("teacher")
    for metric in metrics:
        table.add_column(metric, justify="right")
    if published:
        table.add_column(f"{paper['metric']}, published", justify="right")
    table.add_column("seconds", justify="right")
    for label, entry in summary.items():
        cells = [f"{entry[m]['final']['mean']:.4g} ± {_se_text(entry[m]['final']['se'])}" for m in metrics]
        if published:
            value = published.get(label)
            cells.append(f"{value['mean']:.4g} ± {_se_text(value['se'])}" if value else "-")
        table.add_row(label, *cells, f"{entry['seconds']:.1f}")
    console.print(table)
    if paper:
        if published:
            console.print(f"published: {paper['published_source']}", markup=False, highlight=False)
        verdict = "appears" if paper["ordering_shown"] else "does NOT appear"
        console.print(f"the paper's ordering, {paper['ordering']}: {verdict} in this run's means", markup=False,
                      highlight=False)


def _se_text(se) -> str:
    """A standard error for a table: "-" when there is none (one run)."""
    return "-" if se is None else f"{se:.2g}"


def _cell(value) -> str:
    """A table cell: floats to 4 significant digits, None as "-"."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_generic_table(console: Console, title: str, rows: dict) -> None:
    """rows: {row label: {column: value}}."""
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    table = Table(title=title)
    table.add_column("")
    for col in columns:
        table.add_column(str(col), justify="right")
    for label, row in rows.items():
        table.add_row(str(label), *(_cell(row[c]) if c in row else "" for c in columns))
    console.print(table)


def _run_checks(args, console: Console, plots_dir):
    import time

    from .claims import CheckContext, run_claims, select_claims
    from .report import saved_seconds

    claims = select_claims(args.ids)
    ctx = CheckContext(scale=args.scale, seed=args.seed, plots_dir=plots_dir)
    sensitivity = not getattr(args, "no_sensitivity", False)
    with progress_bar(console) as bar:
        task = bar.add_task("check", total=len(claims))

        start = time.perf_counter()

        def progress(claim, done):
            what = f" ({len(claim.mutations)} mutations)" if sensitivity and claim.mutations else ""
            bar.update(task, completed=done, description=f"check {claim.id}{what}")
            if not console.is_terminal:  # a log (CI, nohup) gets a line per claim where a terminal gets the bar
                state = "checking" if args.jobs == 1 else "checked"
                console.print(f"[{done + (args.jobs == 1)}/{len(claims)}] {state} {claim.id}{what}, "
                              f"{time.perf_counter() - start:.0f} s elapsed", markup=False, highlight=False)

        # the saved verdicts' times (docs: of its source) let parallel workers start the longest checks first
        saved = Path(getattr(args, "source", "docs")) / "claims" / "verdicts.json"
        verdicts = run_claims(claims, ctx, progress, sensitivity=sensitivity, jobs=args.jobs,
                              expected_seconds=saved_seconds(saved) if args.jobs > 1 else None)
        bar.update(task, completed=len(claims), description="check")
    return claims, verdicts


def _print_verdicts(console: Console, claims, verdicts, scale: str) -> None:
    from .report import verdict_rows

    colours = {"holds": "green", "fails": "red", "printed-form-wrong": "yellow", "holds-in-regime": "cyan",
               "error": "magenta"}
    table = Table(title=f"claims ({scale} scale)")
    for col in ("claim", "source", "statistic", "tolerance", "verdict", "sensitivity", "s"):
        table.add_column(col, overflow="fold",
                         justify="right" if col in ("statistic", "tolerance", "sensitivity", "s") else "left")
    rows = verdict_rows(claims, verdicts)
    for row, v in zip(rows, verdicts):
        table.add_row(row[0], row[1], row[3], row[4], f"[{colours.get(v.verdict, 'white')}]{row[5]}[/]",
                      escape(row[8]), row[6])
    console.print(table)
    for row in rows:  # what was measured, one line per claim, below the table
        line = f"[bold]{escape(row[0])}[/]: {escape(row[7])}"
        if row[9]:
            line += f"; {escape(row[9])}"
        console.print(line, highlight=False)


def _cmd_check(args, console: Console) -> int:
    from .claims import CheckContext
    from .report import write_verdicts_json

    CheckContext(scale=args.scale, seed=args.seed)  # refuse a bad seed before any work
    check_positive_int(args.jobs, "--jobs")
    if args.json:
        check_writable_file(args.json, "--json")
    if args.plots:
        check_writable_folder(args.plots, "--plots")
    claims, verdicts = _run_checks(args, console, args.plots)
    _print_verdicts(console, claims, verdicts, args.scale)
    if args.json:
        write_verdicts_json(verdicts, args.json, args.scale)
        console.print(f"wrote {args.json}")
    from .claims import VERDICTS

    counts = {k: sum(v.verdict == k for v in verdicts) for k in VERDICTS}
    console.print(", ".join(f"{n} {k}" for k, n in counts.items() if n))
    if counts["error"]:
        return 1
    if args.strict:
        # strict: every claim holds, and every claim catches an error at its declared target (or says why not)
        weak = [v.claim_id for v in verdicts if v.sensitivity is not None and not v.sensitivity.meets_target]
        if weak:
            console.print(f"sensitivity worse than target: {', '.join(weak)}", highlight=False, markup=False)
        if weak or any(v.verdict != "holds" for v in verdicts):
            return 1
    return 0


def _cmd_docs(args, console: Console) -> int:
    from .claims import CheckContext
    from .docsite import build_site

    CheckContext(scale=args.scale, seed=args.seed)  # refuse a bad seed before any work
    check_positive_int(args.jobs, "--jobs")
    run_checks = None
    errors = []
    if not args.no_checks:
        def run_checks(figures: Path):
            claims, verdicts = _run_checks(args, console, figures)
            _print_verdicts(console, claims, verdicts, args.scale)
            errors.extend(v for v in verdicts if v.verdict == "error")
            return claims, verdicts, args.scale

    index = build_site(args.out, source=args.source, gallery=not args.no_gallery, run_checks=run_checks)
    console.print(f"built {index}", markup=False, highlight=False)
    return 1 if errors else 0


def _cmd_bench(args, console: Console) -> int:
    import time

    from . import bench

    def int_list(text: str, name: str, allow_empty: bool = False) -> tuple[int, ...]:
        try:
            values = tuple(int(r) for r in text.split(",") if r.strip()) if text.strip() else ()
        except ValueError:
            raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from None
        if (not values and not allow_empty) or any(v < 1 for v in values):
            raise ValueError(f"{name} must be positive integers, got {text!r}")
        return values

    runs = int_list(args.runs, "--runs")
    committee_runs = int_list(args.committee_runs, "--committee-runs", allow_empty=True)
    teachers = tuple(t.strip() for t in args.teachers.split(",") if t.strip())
    unknown = [t for t in teachers if t not in bench.LOOPS]
    if not teachers or unknown:
        raise ValueError(f"--teachers must name some of {', '.join(bench.LOOPS)}, got {args.teachers!r}")
    for name in ("steps", "threads", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.ode_alpha < 0:
        raise ValueError(f"--ode-alpha must be non-negative (0 skips the ODE row), got {args.ode_alpha}")
    if args.learner not in bench.LEARNERS:
        raise ValueError(f"--learner must be one of {', '.join(bench.LEARNERS)}, got {args.learner!r}")
    if args.classes < 2:
        raise ValueError(f"--classes must be an integer >= 2 (the softmax learner's K), got {args.classes}")
    if args.classes != 2 and args.learner != "softmax":
        raise ValueError(f"--classes applies to --learner softmax only, got --learner {args.learner}")
    options = {"autograd_steps": 2, "committee_runs": committee_runs, "ode_alpha": args.ode_alpha or None,
               "distill": args.distill}
    device = check_device(args.device, "--device")
    if args.json:
        check_writable_file(args.json, "--json")
    with progress_bar(console) as bar:
        task = bar.add_task("bench", total=bench.total_items(runs, teachers, **options))

        def progress(text: str) -> None:
            bar.update(task, description=text, advance=1)

        rows = bench.run_benchmark(runs=runs, steps=args.steps, teachers=teachers, progress=progress,
                                   threads=args.threads, repeats=args.repeats, learner=args.learner,
                                   classes=args.classes, device=device,
                                   clock=time.process_time if args.clock == "cpu" else time.perf_counter, **options)
    console.print(bench.format_rows(rows), soft_wrap=True, highlight=False, markup=False)
    if args.json:
        bench.write_json(rows, args.json)
        console.print(f"wrote {args.json}")
    return 0


def _cmd_sweep(args, console: Console) -> int:
    from .sweep import load_spec, summary_rows, sweep

    spec = load_spec(args.spec)
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{Path(args.spec).stem}"
    cells = len(spec.settings) * len(spec.seeds)
    with progress_bar(console) as bar:
        task = bar.add_task(f"sweep {spec.target}", total=cells)

        def progress(outcome, done: int, total: int) -> None:
            bar.update(task, completed=done,
                       description=f"{spec.target}: {outcome.cell.label} seed {outcome.cell.seed} "
                                                         f"{outcome.status}")

        result = sweep(spec, out, executor=args.executor, workers=args.workers, force=args.force, progress=progress,
                       partition=args.partition, time_min=args.time, gpus=args.gpus)
    counts = {s: sum(o.status == s for o in result.outcomes) for s in ("done", "skipped", "failed")}
    for outcome in result.failed:
        console.print(f"cell {outcome.cell.label} seed {outcome.cell.seed} failed: "
                      f"{outcome.error.splitlines()[0] if outcome.error else ''}", markup=False, highlight=False)
    if result.dataset is not None:
        rows = summary_rows(result.dataset)
        _print_generic_table(console, f"sweep of {spec.target}: final values, mean ± SE over seeds",
                             {" / ".join(str(r.pop(k)) for k in ("setting", "teacher") if k in r): r for r in rows})
    console.print(f"{counts['done']} cells run, {counts['skipped']} already finished, {counts['failed']} failed; "
                  f"wrote {out}" + (f" and {result.dataset_path}" if result.dataset_path else ""))
    return 1 if result.failed else 0


def _cmd_plot(args, console: Console) -> int:
    from .simulation import replot

    written = replot(args.result_dir, formats=(args.format,), style=args.style)
    console.print("wrote " + ", ".join(str(p) for p in written), markup=False, highlight=False)
    return 0


def _cmd_distill(args, console: Console) -> int:
    from .distill.api import check_options
    from .distill.report import check_inputs, parse_options, run_distill

    check_inputs(args.method, args.dataset, args.ipc, args.eval_runs, args.epochs, args.width, args.steps, args.device,
                 args.data_root, args.ceiling_epochs)
    out = Path(args.out) if args.out else Path("runs") / f"distill-{args.method}-{args.dataset}-ipc{args.ipc}"
    if out.exists() and any(out.iterdir()) and not args.force:
        raise FileExistsError(f"--out {str(out)!r} exists and is not empty; pass --force to replace it")
    options = parse_options(args.option or [])
    check_options(args.method, options)
    with progress_bar(console) as bar:
        task = bar.add_task(f"distill {args.method}", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=stage)

        result = run_distill(args.method, args.dataset, args.ipc, out=out, eval_runs=args.eval_runs, steps=args.steps,
                             seed=args.seed, device=args.device, width=args.width, epochs=args.epochs,
                             ceiling_epochs=args.ceiling_epochs, data_root=args.data_root, json_path=args.json,
                             force=args.force, formats=("png", "svg") if args.svg else ("png",), progress=progress,
                             options=options)
    table = Table(title=result["title"])
    for col in ("evaluation", "networks", "test accuracy (%)"):
        table.add_column(col, justify="left" if col == "evaluation" else "right")
    for row in result["rows"]:
        acc = f"{100 * row['mean']:.2f}" + (f" ± {100 * row['se']:.2f}" if row.get("se") is not None else "")
        table.add_row(row["evaluation"], str(row["networks"]), acc)
    console.print(table)
    console.print(f"wrote {out}: synthetic.npz, images.png, learning_curve.png, accuracy.md, metrics.json, run.json"
                  + (f" and {args.json}" if args.json else ""), markup=False, highlight=False)
    return 0


def _fail(message: str) -> None:
    """One line on stderr, never wrapped (plain write, not rich)."""
    first = " ".join(message.split())
    sys.stderr.write(f"teachtheory: error: {first}\n")
    sys.stderr.flush()


def _one_line(exc: BaseException) -> str:
    """The message of a refused command: the exception's text, or for an OSError its reason and file."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, KeyError) and exc.args:  # str(KeyError) is the repr of its key
        return str(exc.args[0]) or type(exc).__name__
    return str(exc).strip() or type(exc).__name__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``teachtheory`` command."""
    parser = _Parser(prog="teachtheory", description="Iterative machine teaching: theory against simulation.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("list", help="list the simulations")
    sim = sub.add_parser("simulate", help="run a simulation and write its data and figures")
    sim.add_argument("name")
    sim.add_argument("--scale", choices=("small", "full"), default="small")
    sim.add_argument("--runs", type=int, default=None, help="independent runs (default: the scale's)")
    sim.add_argument("--steps", type=int, default=None, help="learner steps (default: the scale's)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    sim.add_argument("--out", default=None, help="output folder (default: runs/NAME)")
    sim.add_argument("--svg", action="store_true", help="also write SVG figures")
    sim.add_argument("--force", action="store_true", help="replace a non-empty --out folder (whole)")
    sim.add_argument("--preset", default=None, help="a named setup of the simulation (e.g. specialization: tian2020)")
    check = sub.add_parser("check", help="check the claims of the source papers")
    check.add_argument("ids", nargs="*", help="claim ids or prefixes (default: all)")
    check.add_argument("--scale", choices=("quick", "full"), default="quick")
    check.add_argument("--json", default=None, help="write the verdicts to this JSON file")
    check.add_argument("--plots", default=None, help="write figures into this folder")
    check.add_argument("--strict", action="store_true",
                       help="exit non-zero when any claim does not hold or catches errors worse than its target")
    check.add_argument("--no-sensitivity", action="store_true",
                       help="skip measuring the smallest theory error each check catches")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--jobs", type=int, default=1, help="worker processes checking claims in parallel (default 1)")
    docs = sub.add_parser("docs", help="build the documentation site (claims pages, gallery, API reference)")
    docs.add_argument("ids", nargs="*", help="claim ids or prefixes to check (default: all)")
    docs.add_argument("--scale", choices=("quick", "full"), default="quick", help="scale of the claim checks")
    docs.add_argument("--out", default="docs/_build/html", help="HTML folder (default: docs/_build/html)")
    docs.add_argument("--source", default="docs", help="the docs source folder (default: docs)")
    docs.add_argument("--no-gallery", action="store_true", help="do not execute the gallery's examples (fast)")
    docs.add_argument("--no-checks", action="store_true",
                      help="reuse the saved verdicts instead of rerunning the checks")
    docs.add_argument("--seed", type=int, default=0)
    docs.add_argument("--jobs", type=int, default=1, help="worker processes checking claims in parallel (default 1)")
    bench = sub.add_parser("bench", help="learner-steps per second, batched against a per-run loop")
    bench.add_argument("--json", default=None, help="write the rows to this JSON file")
    bench.add_argument("--runs", default="1,64,256", help="comma-separated run counts")
    bench.add_argument("--steps", type=int, default=1000)
    bench.add_argument("--threads", type=int, default=1, help="torch threads while timing (default 1)")
    bench.add_argument("--teachers", default="sgd,imt,last,dht", help="comma-separated teachers")
    bench.add_argument("--repeats", type=int, default=3, help="each time is the best of this many")
    bench.add_argument("--committee-runs", default="16,64", help="run counts of the committee SGD rows ('' skips)")
    bench.add_argument("--ode-alpha", type=float, default=200.0, help="committee ODE to this alpha (0 skips)")
    bench.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                       help="time totals by wall clock or by this process's CPU time (steadier on a busy machine)")
    bench.add_argument("--learner", default="lsr",
                       help="lsr (least squares, default), logistic or softmax (a pool labelled by a random linear "
                            "classifier)")
    bench.add_argument("--classes", type=int, default=2, help="K, the softmax learner's classes (default 2)")
    bench.add_argument("--device", default="cpu",
                       help="cpu, cuda or cuda:N: where both the batched runs and their baselines run (default cpu)")
    bench.add_argument("--distill", action="store_true",
                       help="add the distillation rows: R evaluation networks at once against one after another")
    sw = sub.add_parser("sweep", help="run a simulation or claim over settings x seeds (local, Dask, Ray, SLURM)")
    sw.add_argument("spec", help="a TOML or YAML sweep spec (see simulations/sweep-lsr.toml)")
    sw.add_argument("--out", default=None, help="sweep folder (default: runs/sweep-SPEC); reruns resume it")
    sw.add_argument("--executor", default="local",
                    help="local (default), dask, dask://HOST:PORT, ray, ray://HOST:PORT, slurm or submitit-local")
    sw.add_argument("--workers", type=int, default=None, help="parallel workers for local processes, Dask or Ray")
    sw.add_argument("--force", action="store_true", help="start over: discard the folder's finished cells")
    sw.add_argument("--partition", default=None, help="SLURM partition (--executor slurm)")
    sw.add_argument("--time", type=int, default=60, help="SLURM time limit per cell in minutes")
    sw.add_argument("--gpus", type=int, default=0, help="GPUs per SLURM job")
    dist = sub.add_parser("distill", help="distil a small training set, evaluate it and write images, table and curves")
    dist.add_argument("method", help="random, herding, kmeans, full, dm, kip, label-solve, dc, dsa, mtt, dd, sldd, "
                                     "tdd, ld, gtn or mnemonics")
    dist.add_argument("--dataset", required=True, help="digits, mnist1d, mnist, fashion-mnist, cifar10, cifar100, "
                                                        "text-synthetic or text:FOLDER (token-id files)")
    dist.add_argument("--ipc", type=int, required=True, help="images per class")
    dist.add_argument("--eval-runs", type=int, default=8, help="evaluation networks trained at once (default 8)")
    dist.add_argument("--steps", type=int, default=None, help="distillation steps (default: the method's)")
    dist.add_argument("--seed", type=int, default=0)
    dist.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    dist.add_argument("--width", type=int, default=None, help="ConvNet width (default 128 on CUDA, 32 on CPU)")
    dist.add_argument("--epochs", type=int, default=None, help="evaluation epochs (default 1000 on CUDA, 300 on CPU)")
    dist.add_argument("--ceiling-epochs", type=int, default=50, help="epochs of the full-training-set ceiling")
    dist.add_argument("--data-root", default=None, help="folder with MNIST/Fashion-MNIST IDX or CIFAR batches")
    dist.add_argument("--json", default=None, help="also write the accuracy summary to this JSON file")
    dist.add_argument("--out", default=None, help="output folder (default: runs/distill-METHOD-DATASET-ipcK)")
    dist.add_argument("--force", action="store_true", help="replace a non-empty --out folder (whole)")
    dist.add_argument("--svg", action="store_true", help="also write SVG figures")
    dist.add_argument("--option", action="append", metavar="KEY=VALUE",
                      help="a method option, e.g. learn_labels=true, kernel=nngp, lr_img=0.5 (repeatable)")
    pl = sub.add_parser("plot", help="redraw a saved simulation's or sweep's figures from its files")
    pl.add_argument("result_dir", help="a folder written by simulate or sweep")
    pl.add_argument("--format", choices=("png", "svg", "pdf"), default="png")
    pl.add_argument("--style", choices=("default", "paper"), default="default")
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None, _original=warnings.showwarning):
    """Our own warnings (divergence, non-convergence) as one ``teachtheory: warning:`` line; others as usual."""
    if issubclass(category, (DivergenceWarning, NonConvergenceWarning)):
        _warn(str(message))
    else:
        _original(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit code (0, 1 failures, 2 errors)."""
    console = Console(stderr=False)
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise UsageError("a command is required: list, simulate, check, docs, bench, sweep, plot or distill "
                             "(see teachtheory --help)")
        handler = {"list": _cmd_list, "simulate": _cmd_simulate, "check": _cmd_check, "docs": _cmd_docs,
                   "bench": _cmd_bench, "sweep": _cmd_sweep, "plot": _cmd_plot, "distill": _cmd_distill}[args.command]
        return handler(args, console)
    except UsageError as exc:
        _fail(str(exc))
        return 2
    except USER_ERRORS as exc:
        _fail(_one_line(exc))
        return 2
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
