"""Bad and edge inputs over the CLI and the API, each refused with one clear line and no traceback.

The table below lists every input with what must happen: for the CLI, exit code 2 and exactly one
line on stderr starting ``teachtheory: error:`` that contains a fragment; for the API, an exception of
the given type whose one-line message contains the fragment. All cases run in one child process (run
as a script, this file is that child's driver) with a time limit per case and a memory cap, so an
input that is not refused (and would start a long or huge run) fails its test instead of hanging.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PER_CASE_SECONDS = 20
HUGE = "1000000000000"

# (id, argv, fragment of the one error line); {tmp} is a scratch folder, {file} an existing file,
# {full} a non-empty folder.
CLI_CASES = [
    ("unknown-simulation", ["simulate", "nope"], "unknown simulation 'nope'"),
    ("runs-zero", ["simulate", "lsr", "--runs", "0"], "runs must be a positive integer"),
    ("runs-negative", ["simulate", "lsr", "--runs", "-5"], "runs must be a positive integer"),
    ("steps-negative", ["simulate", "lsr", "--steps", "-3"], "steps must be a positive integer"),
    ("runs-not-int", ["simulate", "lsr", "--runs", "abc"], "invalid int value"),
    ("steps-float", ["simulate", "lsr", "--steps", "1.5"], "invalid int value"),
    ("seed-float", ["simulate", "lsr", "--seed", "1e3"], "invalid int value"),
    ("scale-unknown", ["simulate", "lsr", "--scale", "huge"], "invalid choice"),
    ("device-cuda7", ["simulate", "lsr", "--device", "cuda:7"], "cuda:7"),
    ("device-cuda", ["simulate", "lsr", "--device", "cuda"], "CUDA is not available"),
    ("device-tpu", ["simulate", "lsr", "--device", "tpu"], "device must be"),
    ("device-meta", ["simulate", "lsr", "--device", "meta"], "device must be"),
    ("device-upper", ["simulate", "lsr", "--device", "CPU"], "device must be"),
    ("device-nonsense", ["simulate", "lsr", "--device", "nonsense"], "device must be"),
    ("device-cpu1", ["simulate", "lsr", "--device", "cpu:1"], "one CPU device"),
    ("device-ssl", ["simulate", "ssl-hltm", "--device", "tpu"], "device must be"),
    ("seed-negative", ["simulate", "lsr", "--seed", "-1"], "seed must be an integer in [0,"),
    ("seed-65-bits", ["simulate", "lsr", "--seed", str(2**64)], "seed must be an integer in [0,"),
    ("seed-plus-runs", ["simulate", "lsr", "--seed", str(2**63 - 1), "--runs", "2"], "seed + runs - 1"),
    ("runs-huge", ["simulate", "lsr", "--runs", HUGE], "of memory"),
    ("steps-huge", ["simulate", "lsr", "--steps", HUGE], "of memory"),
    ("runs-huge-runner", ["simulate", "specialization", "--runs", HUGE], "of memory"),
    ("out-is-file", ["simulate", "lsr", "--runs", "2", "--steps", "2", "--out", "{file}"], "is not a folder"),
    ("out-unwritable", ["simulate", "lsr", "--runs", "2", "--steps", "2", "--out", "/proc/teachtheory-x"],
     "cannot write in"),
    ("out-under-file", ["simulate", "lsr", "--runs", "2", "--steps", "2", "--out", "{file}/sub"], "not a folder"),
    ("out-not-empty", ["simulate", "lsr", "--runs", "2", "--steps", "2", "--out", "{full}"], "pass --force"),
    ("agd-too-few-steps", ["simulate", "agd-saddle", "--steps", "10"], "needs steps >= 150"),
    ("committee-too-few-steps", ["simulate", "committee", "--steps", "100"], "needs steps >= 40000"),
    ("l2t-runs-zero", ["simulate", "l2t-dln", "--runs", "0"], "runs must be a positive integer"),
    ("simulate-no-name", ["simulate"], "required"),
    ("simulate-unknown-option", ["simulate", "lsr", "--bogus"], "unrecognized arguments"),
    ("unknown-command", ["frobnicate"], "invalid choice"),
    ("no-command", [], "a command is required"),
    ("check-unknown-claim", ["check", "nope"], "no claim matches 'nope'"),
    ("check-json-unwritable", ["check", "relu", "--json", "/proc/teachtheory-x.json"], "--json"),
    ("check-json-is-folder", ["check", "relu", "--json", "{tmp}"], "is a folder"),
    ("check-plots-unwritable", ["check", "relu", "--plots", "/proc/teachtheory-p"], "--plots"),
    ("check-plots-is-file", ["check", "relu", "--plots", "{file}"], "is not a folder"),
    ("check-seed-negative", ["check", "relu", "--seed", "-4"], "seed must be an integer in [0,"),
    ("check-jobs-zero", ["check", "relu", "--jobs", "0"], "--jobs must be a positive integer"),
    ("docs-jobs-negative", ["docs", "--jobs", "-2"], "--jobs must be a positive integer"),
    ("check-jobs-word", ["check", "--jobs", "many"], "invalid int value"),
    ("check-scale", ["check", "relu", "--scale", "huge"], "invalid choice"),
    ("docs-out-unwritable", ["docs", "relu", "--out", "/proc/teachtheory-d"], "cannot write in"),
    ("docs-out-is-file", ["docs", "relu", "--out", "{file}"], "is not a folder"),
    ("docs-seed-huge", ["docs", "relu", "--seed", str(2**70), "--out", "{tmp}/docs"], "seed must be an integer"),
    ("bench-runs-text", ["bench", "--runs", "a"], "--runs must be comma-separated integers, got 'a'"),
    ("bench-runs-zero", ["bench", "--runs", "0"], "--runs must be positive"),
    ("bench-steps-zero", ["bench", "--steps", "0"], "--steps must be a positive integer"),
    ("bench-device-nonsense", ["bench", "--device", "nonsense"], "--device must be 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ("bench-device-cpu-index", ["bench", "--device", "cpu:3"], "--device 'cpu:3': there is one CPU device"),
    ("bench-json-unwritable", ["bench", "--runs", "1", "--steps", "1", "--json", "/proc/teachtheory-b.json"], "--json"),
]

# (id, Python expression evaluated in the driver's namespace, exception class name, fragment).
# P(): a regression problem (d=3, 2 runs); C(): a classification problem; L, LOG: learners; T(name): a teacher.
API_CASES = [
    ("teach-problem-none", "teach(None, L, T('sgd'), 2, 0.1)", "TypeError", "problem"),
    ("teach-learner-none", "teach(P(), None, T('sgd'), 2, 0.1)", "TypeError", "learner"),
    ("teach-teacher-str", "teach(P(), L, 'sgd', 2, 0.1)", "TypeError", "teacher"),
    ("teach-lr-nan", "teach(P(), L, T('sgd'), 2, float('nan'))", "ValueError", "lr"),
    ("teach-lr-inf", "teach(P(), L, T('sgd'), 2, float('inf'))", "ValueError", "lr"),
    ("teach-lr-negative", "teach(P(), L, T('sgd'), 2, -0.1)", "ValueError", "lr"),
    ("teach-lr-str", "teach(P(), L, T('sgd'), 2, '0.1')", "TypeError", "lr"),
    ("teach-lr-bool", "teach(P(), L, T('sgd'), 2, True)", "TypeError", "lr"),
    ("teach-steps-negative", "teach(P(), L, T('sgd'), -1, 0.1)", "ValueError", "steps"),
    ("teach-steps-float", "teach(P(), L, T('sgd'), 2.5, 0.1)", "TypeError", "steps"),
    ("teach-steps-str", "teach(P(), L, T('sgd'), '10', 0.1)", "TypeError", "steps"),
    ("teach-steps-huge", f"teach(P(), L, T('sgd'), {HUGE}, 0.1)", "ValueError", "would not finish"),
    ("teach-batch-zero", "teach(P(), L, T('sgd'), 2, 0.1, batch_size=0)", "ValueError", "batch_size"),
    ("teach-interval-zero", "teach(P(), L, T('sgd'), 2, 0.1, interval=0)", "ValueError", "interval"),
    ("teach-record-str", "teach(P(), L, T('sgd'), 2, 0.1, record='distance')", "TypeError", "record"),
    ("teach-record-unknown", "teach(P(), L, T('sgd'), 2, 0.1, record=('distance', 'acc'))", "ValueError", "record"),
    ("teach-update-unknown", "teach(P(), L, T('sgd'), 2, 0.1, update='rmsprop')", "ValueError", "update"),
    ("teach-sampling-unknown", "teach(P(), L, T('sgd'), 2, 0.1, sampling='random')", "ValueError", "sampling"),
    ("teach-seed-negative", "teach(P(), L, T('sgd'), 2, 0.1, seed=-1)", "ValueError", "seed"),
    ("teach-seed-64-bits", "teach(P(), L, T('sgd'), 2, 0.1, seed=2**63)", "ValueError", "seed"),
    ("teach-seed-count", "teach(P(), L, T('sgd'), 2, 0.1, seed=[1, 2, 3])", "ValueError", "seed"),
    ("teach-seed-float", "teach(P(), L, T('sgd'), 2, 0.1, seed=1.5)", "TypeError", "seed"),
    ("teach-seed-str", "teach(P(), L, T('sgd'), 2, 0.1, seed='abc')", "TypeError", "seed"),
    ("teach-device-tpu", "teach(P(), L, T('sgd'), 2, 0.1, device='tpu')", "ValueError", "device"),
    ("teach-device-meta", "teach(P(), L, T('sgd'), 2, 0.1, device='meta')", "ValueError", "device"),
    ("teach-device-upper", "teach(P(), L, T('sgd'), 2, 0.1, device='CPU')", "ValueError", "device"),
    ("teach-device-cuda7", "teach(P(), L, T('sgd'), 2, 0.1, device='cuda:7')", "ValueError", "cuda:7"),
    ("teach-dtype-int", "teach(P(), L, T('sgd'), 2, 0.1, dtype=torch.int32)", "TypeError", "dtype"),
    ("teach-logistic-on-regression", "teach(P(), LOG, T('sgd'), 2, 0.1)", "ValueError", "regression"),
    ("teach-wrong-input-dim", "teach(P(), LeastSquares(4), T('sgd'), 2, 0.1)", "ValueError", "input_dim"),
    ("teach-beta-nan", "teach(C(), LOG, LASTTeacher(beta=float('nan')), 2, 0.1)", "ValueError", "beta"),
    ("teach-on-divergence", "teach(P(), L, T('sgd'), 2, 0.1, on_divergence='explode')", "ValueError", "on_divergence"),
    ("problem-x-none", "Problem(None, Y, W, W)", "TypeError", "X"),
    ("problem-x-nan", "Problem(torch.full_like(X, float('nan')), Y, W, W)", "ValueError", "X contains NaN"),
    ("problem-x-strings", "Problem(np.array([[['a']]]), Y, W, W)", "TypeError", "X"),
    ("problem-x-complex", "Problem(X.to(torch.complex128), Y, W, W)", "TypeError", "X"),
    ("problem-mixed-dtypes", "Problem(X.float(), Y, W, W)", "TypeError", "dtype"),
    ("problem-empty-pool", "Problem(X[:, :0], Y[:, :0], W, W)", "ValueError", "empty"),
    ("problem-w0-empty", "Problem(X, Y, W[:, :0], W[:0, :0])", "ValueError", "w0"),
    ("lsr-noise-nan", "linear_regression(noise=float('nan'))", "ValueError", "noise"),
    ("lsr-noise-negative", "linear_regression(noise=-1.0)", "ValueError", "noise"),
    ("lsr-noise-inf", "linear_regression(noise=float('inf'))", "ValueError", "noise"),
    ("lsr-test-size-negative", "linear_regression(test_size=-5)", "ValueError", "test_size"),
    ("lsr-runs-zero", "linear_regression(runs=0)", "ValueError", "runs"),
    ("lsr-dim-float", "linear_regression(dim=2.5)", "TypeError", "dim"),
    ("lsr-seed-negative", "linear_regression(seed=-3)", "ValueError", "seed"),
    ("lsr-device-tpu", "linear_regression(device='tpu')", "ValueError", "device"),
    ("lsr-pool-seed-unshared", "linear_regression(pool_seed=3)", "ValueError", "pool_seed"),
    ("clusters-l2-negative", "gaussian_clusters(pool_size=20, l2=-1e-3)", "ValueError", "l2"),
    ("clusters-l2-nan", "gaussian_clusters(pool_size=20, l2=float('nan'))", "ValueError", "l2"),
    ("clusters-separation-inf", "gaussian_clusters(pool_size=20, separation=float('inf'))", "ValueError", "separation"),
    ("clusters-test-size-negative", "gaussian_clusters(pool_size=20, test_size=-1)", "ValueError", "test_size"),
    ("moons-noise-nan", "moons(pool_size=20, noise=float('nan'))", "ValueError", "noise"),
    ("digits-test-fraction", "digits35(test_fraction=1.0)", "ValueError", "test_fraction"),
    ("digits-project-dim", "digits35(project_dim=0)", "ValueError", "project_dim"),
    ("fit-l2-negative", "fit_target(LOG, C().X, C().y, l2=-1.0)", "ValueError", "l2"),
    ("fit-newton-stops", "fit_target(Logistic(2), SEPARABLE_X, SEPARABLE_Y, l2=0.0, max_iter=2)", "NonConvergenceError",
     "Newton"),
    ("simulation-runs-zero", "run_simulation('lsr', OUT(), runs=0)", "ValueError", "runs"),
    ("simulation-seed-negative", "run_simulation('lsr', OUT(), runs=2, steps=2, seed=-1)", "ValueError", "seed"),
    ("simulation-device-tpu", "run_simulation('lsr', OUT(), runs=2, steps=2, device='tpu')", "ValueError", "device"),
    ("simulation-scale", "run_simulation('lsr', OUT(), scale='medium')", "ValueError", "scale"),
    ("simulation-formats", "run_simulation('lsr', OUT(), runs=2, steps=2, formats=('gif',))", "ValueError", "formats"),
    ("simulation-name-int", "run_simulation(123, OUT())", "TypeError", "name"),
    ("simulation-agd-steps", "run_simulation('agd-saddle', OUT(), runs=2, steps=10)", "ValueError", "steps >= 150"),
    ("simulation-runs-huge", f"run_simulation('lsr', OUT(), runs={HUGE})", "ValueError", "of memory"),
    ("trajectory-missing", "Trajectory.load(SCRATCH / 'missing.npz')", "ValueError", "missing.npz"),
    ("trajectory-truncated", "Trajectory.load(TRUNCATED())", "ValueError", "truncated.npz"),
    ("trajectory-foreign", "Trajectory.load(FOREIGN())", "ValueError", "foreign.npz"),
    ("trajectory-inconsistent", "Trajectory.load(INCONSISTENT())", "ValueError", "inconsistent.npz"),
    ("trajectory-text", "Trajectory.load(TEXT())", "ValueError", "text.npz"),
    ("context-seed-negative", "CheckContext(seed=-1)", "ValueError", "seed"),
    ("context-scale", "CheckContext(scale='medium')", "ValueError", "scale"),
    ("context-z", "CheckContext(z=0.0)", "ValueError", "z"),
]


# -- the driver (runs in a child process) ------------------------------------------------------


class _Timeout(BaseException):  # not an Exception: code under test must not swallow it
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _namespace(scratch: Path) -> dict:
    """What the API expressions may use: the toolkit's entry points and small fixtures."""
    import numpy as np
    import torch

    from teachtheory.claims import CheckContext
    from teachtheory.engine import Trajectory, teach
    from teachtheory.learners import LeastSquares, Logistic
    from teachtheory.problems import Problem, digits35, fit_target, gaussian_clusters, linear_regression, moons
    from teachtheory.simulation import run_simulation
    from teachtheory.teachers import make_teacher
    from teachtheory.teachers.last import LASTTeacher

    gen = torch.Generator().manual_seed(0)
    X = torch.randn(1, 6, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    separable = torch.cat([labels[:, None] * 2.0, torch.ones(6, 1, dtype=torch.float64)], -1)[None]
    counter = iter(range(10**6))

    def path(name: str, content: bytes) -> Path:
        target = scratch / name
        target.write_bytes(content)
        return target

    def foreign() -> Path:
        buffer = io.BytesIO()
        np.savez(buffer, weights=np.zeros(3))
        return path("foreign.npz", buffer.getvalue())

    def trajectory_bytes(**changes) -> bytes:
        arrays = {"metric_distance": np.zeros((2, 4)), "seconds": np.zeros(4), "final_w": np.zeros((2, 3)),
                  "config_json": np.array("{}")}
        arrays.update(changes)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    return {
        "np": np, "torch": torch, "teach": teach, "Trajectory": Trajectory, "Problem": Problem,
        "LeastSquares": LeastSquares, "Logistic": Logistic, "LASTTeacher": LASTTeacher, "CheckContext": CheckContext,
        "linear_regression": linear_regression, "gaussian_clusters": gaussian_clusters, "moons": moons,
        "digits35": digits35, "fit_target": fit_target, "run_simulation": run_simulation,
        "P": lambda: linear_regression(dim=3, pool_size=8, runs=2, seed=0),
        "C": lambda: gaussian_clusters(pool_size=12, runs=2, seed=0, dim=2, test_size=0),
        "L": LeastSquares(3), "LOG": Logistic(3), "T": make_teacher,
        "X": X, "Y": torch.randn(1, 6, generator=gen, dtype=torch.float64),
        "W": torch.randn(2, 3, generator=gen, dtype=torch.float64),
        "SEPARABLE_X": separable, "SEPARABLE_Y": labels[None],
        "SCRATCH": scratch, "OUT": lambda: scratch / f"out{next(counter)}",
        "TRUNCATED": lambda: path("truncated.npz", trajectory_bytes()[:200]),
        "FOREIGN": foreign,
        "INCONSISTENT": lambda: path("inconsistent.npz", trajectory_bytes(metric_loss=np.zeros((3, 4)))),
        "TEXT": lambda: path("text.npz", b"distance,loss\n1,2\n"),
    }


def _run_cli(argv: list[str], scratch: Path) -> dict:
    from teachtheory.cli import main

    folder = Path(tempfile.mkdtemp(dir=scratch))
    (folder / "file.txt").write_text("x")
    (folder / "full").mkdir()
    (folder / "full" / "keep.txt").write_text("x")
    argv = [a.format(tmp=folder, file=folder / "file.txt", full=folder / "full") for a in argv]
    err, out = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)  # default outputs (runs/NAME) land in the scratch folder
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
        return {"code": code, "stderr": err.getvalue()}
    except _Timeout:
        return {"code": None, "stderr": err.getvalue(), "raised": f"still running after {PER_CASE_SECONDS} s"}
    except BaseException as exc:  # noqa: BLE001 (what a real CLI would show as a traceback)
        return {"code": None, "stderr": err.getvalue(), "raised": f"{type(exc).__name__}: {exc}"}
    finally:
        os.chdir(cwd)


