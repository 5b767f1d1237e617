"""Dataset distillation: the distillers (baselines, DM, KIP, Label Solve, DC, DSA, MTT), distill() and the CLI."""

import json

import pytest
import torch

from teachtheory.cli import main
from teachtheory.distill import METHODS, SyntheticSet, distill, load_dataset, make_net
from teachtheory.distill.dc import layer_distance, match_distance
from teachtheory.distill.evaluate import batched_loss
from teachtheory.distill.kernels import empirical_kernels, krr_loss, relu_kernels
from teachtheory.distill.kip import centred_one_hot


@pytest.fixture(scope="module")
def tiny():
    """80 training and 50 test digits (8 and 5 per class)."""
    return load_dataset("digits").subset(train_size=80, test_size=50)


FAST = {"dm": {"steps": 3, "width": 4, "batch_real": 4}, "kip": {"steps": 3, "target_batch": 40},
        "dc": {"steps": 1, "width": 4, "batch_real": 4, "outer_loop": 2, "inner_loop": 1},
        "dsa": {"steps": 1, "width": 4, "batch_real": 4, "outer_loop": 2, "inner_loop": 1},
        "mtt": {"steps": 2, "width": 4, "expert_train_epochs": 3, "max_start_epoch": 1, "syn_steps": 2, "experts": 2},
        "herding": {"width": 4, "epochs": 1},
        "gtn": {"steps": 1, "inner_steps": 2, "runs": 1, "hidden": 8, "width": 4},
        "mnemonics": {"steps": 1, "epochs": 1, "runs": 1, "width": 4},
        "dd": {"steps": 1, "width": 4, "runs": 1, "batch_real": 16},
        "sldd": {"steps": 1, "width": 4, "runs": 1, "batch_real": 16},
        "ld": {"steps": 1, "width": 4, "batch_real": 16}}
TEXT_METHODS = {"tdd"}  # distil text sets; tests/unit/test_distill_bilevel.py runs them on the synthetic text task


@pytest.mark.parametrize("method", [m for m in METHODS if m not in TEXT_METHODS])
def test_every_method_returns_a_set_ordered_by_class(tiny, method):
    syn = distill(method, tiny, 2, seed=1, **FAST.get(method, {}))
    assert isinstance(syn, SyntheticSet) and syn.method == method and syn.dataset == "digits"
    if method == "full":
        assert syn.size == tiny.x_train.shape[0]
        return
    assert syn.images.shape == (20, 1, 8, 8) and torch.isfinite(syn.images).all()
    if method == "ld":  # real base images ordered by class; their learned soft labels may point elsewhere
        assert syn.soft
        return
    assert syn.hard_labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert syn.provenance["seed"] == 1 and syn.provenance["ipc"] == 2 and "seconds" in syn.provenance
    if method in ("kip", "label-solve"):
        assert syn.label_loss == "mse" and syn.soft
    if method == "mtt":
        assert syn.lr is not None and syn.lr > 0


def test_distill_is_reproducible_and_refuses_bad_input(tiny):
    a = distill("dm", tiny, 1, seed=3, **FAST["dm"])
    b = distill("dm", tiny, 1, seed=3, **FAST["dm"])
    assert torch.equal(a.images, b.images)
    with pytest.raises(ValueError, match="method must be one of"):
        distill("nope", tiny, 1)
    with pytest.raises(ValueError, match="tdd distils text sets"):
        distill("tdd", tiny, 1)
    with pytest.raises(ValueError, match="does not take option"):
        distill("dm", tiny, 1, lr_image=0.1)
    with pytest.raises(ValueError, match="ipc"):
        distill("random", tiny, 0)
    with pytest.raises(ValueError, match="exceeds"):
        distill("random", tiny, 9)


def test_dc_image_step_size_is_chosen_per_data_set(tiny):
    from teachtheory.distill.dc import default_lr_img

    assert default_lr_img("mnist1d") == 0.01 and default_lr_img("digits") == default_lr_img("cifar10") == 0.1
    syn = distill("dc", tiny, 1, seed=0, **FAST["dc"])
    assert syn.provenance["lr_img"] == 0.1
    with pytest.raises(ValueError, match="lr_img"):
        distill("dc", tiny, 1, lr_img=0.0, **FAST["dc"])


