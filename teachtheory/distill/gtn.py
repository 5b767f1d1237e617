r"""GTN: generative teaching networks (Such, Rawal, Lehman, Stanley & Clune, "Generative Teaching Networks:
Accelerating Neural Architecture Search by Learning to Generate Synthetic Training Data", ICML 2020).

A generator network :math:`G_\psi` maps noise and a label to a synthetic image. A fresh learner takes
``inner_steps`` SGD steps on generated batches; the generator, the **learned curriculum** (one fixed noise
vector per synthetic image, image j of every class fed at step j mod ``ipc``, paper Sec. 2 "GTN with a learned
curriculum") and the per-step learning rates descend the learner's loss on a real batch after the inner loop,
by meta-gradients through the unrolled training (:func:`teachtheory.unroll.hypergradient`; the paper uses
forward-mode-free reverse-mode through the whole inner loop, as here).

**Weight normalisation** (paper Sec. 2, "we found weight normalization ... stabilises meta-gradient
training"; Salimans & Kingma, NeurIPS 2016): every weight matrix of the generator and of the learner is
:math:`W = g\,V / \|V\|` (one norm per output unit), and SGD moves :math:`(V, g)`. Without it, the meta-gradient
of a long inner loop is a product of :math:`N` Jacobians :math:`I - \eta H_i` whose norm can grow geometrically
in :math:`N`; with it, the gradient in :math:`V` is orthogonal to :math:`V`, so :math:`\|V\|` grows with every
large step and the effective step :math:`\eta g^2/\|V\|^2` shrinks (the auto rate-tuning of weight
normalisation). :func:`meta_gradient_norms` measures the norm of the meta-gradient against the unroll length
with and without it, one independent generator and learner per run (the run axis R).

Everything is batched over R: the generator has a run axis too, so R independent (generator, learner) pairs
give R independent meta-gradients in one backward pass (the meta-loss is the sum of the runs' losses).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..unroll import METHODS as UNROLL_METHODS
from ..unroll import hypergradient, sgd_steps
from .data import DistillData
from .dd import _positive, step_chunks
from .evaluate import batched_loss, test_accuracy
from .nets import NetSpec, make_net
from .synthetic import SyntheticSet

__all__ = ["Generator", "LearnerLayout", "gtn", "gtn_networks", "meta_gradient_norms", "normalised",
           "real_networks"]


def normalised(V: torch.Tensor, g: torch.Tensor, out_axis: int) -> torch.Tensor:
    r"""Weight normalisation :math:`W = g\,V/\|V\|`, one norm per output unit: over every axis after ``out_axis``
    and between the run axis 0 and ``out_axis`` excluded (``g`` has shape ``V.shape[:out_axis + 1]``)."""
    dims = tuple(d for d in range(1, V.dim()) if d != out_axis)
    norm = V.pow(2).sum(dims, keepdim=True).clamp_min(1e-24).sqrt()
    shape = [1] * V.dim()
    shape[0], shape[out_axis] = V.shape[0], V.shape[out_axis]
    return V * g.reshape(shape) / norm


class LearnerLayout:
    """The learner's parameters as the inner loop moves them: plain, or each weight as ``(V, g)`` (weight norm).

    Args:
        spec: the learner architecture (:class:`~teachtheory.distill.nets.NetSpec`, output axis 1 of every weight).
        weight_norm: reparameterise every weight (not biases or norm parameters) as :math:`g V/\\|V\\|`.
    """

    def __init__(self, spec: NetSpec, weight_norm: bool) -> None:
        self.spec, self.weight_norm = spec, bool(weight_norm)
        self.names = list(spec.shapes())
        self.split = [weight_norm and name.endswith("weight") and spec.shapes()[name][1] > 0 for name in self.names]

    def pack(self, params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Network parameters -> the inner loop's tuple; ``g = ||V||`` so the function starts unchanged."""
        out = []
        for name, split in zip(self.names, self.split):
            p = params[name]
            if split:
                g = p.flatten(2).norm(dim=2)  # [R, out]
                out += [p, g]
            else:
                out.append(p)
        return tuple(out)

    def unpack(self, theta: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """The inner loop's tuple -> network parameters (weights materialised)."""
        params, k = {}, 0
        for name, split in zip(self.names, self.split):
            if split:
                params[name] = normalised(theta[k], theta[k + 1], 1)
                k += 2
            else:
                params[name] = theta[k]
                k += 1
        return params

    def init(self, runs: int, generator: torch.Generator, device) -> tuple[torch.Tensor, ...]:
        """R fresh learners (the spec's initialisation), packed."""
        return self.pack(self.spec.init(runs, generator, device))


class Generator:
    """A run-batched MLP generator ``(noise, label) -> image``: ``[R, B, nz] x [B] -> [R, B, C, *s]``.

    Parameters are a flat tuple; with ``weight_norm`` each layer is ``(V, g, b)``, else ``(W, b)``; weights are
    stored input-major ``[R, in, out]``.
    """

    def __init__(self, noise_dim: int, num_classes: int, image_shape: tuple[int, ...], hidden: int = 128,
                 weight_norm: bool = True) -> None:
        _positive("noise_dim", noise_dim)
        _positive("hidden", hidden)
        self.noise_dim, self.num_classes, self.image_shape = noise_dim, num_classes, tuple(image_shape)
        self.hidden, self.weight_norm = hidden, bool(weight_norm)
        self.dims = [noise_dim + num_classes, hidden, hidden, math.prod(self.image_shape)]

    @property
    def per_layer(self) -> int:
        """Tensors per layer: 3 with weight norm (V, g, b), else 2 (W, b)."""
        return 3 if self.weight_norm else 2

    def init(self, runs: int, generator: torch.Generator, device="cpu") -> tuple[torch.Tensor, ...]:
        """R generators: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, zero biases, ``g = ||V||``."""
        params = []
        for fan_in, fan_out in zip(self.dims[:-1], self.dims[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            W = ((torch.rand(runs, fan_in, fan_out, generator=generator) * 2 - 1) * bound).to(device)
            b = torch.zeros(runs, fan_out, device=device)
            params += [W, W.norm(dim=1), b] if self.weight_norm else [W, b]
        return tuple(params)

    def __call__(self, params: tuple[torch.Tensor, ...], z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images ``[R, B, C, *s]`` for noise ``z [R, B, nz]`` (or shared ``[B, nz]``) and labels ``[B]``."""
        R = params[0].shape[0]
        onehot = F.one_hot(labels, self.num_classes).to(z)
        if z.dim() == 2:
            z = z.expand(R, -1, -1)
        h = torch.cat([z, onehot.expand(R, -1, -1)], -1)
        k, L = 0, len(self.dims) - 1
        for layer in range(L):
            if self.weight_norm:
                W = normalised(params[k], params[k + 1], 2)
                b = params[k + 2]
            else:
                W, b = params[k], params[k + 1]
            k += self.per_layer
            h = torch.baddbmm(b[:, None, :], h, W)
            if layer < L - 1:
                h = F.leaky_relu(h, 0.1)
        return h.reshape(R, h.shape[1], *self.image_shape)


def _inner_loss(spec_layout: LearnerLayout, gen: Generator, labels: torch.Tensor, chunks, n_gen: int):
    """The inner training loss at step i: the step's chunk of the curriculum, generated, cross-entropy, times the
    step's learned rate. ``phi = generator params + (noise [R|1, M, nz], log_lrs [N])``."""
    spec = spec_layout.spec

    def loss(theta, phi, i):
        idx = chunks[i % len(chunks)]
        z, log_lrs = phi[n_gen], phi[n_gen + 1]
        images = gen(phi[:n_gen], z[:, idx], labels[idx])
        R = theta[0].shape[0]
        if images.shape[0] == 1 and R > 1:  # one generator teaching R learners: a shared batch
            images = images[0]
        logits = spec(spec_layout.unpack(theta), images)
        return torch.exp(log_lrs[i]) * batched_loss(logits, labels[idx].expand(R, -1), "ce")

    return loss


def _setup(data: DistillData, ipc: int, inner_steps: int, net: str, width: int | None, noise_dim: int,
           hidden: int, weight_norm: bool):
    K = data.num_classes
    spec = make_net(net, data.image_shape, K, width=width)
    layout = LearnerLayout(spec, weight_norm)
    gen = Generator(noise_dim, K, data.image_shape, hidden, weight_norm)
    labels = torch.arange(K, device=data.x_train.device).repeat_interleave(ipc)
    chunks = [c.to(labels.device) for c in step_chunks(labels, min(ipc, inner_steps))]
    return spec, layout, gen, labels, chunks


def _real_loss(spec_layout: LearnerLayout, x: torch.Tensor, y: torch.Tensor):
    def val_loss(theta):
        logits = spec_layout.spec(spec_layout.unpack(theta), x)
        return batched_loss(logits, y.expand(logits.shape[0], -1), "ce")

    return val_loss


def gtn(data: DistillData, ipc: int, *, steps: int = 300, seed: int = 0, progress=None, inner_steps: int = 10,
        net: str = "mlp", width: int | None = 32, runs: int = 4, noise_dim: int = 16, hidden: int = 128,
        weight_norm: bool = True, batch_real: int = 256, lr_meta: float = 0.003, lr_init: float = 0.1,
        unroll: str = "autograd", **_) -> SyntheticSet:
    """Meta-train a generator and its curriculum (see the module docstring); the set is the generated curriculum.

    Args:
        ipc: synthetic images per class (the curriculum: image j of every class is fed at step j mod ipc).
        steps: outer (meta) iterations; inner_steps: learner SGD steps per meta-iteration.
        net, width: the learner (``mlp`` or ``convnet``); runs: fresh learners per meta-iteration.
        noise_dim, hidden: the generator's noise size and hidden width.
        weight_norm: W = g V/||V|| in generator and learner (the paper's stabiliser).
        batch_real: real images in the meta-loss; lr_meta: Adam rate of generator, noise and log rates;
        lr_init: the initial inner learning rate; unroll: see :func:`teachtheory.unroll.hypergradient`.

    Returns:
        A :class:`SyntheticSet` with the generated images (``ipc`` per class, by class), hard labels, and the
        schedule (``lrs``, ``chunks``, ``net``, ``learner_weight_norm``) for :func:`gtn_networks`.

    Raises:
        ValueError: bad sizes or rates, an unknown ``unroll``.
    """
    for name, value in (("steps", steps), ("inner_steps", inner_steps), ("runs", runs), ("batch_real", batch_real)):
        _positive(name, value)
    for name, value in (("lr_meta", lr_meta), ("lr_init", lr_init)):
        _positive(name, value, integer=False)
    if unroll not in UNROLL_METHODS:
        raise ValueError(f"unroll must be one of {', '.join(UNROLL_METHODS)}, got {unroll!r}")
    device = data.x_train.device
    rng = torch.Generator().manual_seed(seed)
    spec, layout, gen, labels, chunks = _setup(data, ipc, inner_steps, net, width, noise_dim, hidden, weight_norm)
    gen_params = [p.requires_grad_(True) for p in gen.init(1, rng, device)]
    z = torch.randn(1, labels.numel(), noise_dim, generator=rng).to(device).requires_grad_(True)
    log_lrs = torch.full((inner_steps,), math.log(lr_init), device=device, requires_grad=True)
    phi = tuple(gen_params) + (z, log_lrs)
    opt = torch.optim.Adam(phi, lr=lr_meta)
    loss = _inner_loss(layout, gen, labels, chunks, len(gen_params))
    curve, grad_norms = [], []
    n_real = data.x_train.shape[0]
    for step in range(steps):
        pick = torch.randperm(n_real, generator=rng)[:batch_real].to(device)
        val = _real_loss(layout, data.x_train[pick], data.y_train[pick])
        theta0 = layout.init(runs, rng, device)
        out = hypergradient(loss, lambda th: val(th) / runs, theta0, phi, inner_steps, 1.0, method=unroll)
        opt.zero_grad(set_to_none=True)
        for p, g in zip(phi, out.grad_phi):
            p.grad = g
        grad_norms.append(float(torch.sqrt(sum((g**2).sum() for g in out.grad_phi))))
        opt.step()
        curve.append(float(out.value))
        if progress is not None:
            progress(step + 1, steps)
    with torch.no_grad():
        images = gen(phi[:len(gen_params)], z, labels)[0]
    settings = {"seed": seed, "steps": steps, "inner_steps": inner_steps, "net": spec.to_dict(), "runs": runs,
                "noise_dim": noise_dim, "hidden": hidden, "weight_norm": weight_norm,
                "learner_weight_norm": weight_norm, "batch_real": batch_real, "lr_meta": lr_meta,
                "lr_init": lr_init, "unroll": unroll, "lrs": torch.exp(log_lrs).detach().tolist(),
                "chunks": [c.tolist() for c in chunks], "init": "random", "loss_curve": curve,
                "meta_grad_norms": grad_norms, "loss_name": "real-batch cross-entropy after the inner loop"}
    return SyntheticSet(images.detach(), labels.clone(), data.num_classes, "gtn", data.name, ipc,
                        provenance=settings)


def _schedule_loss(layout: LearnerLayout, x: torch.Tensor, y: torch.Tensor, chunks, lrs: torch.Tensor):
    def loss(theta, phi, i):
        idx = chunks[i % len(chunks)]
        logits = layout.spec(layout.unpack(theta), x[idx])
        return lrs[i] * batched_loss(logits, y[idx].expand(logits.shape[0], -1), "ce")

    return loss


def gtn_networks(syn: SyntheticSet, data: DistillData, *, runs: int = 8, seed: int = 0, inner_steps: int | None = None,
                 weight_norm: bool | None = None) -> tuple[NetSpec, dict[str, torch.Tensor]]:
    """R fresh learners trained on a GTN set the way it was meta-trained (its curriculum and learned rates).

    Args:
        inner_steps: train this many steps (at most the set's; default all of them).
        weight_norm: the learner's parameterisation (default: the set's).

    Raises:
        ValueError: the set was not made by :func:`gtn`, or ``inner_steps`` exceeds its schedule.
    """
    prov = syn.provenance
    if "lrs" not in prov or "learner_weight_norm" not in prov:
        raise ValueError(f"gtn_networks needs a set made by gtn; got {syn.method!r}")
    _positive("runs", runs)
    total = len(prov["lrs"])
    inner_steps = total if inner_steps is None else inner_steps
    if isinstance(inner_steps, bool) or not isinstance(inner_steps, int) or not 0 <= inner_steps <= total:
        raise ValueError(f"inner_steps must be an integer in 0..{total}, got {inner_steps!r}")
    spec = NetSpec(**{k: tuple(v) if k == "image_shape" else v for k, v in prov["net"].items()})
    layout = LearnerLayout(spec, prov["learner_weight_norm"] if weight_norm is None else weight_norm)
    device = data.x_train.device
    theta0 = layout.init(runs, torch.Generator().manual_seed(int(seed) * 1_000_003 + 17), device)
    chunks = [torch.tensor(c, dtype=torch.long, device=device) for c in prov["chunks"]]
    lrs = torch.tensor(prov["lrs"], device=device)
    x, y = syn.images.to(device), syn.labels.to(device)
    theta = sgd_steps(_schedule_loss(layout, x, y, chunks, lrs), theta0, (lrs,), inner_steps, 1.0)
    return spec, layout.unpack(theta)


def real_networks(data: DistillData, net: NetSpec, *, batch: int, inner_steps: int, lr: float, runs: int = 8,
                  seed: int = 0, weight_norm: bool = False) -> dict[str, torch.Tensor]:
    """R fresh learners trained ``inner_steps`` SGD steps on random real batches of ``batch`` images (the
    real-data baseline of GTN's Fig. 1), rate ``lr``; the same initialisation stream as :func:`gtn_networks`."""
    _positive("batch", batch)
    _positive("lr", lr, integer=False)
    device = data.x_train.device
    layout = LearnerLayout(net, weight_norm)
    rng = torch.Generator().manual_seed(int(seed) * 1_000_003 + 17)
    theta0 = layout.init(runs, rng, device)
    picks = torch.stack([torch.randperm(data.x_train.shape[0], generator=rng)[:batch] for _ in range(inner_steps)])
    x = data.x_train[picks.to(device)]  # [N, batch, C, *s]
    ys = data.y_train[picks.to(device)]
    lrs = torch.full((max(inner_steps, 1),), float(lr), device=device)

    def loss(theta, phi, i):
        logits = net(layout.unpack(theta), x[i])
        return lrs[i] * batched_loss(logits, ys[i].expand(logits.shape[0], -1), "ce")

    return layout.unpack(sgd_steps(loss, theta0, (lrs,), inner_steps, 1.0))


def meta_gradient_norms(data: DistillData, lengths, *, weight_norm: bool, runs: int = 8, seed: int = 0, ipc: int = 1,
                        net: str = "mlp", width: int | None = 32, noise_dim: int = 16, hidden: int = 128,
                        lr: float = 0.5, batch_real: int = 256, unroll: str = "autograd") -> np.ndarray:
    r"""Norm of the meta-gradient :math:`\|\partial e(\theta^N)/\partial\psi\|` (generator, curriculum and rates)
    at initialisation, for each unroll length N in ``lengths``: ``[runs, len(lengths)]``, one independent
    generator, curriculum and learner per run, the same draws at every N (so the growth over N is paired).

    Args:
        weight_norm: with or without the weight normalisation of generator and learner.
        lr: the inner learning rate (constant over the steps).
    """
    lengths = [int(n) for n in lengths]
    if not lengths or any(n < 1 for n in lengths):
        raise ValueError(f"lengths must be positive integers, got {lengths!r}")
    _positive("runs", runs)
    device = data.x_train.device
    spec, layout, gen, labels, chunks = _setup(data, ipc, max(lengths), net, width, noise_dim, hidden, weight_norm)
    rng = torch.Generator().manual_seed(seed)
    gen_params = gen.init(runs, rng, device)
    z = torch.randn(runs, labels.numel(), noise_dim, generator=rng).to(device)
    theta0 = layout.init(runs, rng, device)
    pick = torch.randperm(data.x_train.shape[0], generator=rng)[:batch_real].to(device)
    val = _real_loss(layout, data.x_train[pick], data.y_train[pick])
    log_lrs = torch.full((max(lengths),), math.log(lr), device=device)
    loss = _inner_loss(layout, gen, labels, chunks, len(gen_params))
    norms = np.zeros((runs, len(lengths)))
    for j, N in enumerate(lengths):
        # the rates are held fixed here: the meta-gradient is taken in the generator and the curriculum
        out = hypergradient(lambda th, ph, i: loss(th, ph + (log_lrs,), i), val, theta0, tuple(gen_params) + (z,),
                            N, 1.0, method=unroll)
        # each run's meta-gradient lives in its own slice of the run axis (the meta-loss sums the runs)
        sq = sum(g.reshape(runs, -1).pow(2).sum(1) for g in out.grad_phi)
        norms[:, j] = sq.sqrt().cpu().numpy()
    return norms


def accuracy(spec: NetSpec, params: dict[str, torch.Tensor], data: DistillData) -> np.ndarray:
    """Test accuracy ``[R]`` of R learners."""
    return test_accuracy(spec, params, data.x_test, data.y_test).cpu().numpy()
