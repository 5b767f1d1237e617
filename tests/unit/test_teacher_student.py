"""Tests for teachtheory.teacher_student: batching and seeding, construction, augmentation geometry,
correlation metrics, the simulation runners' outputs, and argument errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from teachtheory.random import RunStreams, as_seeds
from teachtheory.teacher_student import (
    TeacherStudentConfig,
    activation_correlations,
    fanout_strengths,
    final_correlations,
    forward,
    make_dataset,
    make_teacher_network,
    train_teacher_student,
)
from teachtheory.threads import intra_op_threads


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread (an OpenMP team stalls on a busy 2-core machine); restored after."""
    with intra_op_threads(1):
        yield


SMALL = {"input_dim": 6, "teacher_widths": (3,), "output_dim": 2, "multi": 2, "train_size": 200, "eval_size": 100,
         "batch_size": 16, "lr": 0.05, "steps": 30, "record_every": 10, "grad_samples": 32}


def test_batched_runs_equal_single_runs():
    cfg = TeacherStudentConfig(**SMALL, strength_decay=1.0)
    seeds = [5, 17, 2]
    batched = train_teacher_student(cfg, seed=seeds, dtype=torch.float64)
    for r, s in enumerate(seeds):
        single = train_teacher_student(cfg, seed=[s], dtype=torch.float64)
        for name in ("eval_loss", "grad_norm", "g1_inf", "fanout_history", "student_best_history"):
            np.testing.assert_allclose(getattr(single, name)[0], getattr(batched, name)[r], rtol=1e-9, atol=1e-12,
                                       err_msg=name)
        np.testing.assert_allclose(single.corr[0][0], batched.corr[0][r], rtol=1e-9, atol=1e-12)


def test_deep_fresh_samples_batched_equal_single_and_reproducible():
    cfg = TeacherStudentConfig(**{**SMALL, "teacher_widths": (3, 4), "train_size": None})
    a = train_teacher_student(cfg, seed=[1, 2], dtype=torch.float64)
    b = train_teacher_student(cfg, seed=[2], dtype=torch.float64)
    np.testing.assert_allclose(a.eval_loss[1], b.eval_loss[0], rtol=1e-9, atol=1e-12)
    again = train_teacher_student(cfg, seed=[1, 2], dtype=torch.float64)
    np.testing.assert_array_equal(a.eval_loss, again.eval_loss)
    assert len(a.best_corr) == 2 and a.best_corr[1].shape == (2, len(a.steps), 4)
    assert a.corr[1].shape == (2, 4, 8)


def test_training_reduces_loss_and_aligns_an_easy_teacher():
    cfg = TeacherStudentConfig(input_dim=8, teacher_widths=(4,), output_dim=4, multi=4, train_size=1000, eval_size=500,
                               steps=800, record_every=100, lr=0.05)
    res = train_teacher_student(cfg, runs=3, seed=0)
    assert (res.eval_loss[:, -1] < 0.05 * res.eval_loss[:, 0]).all()
    assert res.recovered[0].mean() >= 0.75
    assert res.g1_inf[:, -1].mean() < res.g1_inf[:, 0].mean()
    tta = res.time_to_alignment[0]
    assert np.all(tta[res.recovered[0]] <= res.steps[-1])


def test_without_biases_the_student_trains_its_weights_only():
    cfg = TeacherStudentConfig(**{**SMALL, "bias": False})
    res = train_teacher_student(cfg, seed=[1, 2], dtype=torch.float64, keep_networks=True)
    student, teacher = res.extra["student"], res.extra["teacher"]
    assert all(b.abs().max() == 0 for b in student.biases + teacher.biases)
    assert res.eval_loss[:, -1].max() < res.eval_loss[:, 0].min()  # the weights did train


