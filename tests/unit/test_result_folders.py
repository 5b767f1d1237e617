"""Result folders and files for real: interrupted runs (SIGTERM, SIGKILL), concurrent runs, file modes,
atomic claim outputs, transactional docs folders, figures that cannot be written, and the JSON encoding.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teachtheory.io import TEMP_MARK, atomic_folder_update, from_jsonable, result_folder, to_jsonable, write_json

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _start(out: Path, *extra: str, steps: int = 2000) -> subprocess.Popen:
    """``teachtheory simulate lsr`` in a child process with umask 022."""
    code = "import os, sys; os.umask(0o022); from teachtheory.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "simulate", "lsr", "--runs", "2", "--steps", str(steps), "--out", str(out),
            *extra]
    return subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=out.parent)


def _partials(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}{TEMP_MARK}*"))


def _wait_for_partial(proc: subprocess.Popen, out: Path, timeout: float = 120.0) -> Path:
    """Block until the run has a partial folder with its config written (it is computing), return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in _partials(out) if (p / "config.json").exists()]
        if found:
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before it could be interrupted: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no partial folder appeared")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _complete(out: Path) -> None:
    for name in ("config.json", "metrics.json", "run.json", "convergence.png"):
        assert (out / name).is_file(), name


# -- interrupted runs -----------------------------------------------------------------------------


