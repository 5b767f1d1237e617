"""Tests for teachtheory.nets, the one run-batched MLP, and for the single heavy-ball step.

Two kinds of checks:

* the domains that now use :mod:`teachtheory.nets` (the LAST MLP learner, the L2T student and DLN, the
  teacher-student networks, the SSL ReLU networks and BYOL's MLPs, SGD with momentum) give *bit-identical*
  numbers to their former private implementations, which are kept here as small reference functions;
* the shared pieces themselves: back-propagation and weight gradients against autograd for every
  activation, initialisation schemes, flat vectors, batching, and clear errors for bad input.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from teachtheory import nets
from teachtheory.l2t import DynamicLossNetwork, MLPStudent
from teachtheory.learners import MLP
from teachtheory.learners.updates import Momentum, momentum_step
from teachtheory.random import RunStreams, as_seeds
from teachtheory.ssl import HLTM, ReLUNet
from teachtheory.ssl import training as ssl_training
from teachtheory.teacher_student import TeacherStudentConfig, forward, make_student_network
from teachtheory.threads import intra_op_threads

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread; restored after."""
    with intra_op_threads(1):
        yield


def _randn(seed: int, *shape: int, dtype=DT) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# -- reference implementations of the code that nets.py replaced -------------------------------------


def _ref_l2t_init(sizes, streams, tag, act, dtype, last_gain=None):
    gains = {"relu": math.sqrt(2.0), "softplus": math.sqrt(2.0), "leaky_relu": math.sqrt(2.0 / (1.0 + 0.01**2)),
             "smooth_leaky_relu": math.sqrt(2.0 / (1.0 + 0.01**2)), "tanh": 1.0}
    params = []
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        gain = gains[act] if (layer < len(sizes) - 2 or last_gain is None) else last_gain
        W = streams.normal(f"{tag}/W{layer}", 0, (fan_in, fan_out)) * (gain / math.sqrt(fan_in))
        params += [W.to(dtype=dtype), torch.zeros(streams.runs, fan_out, dtype=dtype)]
    return tuple(params)


def _ref_activation(name, x):
    if name == "relu":
        return torch.relu(x)
    if name == "leaky_relu":
        return torch.nn.functional.leaky_relu(x, 0.01)
    if name == "tanh":
        return torch.tanh(x)
    if name == "softplus":
        return torch.nn.functional.softplus(x)
    return 0.01 * x + 0.99 * torch.nn.functional.softplus(10.0 * x) / 10.0


def _ref_l2t_forward(params, x, act):
    n_layers = len(params) // 2
    h, features = x, x
    for layer in range(n_layers):
        W, b = params[2 * layer], params[2 * layer + 1]
        R = W.shape[0]
        h = torch.baddbmm(b[:, None, :], h.reshape(R, -1, h.shape[-1]), W).reshape(*h.shape[:-1], W.shape[-1])
        if layer < n_layers - 1:
            h = _ref_activation(act, h)
            features = h
    return h, features


def _ref_ts_student(config, streams, dtype):
    sizes = [config.input_dim, *config.student_widths, config.output_dim]
    weights, biases = [], []
    for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        bound = config.student_scale / math.sqrt(n_in)
        W = (2 * streams.uniform("student-weight", l, (n_in, n_out)) - 1) * bound
        b = (2 * streams.uniform("student-bias", l, (n_out,)) - 1) * bound
        if not config.bias:
            b = torch.zeros_like(b)
        weights.append(W.to(dtype=dtype))
        biases.append(b.to(dtype=dtype))
    return weights, biases


def _ref_ts_forward(weights, biases, X):
    pre, act = [], []
    h = X
    for W, b in zip(weights[:-1], biases[:-1]):
        z = torch.baddbmm(b[:, None, :], h, W)
        h = torch.relu(z)
        pre.append(z)
        act.append(h)
    return pre, act, torch.baddbmm(biases[-1][:, None, :], h, weights[-1])


def _ref_ts_first_layer_grad(weights, biases, X, target):
    """The former autograd computation of d(1/2||f - f*||^2)/d g_1."""
    with torch.enable_grad():
        z1 = torch.baddbmm(biases[0][:, None, :], X, weights[0]).requires_grad_(True)
        h = torch.relu(z1)
        for W, b in zip(weights[1:-1], biases[1:-1]):
            h = torch.relu(torch.baddbmm(b[:, None, :], h, W))
        out = torch.baddbmm(biases[-1][:, None, :], h, weights[-1])
        (g,) = torch.autograd.grad(0.5 * ((out - target) ** 2).sum(), z1)
    return g


