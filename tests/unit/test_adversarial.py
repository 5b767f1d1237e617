"""Tests of teachtheory.adversarial: PGD projections, oracle / data adversaries, training regimes, plane split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from teachtheory.adversarial import (
    AdversarialConfig,
    attack_matrix,
    ccat_lambda,
    cifar_oracle,
    data_adversary,
    digits_oracle,
    image_oracle,
    make_oracle,
    oracle_adversary,
    pgd,
    plane_decomposition,
    project,
    robust_accuracy,
    shift_images,
    train_adversarial,
)
from teachtheory.data import write_cifar_batch
from teachtheory.random import RunStreams, as_seeds
from teachtheory.teacher_student import TeacherStudentConfig, make_student_network

SMALL = {"input_dim": 8, "rank": 3, "teacher_widths": (4,), "output_dim": 3, "multi": 2, "train_size": 80,
         "eval_size": 60, "batch_size": 20, "epochs": 3, "record_every": 1, "eps": 0.2, "train_steps": 2,
         "attack_steps": 3}


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_project_stays_in_ball_and_plane(norm):
    delta = torch.randn(2, 5, 6, generator=_gen(), dtype=torch.float64) * 3
    A, _ = torch.linalg.qr(torch.randn(2, 6, 2, generator=_gen(1), dtype=torch.float64))
    P = A @ A.transpose(1, 2)
    for plane in (None, P):
        out = project(delta, 0.5, norm, plane)
        size = out.abs().amax(-1) if norm == "linf" else out.norm(dim=-1)
        assert torch.all(size <= 0.5 + 1e-12)
        if plane is not None:
            assert torch.allclose(out @ P, out, atol=1e-12)
    small = delta * 1e-3
    assert torch.allclose(project(small, 0.5, norm), small)  # inside the ball: unchanged


def test_pgd_on_a_linear_objective_reaches_the_corner():
    w = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    x = torch.zeros(1, 4, 3, dtype=torch.float64)
    out = pgd(lambda z: (z * w[:, None]).sum(-1), x, 0.3, norm="linf", steps=3)
    assert torch.allclose(out, (0.3 * w.sign())[:, None].expand_as(out))
    out2 = pgd(lambda z: (z * w[:, None]).sum(-1), x, 0.3, norm="l2", steps=3)
    assert torch.allclose(out2, (0.3 * w / w.norm())[:, None].expand_as(out2))


def test_oracle_adversary_of_a_perfect_student_is_the_clean_point_and_data_adversary_moves():
    cfg = AdversarialConfig(**SMALL)
    streams = RunStreams(as_seeds(0, 2))
    oracle = make_oracle(cfg, streams)
    X = oracle.sample(streams, "x", 30, 1.0)
    teacher = oracle.teacher.layers()
    assert torch.equal(oracle_adversary(teacher, teacher, X, 0.3, steps=4), X)  # zero loss, zero gradient
    y = torch.zeros(2, 30, dtype=torch.long)
    x_d = data_adversary(teacher, X, y, 0.3, loss="ce", steps=4)
    assert (x_d - X).abs().amax() <= 0.3 + 1e-6
    assert (x_d - X).abs().amax() > 0.1
    acc = robust_accuracy(teacher, oracle, X, eps=0.3, steps=4)
    assert torch.all(acc["clean"] == 1) and torch.all(acc["oracle"] == 1)
    with pytest.raises(TypeError, match="labels"):
        data_adversary(teacher, X, y.double(), 0.3, loss="ce")
    with pytest.raises(ValueError, match="norm"):
        oracle_adversary(teacher, teacher, X, 0.3, norm="l1")


def test_oracle_weights_lie_in_the_plane_and_inputs_too():
    cfg = AdversarialConfig(**SMALL)
    streams = RunStreams(as_seeds(3, 2))
    oracle = make_oracle(cfg, streams, torch.float64)
    W1, P = oracle.teacher.weights[0], oracle.plane
    assert torch.allclose(P @ W1, W1, atol=1e-10)
    X = oracle.sample(streams, "x", 10, 1.0)
    assert torch.allclose(X @ P, X, atol=1e-10)
    off = make_oracle(AdversarialConfig(**SMALL, teacher_out_of_plane=0.5), streams, torch.float64).teacher.weights[0]
    assert torch.allclose(((off - P @ off)).norm(dim=1), torch.full((2, 4), 0.5, dtype=torch.float64))


def test_plane_decomposition_separates_in_and_out_of_plane_deviations():
    A, _ = torch.linalg.qr(torch.randn(1, 5, 2, generator=_gen(), dtype=torch.float64))
    P = A @ A.transpose(1, 2)
    W_t = A @ torch.randn(1, 2, 3, generator=_gen(2), dtype=torch.float64)
    out = torch.randn(1, 5, 3, generator=_gen(3), dtype=torch.float64)
    out = out - P @ out
    W_s = torch.cat([2.0 * W_t + 0.7 * out * W_t.norm(dim=1, keepdim=True) / out.norm(dim=1, keepdim=True),
                     torch.randn(1, 5, 1, generator=_gen(4), dtype=torch.float64)], 2)
    e_in, e_out = plane_decomposition(W_s, W_t, P, torch.tensor([[0, 1, 2]]))
    assert torch.allclose(e_in, torch.zeros(1, 3, dtype=torch.float64), atol=1e-12)
    # each node: in-plane scale 2 ||w*||, out-of-plane 0.7 ||w*||, so the scaled deviation is 0.35
    assert torch.allclose(e_out, torch.full((1, 3), 0.35, dtype=torch.float64))


def test_attack_matrix_and_augmentation_run():
    res = train_adversarial(AdversarialConfig(**SMALL, augment=0.3), runs=2, seed=1, keep_networks=True)
    m = attack_matrix(res.extra["student"], res.extra["oracle"], res.extra["X_eval"], eps=0.2, steps=3)
    assert set(m) == {"in", "out", "both"}
    for plane in m.values():
        assert plane["oracle"].shape == (2,) and torch.all((plane["oracle"] >= 0) & (plane["oracle"] <= 1))


def test_ccat_lambda():
    delta = torch.tensor([[[0.0, 0.0], [0.05, -0.1], [0.3, 0.0]]])
    lam = ccat_lambda(delta, 0.2, 2.0)
    assert torch.allclose(lam, torch.tensor([[1.0, 0.25, 0.0]]))
    with pytest.raises(ValueError, match="eps"):
        ccat_lambda(delta, 0.0, 2.0)


def test_standard_training_never_moves_the_out_of_plane_first_layer():
    """The first-layer gradient is x delta^T with x in the plane, so (I - P) W1 stays at its initial value."""
    cfg = AdversarialConfig(**SMALL)
    res = train_adversarial(cfg, runs=2, seed=5, keep_networks=True, dtype=torch.float64)
    P = res.extra["oracle"].plane
    W1 = res.extra["student"][0][0]
    init = make_student_network(TeacherStudentConfig(input_dim=8, teacher_widths=(4,), output_dim=3, multi=2),
                                RunStreams(as_seeds(5, 2)), torch.float64).weights[0]
    assert torch.allclose(W1 - P @ W1, init - P @ init, atol=1e-12)
    assert not torch.allclose(P @ W1, P @ init, atol=1e-3)  # while the in-plane part trained
    at = train_adversarial(AdversarialConfig(**{**SMALL, "regime": "at"}), runs=2, seed=5, keep_networks=True,
                           dtype=torch.float64)
    W1_at = at.extra["student"][0][0]
    assert not torch.allclose(W1_at - P @ W1_at, init - P @ init, atol=1e-3)  # AT reaches out of the plane


@pytest.mark.parametrize("regime,target,plane", [("st", "label", "both"), ("at", "logit", "out"),
                                                  ("ccat", "label", "in")])
def test_run_r_of_a_batch_equals_the_single_run(regime, target, plane):
    cfg = AdversarialConfig(**{**SMALL, "regime": regime, "target": target, "train_plane": plane})
    batch = train_adversarial(cfg, seed=[11, 12], dtype=torch.float64)
    single = train_adversarial(cfg, seed=[12], dtype=torch.float64)
    for name in ("clean_acc", "robust_oracle", "robust_data", "eps_in", "eps_out", "best_corr"):
        np.testing.assert_allclose(getattr(batch, name)[1], getattr(single, name)[0], atol=1e-9, err_msg=name)
    assert batch.epochs.tolist() == [0, 1, 2, 3]
    assert np.all((batch.robust_oracle >= 0) & (batch.robust_oracle <= 1))


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="regime"):
        AdversarialConfig(regime="fgsm")
    with pytest.raises(ValueError, match="rank"):
        AdversarialConfig(input_dim=4, rank=5)
    with pytest.raises(ValueError, match="eps"):
        AdversarialConfig(eps=-1.0)
    with pytest.raises(ValueError, match="train_plane"):
        AdversarialConfig(train_plane="diag")
    with pytest.raises(TypeError, match="AdversarialConfig"):
        train_adversarial({}, runs=1)
    with pytest.raises(ValueError, match="runs"):
        train_adversarial(AdversarialConfig(**SMALL), seed=0)
    assert math.isclose(AdversarialConfig(rank=None).plane_rank, 20)


def test_pgd_per_example_radii_and_best_iterate():
    x = torch.zeros(1, 3, 2, dtype=torch.float64)
    radii = torch.tensor([[[0.1], [0.2], [0.0]]], dtype=torch.float64)
    out = pgd(lambda z: z.sum(-1), x, radii, norm="linf", steps=4)
    assert torch.allclose(out, radii.expand_as(out))
    # an objective that peaks inside the ball: the best iterate is kept, the last one overshoots
    best = pgd(lambda z: -((z - 0.05) ** 2).sum(-1), x, 0.3, norm="linf", steps=2, step_size=0.05, keep_best=True)
    assert torch.allclose(best, torch.full_like(x, 0.05))
    with pytest.raises(ValueError, match="radii"):
        pgd(lambda z: z.sum(-1), x, -radii - 1, steps=1)


def test_shift_images_moves_pixels_with_zero_fill():
    X = torch.zeros(1, 2, 9)
    X[0, :, 4] = 1.0  # the centre pixel of a 3x3 image
    out = shift_images(X, torch.tensor([[1, -1]]), torch.tensor([[0, 1]]), 3)
    assert out[0, 0].reshape(3, 3)[1, 2] == 1 and out[0, 0].sum() == 1  # one step right
    assert out[0, 1].reshape(3, 3)[2, 0] == 1 and out[0, 1].sum() == 1  # one left, one down
    edge = torch.zeros(1, 1, 9)
    edge[0, 0, 2] = 1.0  # top-right corner shifted right leaves the image
    assert shift_images(edge, torch.tensor([[1]]), torch.tensor([[0]]), 3).sum() == 0


def test_digits_oracle_is_pruned_batched_and_usable():
    image = digits_oracle(RunStreams(as_seeds(0, 2)), widths=(6, 4), epochs=2, finetune=1, augment=True,
                          batch_size=256)
    W = image.oracle.teacher.weights
    assert [tuple(w.shape) for w in W] == [(2, 64, 6), (2, 6, 4), (2, 4, 10)]
    P = image.oracle.plane
    assert torch.allclose(P @ P, P, atol=1e-5) and torch.all(image.rank < 64)
    residual = (image.X_train - image.X_train @ P).norm(dim=(1, 2)) ** 2 / image.X_train.norm(dim=(1, 2)) ** 2
    assert torch.all(residual <= 0.01 + 1e-6)  # the plane keeps 99% of the data's squared norm
    assert torch.all((image.accuracy >= 0) & (image.accuracy <= 1))
    single = digits_oracle(RunStreams(as_seeds([1])), widths=(6, 4), epochs=2, finetune=1, augment=True,
                           batch_size=256)
    assert torch.allclose(single.oracle.teacher.weights[0][0], W[0][1], atol=1e-5)
    cfg = AdversarialConfig(**{**SMALL, "input_dim": 64, "rank": None, "teacher_widths": (6, 4), "output_dim": 10,
                               "lr": 0.01})
    res = train_adversarial(cfg, seed=[0, 1], oracle=image.oracle, data=(image.X_train[:, :100], image.X_eval[:, :60]))
    assert res.robust_oracle.shape == (2, 4)
    with pytest.raises(ValueError, match="oracle has input_dim"):
        train_adversarial(AdversarialConfig(**SMALL), seed=[0, 1], oracle=image.oracle,
                          data=(image.X_train, image.X_eval))
    with pytest.raises(ValueError, match="together"):
        train_adversarial(cfg, seed=[0, 1], oracle=image.oracle)


def test_shift_images_with_channels_and_a_cifar_oracle_from_disk(tmp_path):
    X = torch.arange(8, dtype=torch.float64).reshape(1, 1, 8)  # 2 channels of 2x2
    out = shift_images(X, torch.tensor([[1]]), torch.tensor([[0]]), 2, channels=2)
    assert out.reshape(2, 2, 2).tolist() == [[[0, 0], [0, 2]], [[0, 4], [0, 6]]]
    rng = np.random.default_rng(0)
    write_cifar_batch(tmp_path / "data_batch_1", rng.integers(0, 256, (60, 3072), dtype=np.uint8),
                      [i % 10 for i in range(60)])
    image = cifar_oracle(RunStreams(as_seeds(0, 1)), tmp_path, limit=50, widths=(4,), epochs=1, finetune=1,
                         augment=True, batch_size=16)
    assert image.X_train.shape == (1, 35, 3072) and image.oracle.teacher.weights[-1].shape == (1, 4, 10)
    with pytest.raises(ValueError, match="square"):
        image_oracle(RunStreams(as_seeds(0, 1)), torch.zeros(10, 7), torch.zeros(10, dtype=torch.long))
