"""Self-supervised learning: generative models, ReLU networks and their connections K_l, the
covariance-operator closed forms, training loops, the ssl.* claims and the ssl-hltm simulation.

Enumeration is checked against sampling (within 5 SE), the K_l identity against the forward pass
and autograd, batched runs against single runs with the same seeds, and bad inputs must raise a
ValueError naming the argument. The claims run at quick scale and must give their established
verdicts; with ``power=True`` (a wrong constant) they must fail.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from teachtheory.claims import CLAIMS, CheckContext, select_claims
from teachtheory.random import RunStreams, as_seeds
from teachtheory.references import cite
from teachtheory.ssl import HLTM, Blocks, CircularTranslation, ReLUNet, population_operators
from teachtheory.ssl import training as tr
from teachtheory.theory import ssl as theory

DT = torch.float64
Z = 5.0


# -- generative models ------------------------------------------------------------------------


@pytest.mark.parametrize("model", [HLTM(3, 0.7), HLTM(2, -0.4, root_prob=0.3), CircularTranslation(length=6),
                                   CircularTranslation(("11", "101", "1001"), length=7, window=3, background=0.2,
                                                       pattern_probs=[0.2, 0.5, 0.3])])
def test_enumeration_matches_sampling(model):
    e = model.enumerate(DT)
    assert torch.allclose(e.p_input.sum(1), torch.ones(e.p_input.shape[0], dtype=DT))
    assert torch.isclose(e.p_latent.sum(), torch.tensor(1.0, dtype=DT))
    n = 40_000
    z, x = model.sample_views(RunStreams(as_seeds(3, 1)), 0, n, 2, DT)
    z, x = z[0], x[0]
    latent_index = (z > 0).long() if isinstance(model, HLTM) else z
    # class frequencies, class-conditional means of a view, and the positive-pair second moment
    for k in range(e.p_latent.shape[0]):
        freq = (latent_index == k).to(DT)
        assert abs(float(freq.mean() - e.p_latent[k])) <= Z * float(freq.std()) / math.sqrt(n)
        sel = x[latent_index == k, 0]
        exact = e.p_input[k] @ e.inputs
        assert ((sel.mean(0) - exact).abs() <= Z * sel.std(0).clamp_min(1e-12) / math.sqrt(sel.shape[0]) + 1e-12).all()
    pair = x[:, 0, :, None] * x[:, 1, None, :]
    exact_pair = torch.einsum("ab,ai,bj->ij", e.positive_pair_weights(), e.inputs, e.inputs)
    assert ((pair.mean(0) - exact_pair).abs() <= Z * pair.std(0).clamp_min(1e-12) / math.sqrt(n) + 1e-12).all()


def test_hltm_leaf_root_correlation_and_posterior():
    m = HLTM(3, 0.6, root_prob=0.35)
    e = m.enumerate(DT)
    # E[leaf * root] = delta^depth
    corr = torch.einsum("z,zn,ni->i", e.p_latent * e.latent_values.to(DT), e.p_input, e.inputs)
    mean_root = float((e.p_latent * e.latent_values.to(DT)).sum())
    mean_leaf = torch.einsum("n,ni->i", e.marginal, e.inputs)
    assert torch.allclose(corr, torch.full_like(corr, 0.6**3))
    assert torch.allclose(mean_leaf, torch.full_like(mean_leaf, mean_root * 0.6**3))
    post = m.root_posterior(e.inputs)
    exact = e.p_latent[1] * e.p_input[1] / e.marginal
    assert torch.allclose(post, exact, atol=1e-12)


def test_circular_images_and_blocks():
    c = CircularTranslation(("11", "101"), length=5)
    img = c.images()
    assert img.shape == (2, 5, 5) and bool((img.sum(-1) == 2).all())
    assert img[1, 4].tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]  # '101' starting at 4 wraps to positions 4 and 1
    b = Blocks(HLTM(1, 0.5), 3)
    e = b.enumerate(DT)
    assert e.inputs.shape == (64, 6) and e.p_input.shape == (8, 64)
    assert torch.allclose(e.p_input.sum(1), torch.ones(8, dtype=DT))
    z, x = b.sample_views(RunStreams(as_seeds(0, 2)), 0, 10, 2, DT)
    assert z.shape == (2, 10, 3) and x.shape == (2, 10, 2, 6)


@pytest.mark.parametrize("make, arg", [
    (lambda: HLTM(0, 0.5), "depth"), (lambda: HLTM(2, 1.5), "delta"), (lambda: HLTM(2, 0.5, noise=-1), "noise"),
    (lambda: HLTM(2, 0.5, root_prob=1.0), "root_prob"), (lambda: HLTM(2, 0.5, noise=0.1).enumerate(), "noise"),
    (lambda: HLTM(5, 0.5).enumerate(), "depth"), (lambda: CircularTranslation(("12",), length=4), "patterns"),
    (lambda: CircularTranslation(("11111",), length=4), "patterns"), (lambda: CircularTranslation(length=1), "length"),
    (lambda: CircularTranslation(length=4, window=5), "window"),
    (lambda: CircularTranslation(length=4, pattern_probs=[0.9, 0.3]), "pattern_probs"),
    (lambda: Blocks(HLTM(2, 0.5), 0), "blocks"), (lambda: Blocks(HLTM(3, 0.5), 3).enumerate(), "blocks"),
    (lambda: HLTM(2, 0.5).sample_views(RunStreams(as_seeds(0, 1)), 0, 0), "n"),
    (lambda: HLTM(2, 0.5).root_posterior(torch.zeros(3)), "x"),
])
def test_model_bad_inputs(make, arg):
    with pytest.raises(ValueError, match=arg):
        make()


# -- networks and the connection K_l ------------------------------------------------------------


@pytest.mark.parametrize("widths, output", [([5, 1], "relu"), ([5, 4, 3], "linear"), ([5, 6, 4, 3], "linear"),
                                            ([5, 6, 4, 3], "relu")])
def test_connection_identity_and_jacobian(widths, output):
    net = ReLUNet(widths, output=output)
    W = net.init(0, 3)
    x = torch.randn(7, widths[0], dtype=DT, generator=torch.Generator().manual_seed(1))
    f = net.outputs(W, x)
    for layer in range(1, net.depth + 1):
        K = net.connection(W, x, layer)
        assert K.shape == (3, 7, widths[layer - 1] * widths[layer], widths[-1])
        assert torch.allclose(torch.einsum("rmpo,rp->rmo", K, W[layer - 1].reshape(3, -1)), f, atol=1e-12)
        # K_l^T is the Jacobian of f with respect to vec(W_l) (autograd, one run, one input)
        def f_of(wl, layer=layer):
            ws = [w[:1] for w in W]
            ws[layer - 1] = wl.reshape(1, *W[layer - 1].shape[1:])
            return net.outputs(ws, x[:1])[0, 0]
        jac = torch.autograd.functional.jacobian(f_of, W[layer - 1][:1].reshape(-1))
        assert torch.allclose(jac, K[0, 0].T, atol=1e-12)


def test_normalized_output_connection_annihilates_weights():
    net = ReLUNet([4, 6, 3], normalize=True)
    W = net.init(2, 2)
    x = torch.randn(5, 4, dtype=DT, generator=torch.Generator().manual_seed(0))
    norms = net.outputs(W, x).norm(dim=-1)
    # unit norm, except where every hidden ReLU is off and the output is exactly zero (nothing to normalise)
    hidden_off = (x @ W[0] <= 0).all(-1)
    assert torch.allclose(norms[~hidden_off], torch.ones_like(norms[~hidden_off]))
    assert bool((norms[hidden_off] == 0).all()) and int((~hidden_off).sum()) >= 5
    for layer in (1, 2):
        K = net.connection(W, x, layer)
        assert torch.einsum("rmpo,rp->rmo", K, W[layer - 1].reshape(2, -1)).abs().max() < 1e-12


def test_masked_network_has_zero_rows():
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    net = ReLUNet([3, 2, 1], masks=[mask, None])
    W = net.init(0, 2)
    assert bool((W[0][:, mask == 0] == 0).all())
    K = net.connection(W, torch.randn(4, 3, dtype=DT), 1)
    assert bool((K[:, :, (mask == 0).reshape(-1)] == 0).all())


def test_network_batched_equals_single_run():
    net = ReLUNet([6, 5, 4, 2])
    seeds = [11, 4, 29]
    W = net.init(seeds)
    x = torch.randn(3, 8, 6, dtype=DT, generator=torch.Generator().manual_seed(5))
    K = net.connections(W, x)
    for r, s in enumerate(seeds):
        Wr = net.init([s])
        assert all(torch.equal(a[r:r + 1], b) for a, b in zip(W, Wr))
        Kr = net.connections(Wr, x[r:r + 1])
        assert all(torch.allclose(a[r:r + 1], b, atol=1e-13) for a, b in zip(K, Kr))


@pytest.mark.parametrize("call, arg", [
    (lambda: ReLUNet([3]), "widths"), (lambda: ReLUNet([3, 2], output="tanh"), "output"),
    (lambda: ReLUNet([3, 2], masks=[torch.ones(2, 2)]), "masks"),
    (lambda: ReLUNet([3, 2]).outputs(ReLUNet([3, 2]).init(0, 1), torch.zeros(4, 5)), "x"),
    (lambda: ReLUNet([3, 2]).outputs(ReLUNet([3, 2]).init(0, 1), torch.full((4, 3), float("nan"))), "x"),
    (lambda: ReLUNet([3, 2]).connection(ReLUNet([3, 2]).init(0, 1), torch.zeros(4, 3), 2), "layer"),
    (lambda: ReLUNet([3, 2]).outputs([torch.zeros(1, 2, 2)], torch.zeros(4, 3)), "weights"),
    (lambda: ReLUNet([3, 2]).init(0, 1, scale=-1.0), "scale"),
])
def test_network_bad_inputs(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


# -- covariance operator: closed forms vs enumeration and sampling ----------------------------------


def test_operators_match_direct_sums():
    model = CircularTranslation(("11", "101", "111"), length=5, pattern_probs=[0.5, 0.3, 0.2])
    e = model.enumerate(DT)
    net = ReLUNet([5, 4, 2])
    W = net.init(1, 1)
    ops = population_operators(net, W, e, 1)
    K = ops["K"][0]
    Kbar = [sum(float(e.p_input[z, n]) * K[n] for n in range(K.shape[0])) for z in range(3)]
    m = sum(float(e.p_latent[z]) * Kbar[z] for z in range(3))
    V = sum(float(e.p_latent[z]) * (Kbar[z] - m) @ (Kbar[z] - m).T for z in range(3))
    EV = sum(float(e.p_latent[z] * e.p_input[z, n]) * (K[n] - Kbar[z]) @ (K[n] - Kbar[z]).T
             for z in range(3) for n in range(K.shape[0]))
    assert torch.allclose(ops["V"][0], V, atol=1e-14) and torch.allclose(ops["EV"][0], EV, atol=1e-14)
    assert torch.linalg.eigvalsh(ops["V"][0]).min() > -1e-14  # PSD


@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_exact_gradient_identity_and_methods(beta):
    model = HLTM(2, 0.6, root_prob=0.4)
    e = model.enumerate(DT)
    net = ReLUNet([4, 5, 3, 2])
    W = net.init(7, 2)
    g_pairs = tr.exact_expected_gradient(net, W, e, beta=beta)
    g_moments = tr.exact_expected_gradient(net, W, e, beta=beta, method="moments")
    g_stop = tr.exact_expected_gradient(net, W, e, beta=beta, stop_gradient=True)
    pi = theory.other_latent_pairing(e.p_latent)
    g_other = tr.exact_expected_gradient(net, W, e, beta=beta, pi_negative=pi)
    for layer in range(1, 4):
        ops = population_operators(net, W, e, layer)
        pred = theory.expected_gradient(ops["V"], ops["w"], beta=beta, EV=ops["EV"])
        assert torch.allclose(g_pairs[layer - 1], pred, atol=1e-12)
        assert torch.allclose(g_moments[layer - 1], pred, atol=1e-12)
        assert torch.allclose(g_stop[layer - 1], pred / 2, atol=1e-12)
        assert torch.allclose(g_other[layer - 1],
                              theory.pairing_gradient(ops["S"], ops["Kbar"], e.p_latent, pi, ops["w"], beta=beta),
                              atol=1e-12)


def test_uniform_other_latent_constant():
    e = HLTM(2, 0.7).enumerate(DT)
    net = ReLUNet([4, 3, 2])
    W = net.init(0, 2)
    g = tr.exact_expected_gradient(net, W, e, pi_negative=theory.other_latent_pairing(e.p_latent))
    ops = population_operators(net, W, e, 1)
    assert theory.uniform_other_latent_constant(2) == -4.0
    assert torch.allclose(g[0], theory.expected_gradient(ops["V"], ops["w"], constant=-4.0), atol=1e-12)


def test_sampled_gradient_matches_exact_within_se():
    model = HLTM(2, 0.8)
    e = model.enumerate(DT)
    net = ReLUNet([4, 6, 2])
    W = net.init(3, 1)
    streams = RunStreams(as_seeds(9, 1))
    n, groups = 20_000, 50
    _, xa = model.sample_views(streams, 0, n, 2, DT, tag="a")
    _, xn = model.sample_views(streams, 0, n, 1, DT, tag="n")
    grads = tr.sampled_gradients(net, W, xa[:, :, 0], xa[:, :, 1], xn[:, :, 0], groups, beta=0.3)
    exact = tr.exact_expected_gradient(net, W, e, beta=0.3)
    for g, ex in zip(grads, exact):
        se = g.std(1) / math.sqrt(groups)
        assert ((g.mean(1) - ex).abs() <= Z * se).all()
    # a wrong constant is detected by the same comparison
    ops = population_operators(net, W, e, 2)
    wrong = theory.expected_gradient(ops["V"], ops["w"], beta=0.3, EV=ops["EV"], constant=-1.0)
    assert ((grads[1].mean(1) - wrong).abs() > Z * grads[1].std(1) / math.sqrt(groups)).any()


def test_symbolic_twins():
    sym = theory.symbolic_covariance_operator()
    assert all(v == 0 for v in sym["independent"]) and all(v == 0 for v in sym["other_latent"])
    assert any(v != 0 for v in sym["other_latent_vs_printed"])
    gap, u_lin = theory.symbolic_one_neuron()
    assert all(v == 0 for v in gap) and all(v == 0 for v in u_lin)
    assert all(v == 0 for pair in theory.symbolic_two_layer() for v in pair)


def test_one_neuron_closed_form_against_enumeration():
    for d, c in ((4, 0.0), (9, 0.5)):
        model = CircularTranslation(("11", "101"), length=d, window=2, background=c)
        e = model.enumerate(DT)
        net = ReLUNet([2, 1], output="relu")
        W = net.init(d, 50, scale=1.0)
        V = population_operators(net, W, e, 1)["V"]
        assert torch.allclose(V, theory.one_neuron_operator(W[0][:, :, 0], d, background=c), atol=1e-15)
    # all three of x11, x10, x01 open (w > 0): u = 0; w1 > 0 > w2 with w1 + w2 < 0: u = -x10
    assert theory.one_neuron_u(torch.tensor([1.0, 2.0], dtype=DT)).abs().max() == 0
    assert theory.one_neuron_u(torch.tensor([1.0, -2.0], dtype=DT)).tolist() == [-1.0, 0.0]
    with pytest.raises(ValueError, match="length"):
        theory.one_neuron_operator(torch.ones(2, dtype=DT), 3)
    with pytest.raises(ValueError, match="w"):
        theory.one_neuron_u(torch.ones(3, dtype=DT))


def test_theory_bad_inputs():
    K = torch.zeros(3, 2, 1, dtype=DT)
    with pytest.raises(ValueError, match="p_input"):
        theory.augment_mean(K, torch.tensor([[0.5, 0.6, 0.0]], dtype=DT))
    with pytest.raises(ValueError, match="EV"):
        theory.expected_gradient(torch.eye(2, dtype=DT), torch.ones(2, dtype=DT), beta=0.5)
    with pytest.raises(ValueError, match="p_latent"):
        theory.other_latent_pairing(torch.tensor([1.0, 0.0], dtype=DT))
    with pytest.raises(ValueError, match="num_latents"):
        theory.uniform_other_latent_constant(1)


# -- training ------------------------------------------------------------------------------------


def test_info_nce_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    z1 = torch.nn.functional.normalize(torch.randn(1, 3, 4, generator=g, dtype=DT), dim=-1)
    z2 = torch.nn.functional.normalize(torch.randn(1, 3, 4, generator=g, dtype=DT), dim=-1)
    z = torch.cat([z1[0], z2[0]])
    tau, B = 0.5, 3
    total = 0.0
    for i in range(2 * B):
        pos = (i + B) % (2 * B)
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * B) if k != i)
        total += -(float(z[i] @ z[pos]) / tau - math.log(denom))
    assert float(tr.info_nce(z1, z2, tau)[0]) == pytest.approx(total / (2 * B), rel=1e-12)


def test_split_half_trace_is_unbiased():
    model = HLTM(3, 0.8)
    e = model.enumerate(DT)
    net = ReLUNet([8, 6, 3])
    W = net.init(4, 1)
    exact = torch.diagonal(population_operators(net, W, e, 1)["V"][0]).sum()
    reps, n = 200, 64
    Wr = [w.expand(reps, *w.shape[1:]) for w in W]
    root = torch.cat([-torch.ones(reps, n // 4), torch.ones(reps, n // 4)] * 2, 1).to(DT)
    _, x = model.sample_tree(RunStreams(as_seeds(0, reps)), 0, n, 1, DT, root=root)
    acts, _ = net.forward(Wr, x[:, :, 0])
    est = tr.split_half_covariance_trace(acts[0], net.jacobians(Wr, x[:, :, 0])[0], root)
    assert abs(float(est.mean() - exact)) <= Z * float(est.std()) / math.sqrt(reps)


def test_training_batched_equals_single_run():
    model = HLTM(3, 0.8)
    s_cfg = tr.SimCLRConfig(widths=(8, 6, 4), batch=16, eval_every=2, eval_samples=32)
    b_cfg = tr.BYOLConfig(widths=(8, 6, 4), predictor_hidden=4, batch=16, eval_every=2, eval_samples=32)
    batched = tr.train_simclr(model, 3, 3, 10, s_cfg, dtype=DT)
    single = tr.train_simclr(model, 1, 3, 12, s_cfg, dtype=DT)
    assert torch.allclose(batched["weights"][0][2:3], single["weights"][0], atol=1e-12)
    assert torch.allclose(batched["corr"][2:3], single["corr"], atol=1e-10)
    bb = tr.train_byol(model, 2, 3, 10, b_cfg, dtype=DT)
    bs = tr.train_byol(model, 1, 3, 11, b_cfg, dtype=DT)
    assert torch.allclose(bb["loss"][1:2], bs["loss"], atol=1e-10)
    assert torch.allclose(bb["spread"][1:2], bs["spread"], atol=1e-10)


@pytest.mark.parametrize("kwargs, arg", [({"runs": 0}, "runs"), ({"steps": -1}, "steps"),
                                         ({"cfg": tr.SimCLRConfig(widths=(5, 4, 2))}, "widths"),
                                         ({"cfg": tr.SimCLRConfig(widths=(8, 4, 2), lr=0.0)}, "lr")])
def test_training_bad_inputs(kwargs, arg):
    args = {"model": HLTM(3, 0.8), "runs": 1, "steps": 1, "seed": 0, "cfg": tr.SimCLRConfig(widths=(8, 4, 2))}
    args.update(kwargs)
    with pytest.raises(ValueError, match=arg):
        tr.train_simclr(**args)


# -- claims ---------------------------------------------------------------------------------------

SSL_CLAIMS = {"ssl.covariance-operator": "holds", "ssl.one-neuron": "holds", "ssl.two-layer": "holds"}


@pytest.fixture(scope="module")
def verdicts():
    return {c.id: c.run(CheckContext(scale="quick", seed=0)) for c in select_claims(list(SSL_CLAIMS))}


@pytest.fixture(scope="module")
def power_verdicts():
    return {c.id: c.run(CheckContext(scale="quick", seed=0, power=True)) for c in select_claims(list(SSL_CLAIMS))}


@pytest.mark.parametrize("cid", list(SSL_CLAIMS))
def test_ssl_claim_quick_verdict(verdicts, cid):
    v = verdicts[cid]
    assert v.verdict == SSL_CLAIMS[cid], (cid, v.message, v.details.get("traceback"))
    assert v.statistic is not None and v.tolerance is not None and v.tolerance_rule
    claim = CLAIMS[cid]
    assert claim.source.startswith(cite("tian-talk")) and claim.statement and claim.assumptions and claim.method


@pytest.mark.parametrize("cid", list(SSL_CLAIMS))
def test_ssl_claim_power_check_fails(power_verdicts, cid):
    v = power_verdicts[cid]
    assert v.verdict == "fails", (cid, v.verdict, v.message, v.details.get("traceback"))


def test_ssl_claim_details(verdicts):
    cov = verdicts["ssl.covariance-operator"].details
    assert cov["worst_exact_relative_error"] < 1e-9 and cov["stop_gradient_half_error"] < 1e-9
    assert cov["printed_form_with_other_latent_negatives_relative_error"]["min"] > 0.05  # pairing matters
    assert cov["other_latent_pairing_formula_error"] < 1e-9 and cov["uniform_other_latent_constant_error"] < 1e-9
    two = verdicts["ssl.two-layer"].details
    assert two["cross_covariance_max"] < 1e-12 and two["shared_root_cross_covariance"] > 1e-3
    assert two["population_gd_relative_error"] < 1e-9


# -- simulation ---------------------------------------------------------------------------------------


def test_ssl_hltm_simulation_writes_and_reproduces(tmp_path):
    from teachtheory.simulation import get_simulation, run_simulation

    sim = get_simulation("ssl-hltm")
    assert sim.runner is not None and set(sim.defaults) == {"small", "full"}
    calls = []
    result = run_simulation("ssl-hltm", tmp_path / "a", runs=2, steps=2, seed=1,
                            progress=lambda label, done, total: calls.append((label, done, total)))
    assert (tmp_path / "a" / "config.json").exists() and (tmp_path / "a" / "metrics.json").exists()
    assert all(p.endswith(".png") for p in result["figures"]) and len(result["figures"]) == 2
    assert "SimCLR" in result["table"] and "BYOL P, EMA, BN" in result["table"] and len(result["table"]) == 10
    assert calls[-1][1] == calls[-1][2] == 2 * 9
    again = run_simulation("ssl-hltm", tmp_path / "b", runs=2, steps=2, seed=1)
    assert again["table"] == result["table"]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["methods"]["SimCLR"]["cov_trace_mean"] and metrics["reference"]["bayes_accuracy"][0] > 0.5


# -- InfoNCE <-> L2 and BatchNorm's zero-mean gradient -------------------------------------------------------


@pytest.mark.parametrize("mode", ["mu", "sigma", "mu,sigma", "mu#", "mu,sigma#", "none"])
def test_bn_closed_form_gradient_matches_autograd(mode):
    g = torch.Generator().manual_seed(0)
    h = (torch.randn(2, 12, 4, generator=g, dtype=torch.float64) + 1.0).requires_grad_(True)
    z = theory.bn_forward(h, mode)
    weights = torch.randn(z.shape, generator=g, dtype=torch.float64)
    g_z, g_h = torch.autograd.grad((torch.sin(z) * weights).sum(), (z, h))
    assert torch.allclose(theory.bn_input_gradient(h.detach(), g_z, mode), g_h, atol=1e-13)
    zero_mean = bool(g_h.mean(-2).abs().max() < 1e-13)
    assert zero_mean == (mode in ("mu", "mu,sigma", "mu,sigma#"))
    with pytest.raises(ValueError, match="mode"):
        theory.bn_forward(h, "mean")


def test_infonce_distance_bad_inputs():
    with pytest.raises(ValueError, match="tau"):
        theory.infonce_distance(torch.zeros(3), torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="r_neg"):
        theory.infonce_distance(torch.zeros(3), torch.zeros(2, 2), 1.0)


@pytest.mark.parametrize("cid", ["ssl.infonce-l2", "ssl.bn-zero-mean"])
def test_exact_ssl_claims_hold(cid):
    (claim,) = select_claims([cid])
    v = claim.run(CheckContext(scale="quick", seed=0))
    assert v.verdict == "holds", v.message
    assert v.statistic <= 1e-9 and claim.mutations
    mutated = claim.run(CheckContext(scale="quick", seed=0).mutated(claim.mutations[0], 0.05))
    assert mutated.verdict == "fails"


def test_byol_bn_modes_linear_predictor_and_reinit():
    model = HLTM(3, 0.8)
    base = dict(widths=(8, 6, 4), predictor_hidden=4, batch=16, eval_every=2, eval_samples=32)
    full = tr.train_byol(model, 2, 3, 10, tr.BYOLConfig(**base), dtype=DT)
    same = tr.train_byol(model, 2, 3, 10, tr.BYOLConfig(**base, bn_mode="mu,sigma"), dtype=DT)
    assert torch.allclose(full["loss"], same["loss"], atol=1e-12)  # bn=True is the mu,sigma variant
    plain = tr.train_byol(model, 2, 3, 10, tr.BYOLConfig(**base, bn=False), dtype=DT)
    none = tr.train_byol(model, 2, 3, 10, tr.BYOLConfig(**base, bn_mode="none"), dtype=DT)
    assert torch.allclose(plain["loss"], none["loss"], atol=1e-12)
    detached = tr.train_byol(model, 2, 3, 10, tr.BYOLConfig(**base, bn_mode="mu#,sigma#"), dtype=DT)
    assert torch.allclose(detached["loss"][:, 0], full["loss"][:, 0], atol=1e-12)  # same forward pass at step 0
    assert not torch.allclose(detached["loss"][:, -1], full["loss"][:, -1], atol=1e-9)  # different gradients
    lin = tr.train_byol(model, 2, 4, 10, tr.BYOLConfig(**base, predictor_kind="linear"), dtype=DT)
    assert [tuple(w.shape) for w in lin["predictor"]] == [(2, 4, 4)]
    reinit = tr.train_byol(model, 2, 4, 10, tr.BYOLConfig(**base, predictor_kind="linear", predictor_reinit=2),
                           dtype=DT)
    assert torch.allclose(reinit["loss"][:, :2], lin["loss"][:, :2], atol=1e-12)
    assert not torch.allclose(reinit["predictor"][0], lin["predictor"][0])
    for bad, arg in (({"bn_mode": "mu-sigma"}, "bn_mode"), ({"predictor_kind": "deep"}, "predictor_kind"),
                     ({"predictor_reinit": -1}, "predictor_reinit")):
        with pytest.raises(ValueError, match=arg):
            tr.BYOLConfig(**base, **bad)


# -- BYOL's linear predictor ---------------------------------------------------------------------------------


def test_predictor_alignment_closed_forms():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(4, 5, 5, generator=g, dtype=DT)
    F = A @ A.transpose(1, 2)
    assert float(theory.commutator_misalignment(theory.directpred_predictor(F), F).max()) < 1e-12
    sym = A + A.transpose(1, 2)  # a generic symmetric matrix does not commute with F
    assert float(theory.commutator_misalignment(sym, F).min()) > 1e-3
    assert torch.allclose(theory.effective_rank(torch.eye(5, dtype=DT)), torch.tensor(5.0, dtype=DT))
    u = torch.randn(5, 1, generator=g, dtype=DT)
    assert abs(float(theory.effective_rank(u @ u.T)) - 1.0) < 1e-9
    with pytest.raises(ValueError, match="Wp and F"):
        theory.commutator_misalignment(torch.zeros(3, 4), torch.zeros(3, 3))


@pytest.mark.slow
def test_byol_predictor_claim_holds_and_power_fails():
    (claim,) = select_claims(["ssl.byol-predictor"])
    v = claim.run(CheckContext(scale="quick", seed=0))
    assert v.verdict == "holds", (v.message, v.details.get("traceback"))
    table = v.details["table_mean_se"]
    assert table["no predictor"]["spread"][0] < table["linear P"]["spread"][0]
    assert table["linear P"]["commutator"][0] < table["linear P"]["commutator_start"][0]
    assert claim.source.startswith(cite("tian-talk")) and claim.mutations
    assert claim.run(CheckContext(scale="quick", seed=0, power=True)).verdict == "fails"
