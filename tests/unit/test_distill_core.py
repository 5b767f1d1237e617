"""Dataset distillation, the foundations: data sets, batched networks, DSA, synthetic sets, the evaluation protocol."""

import numpy as np
import pytest
import torch

from teachtheory.distill import SyntheticSet, evaluate, load_dataset, make_net
from teachtheory.distill.augment import OPERATIONS, AugmentParams, apply, default_strategy, sample_params
from teachtheory.distill.evaluate import combine, train_networks
from teachtheory.distill.nets import default_depth, transfer_depth


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


# -- data --------------------------------------------------------------------------------------


def test_digits_split_is_stratified_fixed_and_normalised(digits):
    assert digits.x_train.shape[1:] == (1, 8, 8) and digits.num_classes == 10
    assert digits.x_train.shape[0] + digits.x_test.shape[0] == 1797
    train_counts = torch.bincount(digits.y_train, minlength=10)
    test_counts = torch.bincount(digits.y_test, minlength=10)
    frac = test_counts.double() / (train_counts + test_counts).double()
    assert torch.all((frac - 0.2).abs() < 0.01)
    # the training split is standardised per channel; the stored statistics undo it
    assert abs(float(digits.x_train.mean())) < 1e-5 and abs(float(digits.x_train.std()) - 1) < 1e-3
    raw = digits.denormalise(digits.x_train)
    assert float(raw.min()) > -1e-5 and float(raw.max()) < 1 + 1e-5
    again = load_dataset("digits")
    assert torch.equal(again.x_test, digits.x_test)
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.y_test, digits.y_test)


def test_mnist1d_is_generated_locally_without_touching_global_random_state():
    pytest.importorskip("mnist1d")
    state = np.random.get_state()[1].copy()
    data = load_dataset("mnist1d")
    assert np.array_equal(np.random.get_state()[1], state)
    assert data.x_train.shape == (4000, 1, 40) and data.x_test.shape == (1000, 1, 40)
    assert torch.bincount(data.y_train).min() > 350


def test_file_datasets_need_a_root_and_read_idx_files(tmp_path):
    from teachtheory.data import write_idx

    with pytest.raises(ValueError, match="root"):
        load_dataset("fashion-mnist")
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("imagenet")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 20)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)
    data = load_dataset("fashion-mnist", root=tmp_path)
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_test.shape == (20, 1, 28, 28)
    assert data.meta["train_size"] == 30


def test_cifar_batches_load_as_normalised_rgb_images(tmp_path):
    from teachtheory.data import write_cifar_batch

    rng = np.random.default_rng(1)
    write_cifar_batch(tmp_path / "data_batch_1", rng.integers(0, 256, (20, 3072), dtype=np.uint8), np.arange(20) % 10)
    write_cifar_batch(tmp_path / "test_batch", rng.integers(0, 256, (10, 3072), dtype=np.uint8), np.arange(10))
    data = load_dataset("cifar10", root=tmp_path)
    assert data.x_train.shape == (20, 3, 32, 32) and data.mean.shape == (3,) and data.num_classes == 10
    per_channel = data.x_train.transpose(0, 1).flatten(1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-4)


def test_subset_is_class_balanced(digits):
    small = digits.subset(train_size=50, test_size=30)
    assert torch.bincount(small.y_train).tolist() == [5] * 10
    with pytest.raises(ValueError, match="train_size"):
        digits.subset(train_size=3)


# -- networks ----------------------------------------------------------------------------------


def test_default_depths_follow_the_image_size():
    assert [default_depth(s) for s in ((8, 8), (28, 28), (32, 32), (64, 64), (40,))] == [1, 3, 3, 4, 3]
    assert transfer_depth((28, 28)) == 2 and transfer_depth((8, 8)) == 2