def test_kmeans_with_one_centroid_is_the_class_mean_and_herding_picks_the_nearest_image(tiny):
    means = torch.stack([tiny.x_train[tiny.y_train == c].mean(0) for c in range(10)])
    km = distill("kmeans", tiny, 1)
    assert torch.allclose(km.images, means, atol=1e-5)
    herd = distill("herding", tiny, 1, features="pixels")
    for c in range(10):
        members = tiny.x_train[tiny.y_train == c]
        nearest = members[((members - means[c]) ** 2).flatten(1).sum(1).argmin()]
        assert torch.equal(herd.images[c], nearest)


def test_dm_and_kip_lower_their_losses(tiny):
    dm = distill("dm", tiny, 2, steps=25, width=8, batch_real=8, augment=False, seed=0)
    curve = dm.provenance["loss_curve"]
    assert sum(curve[-5:]) < 0.5 * sum(curve[:5])
    kip = distill("kip", tiny, 1, steps=30, target_batch=80, lr=0.05, seed=0)
    curve = kip.provenance["loss_curve"]
    assert curve[-1] < 0.8 * curve[0]
    learned = distill("kip", tiny, 1, steps=5, target_batch=80, learn_labels=True, seed=0)
    assert not torch.allclose(learned.labels, centred_one_hot(learned.hard_labels, 10).float())


def test_label_solve_labels_beat_their_perturbations(tiny):
    syn = distill("label-solve", tiny, 1, depth=1, kernel="nngp")
    x, y_t = tiny.x_train.double(), centred_one_hot(tiny.y_train, 10)
    k_ts, k_ss = relu_kernels(x, syn.images.double(), depth=1)[0], relu_kernels(syn.images.double(), depth=1)[0]
    best = krr_loss(k_ts, k_ss, syn.labels.double(), y_t)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        moved = syn.labels.double() + 1e-2 * torch.randn(syn.labels.shape, generator=gen, dtype=torch.float64)
        assert krr_loss(k_ts, k_ss, moved, y_t) > best


def test_replicated_network_gives_each_class_its_own_gradient():
    net = make_net("convnet", (1, 8, 8), 3, width=4)
    params = net.init(1, torch.Generator().manual_seed(0))
    x = torch.randn(3, 5, 1, 8, 8)
    labels = torch.arange(3)[:, None].expand(3, 5)
    copies = {k: v.expand(3, *v.shape[1:]).clone().requires_grad_(True) for k, v in params.items()}
    together = torch.autograd.grad(batched_loss(net(copies, x), labels, "ce"), list(copies.values()))
    for c in range(3):
        leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        loss = batched_loss(net(leaves, x[c:c + 1]), labels[c:c + 1], "ce")
        alone = torch.autograd.grad(loss, list(leaves.values()))
        for g_all, g_one in zip(together, alone):
            assert torch.allclose(g_all[c], g_one[0], atol=1e-6)


def test_match_distance_sums_the_layer_distance_over_classes_and_skips_vectors():
    gen = torch.Generator().manual_seed(0)
    a = {"w": torch.randn(3, 4, 2, 3, 3, generator=gen), "b": torch.randn(3, 4, generator=gen)}
    b = {"w": torch.randn(3, 4, 2, 3, 3, generator=gen), "b": torch.randn(3, 4, generator=gen)}
    expected = sum(layer_distance(a["w"][c], b["w"][c]) for c in range(3))
    assert torch.allclose(match_distance(a, b), expected)
    assert float(layer_distance(a["b"][0], b["b"][0])) == 0.0


def test_mtt_hypergradient_methods_agree(tiny):
    common = {"steps": 1, "width": 4, "expert_train_epochs": 3, "max_start_epoch": 1, "syn_steps": 3, "experts": 1,
              "seed": 2, "augment": False}
    auto = distill("mtt", tiny, 1, unroll="autograd", **common)
    reverse = distill("mtt", tiny, 1, unroll="reverse", **common)
    assert torch.allclose(auto.images, reverse.images, atol=1e-4)
    assert abs(auto.lr - reverse.lr) < 1e-9