def _ref_ssl(weights, x, output, normalize):
    """The former ReLUNet forward pass and Jacobians J_l = d f / d g_l."""
    L = len(weights)
    f, acts, pres = x, [x], []
    for l, w in enumerate(weights, start=1):
        g = torch.matmul(f, w)
        pres.append(g)
        f = g if (l == L and output == "linear") else torch.relu(g)
        acts.append(f)
    n_L = weights[-1].shape[-1]
    R, M = pres[-1].shape[:2]
    gate_L = torch.ones_like(pres[-1]) if output == "linear" else (pres[-1] > 0).to(pres[-1])
    eye = torch.eye(n_L, dtype=pres[-1].dtype)
    J = eye.expand(R, M, n_L, n_L) * gate_L[..., None, :]
    if normalize:
        f = acts[-1]
        norm = f.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(f.dtype).tiny)
        fhat = f / norm
        J = ((eye - fhat[..., :, None] * fhat[..., None, :]) / norm[..., None]) @ J
    out = [J]
    for l in range(L - 1, 0, -1):
        gate = (pres[l - 1] > 0).to(J)
        J = torch.einsum("rmoj,rij->rmoi", J, weights[l]) * gate[..., None, :]
        out.append(J)
    return acts, pres, out[::-1]


def _ref_ssl_init(widths, streams, gain, tag, dtype):
    return [(streams.normal(f"{tag}-W{l}", 0, (a, b)) * (gain / math.sqrt(a))).to(dtype)
            for l, (a, b) in enumerate(itertools.pairwise(widths), start=1)]


def _ref_byol_mlp(weights, x, bn):
    acts, h = [x], x
    for l, w in enumerate(weights, start=1):
        h = torch.matmul(h, w)
        if l < len(weights):
            if bn:
                h = ssl_training.batch_norm(h)
            h = torch.relu(h)
        acts.append(h)
    return acts


def _ref_last_mlp(V, W, X, y):
    """The former closed-form LAST MLP: outputs, per-example and mean gradients."""
    U = torch.matmul(X, V)
    P = torch.relu(U)
    z = torch.matmul(P, W)
    delta = torch.softmax(z, -1) * y.sum(-1, keepdim=True) - y
    hidden = torch.matmul(delta, W.transpose(1, 2)) * (U > 0).to(U.dtype)
    R, n = delta.shape[:2]
    per = torch.cat([(X.unsqueeze(-1) * hidden.unsqueeze(-2)).reshape(R, n, -1),
                     (P.unsqueeze(-1) * delta.unsqueeze(-2)).reshape(R, n, -1)], -1)
    mean = torch.cat([torch.matmul(X.transpose(1, 2), hidden).reshape(R, -1) / n,
                      torch.matmul(P.transpose(1, 2), delta).reshape(R, -1) / n], -1)
    return U, P, z, per, mean


# -- bit-identity of every domain with its former implementation -------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shared", [True, False])
def test_last_mlp_learner_is_bit_identical(dtype, shared):
    learner = MLP(5, 4, 3)
    w = _randn(0, 3, learner.num_params, dtype=dtype)
    X = _randn(1, 1 if shared else 3, 7, 5, dtype=dtype)
    y = torch.softmax(_randn(2, 3, 7, 3), -1).to(dtype)
    V, W = learner.split(w)
    assert torch.equal(V, w[:, :20].reshape(3, 5, 4)) and torch.equal(W, w[:, 20:].reshape(3, 4, 3))
    U, P, z, per, mean = _ref_last_mlp(V, W, X, y)
    for ours, ref in zip(learner.forward(w, X), (U, P, z)):
        assert torch.equal(ours, ref)
    assert torch.equal(learner.grad(w, X, y), per)
    assert torch.equal(learner.mean_grad(w, X, y), mean)
    assert learner.param_blocks() == {"first": slice(0, 20), "output": slice(20, 32)}