@pytest.mark.parametrize("kind, shape", [("convnet", (1, 8, 8)), ("convnet", (1, 12)), ("mlp", (2, 4, 4))])
def test_batched_networks_equal_each_network_alone(kind, shape):
    net = make_net(kind, shape, 5, width=6)
    params = net.init(3, torch.Generator().manual_seed(0))
    x = torch.randn(4, *shape)
    shared = net(params, x)
    per_run = net(params, x.expand(3, *x.shape))
    assert shared.shape == (3, 4, 5)
    assert torch.allclose(shared, per_run, atol=1e-6)
    for r in range(3):
        alone = net({k: v[r:r + 1] for k, v in params.items()}, x)[0]
        assert torch.allclose(alone, shared[r], atol=1e-6)


def test_bad_network_specs_are_refused():
    with pytest.raises(ValueError, match="net must be one of"):
        make_net("resnet", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="width"):
        make_net("convnet", (1, 8, 8), 10, width=0)
    with pytest.raises(ValueError, match="depth"):
        make_net("convnet-d4", (1, 8, 8), 10)


def test_batched_training_equals_training_each_network_alone():
    net = make_net("convnet", (1, 8, 8), 3, width=4)
    params = net.init(3, torch.Generator().manual_seed(1))
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    together = train_networks(net, params, x, y, epochs=5, lr=0.1)
    for r in range(3):
        alone = train_networks(net, {k: v[r:r + 1] for k, v in params.items()}, x, y, epochs=5, lr=0.1)
        for k in params:
            assert torch.allclose(alone[k][0], together[k][r], atol=1e-5), k


@pytest.mark.parametrize("augment", [False, True])
def test_batched_and_sequential_evaluation_give_the_same_networks(digits, augment):
    """Mini-batches (32 of 100 images), orders and augmentations come from each network's own stream."""
    from teachtheory.distill.evaluate import default_chunk

    small = digits.subset(train_size=200, test_size=80)
    syn = SyntheticSet(small.x_train[:100], small.y_train[:100], 10, "random", "digits", 10)
    options = {"width": 4, "runs": 4, "epochs": 3, "batch_size": 32, "curve_points": 3, "seed": 5, "augment": augment}
    together = evaluate(syn, small, chunk=4, **options)
    halves = evaluate(syn, small, chunk=2, **options)
    alone = evaluate(syn, small, sequential=True, **options)
    assert together.settings["chunk"] == 4 and alone.settings["chunk"] == 1
    for other in (halves, alone):
        assert np.allclose(together.curve, other.curve, atol=1e-9)
    # a different seed trains different networks (the comparison above can fail)
    assert not np.allclose(evaluate(syn, small, chunk=4, **(options | {"seed": 6})).curve, together.curve)
    net = make_net("convnet", (1, 8, 8), 10, width=32)
    assert default_chunk(net, 10, 8) == 8 and 1 <= default_chunk(net, 256, 8) < 8
    assert default_chunk(net, 100, 8) == 4  # 0.8 MB a network: at most 5 in 4 MiB, evened out to 4 + 4
    assert default_chunk(net, 256, 8, device="meta") == 8


# -- augmentation ------------------------------------------------------------------------------


def test_crop_moves_whole_pixels_and_flip_mirrors():
    x = torch.arange(2 * 6 * 8, dtype=torch.float32).view(2, 1, 6, 8)
    shifted = apply(x, AugmentParams("crop", {"shift": torch.tensor([[1.0, 0.0], [0.0, 2.0]])}, 2))
    assert torch.allclose(shifted[0, 0, :, 1:], x[0, 0, :, :-1], atol=1e-4) and shifted[0, 0, :, 0].abs().max() < 1e-4
    assert torch.allclose(shifted[1, 0, 2:], x[1, 0, :-2], atol=1e-4)
    flipped = apply(x, AugmentParams("flip", {"flip": torch.tensor([1.0, 0.0])}, 2))
    assert torch.allclose(flipped[0], x[0].flip(-1), atol=1e-4) and torch.allclose(flipped[1], x[1], atol=1e-4)
    hole = apply(torch.ones(1, 1, 8, 8), AugmentParams("cutout", {"centre": torch.tensor([[4.0, 4.0]])}, 1))
    assert int((hole == 0).sum()) == 16


