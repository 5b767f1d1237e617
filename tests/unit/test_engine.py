"""Tests for teachtheory.engine: batching, seeding, intervals, update rules, the Trajectory, argument errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from teachtheory.engine import METRICS, Trajectory, apply_batch_gradient, teach
from teachtheory.learners import Adam, LeastSquares, Logistic, Momentum, Softmax
from teachtheory.problems import Problem, gaussian_clusters, linear_regression
from teachtheory.teachers import TeachingBatch, make_teacher

DT = torch.float64
SEEDS = [11, 3, 29, 7, 100]


def slice_problem(problem: Problem, r: int) -> Problem:
    """Run r of a batched problem as a one-run problem (shared tensors stay shared)."""

    def pick(t):
        if t is None:
            return None
        return t if t.shape[0] == 1 else t[r:r + 1]

    return Problem(pick(problem.X), pick(problem.y), pick(problem.w_star), problem.w0[r:r + 1],
                   pick(problem.X_test), pick(problem.y_test), problem.label_values, problem.name, dict(problem.meta))


def _regression(runs=5, shared=False):
    return linear_regression(dim=3, pool_size=8, runs=runs, seed=SEEDS if runs == 5 else SEEDS[:runs], noise=0.3,
                             shared_pool=shared, test_size=4)


def _clusters(runs=5, learner="logistic"):
    return gaussian_clusters(pool_size=12, runs=runs, seed=SEEDS[:runs], dim=2, test_size=6, learner=learner)


CASES = {
    "sgd": (lambda: _regression(), lambda: LeastSquares(3), {}),
    "imt": (lambda: _regression(shared=True), lambda: LeastSquares(3), {}),
    "last": (lambda: _regression(), lambda: LeastSquares(3), {"constraint": "ball:0.5"}),
    "mixed": (lambda: _regression(), lambda: LeastSquares(3), {}),
    "dht": (lambda: _clusters(), lambda: Logistic(3), {"iterations": 5, "restarts": 1}),
    "last-logistic": (lambda: _clusters(), lambda: Logistic(3), {"constraint": "box:-1:1"}),
    "sgd-softmax": (lambda: _clusters(learner="softmax"), lambda: Softmax(3, 2), {}),
}


def _teacher(case):
    name = case.split("-")[0]
    return make_teacher(name, **CASES[case][2])


def _assert_same_metrics(a: Trajectory, b: Trajectory, rtol=1e-10, atol=1e-10):
    assert set(a.metrics) == set(b.metrics)
    for k in a.metrics:
        np.testing.assert_allclose(a.metrics[k], b.metrics[k], rtol=rtol, atol=atol, err_msg=k)


# ---------------------------------------------------------------------------
# Batched runs equal single runs; seeding
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_batched_runs_equal_single_runs(case):
    make_problem, make_learner, _ = CASES[case]
    problem, learner = make_problem(), make_learner()
    steps, lr = 6, 0.1
    batched = teach(problem, learner, _teacher(case), steps, lr, batch_size=2, seed=SEEDS,
                    record=("distance", "loss", "test_accuracy", "test_loss"))
    assert batched.runs == 5 and batched.steps == steps
    for r, s in enumerate(SEEDS):
        single = teach(slice_problem(problem, r), learner, _teacher(case), steps, lr, batch_size=2, seed=[s],
                       record=("distance", "loss", "test_accuracy", "test_loss"))
        for k in batched.metrics:
            np.testing.assert_allclose(single.metrics[k][0], batched.metrics[k][r], rtol=1e-10, atol=1e-10,
                                       err_msg=f"{case} run {r} metric {k}")
        np.testing.assert_allclose(single.final_w[0], batched.final_w[r], rtol=1e-10, atol=1e-10)


def test_batched_runs_equal_single_runs_for_generated_problems():
    """Generators + engine together: run r of (runs=5, seed=SEEDS) equals (runs=1, seed=[SEEDS[r]])."""
    batched = teach(_regression(), LeastSquares(3), make_teacher("last"), 5, 0.2, seed=SEEDS)
    for r, s in enumerate(SEEDS):
        problem = linear_regression(dim=3, pool_size=8, runs=1, seed=[s], noise=0.3, test_size=4)
        single = teach(problem, LeastSquares(3), make_teacher("last"), 5, 0.2, seed=[s])
        for k in batched.metrics:
            np.testing.assert_allclose(single.metrics[k][0], batched.metrics[k][r], rtol=1e-10, atol=1e-10)


def test_last_softmax_simplex_labels_do_not_depend_on_batch_composition():
    from teachtheory.teachers import synthesize_labels

    gen = torch.Generator().manual_seed(0)
    d, K, R = 3, 4, 5
    learner = Softmax(d, K)
    w = torch.randn(R, learner.num_params, generator=gen, dtype=DT)
    w_star = torch.randn(R, learner.num_params, generator=gen, dtype=DT)
    x = torch.randn(R, 1, d, generator=gen, dtype=DT)
    truth = torch.nn.functional.one_hot(torch.randint(0, K, (R, 1), generator=gen), K).to(DT)
    batched = synthesize_labels(learner, w, w_star, x, truth, 0.7, "simplex")
    single = torch.cat([synthesize_labels(learner, w[r:r + 1], w_star[r:r + 1], x[r:r + 1], truth[r:r + 1], 0.7,
                                          "simplex") for r in range(R)])
    torch.testing.assert_close(batched, single, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", ["sgd", "last", "dht"])
def test_same_seed_identical_different_seed_differs(case):
    make_problem, make_learner, _ = CASES[case]
    problem, learner = make_problem(), make_learner()
    a = teach(problem, learner, _teacher(case), 5, 0.1, seed=SEEDS)
    b = teach(problem, learner, _teacher(case), 5, 0.1, seed=SEEDS)
    for k in a.metrics:
        assert np.array_equal(a.metrics[k], b.metrics[k])
    assert np.array_equal(a.final_w, b.final_w)
    c = teach(problem, learner, _teacher(case), 5, 0.1, seed=[s + 1000 for s in SEEDS])
    assert not np.allclose(a.final_w, c.final_w)
    assert c.config["seeds"] == [s + 1000 for s in SEEDS]
    # An int seed means seed + r for run r.
    d = teach(problem, learner, _teacher(case), 5, 0.1, seed=40)
    e = teach(problem, learner, _teacher(case), 5, 0.1, seed=[40, 41, 42, 43, 44])
    assert np.array_equal(d.final_w, e.final_w)


# ---------------------------------------------------------------------------
# Interval v > 1: the teacher's SGD model of the learner
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [2, 3, 5])
@pytest.mark.parametrize("teacher_name", ["last", "imt", "mixed"])
def test_interval_is_exact_for_an_sgd_learner(interval, teacher_name):
    problem = _regression(shared=True)
    learner = LeastSquares(3)
    one = teach(problem, learner, make_teacher(teacher_name), 7, 0.15, batch_size=1, interval=1, seed=SEEDS)
    many = teach(problem, learner, make_teacher(teacher_name), 7, 0.15, batch_size=1, interval=interval, seed=SEEDS)
    _assert_same_metrics(one, many, rtol=1e-12, atol=1e-12)
    assert many.config["interval"] == interval


@pytest.mark.parametrize("update", ["momentum", "adam"])
def test_interval_differs_for_non_sgd_learners(update):
    problem = _regression(shared=True)
    learner = LeastSquares(3)
    one = teach(problem, learner, make_teacher("last"), 6, 0.15, interval=1, update=update, seed=SEEDS)
    three = teach(problem, learner, make_teacher("last"), 6, 0.15, interval=3, update=update, seed=SEEDS)
    # Step 1 is planned from the true state in both; later planned steps use the (wrong) SGD model.
    np.testing.assert_allclose(one["distance"][:, :2], three["distance"][:, :2], rtol=1e-12)
    assert not np.allclose(one["distance"][:, 2:], three["distance"][:, 2:], rtol=1e-6)


# ---------------------------------------------------------------------------
# Update rules in the engine
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("update, cls", [("sgd", None), ("momentum", Momentum), ("adam", Adam)])
def test_update_rule_names_and_effect(update, cls):
    problem = _regression()
    learner = LeastSquares(3)
    traj = teach(problem, learner, make_teacher("sgd"), 4, 0.05, update=update, seed=SEEDS)
    assert traj.config["update"]["name"] == update
    if cls is not None:
        inst = teach(problem, learner, make_teacher("sgd"), 4, 0.05, update=cls(), seed=SEEDS)
        assert inst.config["update"]["name"] == update
        np.testing.assert_array_equal(inst.final_w, traj.final_w)


def test_engine_momentum_matches_a_manual_loop():
    problem = _regression()
    learner = LeastSquares(3)
    traj = teach(problem, learner, make_teacher("imt"), 5, 0.1, update=Momentum(0.5), seed=SEEDS)
    # Recompute by hand: IMT picks argmin_i ||w - lr g_i - w*||^2, then heavy ball v = 0.5 v + g.
    w, v = problem.w0.clone(), torch.zeros_like(problem.w0)
    for _ in range(5):
        X, y = problem.X, problem.y
        g = (X * ((X @ w.unsqueeze(-1))[..., 0] - y).unsqueeze(-1))  # [R, n, d]
        dist = ((w[:, None] - 0.1 * g - problem.w_star[:, None]) ** 2).sum(-1)
        gi = g[torch.arange(5), dist.argmin(-1)]
        v = 0.5 * v + gi
        w = w - 0.1 * v
    np.testing.assert_allclose(traj.final_w, w.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(traj["distance"][:, -1], (w - problem.w_star).norm(dim=-1).numpy(), rtol=1e-12)


def test_apply_batch_gradient_with_scale_and_preconditioner():
    learner = LeastSquares(2)
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 2, generator=gen, dtype=DT)
    x = torch.randn(3, 4, 2, generator=gen, dtype=DT)
    y = torch.randn(3, 4, generator=gen, dtype=DT)
    scale = torch.rand(3, 4, generator=gen, dtype=DT)
    P = torch.randn(3, 2, 2, generator=gen, dtype=DT)
    g = learner.grad(w, x, y)
    plain = apply_batch_gradient(learner, w, TeachingBatch(x=x, y=y))
    torch.testing.assert_close(plain, g.mean(1))
    scaled = apply_batch_gradient(learner, w, TeachingBatch(x=x, y=y, grad_scale=scale, preconditioner=P))
    torch.testing.assert_close(scaled, (P @ (scale[..., None] * g).mean(1)[..., None])[..., 0])


# ---------------------------------------------------------------------------
# Metrics and the Trajectory
# ---------------------------------------------------------------------------


def test_recorded_metrics_values_and_shapes():
    problem = _clusters()
    learner = Logistic(3)
    calls = []
    traj = teach(problem, learner, make_teacher("sgd"), 3, 0.1, seed=SEEDS, record=METRICS, progress=calls.append)
    assert calls == [1, 2, 3]
    assert set(traj.metrics) == set(METRICS)
    for k in METRICS:
        assert traj[k].shape == (5, 4)
    w = torch.as_tensor(traj.final_w)
    np.testing.assert_allclose(traj["distance"][:, -1], (w - problem.w_star).norm(dim=-1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(traj["loss"][:, -1], learner.loss(w, problem.X, problem.y).mean(-1).numpy(), rtol=1e-12)
    acc = (torch.where(problem.X_test @ w.unsqueeze(-1) >= 0, 1.0, -1.0)[..., 0] == problem.y_test).double().mean(-1)
    np.testing.assert_allclose(traj["test_accuracy"][:, -1], acc.numpy())
    assert traj.seconds.shape == (4,) and (np.diff(traj.seconds) >= 0).all()
    only = teach(problem, learner, make_teacher("sgd"), 0, 0.1, seed=SEEDS, record=("distance",))
    assert set(only.metrics) == {"distance"} and only["distance"].shape == (5, 1)
    with pytest.raises(KeyError, match="loss"):
        only["loss"]


def test_trajectory_save_load_round_trip(tmp_path):
    traj = teach(_regression(), LeastSquares(3), make_teacher("last"), 4, 0.1, seed=SEEDS,
                 record=("distance", "loss", "test_loss"))
    path = traj.save(tmp_path / "sub" / "run")
    assert path.suffix == ".npz" and path.exists()
    assert not list(path.parent.glob("*.tmp"))
    back = Trajectory.load(path)
    assert set(back.metrics) == set(traj.metrics)
    for k in traj.metrics:
        np.testing.assert_array_equal(back.metrics[k], traj.metrics[k])
    np.testing.assert_array_equal(back.seconds, traj.seconds)
    np.testing.assert_array_equal(back.final_w, traj.final_w)
    assert back.config == json.loads(json.dumps(traj.config))
    assert back.config["teacher"]["name"] == "last" and back.config["seeds"] == SEEDS
    assert back.runs == 5 and back.steps == 4


def test_trajectory_summary_against_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(6, 5))
    traj = Trajectory({"distance": values}, np.arange(5.0), np.zeros((6, 2)))
    s = traj.summary("distance", quantiles=(0.25, 0.5))
    assert set(s) == {"mean", "std", "se", "q0.25", "q0.5"}
    for v in s.values():
        assert v.shape == (5,)
    np.testing.assert_allclose(s["mean"], values.mean(0))
    np.testing.assert_allclose(s["std"], values.std(0, ddof=1))
    np.testing.assert_allclose(s["se"], values.std(0, ddof=1) / math.sqrt(6))
    np.testing.assert_allclose(s["q0.25"], np.quantile(values, 0.25, axis=0))
    np.testing.assert_allclose(s["q0.5"], np.median(values, axis=0))
    final = traj.final("distance")
    assert final["mean"] == pytest.approx(values[:, -1].mean())
    one = Trajectory({"distance": values[:1]}, np.arange(5.0), np.zeros((1, 2)))
    # one run has no spread: NaN (undefined), never a misleading 0
    assert np.isnan(one.summary("distance")["std"]).all()
    assert np.isnan(one.summary("distance")["se"]).all()


def test_divergence_raises_on_request():
    with pytest.raises(FloatingPointError, match="lr"):
        teach(_regression(), LeastSquares(3), make_teacher("sgd"), 400, 1e3, seed=SEEDS, on_divergence="raise")


# ---------------------------------------------------------------------------
# Argument errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"steps": -1}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"interval": 0}, "interval"),
        ({"record": ("distance", "accuracy")}, "record"),
        ({"update": "rmsprop"}, "update"),
        ({"batch_size": 9, "teacher": "imt"}, "batch_size"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, match):
    kwargs = dict(kwargs)
    teacher = make_teacher(kwargs.pop("teacher", "sgd"))
    args = {"steps": 2, "lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        teach(_regression(), LeastSquares(3), teacher, seed=SEEDS, **args)


def test_learner_problem_mismatch_raises():
    problem = _regression()
    with pytest.raises(ValueError, match="input_dim"):
        teach(problem, LeastSquares(4), make_teacher("sgd"), 2, 0.1, seed=SEEDS)
    with pytest.raises(ValueError, match="parameters"):
        teach(problem, LeastSquares(3, 2), make_teacher("sgd"), 2, 0.1, seed=SEEDS)
    with pytest.raises(ValueError, match="seed"):
        teach(problem, LeastSquares(3), make_teacher("sgd"), 2, 0.1, seed=[1, 2])
    with pytest.raises(TypeError, match="teacher"):
        teach(problem, LeastSquares(3), "sgd", 2, 0.1, seed=SEEDS)


# ---------------------------------------------------------------------------
# Divergence: flagged per run with its step, warned, never silent
# ---------------------------------------------------------------------------


def _first_bad_step(distance: np.ndarray) -> np.ndarray:
    """Independent reference: first t with a non-finite distance or one above 1e3 x max(start, 1e-3)."""
    out = []
    for row in distance:
        limit = 1e3 * max(row[0], 1e-3)
        bad = [t for t, v in enumerate(row) if not math.isfinite(v) or v > limit]
        out.append(bad[0] if bad else -1)
    return np.array(out)


def test_divergence_is_flagged_with_its_step_and_warned():
    from teachtheory.validation import DivergenceWarning

    with pytest.warns(DivergenceWarning, match=r"5 of 5 runs diverged \(first at step \d+\)"):
        traj = teach(_regression(), LeastSquares(3), make_teacher("sgd"), 60, 5.0, seed=SEEDS)
    assert traj.diverged.dtype == bool and traj.diverged.shape == (5,) and traj.diverged.all()
    np.testing.assert_array_equal(traj.diverged_step, _first_bad_step(traj["distance"]))
    assert (traj.diverged_step > 0).all()


def test_stable_runs_are_not_flagged(recwarn):
    traj = teach(_regression(), LeastSquares(3), make_teacher("sgd"), 30, 0.05, seed=SEEDS)
    assert not traj.diverged.any() and (traj.diverged_step == -1).all()
    assert traj.divergence_message() is None
    assert not [w for w in recwarn if "diverged" in str(w.message)]


def test_find_divergence_rules():
    from teachtheory.engine import find_divergence

    distance = np.array([
        [1.0, 0.5, 0.2, 0.1],  # converging
        [1.0, 2.0, 50.0, np.inf],  # non-finite at step 3
        [2.0, 10.0, 2001.0, 3000.0],  # beyond 1e3 x its start at step 2
        [0.0, 1e-6, 1e-4, 0.5],  # starts at w*: drift below the floor 1e3 x 1e-3 = 1 is not divergence
    ])
    loss = np.array([[1.0] * 4, [1.0] * 4, [1.0] * 4, [1.0, 1.0, np.nan, 1.0]])  # run 3: NaN loss at step 2
    diverged, step = find_divergence({"distance": distance, "loss": loss})
    np.testing.assert_array_equal(diverged, [False, True, True, True])
    np.testing.assert_array_equal(step, [-1, 3, 2, 2])
    # non-finite weights count too, at the earlier of the two steps
    diverged, step = find_divergence({"distance": distance[:1]}, np.array([1]))
    assert diverged.tolist() == [True] and step.tolist() == [1]


def test_divergence_can_raise():
    with pytest.raises(FloatingPointError, match=r"diverged \(first at step"):
        teach(_regression(), LeastSquares(3), make_teacher("sgd"), 60, 5.0, seed=SEEDS, on_divergence="raise")


def test_save_load_keeps_divergence_flags(tmp_path):
    with pytest.warns(RuntimeWarning):
        traj = teach(_regression(), LeastSquares(3), make_teacher("sgd"), 40, 5.0, seed=SEEDS)
    loaded = Trajectory.load(traj.save(tmp_path / "t"))
    np.testing.assert_array_equal(loaded.diverged, traj.diverged)
    np.testing.assert_array_equal(loaded.diverged_step, traj.diverged_step)
    np.testing.assert_array_equal(loaded["distance"], traj["distance"])


# ---------------------------------------------------------------------------
# Trajectory.load: one clear ValueError naming the file
# ---------------------------------------------------------------------------


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.write_bytes(b"\x00" * 40), p)[1], "not a readable trajectory file"),
        (lambda p: _npz(p, weights=np.zeros(3)), "lacks"),
        (lambda p: _npz(p, metric_distance=np.zeros((2, 5)), seconds=np.zeros(4), final_w=np.zeros((2, 3)),
                        config_json=np.array("{}")), "metric 'distance' has shape"),
        (lambda p: _npz(p, metric_distance=np.zeros((2, 4)), seconds=np.zeros(4), final_w=np.zeros((3, 3)),
                        config_json=np.array("{}")), "metric 'distance' has shape"),
        (lambda p: _npz(p, seconds=np.zeros(4), final_w=np.zeros((2, 3)), config_json=np.array("{nope"),
                        ), "not a readable trajectory file"),
        (lambda p: _npz(p, seconds=np.zeros(4), final_w=np.zeros((2, 3)), config_json=np.array("[1]")),
         "config is not a JSON object"),
    ],
    ids=["missing", "garbage", "foreign", "steps", "runs", "config-json", "config-type"],
)
def test_trajectory_load_refuses_bad_files_naming_them(tmp_path, make, fragment):
    path = make(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match=fragment) as info:
        Trajectory.load(path)
    assert "bad.npz" in str(info.value) and "\n" not in str(info.value)


def test_trajectory_load_refuses_a_truncated_file(tmp_path):
    traj = teach(_regression(), LeastSquares(3), make_teacher("sgd"), 5, 0.1, seed=SEEDS)
    data = traj.save(tmp_path / "t").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        Trajectory.load(cut)


# ---------------------------------------------------------------------------
# Accepted inputs: numpy and torch scalars, numpy integers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [np.float32(0.1), np.float64(0.1), torch.tensor(0.1, dtype=DT), np.array(0.1)],
                         ids=["np.float32", "np.float64", "torch-0d", "np-0d"])
def test_numpy_and_torch_scalar_learning_rates_are_accepted(lr):
    reference = teach(_regression(), LeastSquares(3), make_teacher("sgd"), 4, float(lr), seed=SEEDS)
    traj = teach(_regression(), LeastSquares(3), make_teacher("sgd"), np.int64(4), lr, seed=np.array(SEEDS))
    _assert_same_metrics(reference, traj, rtol=0, atol=0)
    assert traj.config["lr"] == float(lr) and traj.config["steps"] == 4


def test_classifier_on_a_regression_problem_is_refused():
    with pytest.raises(ValueError, match="regression problem needs a LeastSquares learner"):
        teach(_regression(), Logistic(3), make_teacher("sgd"), 2, 0.1, seed=SEEDS)
    with pytest.raises(ValueError, match=r"labels in \[-1, 1\]"):
        problem = _clusters()
        bad = Problem(problem.X, problem.y * 3, problem.w_star, problem.w0, label_values=problem.label_values)
        teach(bad, Logistic(3), make_teacher("sgd"), 2, 0.1, seed=SEEDS)


# Recording at a subset of steps (record_every)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["imt", "last", "dht"])
def test_recorded_steps_are_bit_identical_to_recording_every_step(case):
    problem, learner = CASES[case][0](), CASES[case][1]()
    every = teach(problem, learner, _teacher(case), 10, 0.1, interval=2, seed=SEEDS, record=METRICS, record_every=1)
    sparse = teach(problem, learner, _teacher(case), 10, 0.1, interval=2, seed=SEEDS, record=METRICS, record_every=3)
    np.testing.assert_array_equal(every.steps_recorded, np.arange(11))
    np.testing.assert_array_equal(sparse.steps_recorded, [0, 3, 6, 9, 10])
    assert set(sparse.metrics) == set(every.metrics)
    for k in every.metrics:
        assert sparse[k].shape == (5, 5)
        np.testing.assert_array_equal(sparse[k], every[k][:, sparse.steps_recorded], err_msg=k)
    np.testing.assert_array_equal(sparse.final_w, every.final_w)
    assert sparse.seconds.shape == (5,) and (np.diff(sparse.seconds) >= 0).all()
    assert sparse.steps == every.steps == 10 and sparse.runs == 5


def test_default_recording_is_every_step_for_short_or_distance_only_runs():
    from teachtheory.engine import AUTO_RECORD_POINTS, recorded_steps

    np.testing.assert_array_equal(recorded_steps(AUTO_RECORD_POINTS, None, ("distance", "loss")),
                                  np.arange(AUTO_RECORD_POINTS + 1))
    np.testing.assert_array_equal(recorded_steps(5000, None, ("distance",)), np.arange(5001))
    long = recorded_steps(2500, None, ("distance", "loss"))  # every ceil(2500 / 1000) = 3 steps, and T
    assert long[0] == 0 and long[-1] == 2500 and len(long) == 835
    assert set(np.diff(long)) == {3, 1} and AUTO_RECORD_POINTS // 2 < len(long) <= AUTO_RECORD_POINTS + 1
    np.testing.assert_array_equal(recorded_steps(0, None, METRICS), [0])
    np.testing.assert_array_equal(recorded_steps(7, 7), [0, 7])
    np.testing.assert_array_equal(recorded_steps(7, 100), [0, 7])


def test_long_run_records_about_a_thousand_steps_by_default():
    problem, learner = _regression(runs=2), LeastSquares(3)
    traj = teach(problem, learner, make_teacher("sgd"), 1200, 0.05, seed=SEEDS[:2], record=("distance", "loss"))
    assert traj.steps_recorded[0] == 0 and traj.steps_recorded[-1] == 1200 and len(traj.steps_recorded) == 601
    assert traj["loss"].shape == (2, 601) and traj.seconds.shape == (601,) and traj.steps == 1200
    full = teach(problem, learner, make_teacher("sgd"), 1200, 0.05, seed=SEEDS[:2], record=("distance", "loss"),
                 record_every=1)
    np.testing.assert_array_equal(traj["loss"], full["loss"][:, traj.steps_recorded])


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "10"])
def test_bad_record_every_names_the_argument(bad):
    with pytest.raises(ValueError, match="record_every"):
        teach(_regression(), LeastSquares(3), make_teacher("sgd"), 4, 0.1, seed=SEEDS, record_every=bad)


def test_recorded_steps_survive_save_load_and_reach_the_plot(tmp_path):
    from teachtheory.plotting import plot_metric, plt

    traj = teach(_regression(), LeastSquares(3), make_teacher("sgd"), 9, 0.1, seed=SEEDS, record=("distance", "loss"),
                 record_every=4)
    back = Trajectory.load(traj.save(tmp_path / "run"))
    np.testing.assert_array_equal(back.steps_recorded, [0, 4, 8, 9])
    np.testing.assert_array_equal(back["loss"], traj["loss"])
    assert back.steps == 9
    # a file written before steps_recorded existed recorded every step
    with np.load(tmp_path / "run.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "steps_recorded"}
    np.savez(tmp_path / "old.npz", **arrays)
    np.testing.assert_array_equal(Trajectory.load(tmp_path / "old.npz").steps_recorded, np.arange(4))
    ax = plot_metric(traj, "loss")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 4, 8, 9])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), traj.summary("loss")["mean"])
    plt.close(ax.figure)


def test_trajectory_rejects_inconsistent_recorded_steps():
    values = np.zeros((2, 3))
    with pytest.raises(ValueError, match="steps_recorded"):
        Trajectory({"distance": values}, np.zeros(3), np.zeros((2, 1)), {}, steps_recorded=np.array([0, 2]))
    with pytest.raises(ValueError, match="steps_recorded"):
        Trajectory({"distance": values}, np.zeros(3), np.zeros((2, 1)), {}, steps_recorded=np.array([0, 5, 5]))
    with pytest.raises(ValueError, match="same number"):
        Trajectory({"distance": values, "loss": np.zeros((2, 4))}, np.zeros(3), np.zeros((2, 1)))


def test_simulation_metrics_carry_the_recorded_steps(tmp_path):
    from teachtheory.simulation import run_simulation

    run_simulation("lsr", tmp_path / "out", runs=2, steps=12, seed=1, formats=())
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["steps_recorded"] == list(range(13))
    for entry in metrics["teachers"].values():
        assert len(entry["distance"]["mean"]) == len(metrics["steps_recorded"])
    saved = Trajectory.load(next((tmp_path / "out" / "trajectories").glob("*.npz")))
    np.testing.assert_array_equal(saved.steps_recorded, np.arange(13))