@pytest.mark.parametrize("act", ["relu", "tanh", "leaky_relu", "softplus", "smooth_leaky_relu"])
def test_l2t_student_and_dln_are_bit_identical(act):
    seeds = [3, 4]
    student = MLPStudent(6, 4, (5, 3), act=act)
    theta = student.init(seeds)
    assert all(torch.equal(a, b) for a, b in zip(theta, _ref_l2t_init(student.sizes, RunStreams(as_seeds(seeds)),
                                                                       "student", act, torch.float32, 1.0)))
    x = _randn(1, 2, 7, 6, dtype=torch.float32)
    logits, feats = student.forward_features(theta, x)
    ref_logits, ref_feats = _ref_l2t_forward(theta, x, act)
    assert torch.equal(logits, ref_logits) and torch.equal(feats, ref_feats)
    assert torch.equal(student.forward(theta, x), ref_logits)
    dln = DynamicLossNetwork((6, 5), act=act)
    phi = dln.init(seeds, dtype=DT)
    assert all(torch.equal(a, b) for a, b in zip(phi, _ref_l2t_init(dln.sizes, RunStreams(as_seeds(seeds)), "dln",
                                                                     act, DT)))
    pairs = torch.rand(2, 5, 9, 2, generator=torch.Generator().manual_seed(4), dtype=DT)  # [R, B, K-1, 2]
    assert torch.equal(dln.value(phi, pairs), _ref_l2t_forward(phi, pairs, act)[0][..., 0])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_teacher_student_networks_are_bit_identical(bias, dtype):
    cfg = TeacherStudentConfig(input_dim=6, teacher_widths=(3, 4), output_dim=2, multi=2, bias=bias,
                               student_scale=0.7)
    streams = RunStreams(as_seeds([5, 7]))
    net = make_student_network(cfg, streams, dtype)
    ref_w, ref_b = _ref_ts_student(cfg, streams, dtype)
    assert all(torch.equal(a, b) for a, b in zip(net.weights + net.biases, ref_w + ref_b))
    X = _randn(3, 2, 11, 6, dtype=dtype)
    for ours, ref in zip(forward(net, X), _ref_ts_forward(ref_w, ref_b, X)):
        if isinstance(ours, list):
            assert len(ours) == len(ref) and all(torch.equal(a, b) for a, b in zip(ours, ref))
        else:
            assert torch.equal(ours, ref)
    target = _randn(4, 2, 11, 2, dtype=dtype)
    fwd = nets.forward(net.layers(), X)
    g1 = nets.backward(net.layers(), fwd, fwd.output - target)[0]
    assert torch.equal(g1, _ref_ts_first_layer_grad(ref_w, ref_b, X, target))


@pytest.mark.parametrize("widths, kw", [([8, 6, 4], {}), ([8, 5, 3, 2], {"normalize": True}),
                                        ([8, 3, 1], {"output": "relu"})])
def test_ssl_relu_net_is_bit_identical(widths, kw):
    net = ReLUNet(widths, **kw)
    weights = net.init(3, 2, scale=1.3)
    ref_init = _ref_ssl_init(widths, RunStreams(as_seeds(3, 2)), 1.3, "init", DT)
    assert all(torch.equal(a, b) for a, b in zip(weights, ref_init))
    x = HLTM(3, 0.8).enumerate(DT).inputs
    acts, pres = net.forward(weights, x)
    ref_acts, ref_pres, ref_J = _ref_ssl(weights, x.expand(2, *x.shape), kw.get("output", "linear"),
                                         kw.get("normalize", False))
    assert all(torch.equal(a, b) for a, b in zip(acts + pres, ref_acts + ref_pres))
    J = net.jacobians(weights, x)
    assert len(J) == len(ref_J) and all(torch.equal(a, b) for a, b in zip(J, ref_J))


def test_ssl_masked_init_and_byol_mlp_are_bit_identical():
    mask = (torch.rand(8, 4, generator=torch.Generator().manual_seed(0)) > 0.5).to(DT)
    net = ReLUNet([8, 4, 2], masks=[mask, None])
    weights = net.init([1, 2, 3], dtype=torch.float32, tag="t")
    ref = _ref_ssl_init([8, 4, 2], RunStreams(as_seeds([1, 2, 3])), math.sqrt(2.0), "t", DT)
    ref[0] = ref[0] * mask
    assert all(torch.equal(a, b.to(torch.float32)) for a, b in zip(weights, ref))
    encoder = ReLUNet([8, 6, 4]).init(0, 3)
    x = _randn(5, 3, 16, 8)
    for bn in (False, True):
        ours = ssl_training.mlp_activations(encoder, x, bn=bn)
        assert all(torch.equal(a, b) for a, b in zip(ours, _ref_byol_mlp(encoder, x, bn)))


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_momentum_step_is_bit_identical_to_the_former_in_place_updates(weight_decay):
    p, v = _randn(0, 3, 5), _randn(1, 3, 5)
    ours_p, ours_v = p.clone(), v.clone()
    for t in range(4):
        g = _randn(10 + t, 3, 5)
        ours_p, ours_v = momentum_step(ours_p, g, ours_v, 0.05, 0.9, weight_decay)
        g = g + weight_decay * p if weight_decay else g
        v.mul_(0.9).add_(g)
        p.sub_(0.05 * v)
    assert torch.equal(ours_p, p) and torch.equal(ours_v, v)