@pytest.mark.parametrize("op", OPERATIONS)
def test_siamese_parameters_transform_both_batches_alike_and_pass_gradients(op):
    gen = torch.Generator().manual_seed(3)
    params = sample_params(OPERATIONS, 2, (8, 8), gen, op=op)
    real = torch.randn(4, 3, 8, 8, requires_grad=True)
    groups = torch.tensor([0, 0, 1, 1])
    out = apply(real, params, groups)
    # the synthetic batch of the same groups gets the same transformation
    syn = apply(real.detach()[[0, 2]], params, torch.tensor([0, 1]))
    assert torch.allclose(out[[0, 2]].detach(), syn, atol=1e-5)
    out.square().sum().backward()
    assert real.grad is not None and float(real.grad.abs().sum()) > 0


def test_strategies_leave_out_flips_for_digits_and_rotations_for_signals():
    assert "flip" not in default_strategy("digits", (8, 8)) and "flip" in default_strategy("cifar10", (32, 32))
    assert "rotate" not in default_strategy("mnist1d", (40,))
    with pytest.raises(ValueError, match="strategy"):
        sample_params(("blur",), 2, (8, 8), torch.Generator())


# -- synthetic sets ----------------------------------------------------------------------------


def test_synthetic_set_round_trips_atomically(tmp_path):
    syn = SyntheticSet(torch.randn(4, 1, 8, 8), torch.randn(4, 3), 3, "kip", "digits", 1, lr=0.02, label_loss="mse",
                       provenance={"seed": 7, "curve": [1.0, 0.5]})
    path = syn.save(tmp_path / "set.npz")
    back = SyntheticSet.load(path)
    assert torch.equal(back.images, syn.images) and torch.equal(back.labels, syn.labels)
    assert (back.lr, back.label_loss, back.provenance["seed"], back.method) == (0.02, "mse", 7, "kip")
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "junk.npz").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a synthetic set"):
        SyntheticSet.load(tmp_path / "junk.npz")


def test_synthetic_set_validates_its_fields():
    with pytest.raises(ValueError, match="label_loss"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), 2, "x", "d", 1, label_loss="hinge")
    with pytest.raises(ValueError, match="lr"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), 2, "x", "d", 1, lr=-1.0)
    with pytest.raises(ValueError, match="one row per image"):
        SyntheticSet(torch.zeros(2, 1, 4, 4), torch.zeros(3, dtype=torch.long), 2, "x", "d", 1)


# -- the evaluation protocol -------------------------------------------------------------------


def test_evaluation_trains_R_networks_and_respects_the_set(digits):
    small = digits.subset(train_size=100, test_size=60)
    syn = SyntheticSet(small.x_train[:20], small.y_train[:20], 10, "random", "digits", 2)
    result = evaluate(syn, small, width=4, runs=3, epochs=4, curve_points=2, seed=1)
    assert result.accuracy.shape == (3,) and result.curve.shape == (3, 2) and list(result.curve_epochs) == [2, 4]
    assert np.allclose(result.curve[:, -1], result.accuracy)
    assert result.settings["lr"] == 0.01 and result.settings["loss"] == "ce"
    learned = SyntheticSet(syn.images, torch.nn.functional.one_hot(syn.labels, 10).float() - 0.1, 10, "kip",
                           "digits", 2, lr=0.05, label_loss="mse")
    result = evaluate(learned, small, net="mlp", width=8, runs=2, epochs=2, augment=True)
    assert result.settings["lr"] == 0.05 and result.settings["lr_source"] == "synthetic set"
    assert result.settings["loss"].startswith("mse") and result.settings["augment"]
    summary = combine([result, result])
    assert summary["seeds"] == 2 and summary["networks"] == 4
    with pytest.raises(ValueError, match="runs"):
        evaluate(syn, small, runs=0)
    wrong = SyntheticSet(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), 10, "x", "digits", 1)
    with pytest.raises(ValueError, match="shape"):
        evaluate(wrong, small, runs=1, epochs=1)