def test_sigterm_leaves_nothing_and_sigkill_partial_is_cleaned_by_the_next_run(tmp_path):
    out = tmp_path / "X"
    proc = _start(out)
    _wait_for_partial(proc, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["teachtheory: error: interrupted"]
    assert not out.exists() and not _partials(out)
    assert not list(tmp_path.rglob("*.tmp"))

    proc = _start(out)
    partial = _wait_for_partial(proc, out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert not out.exists() and partial.exists()  # SIGKILL cannot clean up: the partial stays, out is untouched
    done = _start(out, steps=2)
    assert done.wait(timeout=300) == 0, done.communicate()
    _complete(out)
    assert not _partials(out) and not partial.exists()


def test_sigterm_during_force_keeps_the_previous_complete_folder(tmp_path):
    out = tmp_path / "X"
    first = _start(out, steps=3)
    assert first.wait(timeout=300) == 0, first.communicate()
    before = _snapshot(out)
    proc = _start(out, "--force")
    _wait_for_partial(proc, out)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert _snapshot(out) == before  # the previous folder, whole
    assert not _partials(out) and not list(tmp_path.glob(".X.replaced-*"))


def test_two_concurrent_runs_into_one_folder(tmp_path):
    out = tmp_path / "X"
    procs = [_start(out, "--seed", str(seed), steps=400) for seed in (1, 2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    lines = loser.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("teachtheory: error: --out"), loser
    winner_seed = 1 if results[0][0] == 0 else 2
    _complete(out)
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == winner_seed  # one run's folder, whole
    assert json.loads((out / "metrics.json").read_text())["steps"] == 400
    assert not _partials(out)


def test_result_files_get_the_umask_mode(tmp_path):
    out = tmp_path / "X"
    proc = _start(out, steps=2)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o644, (path, oct(path.stat().st_mode))
    for path in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        assert path.stat().st_mode & 0o777 == 0o755, (path, oct(path.stat().st_mode))


def test_result_folder_exception_leaves_the_destination_untouched(tmp_path):
    out = tmp_path / "X"
    with pytest.raises(RuntimeError, match="boom"), result_folder(out) as partial:
        (partial / "half.json").write_text("{}")
        raise RuntimeError("boom")
    assert not out.exists() and not _partials(out)


# -- claim outputs and the docs folder -----------------------------------------------------------

FAST_CLAIM = "relu.population-gradient-k"


def test_check_writes_json_and_plots_atomically(tmp_path):
    from teachtheory.cli import main

    target, plots = tmp_path / "v" / "verdicts.json", tmp_path / "plots"
    assert main(["check", FAST_CLAIM, "--json", str(target), "--plots", str(plots)]) == 0
    data = json.loads(target.read_text())
    assert [v["id"] for v in data] == [FAST_CLAIM] and data[0]["verdict"] == "holds"
    assert data[0]["figure"] and Path(data[0]["figure"]).is_file()
    assert not list(tmp_path.rglob("*.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_docs_checks_failing_midway_change_no_generated_page(tmp_path):
    import shutil

    from teachtheory.docsite import build_site

    source = tmp_path / "docs"
    shutil.copytree(Path(__file__).resolve().parents[2] / "docs", source,
                    ignore=shutil.ignore_patterns("_build", "generated", "gallery"))
    before = {p: p.read_bytes() for p in (source / "claims").rglob("*") if p.is_file()}

    def broken_checks(figures):
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "half-written.png").write_bytes(b"x")
        raise RuntimeError("the checks broke")

    with pytest.raises(RuntimeError, match="the checks broke"):
        build_site(tmp_path / "html", source=source, gallery=False, run_checks=broken_checks)
    after = {p: p.read_bytes() for p in (source / "claims").rglob("*") if p.is_file()}
    assert after == before  # every generated page, figure and verdicts.json as it was
    assert not (tmp_path / "html").exists() and not list(tmp_path.glob(f"*{TEMP_MARK}*"))


def test_atomic_folder_update_changes_nothing_on_failure(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "claims.md").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder_update(docs) as stage:
        (stage / "claims.md").write_text("new")
        raise RuntimeError("the checks broke")
    assert (docs / "claims.md").read_text() == "old"
    assert not list(tmp_path.glob(f".docs{TEMP_MARK}*"))


def test_unwritable_plot_folder_skips_the_figure_and_keeps_the_verdict(tmp_path):
    from teachtheory.claims import CheckContext, select_claims

    blocker = tmp_path / "file"
    blocker.write_text("x")
    claim = select_claims([FAST_CLAIM])[0]
    verdict = claim.run(CheckContext(plots_dir=blocker / "plots"))
    assert verdict.verdict == "holds" and verdict.statistic is not None
    assert verdict.figure is None and "figure skipped" in verdict.message


def test_plot_write_failing_mid_check_keeps_the_measurement(tmp_path, monkeypatch):
    from teachtheory.claims import CheckContext, select_claims

    def refuse(fig, path, formats=("png",), dpi=150):
        raise PermissionError(13, "Permission denied", str(Path(path).with_suffix(".png")))

    monkeypatch.setattr("teachtheory.plotting.save_figure", refuse)  # finish_figure writes through it
    claim = select_claims([FAST_CLAIM])[0]
    reference = claim.run(CheckContext())
    verdict = claim.run(CheckContext(plots_dir=tmp_path / "plots"))
    assert verdict.verdict == reference.verdict == "holds"
    assert verdict.statistic == reference.statistic
    assert "figure skipped" in verdict.message and "Permission denied" in verdict.message


def test_claim_reports_non_convergence_in_its_verdict():
    import warnings

    from teachtheory.claims import CheckContext, Claim, Verdict
    from teachtheory.validation import NonConvergenceError, NonConvergenceWarning

    def fails(ctx):
        raise NonConvergenceError("Newton stopped with gradient norm 1e-3 above tol=1e-10")

    def warns(ctx):
        warnings.warn("L-BFGS stopped with gradient norm 2e-3 above tol=1e-10", NonConvergenceWarning, stacklevel=2)
        return Verdict("", "holds", statistic=1.0, tolerance=2.0, message="measured")

    verdict = Claim("test.fails", "-", "x", fails).run(CheckContext())
    assert verdict.verdict == "error" and verdict.message.startswith("did not converge: Newton stopped")
    verdict = Claim("test.warns", "-", "x", warns).run(CheckContext())
    assert verdict.verdict == "holds" and verdict.statistic == 1.0
    assert "non-convergence during the check: L-BFGS stopped" in verdict.message


# -- JSON encoding --------------------------------------------------------------------------------


def test_non_finite_numbers_are_written_explicitly_never_as_null(tmp_path):
    import numpy as np

    data = {"a": math.inf, "b": [-math.inf, 1.5, math.nan], "c": np.array([np.nan, 2.0]), "d": None, "e": np.float32(3)}
    path = write_json(tmp_path / "x.json", data)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON
    loaded = json.loads(text)
    assert loaded["a"] == "inf" and loaded["b"] == ["-inf", 1.5, "nan"] and loaded["c"] == ["nan", 2.0]
    assert loaded["d"] is None and loaded["e"] == 3.0
    back = from_jsonable(loaded)
    assert back["a"] == math.inf and back["b"][0] == -math.inf and math.isnan(back["c"][0])
    assert to_jsonable(np.bool_(True)) is True