def test_momentum_rule_with_weight_decay_matches_torch_sgd():
    w0 = _randn(0, 2, 4)
    A = _randn(1, 4, 4)
    A = A @ A.T + torch.eye(4, dtype=DT)
    rule = Momentum(0.8, weight_decay=0.1)
    w, state = w0.clone(), rule.init(w0)
    param = torch.nn.Parameter(w0.clone())
    opt = torch.optim.SGD([param], lr=0.05, momentum=0.8, weight_decay=0.1)
    for t in range(6):
        w, state = rule.step(w, w @ A, 0.05, state, t)
        opt.zero_grad()
        (0.5 * ((param @ A) * param).sum()).backward()
        opt.step()
    torch.testing.assert_close(w, param.detach(), rtol=1e-12, atol=1e-14)
    assert (w - w0).abs().max() > 1e-2
    assert rule.to_spec() == {"name": "momentum", "momentum": 0.8, "weight_decay": 0.1}
    with pytest.raises(ValueError, match="weight_decay"):
        Momentum(0.5, weight_decay=-1.0)


# -- the shared pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize("act", nets.ACTIVATIONS)
def test_activation_derivative_matches_autograd(act):
    x = torch.linspace(-3, 3, 61, dtype=DT)[1::2]  # avoids 0, where relu-type derivatives are a convention
    leaf = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(nets.activation(act, leaf).sum(), leaf)
    torch.testing.assert_close(nets.activation_derivative(act, x), g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("act, output, bias", [("relu", "identity", True), ("tanh", "sigmoid", False),
                                               ("leaky_relu", "relu", True), ("smooth_leaky_relu", "softplus", True)])
def test_backward_and_weight_grads_match_autograd(act, output, bias):
    arch = nets.Architecture((4, 5, 3, 2), act=act, output=output, bias=bias)
    params = tuple(p + 0.1 * _randn(i, *p.shape) for i, p in enumerate(arch.init(RunStreams(as_seeds(0, 3)),
                                                                                  dtype=DT)))
    x = _randn(9, 3, 6, 4)
    cot = _randn(8, 3, 6, 2)  # d loss / d f_L
    leaves = tuple(p.clone().requires_grad_(True) for p in params)
    with torch.enable_grad():
        fwd = arch.forward(leaves, x)
        pres = fwd.pre
        auto = torch.autograd.grad((fwd.output * cot).sum(), list(leaves) + pres)
    fwd = arch.forward(params, x)
    layers = arch.layers(params)
    deltas = nets.backward(layers, fwd, cot * nets.activation_derivative(output, fwd.pre[-1]), act=act)
    for ours, ref in zip(deltas, auto[len(params):]):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-13)
    grads = nets.weight_grads(layers, fwd, deltas, reduce="sum")
    flat = [t for gW, gb in grads for t in ((gW, gb) if bias else (gW,))]
    assert len(flat) == len(params)
    for ours, ref in zip(flat, auto[:len(params)]):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-13)
    per = nets.weight_grads(layers, fwd, deltas, reduce="none")
    mean = nets.weight_grads(layers, fwd, deltas, reduce="mean")
    for (pW, pb), (mW, mb) in zip(per, mean):
        torch.testing.assert_close(pW.mean(1), mW, rtol=1e-12, atol=1e-14)
        assert (pb is None) == (mb is None) == (not bias)


def test_backward_with_a_jacobian_cotangent_equals_one_backward_per_output():
    arch = nets.Architecture((5, 4, 3), act="relu", bias=True)
    params = arch.init(RunStreams(as_seeds(1, 2)), scheme="uniform", dtype=DT)
    layers = arch.layers(params)
    fwd = arch.forward(params, _randn(2, 2, 7, 5))
    eye = torch.eye(3, dtype=DT).expand(2, 7, 3, 3)
    J = nets.backward(layers, fwd, eye)
    assert [j.shape for j in J] == [(2, 7, 3, 4), (2, 7, 3, 3)]
    for o in range(3):
        one = nets.backward(layers, fwd, eye[:, :, o])
        torch.testing.assert_close(J[0][:, :, o], one[0], rtol=0, atol=1e-15)