def _run_api(expression: str, namespace: dict) -> dict:
    try:
        eval(expression, dict(namespace))
        return {"raised": None}
    except _Timeout:
        return {"raised": "Timeout", "message": f"still running after {PER_CASE_SECONDS} s"}
    except BaseException as exc:  # noqa: BLE001 (every outcome is recorded for the test to judge)
        return {"raised": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}


def _driver(results_path: str) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (12 * 2**30, resource.RLIM_INFINITY))  # never swamp the machine
    signal.signal(signal.SIGALRM, _alarm)
    scratch = Path(tempfile.mkdtemp(prefix="teachtheory-bad-inputs-"))
    results = {}
    for case_id, argv, _ in CLI_CASES:
        signal.alarm(PER_CASE_SECONDS)
        try:
            results[f"cli:{case_id}"] = _run_cli(list(argv), scratch)
        finally:
            signal.alarm(0)
    try:
        namespace = _namespace(scratch)
    except Exception as exc:  # noqa: BLE001 (an older toolkit may lack names: then every API case fails)
        namespace = None
        failure = f"{type(exc).__name__}: {exc}"
    for case_id, expression, _, _ in API_CASES:
        if namespace is None:
            results[f"api:{case_id}"] = {"raised": "NamespaceError", "message": failure}
            continue
        signal.alarm(PER_CASE_SECONDS)
        try:
            results[f"api:{case_id}"] = _run_api(expression, namespace)
        finally:
            signal.alarm(0)
    Path(results_path).write_text(json.dumps(results))


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict:
    results = tmp_path_factory.mktemp("bad-inputs") / "results.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    budget = PER_CASE_SECONDS * (len(CLI_CASES) + len(API_CASES)) + 120
    subprocess.run([sys.executable, __file__, "--driver", str(results)], env=env, timeout=budget, check=True)
    return json.loads(results.read_text())


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("case_id, argv, fragment", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_with_one_line(outcomes, case_id, argv, fragment):
    if "cuda" in " ".join(argv) and _cuda_available():
        pytest.skip("a CUDA machine may accept cuda devices")
    result = outcomes[f"cli:{case_id}"]
    assert "raised" not in result, f"not refused cleanly: {result.get('raised')}"
    assert result["code"] == 2, result
    lines = result["stderr"].splitlines()
    assert len(lines) == 1, result["stderr"]
    assert lines[0].startswith("teachtheory: error: ")
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result["stderr"]


@pytest.mark.parametrize("case_id, expression, exception, fragment", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_refuses_with_a_clear_exception(outcomes, case_id, expression, exception, fragment):
    if "cuda" in expression and _cuda_available():
        pytest.skip("a CUDA machine may accept cuda devices")
    result = outcomes[f"api:{case_id}"]
    assert result["raised"] is not None, "accepted silently"
    assert exception in result.get("mro", [result["raised"]]), f"{result['raised']}: {result.get('message')}"
    assert fragment in result["message"], result["message"]
    assert "\n" not in result["message"].strip(), result["message"]


def test_the_table_is_large_enough():
    assert len(CLI_CASES) + len(API_CASES) >= 60
    assert len({c[0] for c in CLI_CASES}) == len(CLI_CASES) and len({c[0] for c in API_CASES}) == len(API_CASES)


if __name__ == "__main__" and sys.argv[1:2] == ["--driver"]:
    _driver(sys.argv[2])
