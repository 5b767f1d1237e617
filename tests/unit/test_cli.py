import json
import subprocess
import sys

import pytest

from teachtheory.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "teachtheory.cli", *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["simulate", "nope"], "unknown simulation 'nope'"),
        (["simulate", "lsr", "--runs", "0"], "runs must be a positive integer"),
        (["simulate", "lsr", "--steps", "-3"], "steps must be a positive integer"),
        (["simulate", "lsr", "--scale", "huge"], "invalid choice"),
        (["simulate", "lsr", "--device", "cuda:7"], "cuda"),
        (["frobnicate"], "invalid choice"),
        ([], "a command is required"),
    ],
)
def test_bad_input_prints_one_line_and_exits_non_zero(args, fragment):
    import torch

    if "cuda:7" in args and torch.cuda.is_available():
        pytest.skip("a CUDA machine accepts cuda devices")
    result = run_cli(*args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("teachtheory: error:")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_list_names_every_simulation(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("lsr", "moons", "digits35", "mlp-digits35", "specialization", "specialization-deep", "relu-dynamics",
                 "committee", "ssl-hltm", "l2t-dln", "agd-saddle"):
        assert name in out


def test_simulate_writes_results_and_reproduces(tmp_path):
    outputs = []
    for folder in ("a", "b"):
        out = tmp_path / folder
        assert main(["simulate", "lsr", "--runs", "3", "--steps", "12", "--seed", "5", "--out", str(out)]) == 0
        for name in ("config.json", "metrics.json", "convergence.png"):
            assert (out / name).is_file()
        assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
        outputs.append(json.loads((out / "metrics.json").read_text()))
    first, second = outputs
    assert set(first["teachers"]) == {"SGD", "IMT", "LAST (NC)", "LAST (r=0.5)", "LAST (r=2)", "Mixed"}
    for label, entry in first["teachers"].items():
        assert len(entry["distance"]["mean"]) == 13 and len(entry["distance"]["se"]) == 13
        assert entry["distance"]["mean"] == second["teachers"][label]["distance"]["mean"]
        assert entry["loss"]["final"]["mean"] == second["teachers"][label]["loss"]["final"]["mean"]
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["runs"] == 3 and config["seed"] == 5 and config["steps"] == 12


def test_one_run_reports_no_standard_error(tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["simulate", "lsr", "--runs", "1", "--steps", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "± -" in printed and "± 0.00" not in printed
    metrics = json.loads((out / "metrics.json").read_text())
    for entry in metrics["teachers"].values():
        assert entry["distance"]["se"] is None and "one run" in entry["distance"]["se_note"]
        assert entry["distance"]["final"]["se"] is None and entry["distance"]["final"]["se_note"]


def test_divergence_is_warned_with_its_step_and_recorded(tmp_path, capsys):
    from teachtheory import problems
    from teachtheory.learners import LeastSquares
    from teachtheory.simulation import SIMULATIONS, Setup, Simulation, register
    from teachtheory.teachers import make_teacher

    def build(scale, runs, steps, seed, device):
        problem = problems.linear_regression(dim=3, pool_size=8, runs=runs, seed=seed, device=device)
        return Setup(problem, LeastSquares(3), [("SGD", make_teacher("sgd"))], steps, lr=5.0)

    register(Simulation("test-diverging", "diverges on purpose", "-", {"small": {"runs": 2, "steps": 200},
                                                                      "full": {"runs": 2, "steps": 200}}, build))
    try:
        assert main(["simulate", "test-diverging", "--out", str(tmp_path / "d")]) == 0
    finally:
        SIMULATIONS.pop("test-diverging")
    err = capsys.readouterr().err
    assert "teachtheory: warning: SGD: 2 of 2 runs diverged (first at step" in err
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    entry = metrics["teachers"]["SGD"]
    assert entry["diverged_runs"] == 2 and entry["first_divergence_step"] > 0
    assert "null" not in (tmp_path / "d" / "metrics.json").read_text()
    assert {"inf", "nan"} & set(map(str, entry["distance"]["mean"]))  # written explicitly, not as null
    run = json.loads((tmp_path / "d" / "run.json").read_text())
    assert any("diverged" in w for w in run["warnings"])


def _unexplained_nulls(tree, path="") -> list[str]:
    """Paths of nulls (or lists holding nulls) without a sibling ``<key>_note`` explaining them."""
    found = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            explained = f"{key}_note" in tree
            if value is None or (isinstance(value, list) and None in value):
                if not explained:
                    found.append(f"{path}.{key}")
            else:
                found += _unexplained_nulls(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += _unexplained_nulls(value, f"{path}[{i}]")
    return found


# (name, runs, steps): the smallest sizes each simulation accepts; the slow ones run with -m slow
TINY = [
    ("lsr", 1, 3), ("agd-saddle", 1, 150), ("relu-dynamics", 1, 4),
    pytest.param("moons", 1, 3, marks=pytest.mark.slow), pytest.param("digits35", 1, 3, marks=pytest.mark.slow),
    pytest.param("mlp-digits35", 1, 3, marks=pytest.mark.slow),
    pytest.param("specialization", 1, 4, marks=pytest.mark.slow),
    pytest.param("specialization-deep", 1, 4, marks=pytest.mark.slow),
    pytest.param("ssl-hltm", 1, 2, marks=pytest.mark.slow), pytest.param("l2t-dln", 1, 4, marks=pytest.mark.slow),
    pytest.param("committee", 1, 40000, marks=pytest.mark.slow),
    pytest.param("adversarial-ts", 1, 2, marks=pytest.mark.slow),
    pytest.param("last-parameterized", 1, 3, marks=pytest.mark.slow),
    pytest.param("blast", 1, 3, marks=pytest.mark.slow),
    pytest.param("dht-transform", 1, 3, marks=pytest.mark.slow),
    pytest.param("dht-mixup", 1, 3, marks=pytest.mark.slow),
    pytest.param("distill-table", 1, 2, marks=pytest.mark.slow),
    pytest.param("dht-generative", 1, 3, marks=pytest.mark.slow),
    pytest.param("distill-bilevel", 1, 2, marks=pytest.mark.slow),
    pytest.param("dht-performative", 1, 3, marks=pytest.mark.slow),
    pytest.param("dht-privacy", 1, 3, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, runs, steps", TINY)
def test_tiny_runs_give_complete_metrics_without_silent_nulls(tmp_path, name, runs, steps):
    import warnings

    from teachtheory.simulation import get_simulation, run_simulation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the MLP target's L-BFGS note; not what this test is about
        run_simulation(name, tmp_path / name, runs=runs, steps=steps, seed=0, formats=("png",))
    metrics = json.loads((tmp_path / name / "metrics.json").read_text())
    assert _unexplained_nulls(metrics) == []
    minimum = get_simulation(name).minimum
    minimum = minimum.get("small", minimum)
    if minimum.get("steps", 1) > 1:  # below the minimum: refused, naming the minimum
        with pytest.raises(ValueError, match=f"steps >= {minimum['steps']}"):
            run_simulation(name, tmp_path / "below", runs=runs, steps=minimum["steps"] - 1)


def test_every_simulation_is_in_the_tiny_table():
    from teachtheory.simulation import load_simulations

    names = {case.values[0] if hasattr(case, "values") else case[0] for case in TINY}
    assert names == set(load_simulations())


def test_check_writes_a_line_per_claim_to_a_log(capsys):
    """Off a terminal (a CI log, nohup) the progress bar shows nothing live: each claim gets a line instead."""
    assert main(["check", "last.greedy-lsr", "last.kaczmarz", "--no-sensitivity"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] checking last.greedy-lsr" in out and "[2/2] checking last.kaczmarz" in out
