"""Hypothesis properties of the SSL toolkit: the connection identity f = K_l^T vec W_l, the
covariance-operator identity on random finite models and networks, PSD-ness, batching, the
one-neuron closed form and HLTM enumeration. Hypothesis draws shapes, parameters and seeds; the
tensors are built inside the tests."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from teachtheory.ssl import HLTM, CircularTranslation, ReLUNet, population_operators
from teachtheory.ssl.training import exact_expected_gradient
from teachtheory.theory import ssl as theory

DT = torch.float64
PROFILE = settings(max_examples=30, deadline=None)

widths_st = st.lists(st.integers(1, 6), min_size=1, max_size=3)


@PROFILE
@given(n0=st.integers(1, 6), hidden=widths_st, runs=st.integers(1, 3), seed=st.integers(0, 10_000),
       relu_out=st.booleans())
def test_connection_identity(n0, hidden, runs, seed, relu_out):
    widths = [n0, *hidden]
    net = ReLUNet(widths, output="relu" if relu_out else "linear")
    W = net.init(seed, runs)
    x = torch.randn(runs, 5, n0, dtype=DT, generator=torch.Generator().manual_seed(seed))
    f = net.outputs(W, x)
    for layer in range(1, net.depth + 1):
        K = net.connection(W, x, layer)
        recon = torch.einsum("rmpo,rp->rmo", K, W[layer - 1].reshape(runs, -1))
        assert torch.allclose(recon, f, atol=1e-12 * (1 + float(f.abs().max())))


@PROFILE
@given(depth=st.integers(1, 2), delta=st.floats(-0.95, 0.95), root_prob=st.floats(0.1, 0.9),
       hidden=st.lists(st.integers(1, 5), min_size=1, max_size=2), out=st.integers(1, 3),
       beta=st.floats(-0.5, 2.0), seed=st.integers(0, 10_000))
def test_covariance_operator_identity_on_hltm(depth, delta, root_prob, hidden, out, beta, seed):
    model = HLTM(depth, delta, root_prob=root_prob)
    e = model.enumerate(DT)
    net = ReLUNet([model.input_dim, *hidden, out])
    W = net.init(seed, 2)
    grads = exact_expected_gradient(net, W, e, beta=beta)
    for layer in range(1, net.depth + 1):
        ops = population_operators(net, W, e, layer)
        pred = theory.expected_gradient(ops["V"], ops["w"], beta=beta, EV=ops["EV"])
        scale = 1e-12 * (1 + float(grads[layer - 1].abs().max()) + float(pred.abs().max()))
        assert torch.allclose(grads[layer - 1], pred, atol=scale)
        # V and E V_{x|z} are PSD
        for M in (ops["V"], ops["EV"]):
            assert float(torch.linalg.eigvalsh(M).min()) >= -1e-10 * (1 + float(M.abs().max()))


@PROFILE
@given(length=st.integers(4, 9), patterns=st.sampled_from([("11", "101"), ("1", "11", "111"), ("101", "1001")]),
       seed=st.integers(0, 10_000), hidden=st.integers(1, 5))
def test_covariance_operator_identity_on_circle(length, patterns, seed, hidden):
    model = CircularTranslation(patterns, length=length)
    e = model.enumerate(DT)
    net = ReLUNet([length, hidden, 2])
    W = net.init(seed, 1)
    g = exact_expected_gradient(net, W, e)
    for layer in (1, 2):
        ops = population_operators(net, W, e, layer)
        pred = theory.expected_gradient(ops["V"], ops["w"])
        assert torch.allclose(g[layer - 1], pred, atol=1e-12 * (1 + float(pred.abs().max())))


@PROFILE
@given(runs=st.integers(2, 5), index=st.integers(0, 4), seed=st.integers(0, 10_000))
def test_batched_run_equals_single(runs, index, seed):
    index = index % runs
    net = ReLUNet([4, 3, 2])
    W = net.init(seed, runs)
    Wi = net.init(seed + index, 1)
    assert all(torch.equal(a[index:index + 1], b) for a, b in zip(W, Wi))
    model = HLTM(2, 0.5)
    from teachtheory.random import RunStreams, as_seeds

    z, x = model.sample_views(RunStreams(as_seeds(seed, runs)), 3, 6, 2, DT)
    zi, xi = model.sample_views(RunStreams(as_seeds(seed + index, 1)), 3, 6, 2, DT)
    assert torch.equal(z[index:index + 1], zi) and torch.equal(x[index:index + 1], xi)


@PROFILE
@given(w1=st.floats(-2, 2), w2=st.floats(-2, 2), length=st.integers(4, 12), background=st.floats(-0.5, 0.5))
def test_one_neuron_closed_form(w1, w2, length, background):
    w = torch.tensor([[w1, w2]], dtype=DT)
    x_values = theory.one_neuron_inputs(1.0, background)
    if any(abs(float(w[0] @ x)) < 1e-9 for x in x_values.values()):
        return  # a gate exactly on its boundary: the ReLU derivative convention decides, not the theory
    e = CircularTranslation(("11", "101"), length=length, window=2, background=background).enumerate(DT)
    V = population_operators(ReLUNet([2, 1], output="relu"), [w[:, :, None]], e, 1)["V"]
    assert torch.allclose(V, theory.one_neuron_operator(w, length, background=background), atol=1e-14)
    V_lin = population_operators(ReLUNet([2, 1]), [w[:, :, None]], e, 1)["V"]
    assert float(V_lin.abs().max()) < 1e-14


@PROFILE
@given(depth=st.integers(1, 3), delta=st.floats(-1.0, 1.0), root_prob=st.floats(0.05, 0.95))
def test_hltm_enumeration_consistent(depth, delta, root_prob):
    m = HLTM(depth, delta, root_prob=root_prob)
    e = m.enumerate(DT)
    assert torch.allclose(e.p_input.sum(1), torch.ones(2, dtype=DT))
    agree = torch.einsum("zn,ni,z->zi", e.p_input, e.inputs, e.latent_values.to(DT))  # E[leaf * z0 | z0]
    assert torch.allclose(agree, torch.full_like(agree, delta**depth), atol=1e-12)
    post = m.root_posterior(e.inputs)
    ok = e.marginal > 1e-300
    exact = e.p_latent[1] * e.p_input[1] / e.marginal.clamp_min(1e-300)
    assert torch.allclose(post[ok], exact[ok], atol=1e-10)
    assert math.isclose(float(e.marginal.sum()), 1.0, rel_tol=1e-12)
