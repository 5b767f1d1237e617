import json
import subprocess
import sys

import pytest

from teachtheory.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "teachtheory.cli", *args], capture_output=True, text=True)


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
