r"""DD: dataset distillation by differentiating through training (Wang, Zhu, Torralba & Efros, "Dataset
Distillation", arXiv 2018), the bilevel core that soft-label (:mod:`~teachtheory.distill.sldd`) and text
(:mod:`~teachtheory.distill.tdd`) distillation share, and the poisoning variant.

The distilled set is M synthetic images :math:`\tilde x` (with fixed hard labels, or learned label logits
for SLDD) and one learned step size per gradient step. A fresh network :math:`\theta_0 \sim p(\theta_0)`
takes ``gd_steps`` GD steps per epoch for ``epochs`` epochs; step i uses its own chunk of the images and its
own step size :math:`\tilde\eta_i` (not tied across epochs, as the paper does, since later epochs want
smaller steps):

.. math:: \theta_{i+1} = \theta_i - \tilde\eta_i \nabla_\theta \ell(\tilde x_{c(i)}, \tilde y_{c(i)}; \theta_i),

and the images, labels and step sizes descend the loss of the last iterate on a real mini-batch, averaged
over R initialisations drawn at once (the run axis of :mod:`teachtheory.distill.nets`; Algorithm 1's batch of
:math:`\theta_0^{(j)}`). ``init="random"`` draws fresh initialisations every iteration, ``init="fixed"`` uses
one network throughout (its sets only work from that network). The hypergradient goes through
:func:`teachtheory.unroll.hypergradient`: reverse mode with Hessian-vector products (``"reverse"``, the
default), through the unrolled graph (``"autograd"``), or the back-gradient with reconstructed iterates
(``"backgradient"``, memory O(1) in the number of steps).

The learned step sizes enter the training loss as its weight (the step is :math:`\tilde\eta_i` times the
gradient), parameterised by their logarithm so they stay positive. :func:`replay` trains fresh networks the
way the set was distilled (its chunks, its step sizes); the protocol of :func:`teachtheory.distill.evaluate`
trains on it like any set.

Poisoning (:func:`dd_poison`, paper Sec. 3.5): the initial networks are trained classifiers and the
objective is the real loss with the attacked class relabelled as the target class, so that one GD step on the
distilled images makes the classifiers forget that class while keeping the others.

Two closed forms for least squares (paper Sec. 3.2, "analysis of a simple linear case"): with
:math:`f(\theta) = \tfrac1{2n}\|X\theta - y\|^2` and one GD step on M synthetic pairs,
:math:`\theta_1 = (I - \tfrac{\eta}{M}\tilde X^\top\tilde X)\theta_0 + \tfrac{\eta}{M}\tilde X^\top\tilde y`
reaches :math:`\theta^*` from every :math:`\theta_0` iff :math:`\tfrac{\eta}{M}\tilde X^\top\tilde X = I` and
:math:`\tilde y = \tilde X\theta^*`, which needs M >= d (:func:`one_step_exact_set`); with M < d and
:math:`\theta_0 \sim N(\theta^*, \sigma^2 I)` the least expected excess loss any set attains is
:math:`\tfrac{\sigma^2}{2}` times the sum of the d - M smallest eigenvalues of :math:`H = X^\top X/n`
(:func:`one_step_lower_bound`; Ky Fan's minimum principle on the null space of the step).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..unroll import METHODS as UNROLL_METHODS
from ..unroll import hypergradient, sgd_steps
from .data import DistillData, class_indices
from .evaluate import EvalResult, batched_loss, test_accuracy, train_networks
from .nets import NetSpec, make_net
from .synthetic import SyntheticSet

__all__ = [
    "IMAGE_INITS",
    "INITS",
    "dd",
    "dd_poison",
    "expected_excess_loss",
    "fit_bilevel",
    "least_squares_dd",
    "one_step_exact_set",
    "one_step_lower_bound",
    "replay",
    "replay_networks",
    "step_chunks",
]

INITS = ("random", "fixed")
IMAGE_INITS = ("noise", "real")
_FIXED_OFFSET = 7919  # the fixed initial network is drawn from seed + this, so replay can redraw it


def _positive(name: str, value, integer: bool = True) -> None:
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def step_chunks(labels: torch.Tensor, gd_steps: int) -> list[torch.Tensor]:
    """The images each GD step of an epoch uses: image j of every class goes to chunk j mod ``gd_steps``.

    Raises:
        ValueError: a chunk would be empty (more steps than images in the smallest class).
    """
    _positive("gd_steps", gd_steps)
    labels = labels.cpu()
    if gd_steps == 1:
        return [torch.arange(labels.numel())]
    rank = torch.empty(labels.numel(), dtype=torch.long)
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).flatten()
        rank[idx] = torch.arange(idx.numel())
    chunks = [torch.nonzero(rank % gd_steps == j).flatten() for j in range(gd_steps)]
    if any(c.numel() == 0 for c in chunks):
        raise ValueError(f"gd_steps={gd_steps} exceeds the images of the smallest class; use at most that many")
    return chunks


def _hard_targets(labels: torch.Tensor, K: int) -> torch.Tensor:
    return F.one_hot(labels, K).float() if labels.dim() == 1 else labels.float()


def fit_bilevel(
    data: DistillData,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    spec: NetSpec,
    steps: int,
    sample_theta0: Callable[[int], dict[str, torch.Tensor]],
    learn_labels: bool = False,
    gd_steps: int = 1,
    epochs: int = 1,
    batch_real: int = 256,
    lr_img: float = 0.01,
    lr_label: float = 0.05,
    lr_lr: float = 0.01,
    lr_init: float = 0.1,
    unroll: str = "reverse",
    checkpoint_every: int | None = None,
    relabel: Callable[[torch.Tensor], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    progress=None,
) -> dict:
    """Learn images (and label logits, and per-step step sizes) through unrolled GD (see the module docstring).

    Args:
        images: initial images ``[M, C, *s]``; labels: hard labels ``[M]`` (which also define the chunks) or,
            with ``learn_labels``, initial label distributions ``[M, K]``.
        sample_theta0: ``step -> params`` of R initial networks (a dict with a leading run axis).
        relabel: maps the real batch's labels before the objective (the poisoning target), or None.
        Others: see :func:`dd`.

    Returns:
        ``images``, ``labels`` (hard, or soft distributions), ``lrs`` (``[epochs * gd_steps]``), ``chunks``,
        ``loss_curve``.
    """
    for name, value in (("steps", steps), ("gd_steps", gd_steps), ("epochs", epochs), ("batch_real", batch_real)):
        _positive(name, value)
    for name, value in (("lr_img", lr_img), ("lr_label", lr_label), ("lr_lr", lr_lr), ("lr_init", lr_init)):
        _positive(name, value, integer=False)
    if unroll not in UNROLL_METHODS:
        raise ValueError(f"unroll must be one of {', '.join(UNROLL_METHODS)}, got {unroll!r}")
    K = data.num_classes
    gen = generator or torch.Generator().manual_seed(0)
    hard = labels if labels.dim() == 1 else labels.argmax(1)
    chunks = [c.to(images.device) for c in step_chunks(hard, gd_steps)]
    N = gd_steps * epochs
    images = images.detach().clone().requires_grad_(True)
    log_lrs = torch.full((N,), math.log(lr_init), dtype=images.dtype, device=images.device, requires_grad=True)
    groups = [{"params": [images], "lr": lr_img}, {"params": [log_lrs], "lr": lr_lr}]
    label_logits = None
    if learn_labels:
        start = _hard_targets(labels, K).to(images)
        label_logits = torch.log(0.9 * start / start.sum(1, keepdim=True) + 0.1 / K).requires_grad_(True)
        groups.append({"params": [label_logits], "lr": lr_label})
    opt = torch.optim.Adam(groups)
    fixed_targets = hard.to(images.device)
    names = list(spec.shapes())
    x_train, y_train = data.x_train, data.y_train
    n_real = x_train.shape[0]

    def train_loss(theta, phi, i):
        idx = chunks[i % gd_steps]
        logits = spec(dict(zip(names, theta)), phi[0][idx])
        R = logits.shape[0]
        if learn_labels:
            target = torch.softmax(phi[2][idx], -1).expand(R, -1, -1)
        else:
            target = fixed_targets[idx].expand(R, -1)
        return torch.exp(phi[1][i]) * batched_loss(logits, target, "ce")

    curve = []
    for step in range(steps):
        batch = torch.randperm(n_real, generator=gen)[:batch_real].to(x_train.device)
        x_real, y_real = x_train[batch], y_train[batch]
        if relabel is not None:
            y_real = relabel(y_real)
        params = sample_theta0(step)
        theta0 = tuple(params[k] for k in names)
        R = theta0[0].shape[0]

        def val_loss(theta, x_real=x_real, y_real=y_real, R=R):
            return batched_loss(spec(dict(zip(names, theta)), x_real), y_real.expand(R, -1), "ce") / R

        phi = (images, log_lrs) + ((label_logits,) if learn_labels else ())
        result = hypergradient(train_loss, val_loss, theta0, phi, N, 1.0, method=unroll,
                               checkpoint_every=checkpoint_every)
        opt.zero_grad(set_to_none=True)
        for p, g in zip(phi, result.grad_phi):
            p.grad = g
        opt.step()
        curve.append(float(result.value))
        if progress is not None:
            progress(step + 1, steps)
    out_labels = torch.softmax(label_logits, -1).detach() if learn_labels else hard.clone()
    return {"images": images.detach(), "labels": out_labels, "lrs": torch.exp(log_lrs).detach(),
            "chunks": [c.cpu() for c in chunks], "loss_curve": curve}


def initial_images(data: DistillData, labels: torch.Tensor, how: str, generator: torch.Generator) -> torch.Tensor:
    """Starting images for ``labels [M]``: standard normal noise (the paper's) or a random real image of each label.

    Raises:
        ValueError: an unknown ``how``.
    """
    if how not in IMAGE_INITS:
        raise ValueError(f"image_init must be one of {', '.join(IMAGE_INITS)}, got {how!r}")
    M = labels.numel()
    if how == "noise":
        return torch.randn(M, *data.image_shape, generator=generator).to(data.x_train)
    groups = class_indices(data.y_train.cpu(), data.num_classes)
    pick = torch.stack([groups[int(c)][torch.randint(groups[int(c)].numel(), (1,), generator=generator)[0]]
                        for c in labels.cpu()])
    return data.x_train[pick.to(data.x_train.device)].clone()


def theta0_sampler(spec: NetSpec, init: str, runs: int, seed: int, generator: torch.Generator,
                   device) -> Callable[[int], dict[str, torch.Tensor]]:
    """``step -> params``: R fresh networks per step (``random``) or the one fixed network (``fixed``).

    Raises:
        ValueError: an unknown ``init`` or a bad ``runs``.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    _positive("runs", runs)
    if init == "fixed":
        fixed = spec.init(1, torch.Generator().manual_seed(seed + _FIXED_OFFSET), device)
        return lambda step: fixed
    return lambda step: spec.init(runs, generator, device)


def dd(data: DistillData, ipc: int, *, steps: int = 300, seed: int = 0, progress=None, net: str = "convnet",
       width: int | None = 32, gd_steps: int = 1, epochs: int = 1, init: str = "random", runs: int = 4,
       image_init: str = "noise", batch_real: int = 256, lr_img: float = 0.01, lr_lr: float = 0.01,
       lr_init: float = 0.1, unroll: str = "reverse", checkpoint_every: int | None = None, **_) -> SyntheticSet:
    """Dataset distillation with hard labels and learned step sizes (see the module docstring).

    Args:
        net, width: the learner (``convnet`` or ``mlp``; width 32 by default for CPU speed).
        gd_steps: GD steps per epoch, each on its own chunk of the images (at most ``ipc``); epochs: passes.
        init: ``random`` (fresh networks each iteration) or ``fixed`` (one network); runs: networks per iteration.
        image_init: ``noise`` (the paper's) or ``real``; batch_real: real images per iteration.
        lr_img, lr_lr: Adam rates of the images and of the log step sizes; lr_init: the initial step size.
        unroll: ``reverse``, ``autograd`` or ``backgradient``; checkpoint_every: see
            :func:`~teachtheory.unroll.hypergradient`.
    """
    return _distil(data, ipc, "dd", False, None, steps=steps, seed=seed, progress=progress, net=net, width=width,
                   gd_steps=gd_steps, epochs=epochs, init=init, runs=runs, image_init=image_init,
                   batch_real=batch_real, lr_img=lr_img, lr_lr=lr_lr, lr_init=lr_init, unroll=unroll,
                   checkpoint_every=checkpoint_every)


def _distil(data: DistillData, ipc: int, method: str, learn_labels: bool, size: int | None, *, steps, seed, progress,
            net, width, gd_steps, epochs, init, runs, image_init, batch_real, lr_img, lr_lr, lr_init, unroll,
            checkpoint_every, lr_label: float = 0.05) -> SyntheticSet:
    """The shared body of :func:`dd`, SLDD and TDD: labels, initial images, the bilevel fit, the set."""
    K = data.num_classes
    spec = make_net(net, data.image_shape, K, width=width)
    gen = torch.Generator().manual_seed(seed)
    if size is None:
        labels = torch.arange(K).repeat_interleave(ipc)
        start_labels = labels
    else:  # SLDD's free size: below K, image i starts as the uniform mixture of the classes c = i mod size
        _positive("size", size)
        assign = torch.zeros(size, K)
        if size < K:
            assign[torch.arange(K) % size, torch.arange(K)] = 1.0
        else:  # at least one image per class: image i starts as class i mod K
            assign[torch.arange(size), torch.arange(size) % K] = 1.0
        start_labels = assign / assign.sum(1, keepdim=True)
        labels = start_labels.argmax(1)
    images = initial_images(data, labels, image_init, gen)
    sampler = theta0_sampler(spec, init, runs, seed, gen, data.x_train.device)
    fit = fit_bilevel(data, images, start_labels.to(data.x_train.device) if size is not None else labels.to(
        data.x_train.device), spec=spec, steps=steps, sample_theta0=sampler, learn_labels=learn_labels,
        gd_steps=gd_steps, epochs=epochs, batch_real=batch_real, lr_img=lr_img, lr_label=lr_label, lr_lr=lr_lr,
        lr_init=lr_init, unroll=unroll, checkpoint_every=checkpoint_every, generator=gen, progress=progress)
    settings = {"seed": seed, "steps": steps, "net": spec.to_dict(), "gd_steps": gd_steps, "epochs": epochs,
                "init": init, "init_seed": seed + _FIXED_OFFSET if init == "fixed" else None, "runs": runs,
                "image_init": image_init, "batch_real": batch_real, "lr_img": lr_img, "lr_lr": lr_lr,
                "lr_init": lr_init, "unroll": unroll, "learn_labels": learn_labels, "size": int(labels.numel()),
                "lrs": fit["lrs"].tolist(), "chunks": [c.tolist() for c in fit["chunks"]],
                "loss_curve": fit["loss_curve"], "loss_name": "real-batch cross-entropy after the unrolled steps"}
    if learn_labels:
        settings["lr_label"] = lr_label
    return SyntheticSet(fit["images"], fit["labels"], K, method, data.name, ipc, provenance=settings)


def replay_networks(syn: SyntheticSet, data: DistillData, *, runs: int = 8, seed: int = 0, init: str | None = None
                    ) -> tuple[NetSpec, dict[str, torch.Tensor]]:
    """R fresh networks trained the way a DD/SLDD/TDD set was distilled (its chunks and learned step sizes,
    plain GD, no momentum): the architecture and the trained parameters.

    Args:
        init: ``random`` (new networks from seed) or ``fixed`` (the set's fixed network); default: the set's.

    Raises:
        ValueError: the set has no learned schedule (not made by dd, sldd or tdd).
    """
    prov = syn.provenance
    if "lrs" not in prov or "chunks" not in prov:
        raise ValueError(f"replay needs a set made by dd, sldd or tdd (with learned step sizes); got {syn.method!r}")
    _positive("runs", runs)
    spec = NetSpec(**{k: tuple(v) if k == "image_shape" else v for k, v in prov["net"].items()})
    init = init or prov.get("init", "random")
    device = data.x_train.device
    if init == "fixed":
        params = spec.init(1, torch.Generator().manual_seed(int(prov["init_seed"])), device)
        params = {k: v.expand(runs, *v.shape[1:]).clone() for k, v in params.items()}
    else:
        params = spec.init(runs, torch.Generator().manual_seed(int(seed) * 1_000_003 + 17), device)
    names = list(spec.shapes())
    x = syn.images.to(device)
    targets = syn.labels.to(device)
    chunks = [torch.tensor(c, dtype=torch.long, device=device) for c in prov["chunks"]]
    lrs = torch.tensor(prov["lrs"], dtype=x.dtype, device=device)

    def loss(theta, phi, i):
        idx = chunks[i % len(chunks)]
        logits = spec(dict(zip(names, theta)), x[idx])
        t = targets[idx].float().expand(runs, -1, -1) if syn.soft else targets[idx].expand(runs, -1)
        return lrs[i] * batched_loss(logits, t, "ce")

    theta = sgd_steps(loss, tuple(params[k] for k in names), (lrs,), len(prov["lrs"]), 1.0)
    return spec, dict(zip(names, theta))


def replay(syn: SyntheticSet, data: DistillData, *, runs: int = 8, seed: int = 0, label: str | None = None,
           init: str | None = None) -> EvalResult:
    """Test accuracy of R networks trained by :func:`replay_networks`: the paper's own evaluation of the set."""
    init = init or syn.provenance.get("init", "random")
    spec, params = replay_networks(syn, data, runs=runs, seed=seed, init=init)
    acc = test_accuracy(spec, params, data.x_test, data.y_test).cpu().numpy()
    steps = len(syn.provenance["lrs"])
    return EvalResult(label or f"{syn.method} replay ({init} init)", spec.to_dict(), acc, np.array([steps]),
                      acc[:, None], {"runs": runs, "seed": seed, "init": init, "steps": steps, "protocol": "replay"})


def dd_poison(data: DistillData, *, attacked: int, target: int, ipc: int = 1, steps: int = 200, seed: int = 0,
              pool: int = 12, held_out: int = 8, runs: int = 4, pretrain_epochs: int = 20, net: str = "convnet",
              width: int | None = 32, batch_real: int = 256, lr_img: float = 0.01, lr_lr: float = 0.01,
              lr_init: float = 0.1, progress=None) -> tuple[SyntheticSet, dict]:
    """DD's poisoning attack: one GD step on the distilled images makes trained classifiers forget class
    ``attacked`` (predicting ``target`` instead) while keeping the other classes (paper Sec. 3.5).

    ``pool`` classifiers trained on the real set are the distribution of initial weights (``runs`` drawn per
    iteration); ``held_out`` others, never seen while distilling, measure the attack.

    Returns:
        The set and a report: accuracy on the attacked class and on the others, before and after the step,
        and the fraction of the attacked class sent to the target (mean and SE over the held-out networks).

    Raises:
        ValueError: classes out of range or equal, bad sizes.
    """
    K = data.num_classes
    for name, value in (("attacked", attacked), ("target", target)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < K:
            raise ValueError(f"{name} must be a class index in 0..{K - 1}, got {value!r}")
    if attacked == target:
        raise ValueError("attacked and target must be different classes")
    for name, value in (("pool", pool), ("held_out", held_out), ("runs", runs), ("pretrain_epochs", pretrain_epochs)):
        _positive(name, value)
    spec = make_net(net, data.image_shape, K, width=width)
    gen = torch.Generator().manual_seed(seed)
    trained = spec.init(pool + held_out, gen, data.x_train.device)
    trained = train_networks(spec, trained, data.x_train, data.y_train, epochs=pretrain_epochs, lr=0.01,
                             generator=gen)
    trained = {k: v.detach() for k, v in trained.items()}
    train_pool = {k: v[:pool] for k, v in trained.items()}
    test_pool = {k: v[pool:] for k, v in trained.items()}

    def sample(step: int) -> dict[str, torch.Tensor]:
        pick = torch.randperm(pool, generator=gen)[:runs].to(data.x_train.device)
        return {k: v[pick] for k, v in train_pool.items()}

    def relabel(y: torch.Tensor) -> torch.Tensor:
        return torch.where(y == attacked, torch.full_like(y, target), y)

    labels = torch.arange(K).repeat_interleave(ipc)
    images = initial_images(data, labels, "noise", gen)
    fit = fit_bilevel(data, images, labels.to(data.x_train.device), spec=spec, steps=steps, sample_theta0=sample,
                      batch_real=batch_real, lr_img=lr_img, lr_lr=lr_lr, lr_init=lr_init, relabel=relabel,
                      generator=gen, progress=progress)
    names = list(spec.shapes())
    x, y = fit["images"], fit["labels"].to(data.x_train.device)
    lr = fit["lrs"]

    def loss(theta, phi, i):
        return lr[0] * batched_loss(spec(dict(zip(names, theta)), x), y.expand(held_out, -1), "ce")

    after = dict(zip(names, sgd_steps(loss, tuple(test_pool[k] for k in names), (lr,), 1, 1.0)))
    report = {"attacked": attacked, "target": target, "held_out_networks": held_out, "lr": float(lr[0])}
    is_attacked = data.y_test == attacked
    for when, params in (("before", test_pool), ("after", after)):
        with torch.no_grad():
            pred = spec(params, data.x_test).argmax(-1)  # [R, n]
        hit = (pred == data.y_test).double()
        for part, mask in (("attacked_class", is_attacked), ("other_classes", ~is_attacked)):
            acc = hit[:, mask].mean(1)
            report[f"{when}_{part}"] = _mean_se(acc)
        report[f"{when}_to_target"] = _mean_se((pred[:, is_attacked] == target).double().mean(1))
    settings = {"seed": seed, "steps": steps, "net": spec.to_dict(), "attacked": attacked, "target": target,
                "pool": pool, "held_out": held_out, "runs": runs, "pretrain_epochs": pretrain_epochs,
                "lrs": lr.tolist(), "chunks": [c.tolist() for c in fit["chunks"]], "init": "pretrained",
                "loss_curve": fit["loss_curve"], "loss_name": "real cross-entropy with the attacked class relabelled",
                "report": report}
    return SyntheticSet(x, fit["labels"], K, "dd-poison", data.name, ipc, provenance=settings), report


def _mean_se(values: torch.Tensor) -> dict[str, float]:
    from ..stats import mean_se

    mean, se = mean_se(values.cpu().numpy())
    return {"mean": float(mean), "se": float(se)}


# -- least squares: the closed forms of the paper's linear analysis ---------------------------------------------


def one_step_lower_bound(H: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    r"""Least expected excess loss :math:`E f(\theta_1) - f(\theta^*)` over every set of ``size`` synthetic pairs
    and step size, for one GD step from :math:`\theta_0 \sim N(\theta^*, \sigma^2 I)` on
    :math:`f = \tfrac12(\theta-\theta^*)^\top H (\theta-\theta^*) + c`: :math:`\tfrac{\sigma^2}{2}` times the
    sum of the d - M smallest eigenvalues of H (0 when M >= d)."""
    eig = torch.linalg.eigvalsh(H)  # ascending
    d = H.shape[0]
    return 0.5 * sigma**2 * eig[: max(0, d - size)].sum()


def one_step_exact_set(theta_star: torch.Tensor, size: int, lr: float, generator: torch.Generator | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A set of ``size`` >= d pairs on which one GD step of rate ``lr`` lands on :math:`\theta^*` from every
    :math:`\theta_0`: :math:`\tilde X = \sqrt{M/\eta}\,Q` with orthonormal columns Q, and
    :math:`\tilde y = \tilde X\theta^*`.

    Raises:
        ValueError: ``size`` < d (no such set exists).
    """
    d = theta_star.numel()
    if size < d:
        raise ValueError(f"size must be at least d = {d} for an exact one-step set, got {size}")
    Q, _ = torch.linalg.qr(torch.randn(size, d, generator=generator, dtype=theta_star.dtype))
    X = math.sqrt(size / lr) * Q
    return X, X @ theta_star


def expected_excess_loss(X_syn: torch.Tensor, y_syn: torch.Tensor, lr: torch.Tensor, H: torch.Tensor,
                         theta_star: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Exact :math:`E_{\theta_0 \sim N(\theta^*, \sigma^2 I)}[f(\theta_1) - f(\theta^*)]` after one GD step on the
    mean squared error of the synthetic pairs: :math:`\tfrac12[\sigma^2 \operatorname{tr}(B^\top H B) + r^\top H r]`,
    :math:`B = I - \tfrac{\eta}{M}\tilde X^\top\tilde X`, :math:`r = B\theta^* + \tfrac{\eta}{M}\tilde X^\top\tilde y -
    \theta^*` (differentiable in the set and the rate)."""
    M, d = X_syn.shape
    B = torch.eye(d, dtype=X_syn.dtype) - lr / M * X_syn.T @ X_syn
    r = B @ theta_star + lr / M * X_syn.T @ y_syn - theta_star
    return 0.5 * (sigma**2 * torch.trace(B.T @ H @ B) + r @ H @ r)


def least_squares_dd(X: torch.Tensor, y: torch.Tensor, size: int, *, sigma: float = 1.0, iterations: int = 300,
                     restarts: int = 4, seed: int = 0, objective: str = "exact", runs: int = 64,
                     unroll: str = "reverse") -> dict:
    r"""DD for least squares with one GD step from :math:`\theta_0 \sim N(\theta^*, \sigma^2 I)`: the best
    synthetic set of ``size`` pairs and rate found by L-BFGS (float64, ``restarts`` random starts).

    ``objective="exact"`` minimises :func:`expected_excess_loss`; ``"sampled"`` minimises the mean excess
    loss over ``runs`` initialisations drawn per iteration, with the hypergradient of
    :func:`teachtheory.unroll.hypergradient` (the DD machinery), by Adam.

    Returns:
        ``value`` (the best expected excess loss, exact), ``X``, ``y``, ``lr``, ``theta_star``, ``H``.
    """
    _positive("size", size)
    if objective not in ("exact", "sampled"):
        raise ValueError(f"objective must be 'exact' or 'sampled', got {objective!r}")
    X, y = X.double(), y.double()
    n, d = X.shape
    H = X.T @ X / n
    theta_star = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    gen = torch.Generator().manual_seed(seed)
    best = None
    for _ in range(restarts):
        Xs = torch.randn(size, d, generator=gen, dtype=torch.float64).requires_grad_(True)
        ys = torch.randn(size, generator=gen, dtype=torch.float64).requires_grad_(True)
        log_lr = torch.zeros((), dtype=torch.float64, requires_grad=True)
        if objective == "exact":
            opt = torch.optim.LBFGS([Xs, ys, log_lr], lr=1.0, max_iter=iterations, tolerance_grad=1e-14,
                                    tolerance_change=1e-16, history_size=50, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                value = expected_excess_loss(Xs, ys, torch.exp(log_lr), H, theta_star, sigma)
                value.backward()
                return value

            opt.step(closure)
        else:
            _sampled_fit(Xs, ys, log_lr, H, theta_star, sigma, iterations, runs, gen, unroll)
        with torch.no_grad():
            value = expected_excess_loss(Xs, ys, torch.exp(log_lr), H, theta_star, sigma)
        if best is None or value < best["value"]:
            best = {"value": value.detach(), "X": Xs.detach(), "y": ys.detach(), "lr": torch.exp(log_lr).detach()}
    return dict(best, theta_star=theta_star, H=H)


def _sampled_fit(Xs, ys, log_lr, H, theta_star, sigma, iterations, runs, gen, unroll) -> None:
    """Adam on the Monte Carlo excess loss of ``runs`` initialisations, hypergradients through one unrolled step."""
    opt = torch.optim.Adam([Xs, ys, log_lr], lr=0.02)
    d = theta_star.numel()

    def train_loss(theta, phi, i):
        Xp, yp, lg = phi
        resid = theta[0] @ Xp.T - yp  # [R, M]
        return torch.exp(lg) * 0.5 * (resid**2).mean(1).sum()

    def val_loss(theta):
        diff = theta[0] - theta_star
        return 0.5 * ((diff @ H) * diff).sum(1).mean()

    for _ in range(iterations):
        theta0 = theta_star + sigma * torch.randn(runs, d, generator=gen, dtype=torch.float64)
        out = hypergradient(train_loss, val_loss, (theta0,), (Xs, ys, log_lr), 1, 1.0, method=unroll)
        opt.zero_grad()
        for p, g in zip((Xs, ys, log_lr), out.grad_phi):
            p.grad = g.reshape(p.shape)
        opt.step()
