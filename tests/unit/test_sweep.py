"""Sweeps: specs, cells written as transactions, resume, failures, the merged dataset, executors, replotting."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from teachtheory.cli import main
from teachtheory.sweep import load_spec, summarize, sweep

pytest.importorskip("xarray")

EXAMPLE = Path(__file__).resolve().parents[2] / "simulations" / "sweep-lsr.toml"
TINY = {"simulation": "lsr", "seeds": [0, 1], "fixed": {"runs": 2}, "grid": {"steps": [5, 8]}}


def test_example_spec_is_two_settings_by_four_seeds():
    spec = load_spec(EXAMPLE)
    assert spec.kind == "simulation" and spec.target == "lsr"
    assert len(spec.settings) == 2 and spec.seeds == (0, 1, 2, 3)


@pytest.mark.parametrize("bad, fragment", [
    ({"seeds": 2}, "exactly one of 'simulation' or 'claim'"),
    ({"simulation": "lsr", "claim": "last.kaczmarz"}, "exactly one"),
    ({"simulation": "lsr", "grid": {"lr": [0.1]}}, "setting(s) lr not accepted"),
    ({"simulation": "lsr", "grid": {"steps": []}}, "grid.steps must be a non-empty list"),
    ({"simulation": "lsr", "grid": {"steps": [0]}}, "steps must be a positive integer"),
    ({"simulation": "lsr", "seeds": [1, 1]}, "seeds repeat"),
    ({"simulation": "lsr", "seeds": -1}, "seeds must be a positive count"),
    ({"simulation": "lsr", "colour": 1}, "unknown key(s) colour"),
    ({"simulation": "lsr", "grid": {"steps": [1]}, "settings": [{}]}, "either 'grid' or 'settings'"),
    ({"simulation": "lsr", "settings": [{"steps": 2}, {"steps": 2}]}, "two settings are the same"),
])
def test_bad_specs_are_refused_with_the_reason(bad, fragment):
    with pytest.raises(ValueError, match="sweep spec") as info:
        load_spec(bad)
    assert fragment in str(info.value)


def test_spec_files_toml_yaml_and_errors(tmp_path):
    (tmp_path / "s.yaml").write_text("simulation: lsr\nseeds: 3\nsettings:\n  - {steps: 4}\n  - {steps: 6}\n")
    spec = load_spec(tmp_path / "s.yaml")
    assert spec.seeds == (0, 1, 2) and [s["steps"] for s in spec.settings] == [4, 6]
    (tmp_path / "bad.toml").write_text("simulation = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(ValueError, match=r"\.toml, \.yaml or \.yml"):
        load_spec(tmp_path / "s.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


def test_local_sweep_merges_every_cell_and_resumes(tmp_path):
    out = tmp_path / "sw"
    result = sweep(TINY, out)
    assert [o.status for o in result.outcomes] == ["done"] * 4 and not result.failed
    ds = result.dataset
    assert dict(ds.sizes) == {"setting": 2, "seed": 2, "teacher": 6, "step": 9}
    # the merged values are the cells' own metrics
    cell = json.loads((out / "cells" / "runs=2,steps=8" / "seed=1" / "metrics.json").read_text())
    np.testing.assert_array_equal(ds["distance"].sel(setting="runs=2,steps=8", seed=1, teacher="IMT").values,
                                  np.asarray(cell["teachers"]["IMT"]["distance"]["mean"], float))
    # the shorter setting is padded with NaN beyond its last step
    assert np.isnan(ds["distance"].sel(setting="runs=2,steps=5").values[..., 6:]).all()
    assert (out / "results.nc").is_file() and (out / "sweep.png").is_file()
    # resume: a rerun skips every finished cell and reruns a removed one
    import shutil

    shutil.rmtree(out / "cells" / "runs=2,steps=5" / "seed=0")
    again = sweep(TINY, out)
    assert sorted(o.status for o in again.outcomes) == ["done", "skipped", "skipped", "skipped"]
    np.testing.assert_array_equal(again.dataset["distance"].values, ds["distance"].values)  # same seeds, same numbers


def test_interrupted_sweep_resumes_without_redoing_finished_cells(tmp_path):
    out = tmp_path / "sw"

    def stop_after_two(outcome, done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(TINY, out, progress=stop_after_two)
    finished = sorted(p.parent.name + "/" + p.name for p in (out / "cells").glob("*/seed=*"))
    assert len(finished) == 2 and not list(out.rglob("*partial*"))
    result = sweep(TINY, out)
    assert sorted(o.status for o in result.outcomes) == ["done", "done", "skipped", "skipped"]


def test_failed_cells_are_reported_and_do_not_stop_the_others(tmp_path):
    spec = {"simulation": "lsr", "seeds": [0], "settings": [{"steps": 4, "runs": 2}, {"steps": 4, "device": "nope"}]}
    result = sweep(spec, tmp_path / "sw")
    assert [o.status for o in result.outcomes] == ["done", "failed"]
    assert "device" in result.failed[0].error
    failures = json.loads((tmp_path / "sw" / "failures.json").read_text())
    assert failures[0]["setting"] == "device=nope,steps=4"


def test_a_different_spec_is_refused_in_the_same_folder(tmp_path):
    sweep(TINY, tmp_path / "sw")
    with pytest.raises(ValueError, match="holds a different sweep"):
        sweep({**TINY, "seeds": [5]}, tmp_path / "sw")
    assert sweep({**TINY, "seeds": [5]}, tmp_path / "sw", force=True).dataset.sizes["seed"] == 1


def test_claim_sweep_and_summary(tmp_path):
    result = sweep({"claim": "last.kaczmarz", "seeds": [0, 1]}, tmp_path / "sw")
    assert not result.failed
    assert set(result.dataset["statistic"].dims) == {"setting", "seed"}
    summary = summarize(result.dataset)
    assert int(summary["n"].values[0]) == 2 and "statistic_mean" in summary


def test_summary_is_mean_and_se_over_seeds_of_the_final_step(tmp_path):
    ds = sweep(TINY, tmp_path / "sw").dataset
    s = summarize(ds)
    final = ds["distance"].sel(setting="runs=2,steps=5").isel(step=5).values  # [seed, teacher]
    np.testing.assert_allclose(s["distance_mean"].sel(setting="runs=2,steps=5").values, final.mean(0))
    np.testing.assert_allclose(s["distance_se"].sel(setting="runs=2,steps=5").values,
                               final.std(0, ddof=1) / np.sqrt(2))


def test_dask_local_cluster_gives_the_same_dataset(tmp_path):
    pytest.importorskip("distributed")
    local = sweep(TINY, tmp_path / "a").dataset
    dask = sweep(TINY, tmp_path / "b", executor="dask", workers=2).dataset
    np.testing.assert_array_equal(local["distance"].values, dask["distance"].values)


def test_local_processes_give_the_same_dataset(tmp_path):
    local = sweep(TINY, tmp_path / "a").dataset
    pool = sweep(TINY, tmp_path / "b", workers=2).dataset
    np.testing.assert_array_equal(local["distance"].values, pool["distance"].values)


@pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit not installed")
def test_submitit_local_executor(tmp_path):
    result = sweep({**TINY, "grid": {"steps": [5]}, "seeds": [0]}, tmp_path / "sw", executor="submitit-local")
    assert [o.status for o in result.outcomes] == ["done"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed")
def test_ray_executor(tmp_path):
    result = sweep({**TINY, "grid": {"steps": [5]}, "seeds": [0]}, tmp_path / "sw", executor="ray")
    assert [o.status for o in result.outcomes] == ["done"]


def test_unknown_executor_is_refused(tmp_path):
    with pytest.raises(ValueError, match="executor 'spark' not understood"):
        sweep(TINY, tmp_path / "sw", executor="spark")


def test_cli_sweep_then_plot_svg(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('simulation = "lsr"\nseeds = [0, 1]\n[fixed]\nruns = 2\n[grid]\nsteps = [4, 6]\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sw")]) == 0
    assert "4 cells run, 0 already finished, 0 failed" in " ".join(capsys.readouterr().out.split())
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sw")]) == 0
    assert "0 cells run, 4 already finished" in " ".join(capsys.readouterr().out.split())
    assert main(["plot", str(tmp_path / "sw"), "--format", "svg", "--style", "paper"]) == 0
    assert (tmp_path / "sw" / "sweep.svg").read_text().lstrip().startswith("<?xml")


def test_cli_plot_redraws_a_simulation_in_svg(tmp_path):
    out = tmp_path / "run"
    assert main(["simulate", "lsr", "--runs", "2", "--steps", "5", "--out", str(out)]) == 0
    (out / "convergence.png").unlink()
    assert main(["plot", str(out), "--format", "svg"]) == 0
    assert (out / "convergence.svg").is_file()


@pytest.mark.parametrize("argv, fragment", [
    (["plot", "/nonexistent/folder"], "is not a folder"),
    (["sweep", "/nonexistent/spec.toml"], "does not exist"),
    (["plot", ".", "--style", "poster"], "invalid choice"),
])
def test_cli_bad_input_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("teachtheory: error:") and fragment in err