def test_teacher_construction_strength_and_observed_boundaries():
    cfg = TeacherStudentConfig(**{**SMALL, "teacher_widths": (5,), "strength_decay": 2.0})
    teacher = make_teacher_network(cfg, RunStreams(as_seeds(0, 2)), dtype=torch.float64)
    W1, V = teacher.weights
    torch.testing.assert_close(W1.norm(dim=1), torch.ones(2, 5, dtype=torch.float64))
    # realised fan-out strengths are 1/j^p exactly (not only on average), total squared norm n_out
    j = torch.arange(1, 6, dtype=torch.float64)
    torch.testing.assert_close(fanout_strengths(teacher), (j**-2.0).expand(2, 5))
    torch.testing.assert_close((V**2).sum((1, 2)), torch.full((2,), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="hidden layer"):
        fanout_strengths(teacher, layer=1)
    X = torch.randn(2, 4000, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pre, _, _ = forward(teacher, X)
    active = (pre[0] > 0).double().mean(1)
    assert ((active > 0.2) & (active < 0.8)).all()  # every teacher boundary lies inside the data


@pytest.mark.parametrize("kind", ["agnostic", "aware"])
def test_augmentation_geometry(kind):
    cfg = TeacherStudentConfig(**{**SMALL, "augment": kind, "augment_count": 2, "augment_scale": 0.1})
    streams = RunStreams(as_seeds(3, 2))
    teacher = make_teacher_network(cfg, streams, dtype=torch.float64)
    X = make_dataset(cfg, teacher, streams, dtype=torch.float64)
    N = cfg.train_size
    assert X.shape == (2, N * (1 + 2 * 2), cfg.input_dim)
    extra = X[:, N:]
    if kind == "agnostic":  # each extra point is a data point moved by +-delta along one axis
        plus, _minus = extra.reshape(2, N, 2, 2, -1).unbind(2)
        diff = plus - X[:, :N, None, :]
        assert torch.allclose(diff.abs().sum(-1), torch.full(diff.shape[:-1], 0.1, dtype=torch.float64))
    else:  # each extra point lies at distance delta from some teacher boundary
        W1, b1 = teacher.weights[0], teacher.biases[0]
        dist = (torch.einsum("rnd,rdm->rnm", extra, W1) + b1[:, None]).abs() / W1.norm(dim=1)[:, None]
        assert ((dist - 0.1).abs() < 1e-9).any(-1).all()


def test_full_agnostic_augmentation_uses_every_axis():
    cfg = TeacherStudentConfig(**{**SMALL, "augment": "agnostic", "augment_count": 6})
    streams = RunStreams(as_seeds(0, 1))
    X = make_dataset(cfg, make_teacher_network(cfg, streams), streams)
    assert X.shape[1] == cfg.train_size * (2 * cfg.input_dim + 1)  # Tian's |D'| = (2d + 1)|D|


def test_full_batch_step_is_gradient_descent_on_the_augmented_set():
    """One full-batch step (no momentum) from the initial student equals a hand-computed gradient-descent step
    on 1/2||f - f*||^2 averaged over all of D' (the augmentation points included); the runs stay independent."""
    cfg = TeacherStudentConfig(**{**SMALL, "augment": "agnostic", "augment_count": 6, "full_batch": True,
                                  "momentum": 0.0, "steps": 0, "record_every": 1})
    start = train_teacher_student(cfg, runs=2, seed=3, dtype=torch.float64, keep_networks=True)
    after = train_teacher_student(TeacherStudentConfig(**{**cfg.__dict__, "steps": 1}), runs=2, seed=3,
                                  dtype=torch.float64, keep_networks=True)
    T, S = start.extra["teacher"], start.extra["student"]
    X = make_dataset(cfg, T, RunStreams(start.seeds.tolist()), torch.float64)
    params = [p.clone().requires_grad_() for pair in zip(S.weights, S.biases) for p in pair]
    net = type(S)(weights=params[0::2], biases=params[1::2])
    loss = (0.5 * ((forward(net, X)[2] - forward(T, X)[2]) ** 2).sum(-1).mean(-1)).sum()
    grads = torch.autograd.grad(loss, params)
    expected = [p.detach() - cfg.lr * g for p, g in zip(params, grads)]
    got = [p for pair in zip(after.extra["student"].weights, after.extra["student"].biases) for p in pair]
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


def test_activation_correlations():
    g = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(2, 50, 3, dtype=torch.float64, generator=g))
    b = torch.cat([3 * a[..., :1], torch.zeros(2, 50, 1, dtype=torch.float64)], -1)  # a scaled copy and a dead node
    rho = activation_correlations(a, b)
    torch.testing.assert_close(rho[:, 0, 0], torch.ones(2, dtype=torch.float64))
    assert (rho[..., 1] == 0).all()
    assert (rho.abs() <= 1 + 1e-12).all()


def test_final_correlations_default_and_null_pairing():
    cfg = TeacherStudentConfig(**SMALL)
    res = train_teacher_student(cfg, runs=3, seed=0, keep_networks=True)
    np.testing.assert_allclose(final_correlations(res)[0], res.corr[0], rtol=1e-6, atol=1e-6)
    assert final_correlations(res, [1, 2, 0])[0].shape == res.corr[0].shape
    with pytest.raises(ValueError, match="teacher_runs"):
        final_correlations(res, [0, 0])
    with pytest.raises(ValueError, match="keep_networks"):
        final_correlations(train_teacher_student(cfg, runs=1, seed=0))


def test_intra_op_threads_restores_the_setting():
    before = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("changes, fragment", [
    ({"input_dim": 0}, "input_dim"),
    ({"teacher_widths": ()}, "teacher_widths"),
    ({"teacher_widths": (3, 0)}, "teacher_widths"),
    ({"multi": 0}, "multi"),
    ({"lr": -0.1}, "lr must be"),
    ({"lr": float("nan")}, "lr must be"),
    ({"momentum": 1.0}, "momentum"),
    ({"strength_decay": -1.0}, "strength_decay"),
    ({"threshold": 1.5}, "threshold"),
    ({"augment": "magic"}, "augment must be one of"),
    ({"augment": "aware", "train_size": None}, "augment needs a finite training set"),
    ({"full_batch": True, "train_size": None}, "full_batch needs a finite training set"),
    ({"full_batch": 1}, "full_batch must be True or False"),
    ({"train_size": 0}, "train_size"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_config_raises_value_error_naming_the_argument(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        TeacherStudentConfig(**{**SMALL, **changes})


def test_bad_training_arguments():
    cfg = TeacherStudentConfig(**SMALL)
    with pytest.raises(TypeError, match="config must be a TeacherStudentConfig"):
        train_teacher_student({"input_dim": 3}, runs=1, seed=0)
    with pytest.raises(ValueError, match="runs must be a positive integer"):
        train_teacher_student(cfg, runs=0, seed=0)
    with pytest.raises(ValueError, match="runs is required"):
        train_teacher_student(cfg, seed=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            train_teacher_student(cfg, runs=1, seed=0, device="cuda")
    with pytest.raises(FloatingPointError, match="diverged"):
        train_teacher_student(TeacherStudentConfig(**{**SMALL, "lr": 1e6}), runs=1, seed=0)


# -- simulation runners --------------------------------------------------------------------------


def test_relu_dynamics_runner_writes_results(tmp_path):
    from simulations.relu_dynamics import run_relu_dynamics

    calls = []
    result = run_relu_dynamics(tmp_path / "dyn", runs=3, steps=60, seed=1, progress=lambda *a: calls.append(a))
    out = tmp_path / "dyn"
    for name in ("config.json", "metrics.json", "plane_trajectories.png", "symmetric_dynamics.png"):
        assert (out / name).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["symmetric_fixed_point"]["K=2"] == pytest.approx((1 + 3.14159265 - 0.78539816) / (2 * 3.14159265))
    assert calls and calls[-1][1] == calls[-1][2]
    assert set(result["summary"]["K=1"]) == {"converged_to_w_star", "final_loss", "seconds"}
    assert not list(out.glob(".*.tmp"))


def test_specialization_runner_writes_results_and_reproduces(tmp_path, monkeypatch):
    from simulations import specialization as sims

    monkeypatch.setattr(sims, "STRENGTHS", {"small": (0.0, 2.0), "full": (0.0,)})
    from teachtheory.teacher_student import specialization_config
    base = specialization_config

    def tiny(scale, steps, **changes):  # the real setting, shrunk for a test
        changes.setdefault("train_size", 200)
        return base(scale, steps, **{**changes, "input_dim": 6, "teacher_widths": (3,), "eval_size": 100})

    monkeypatch.setattr(sims, "specialization_config", tiny)
    metrics = []
    for folder in ("a", "b"):
        result = sims.run_specialization(tmp_path / folder, runs=2, steps=20, seed=3)
        metrics.append(json.loads((tmp_path / folder / "metrics.json").read_text()))
        for name in ("config.json", "recovery_by_node.png", "l_shape.png", "sorted_best_corr.png",
                     "alignment_over_time.png", "augmentation.png"):
            assert (tmp_path / folder / name).is_file(), name
    for label in metrics[0]["summary"]:
        for key in ("recovery_rate", "eval_loss"):
            assert metrics[0]["summary"][label][key] == metrics[1]["summary"][label][key]
    assert set(result["summary"]) == {"p=0", "p=2", "aug: D only", "aug: teacher-agnostic", "aug: teacher-aware"}
    with pytest.raises(ValueError, match="runs must be a positive integer"):
        sims.run_specialization(tmp_path / "c", runs=0, steps=5)


def test_discrete_teacher_and_small_student_init():
    cfg = TeacherStudentConfig(**{**SMALL, "teacher_widths": (5,), "strength_decay": 1.0, "teacher_weights": "discrete",
                                  "student_init_std": 0.005})
    streams = RunStreams(as_seeds(0, 3))
    teacher = make_teacher_network(cfg, streams, dtype=torch.float64)
    W1 = teacher.weights[0]
    # each column is a {-1, 0, +1} vector scaled to unit norm: its nonzero entries share one magnitude
    nonzero = W1.abs()
    top = nonzero.amax(1, keepdim=True)
    assert torch.all((nonzero == 0) | torch.isclose(nonzero, top.expand_as(nonzero)))
    torch.testing.assert_close(fanout_strengths(teacher),
                               (torch.arange(1, 6, dtype=torch.float64) ** -1.0).expand(3, 5))
    from teachtheory.teacher_student import make_student_network

    student = make_student_network(cfg, streams, dtype=torch.float64)
    for W, b in zip(student.weights, student.biases):
        assert 0.003 < float(W.std()) < 0.007 and float(b.abs().max()) == 0.0
    with pytest.raises(ValueError, match="teacher_weights"):
        TeacherStudentConfig(**{**SMALL, "teacher_weights": "binary"})
    with pytest.raises(ValueError, match="student_init_std"):
        TeacherStudentConfig(**{**SMALL, "student_init_std": 0.0})


def test_tian2020_preset_runs_through_run_simulation(tmp_path, monkeypatch):
    import simulations.specialization as spec_sim
    from teachtheory import simulation

    monkeypatch.setattr(simulation, "load_simulations", lambda: simulation.SIMULATIONS)
    cfg = spec_sim.tian2020_config(5, 2, 100)
    assert (cfg.input_dim, cfg.data_std, cfg.batch_size, cfg.lr, cfg.momentum, cfg.student_init_std) == \
        (100, 1.5, 16, 0.01, 0.0, 0.005)
    result = simulation.run_simulation("specialization", tmp_path / "t", preset="tian2020", runs=2, steps=20)
    assert set(result["table"]) == {f"m={m}, x{k}" for m in (5, 10) for k in (1, 2, 5, 10)}
    assert json.loads((tmp_path / "t" / "config.json").read_text())["preset"] == "tian2020"
    with pytest.raises(ValueError, match="no preset 'paper'"):
        simulation.run_simulation("specialization", tmp_path / "u", preset="paper", runs=2, steps=20)


# -- spec.augmentation -------------------------------------------------------------------------------------


def test_samples_to_level_interpolates_and_censors():
    from proofs_checks.spec import _samples_to_level

    Ns = np.array([8, 16, 32, 64])
    rec = np.array([[0.0, 0.25, 0.75, 1.0],  # crosses 0.5 halfway between 16 and 32 in log N
                    [0.0, 0.6, 0.4, 0.9],  # the running maximum crosses at 16 already
                    [0.0, 0.1, 0.2, 0.3],  # never: censored at the grid's end
                    [0.7, 0.8, 0.9, 1.0]])  # already at the first point
    got = np.exp(_samples_to_level(Ns, rec))
    assert np.allclose(got[[0, 2, 3]], [math.sqrt(16 * 32), 64, 8])
    assert 8 < got[1] <= 16


@pytest.mark.slow
def test_augmentation_claim_reports_exponents():
    from teachtheory.claims import CheckContext, select_claims

    (claim,) = select_claims(["spec.augmentation"])
    v = claim.run(CheckContext(scale="quick", seed=0))
    assert v.verdict in ("holds", "fails"), v.details.get("traceback")
    exps = v.details["exponents"]
    assert all(math.isfinite(e["a"]) and e["se"] > 0 for e in exps.values())
    # teacher-aware augmentation needs fewer samples at every d (a constant-factor gain, whatever the exponents)
    assert all(a < g for a, g in zip(v.details["n50"]["aware"], v.details["n50"]["agnostic"]))