def test_shared_inputs_broadcast_like_expanded_inputs():
    arch = nets.Architecture((3, 4, 2), bias=False)
    params = arch.init(RunStreams(as_seeds(0, 4)), dtype=DT)
    x = _randn(1, 1, 5, 3)
    assert torch.equal(arch.outputs(params, x), arch.outputs(params, x.expand(4, -1, -1)))
    with_bias = nets.Architecture((3, 4, 2))
    params = with_bias.init(RunStreams(as_seeds(0, 4)), scheme="uniform", dtype=DT)
    assert torch.equal(with_bias.outputs(params, x), with_bias.outputs(params, x.expand(4, -1, -1)))


def test_init_schemes_batching_and_distribution():
    arch = nets.Architecture((50, 40, 3), act="relu", bias=True)
    streams = RunStreams(as_seeds(0, 8))
    normal = arch.init(streams, dtype=DT)
    single = arch.init(streams.subset([5]), dtype=DT)
    assert all(torch.equal(a[5:6], b) for a, b in zip(normal, single))  # run r does not depend on the batch
    # He normal: std sqrt(2/50) on the first layer (16000 draws: 3% relative SE of the std is ~0.6%)
    assert abs(normal[0].std().item() / math.sqrt(2 / 50) - 1) < 0.03
    assert normal[1].abs().max() == 0 and normal[3].abs().max() == 0
    last = arch.init(streams, last_gain=1.0, dtype=DT)
    assert torch.equal(last[0], normal[0]) and torch.allclose(last[2] * math.sqrt(2.0), normal[2])
    uniform = arch.init(streams, scheme="uniform", gain=2.0, dtype=DT)
    assert uniform[0].abs().max() <= 2 / math.sqrt(50) and uniform[0].abs().max() > 1.9 / math.sqrt(50)
    assert uniform[1].abs().max() > 0  # biases drawn too
    assert all(p.abs().max() == 0 for p in arch.init(streams, scheme="zero"))
    assert [p.dtype for p in arch.init(streams)] == [torch.float32] * 4


def test_flatten_unflatten_layout_and_blocks():
    arch = nets.Architecture((3, 4, 2), bias=True)
    params = arch.init(RunStreams(as_seeds(0, 2)), scheme="uniform", dtype=DT)
    flat = arch.flatten(params)
    assert flat.shape == (2, arch.num_params) and arch.num_params == 3 * 4 + 4 + 4 * 2 + 2 == nets.count(params)
    assert all(torch.equal(a, b) for a, b in zip(arch.unflatten(flat), params))
    assert all(torch.equal(a, b) for a, b in zip(nets.unflatten(flat, params), params))
    blocks = arch.blocks()
    assert list(blocks) == ["W1", "b1", "W2", "b2"]
    assert torch.equal(flat[:, blocks["b2"]], params[3])
    assert nets.flatten(params, start_dim=0).shape == (2 * arch.num_params,)
    assert torch.equal(nets.flatten(params, start_dim=0), torch.cat([p.reshape(-1) for p in params]))
    with pytest.raises(ValueError, match="entries per run"):
        nets.unflatten(flat[:, :-1], params)


@pytest.mark.parametrize("call, fragment", [
    (lambda: nets.Architecture((3,)), "sizes"),
    (lambda: nets.Architecture((3, 0)), "sizes"),
    (lambda: nets.Architecture((3, 2), act="swish"), "act"),
    (lambda: nets.Architecture((3, 2), output="softmax"), "output"),
    (lambda: nets.Architecture((3, 2)).init(RunStreams(as_seeds(0, 1)), scheme="xavier"), "scheme"),
    (lambda: nets.Architecture((3, 2)).init(RunStreams(as_seeds(0, 1)), gain=-1.0), "gain"),
    (lambda: nets.Architecture((3, 2)).layers((torch.zeros(1, 3, 2),)), "params must hold 2"),
    (lambda: nets.Architecture((3, 2)).layers((torch.zeros(1, 2, 3), torch.zeros(1, 2))), r"params\[0\]"),
    (lambda: nets.linear(torch.zeros(2, 4, 3), torch.zeros(3, 3, 2)), "does not fit"),
    (lambda: nets.linear(torch.zeros(3, 4, 3), torch.zeros(3, 3, 2), torch.zeros(3, 5)), "b must have shape"),
    (lambda: nets.forward([], torch.zeros(1, 2, 3)), "layers"),
    (lambda: nets.activation("swish", torch.zeros(2)), "activation"),
    (lambda: nets.weight_grads([], None, [], reduce="max"), "reduce"),
])
def test_bad_input_raises_clear_errors(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
