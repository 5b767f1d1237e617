"""GTN (generator, curriculum, weight norm) and Mnemonics (class-incremental exemplars) at tiny scale."""

import numpy as np
import pytest
import torch

from teachtheory.distill import distill, load_dataset
from teachtheory.distill.gtn import Generator, LearnerLayout, gtn_networks, meta_gradient_norms, normalised
from teachtheory.distill.mnemonics import incremental, phase_classes
from teachtheory.distill.nets import make_net


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").subset(train_size=200, test_size=100)


def test_normalised_rows_have_norm_g():
    V = torch.randn(3, 5, 4, 2)
    g = torch.rand(3, 5) + 0.5
    W = normalised(V, g, 1)
    assert torch.allclose(W.flatten(2).norm(dim=2), g, atol=1e-6)
    # input-major generator weights: one norm per output column
    V2, g2 = torch.randn(2, 7, 3), torch.rand(2, 3) + 0.5
    assert torch.allclose(normalised(V2, g2, 2).norm(dim=1), g2, atol=1e-6)


@pytest.mark.parametrize("net", ["mlp", "convnet"])
def test_weight_norm_layout_starts_at_the_plain_network(net):
    spec = make_net(net, (1, 8, 8), 10, width=8)
    params = spec.init(2, torch.Generator().manual_seed(0))
    layout = LearnerLayout(spec, True)
    theta = layout.pack(params)
    assert len(theta) > len(params)  # weights became (V, g)
    back = layout.unpack(theta)
    for k in params:
        assert torch.allclose(back[k], params[k], atol=1e-6), k


def test_generator_shapes_and_weight_norm_flag():
    for wn in (True, False):
        gen = Generator(4, 10, (1, 8, 8), hidden=16, weight_norm=wn)
        params = gen.init(3, torch.Generator().manual_seed(1))
        assert len(params) == 3 * gen.per_layer
        out = gen(params, torch.randn(3, 5, 4), torch.arange(5))
        assert out.shape == (3, 5, 1, 8, 8)


def test_gtn_api_and_replay(digits):
    syn = distill("gtn", digits, 2, steps=2, inner_steps=3, runs=2, seed=3)
    assert syn.method == "gtn" and syn.size == 20 and len(syn.provenance["lrs"]) == 3
    assert len(syn.provenance["meta_grad_norms"]) == 2
    spec, params = gtn_networks(syn, digits, runs=3, inner_steps=2)
    assert params["head.weight"].shape[0] == 3
    with pytest.raises(ValueError, match="inner_steps"):
        gtn_networks(syn, digits, inner_steps=9)
    with pytest.raises(ValueError, match="does not take"):
        distill("gtn", digits, 1, steps=1, bogus=1)
    with pytest.raises(ValueError, match="unroll"):
        distill("gtn", digits, 1, steps=1, unroll="nope")


def test_meta_gradient_norms_are_per_run(digits):
    """One positive meta-gradient norm per run and length; independent runs give different norms."""
    norms = meta_gradient_norms(digits, (1, 2), weight_norm=True, runs=3, seed=5, hidden=16, width=8)
    assert norms.shape == (3, 2) and np.all(norms > 0)
    assert not np.allclose(norms[0], norms[1])


def test_phase_classes_and_errors():
    assert phase_classes(10, (2, 2, 2, 2, 2))[1] == [2, 3]
    with pytest.raises(ValueError, match="sum"):
        phase_classes(10, (2, 2))
    with pytest.raises(ValueError, match="positive"):
        phase_classes(10, (0, 10))


def test_incremental_herding_and_mnemonics(digits):
    out = {ex: incremental(digits, exemplars=ex, memory=1, phases=(4, 3, 3), runs=2, epochs=2, steps=2, width=8)
           for ex in ("herding", "mnemonics")}
    for r in out.values():
        assert r["accuracy"].shape == (2, 3) and r["average"].shape == (2,)
        assert r["images"].shape[0] == 7  # one exemplar for each class of the first two phases
    assert not torch.equal(out["herding"]["images"], out["mnemonics"]["images"])  # the bilevel fit moved them
    assert torch.equal(out["herding"]["labels"], out["mnemonics"]["labels"])
    with pytest.raises(ValueError, match="exemplars"):
        incremental(digits, exemplars="random")