def test_cli_distill_writes_its_folder_and_reproduces(tmp_path):
    folders = []
    for name in ("a", "b"):
        out = tmp_path / name
        code = main(["distill", "kmeans", "--dataset", "digits", "--ipc", "1", "--eval-runs", "2", "--epochs", "2",
                     "--width", "4", "--ceiling-epochs", "1", "--out", str(out),
                     "--json", str(tmp_path / f"{name}.json")])
        assert code == 0
        for f in ("synthetic.npz", "images.png", "learning_curve.png", "accuracy.md", "metrics.json", "run.json",
                  "config.json"):
            assert (out / f).is_file(), f
        folders.append(out)
    assert (folders[0] / "metrics.json").read_bytes() == (folders[1] / "metrics.json").read_bytes()
    summary = json.loads((tmp_path / "a.json").read_text())
    assert len(summary["table"]) == 5 and all(0 <= row["mean"] <= 1 for row in summary["table"])
    assert "full training set" in summary["table"][-1]["evaluation"]


@pytest.mark.parametrize("args, fragment", [
    (["distill", "dm", "--dataset", "digits", "--ipc", "0"], "--ipc must be a positive integer"),
    (["distill", "nope", "--dataset", "digits", "--ipc", "1"], "METHOD 'nope' is unknown"),
    (["distill", "dm", "--dataset", "svhn", "--ipc", "1"], "--dataset 'svhn' is unknown"),
    (["distill", "dm", "--dataset", "mnist", "--ipc", "1"], "--data-root"),
    (["distill", "dm", "--ipc", "1"], "--dataset"),
    (["distill", "kip", "--dataset", "digits", "--ipc", "1", "--option", "kernal=nngp"], "kernal"),
    (["distill", "kip", "--dataset", "digits", "--ipc", "1", "--option", "kernel"], "KEY=VALUE"),
])
def test_cli_distill_bad_input_is_one_line_and_exit_2(args, fragment, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("teachtheory: error:") and fragment in err[0]


def test_bench_distill_rows_time_batched_against_sequential_training():
    from teachtheory import bench

    case = {"cases": (("digits", "mlp", 1),), "epochs": 2, "repeats": 1, "width": 4, "runs": 3}
    seen = []
    rows = bench.run_benchmark(runs=(1,), steps=2, dim=3, pool_size=5, teachers=("sgd",), repeats=1, warmup_steps=1,
                               progress=seen.append, distill=case)
    assert len(seen) == bench.total_items((1,), ("sgd",), distill=case)
    row = rows[-1]
    assert row["teacher"] == "distill-eval digits mlp ipc=1" and row["runs"] == 3 and row["steps"] == 2
    assert row["seconds"] > 0 and row["loop_seconds"] > 0
    assert row["loop_ratio"] == pytest.approx(row["steps_per_second"] / row["loop_steps_per_second"])
    text = bench.format_rows(rows)
    assert "distill-eval digits mlp ipc=1" in text and "one after another" in text  # the rows say what they time


def test_empirical_kernels_in_memory_bounded_chunks():
    """Drawn in chunks (a weight budget of ~3 networks here), the kernels are those of the same networks drawn
    chunk by chunk: the first chunk's equal a draw of that many networks alone, and every network's kernel is
    finite and symmetric."""
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    budget = 3 * 8 * 16 * 16  # three networks' 16 x 16 weights
    nngp, ntk = empirical_kernels(x, width=16, depth=2, networks=7, generator=torch.Generator().manual_seed(2),
                                  chunk_bytes=budget)
    assert nngp.shape == ntk.shape == (7, 5, 5)
    first = empirical_kernels(x, width=16, depth=2, networks=3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(nngp[:3], first[0]) and torch.equal(ntk[:3], first[1])
    assert torch.isfinite(ntk).all() and torch.allclose(ntk, ntk.transpose(1, 2))
    # one chunk when everything fits (the default budget): all 7 networks drawn at once, in another order of
    # draws than the chunked run (equal only if the default had chunked them the same way)
    whole = empirical_kernels(x, width=16, depth=2, networks=7, generator=torch.Generator().manual_seed(2))
    assert whole[0].shape == nngp.shape and not torch.equal(whole[0], nngp)
