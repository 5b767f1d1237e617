"""The evaluation protocol: train fresh networks on a synthetic set only, test them on the real test split.

R networks train **at once** (:mod:`teachtheory.distill.nets`: their parameters carry a run axis);
each has its own initialisation, its own mini-batch order and, with DSA augmentation on, its own
augmentation of every sample. The recipe is the one the field shares (Zhao et al., ICLR 2021, and
the papers after it): SGD with momentum 0.9 and weight decay 5e-4, learning rate 0.01 divided by 10
halfway, mini-batches of 256, cross-entropy on hard or soft labels; a set that brings its own
learning rate (MTT) is trained with it, and a set with regression labels (KIP) is trained on the
squared error of its label vectors. The result is the test accuracy of each network (mean ± SE over
the R networks) and a learning curve of test accuracy against epoch.

:func:`evaluate` with ``sequential=True`` trains the same R networks one after another (for the
benchmark of batched against sequential training).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..random import RunStreams, as_seeds
from .augment import apply, augment_runs, default_strategy, sample_params
from .data import DistillData
from .nets import NetSpec, Params, make_net
from .synthetic import SyntheticSet

__all__ = [
    "DEFAULT_LR",
    "EvalResult",
    "combine",
    "default_chunk",
    "evaluate",
    "evaluate_full",
    "mean_se",
    "test_accuracy",
    "train_networks",
]

DEFAULT_LR = 0.01
MOMENTUM, WEIGHT_DECAY, BATCH_SIZE = 0.9, 5e-4, 256


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error (ddof 1; 0 for a single value) of a 1-D sample."""
    values = np.asarray(values, float).ravel()
    se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else 0.0
    return float(values.mean()), se


@dataclass
class EvalResult:
    """Test accuracies of R networks trained on one set.

    Attributes:
        label: what was evaluated (method, net, augmentation).
        net: the architecture (:meth:`NetSpec.to_dict`).
        accuracy: ``[R]`` final test accuracy of each network.
        curve_epochs: ``[P]`` epochs at which the curve was measured; curve: ``[R, P]`` test accuracy.
        settings: epochs, lr, batch size, augmentation, seed, ...; seconds: wall time.
    """

    label: str
    net: dict
    accuracy: np.ndarray
    curve_epochs: np.ndarray
    curve: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        """Mean test accuracy over the networks."""
        return mean_se(self.accuracy)[0]

    @property
    def se(self) -> float:
        """Standard error of the mean over the networks."""
        return mean_se(self.accuracy)[1]

    def to_json(self) -> dict:
        """Plain JSON types (accuracies, curve, settings; seconds under a timing key)."""
        return {"label": self.label, "net": self.net, "accuracy": self.accuracy.tolist(), "mean": self.mean,
                "se": self.se, "curve_epochs": self.curve_epochs.tolist(), "curve_mean": self.curve.mean(0).tolist(),
                "curve_se": (self.curve.std(0, ddof=1) / math.sqrt(self.curve.shape[0])).tolist()
                if self.curve.shape[0] > 1 else [0.0] * self.curve.shape[1],
                "settings": self.settings, "seconds": self.seconds}


def combine(results: Sequence[EvalResult]) -> dict[str, float]:
    """Mean ± SE over distillation seeds: each seed's mean over its networks is one sample.

    With one seed, the SE is the one over its networks. Returns mean, se, se_networks (the average
    within-seed SE), seeds and networks.
    """
    if not results:
        raise ValueError("combine needs at least one result")
    means = np.array([r.mean for r in results])
    within = float(np.mean([r.se for r in results]))
    mean, se = mean_se(means) if len(results) > 1 else (float(means[0]), within)
    return {"mean": mean, "se": se, "se_networks": within, "seeds": len(results),
            "networks": int(sum(r.accuracy.size for r in results))}


def batched_loss(logits: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    """Sum over runs of each run's mean loss, so each run's gradient is its own mean-loss gradient.

    ``logits`` are ``[R, B, K]``; ``targets`` class indices ``[R, B]`` or label vectors ``[R, B, K]``;
    ``kind`` is ``"ce"`` (cross-entropy; vectors are target distributions) or ``"mse"`` (half squared error).
    """
    if kind == "mse":
        return 0.5 * ((logits - targets) ** 2).sum(-1).mean(-1).sum()
    if targets.dim() == logits.dim():  # soft labels: cross-entropy with target distributions
        return -(targets * F.log_softmax(logits, -1)).sum(-1).mean(-1).sum()
    R, B, K = logits.shape
    return F.cross_entropy(logits.reshape(R * B, K), targets.reshape(R * B), reduction="sum") / B


@torch.no_grad()
def test_accuracy(spec: NetSpec, params: Params, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Test accuracy ``[R]`` of R networks on shared inputs ``x [N, C, *s]`` with labels ``y [N]``."""
    correct = None
    for start in range(0, x.shape[0], chunk):
        logits = spec(params, x[start:start + chunk])
        hits = (logits.argmax(-1) == y[start:start + chunk]).sum(1)
        correct = hits if correct is None else correct + hits
    return correct.double() / x.shape[0]


def train_networks(
    spec: NetSpec,
    params: Params,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    lr: float = DEFAULT_LR,
    loss: str = "ce",
    batch_size: int = BATCH_SIZE,
    momentum: float = MOMENTUM,
    weight_decay: float = WEIGHT_DECAY,
    strategy: Sequence[str] | None = None,
    generator: torch.Generator | None = None,
    decay_at_half: bool = True,
    on_epoch: Callable[[int, Params], None] | None = None,
    streams: RunStreams | None = None,
) -> Params:
    """Train R networks (the run axis of ``params``) on the shared set ``x [M, C, *s]``, in place; returns params.

    Each network draws its own mini-batch order and, with ``strategy`` (DSA operations), its own
    augmentation of every sample. ``targets`` are class indices ``[M]`` or label vectors ``[M, K]``.
    ``on_epoch(epoch, params)`` is called after each epoch (epoch counts from 1). With ``streams`` (R
    counter-based streams, :class:`teachtheory.random.RunStreams`) the orders and augmentations come
    from them instead of ``generator``, so network r trains the same alone or with any other networks.
    """
    generator = generator or torch.Generator().manual_seed(0)
    R = params["head.weight"].shape[0]
    if streams is not None and streams.runs != R:
        raise ValueError(f"streams has {streams.runs} runs but params hold {R} networks")
    M = x.shape[0]
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.SGD(list(leaves.values()), lr=lr, momentum=momentum, weight_decay=weight_decay)
    full_batch = M <= batch_size
    spatial = tuple(x.shape[2:])
    step = 0
    for epoch in range(1, epochs + 1):
        if decay_at_half and epoch == epochs // 2 + 1 and epochs > 1:
            for group in opt.param_groups:
                group["lr"] = lr * 0.1
        if full_batch:
            batches = [None]
        else:
            keys = streams.uniform("distill-order", epoch, (M,)) if streams is not None else \
                torch.rand(R, M, generator=generator)
            order = torch.argsort(keys, 1).to(x.device)
            batches = [order[:, s:s + batch_size] for s in range(0, M, batch_size)]
        for idx in batches:
            if idx is None and strategy is None:
                xb, tb = x, targets.expand(R, *targets.shape)  # shared input: the fast path
            else:
                if idx is None:
                    idx = torch.arange(M, device=x.device).expand(R, M)
                xb, tb = x[idx], targets[idx]  # [R, b, ...]
                if strategy is not None and streams is not None:
                    xb = augment_runs(xb, strategy, streams, step)
                elif strategy is not None:
                    flat = xb.reshape(-1, *xb.shape[2:])
                    flat = apply(flat, sample_params(strategy, flat.shape[0], spatial, generator))
                    xb = flat.view(xb.shape)
            with torch.enable_grad():
                value = batched_loss(spec(leaves, xb), tb, loss)
                opt.zero_grad(set_to_none=True)
                value.backward()
            opt.step()
            step += 1
        if on_epoch is not None:
            on_epoch(epoch, leaves)
    return {k: v.detach() for k, v in leaves.items()}


CPU_CACHE_BYTES = 4 << 20


def default_chunk(spec: NetSpec, batch: int, runs: int, device: str | torch.device = "cpu") -> int:
    """How many of ``runs`` networks to train together: all of them off the CPU; on the CPU as many as keep one
    block's activations for a mini-batch of ``batch`` within :data:`CPU_CACHE_BYTES` (at least one).

    Why: on a CPU, batching R networks saves per-operation overhead, but once the activations of all R
    outgrow the cache, every elementwise pass (norm, ReLU, pooling and their backward) runs at memory
    speed, and training R = 8 ConvNets at once on 100 images was measured slower than one after another.
    """
    if torch.device(device).type != "cpu":
        return runs
    largest = max(1, min(runs, CPU_CACHE_BYTES // max(1, spec.activation_bytes(batch))))
    return -(-runs // -(-runs // largest))  # as even as possible: 8 runs at most 5 together -> 4 + 4


def _resolve_net(net: str | NetSpec, data: DistillData, width: int | None, depth: int | None) -> NetSpec:
    if isinstance(net, NetSpec):
        return net
    return make_net(net, data.image_shape, data.num_classes, width=width, depth=depth)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def evaluate(
    syn: SyntheticSet,
    data: DistillData,
    *,
    net: str | NetSpec = "convnet",
    width: int | None = None,
    depth: int | None = None,
    runs: int = 8,
    epochs: int = 300,
    lr: float | None = None,
    batch_size: int = BATCH_SIZE,
    augment: bool | Sequence[str] = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    curve_points: int = 10,
    sequential: bool = False,
    chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    label: str | None = None,
) -> EvalResult:
    """Train ``runs`` fresh networks on ``syn`` only (all at once) and test them on ``data``'s test split.

    Args:
        syn: the synthetic set; its ``lr`` (if any) replaces ``lr``, its ``label_loss`` picks the loss.
        data: the real data (test split used; the set's normalisation must match ``syn``'s images).
        net: ``convnet``, ``convnet-dN``, ``mlp`` or a :class:`NetSpec`; width/depth override the defaults.
        runs: R networks; epochs: passes over ``syn`` (lr divided by 10 halfway).
        lr: learning rate (default 0.01, or the set's learned one).
        augment: False, True (DSA's strategy for the data set) or a tuple of DSA operations.
        sequential: train the R networks one after another instead (benchmark only; same work, same
            result: network r draws its initialisation, batch orders and augmentations from its own
            counter-based stream, seeded ``seed * 1_000_003 + r``).
        chunk: networks trained together; default all of them, except on the CPU, where as many as keep
            one block's activations within :data:`CPU_CACHE_BYTES` (see :func:`default_chunk`).
        curve_points: how many epochs the learning curve samples (the last epoch always).
        progress: ``progress(done_epochs, total_epochs)``.

    Raises:
        ValueError: bad sizes, a set whose image shape or class count differs from the data's.
    """
    runs, epochs = _positive_int("runs", runs), _positive_int("epochs", epochs)
    batch_size, curve_points = _positive_int("batch_size", batch_size), _positive_int("curve_points", curve_points)
    if tuple(syn.images.shape[1:]) != data.image_shape:
        raise ValueError(f"synthetic images have shape {tuple(syn.images.shape[1:])}, the data set "
                         f"{data.name!r} has {data.image_shape}")
    if syn.num_classes != data.num_classes:
        raise ValueError(f"synthetic set has {syn.num_classes} classes, the data set has {data.num_classes}")
    spec = _resolve_net(net, data, width, depth)
    if augment is True:
        strategy = default_strategy(data.name, data.spatial)
    elif augment is False or augment is None:
        strategy = None
    else:
        strategy = tuple(augment)
    rate = float(syn.lr) if syn.lr is not None else float(lr if lr is not None else DEFAULT_LR)
    device = torch.device(device)
    x = syn.images.detach().to(device=device, dtype=torch.float32)
    targets = syn.labels.detach().to(device)
    if syn.soft:
        targets = targets.float()
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    checkpoints = sorted({max(1, round(epochs * (i + 1) / curve_points)) for i in range(curve_points)})
    started = time.perf_counter()
    if sequential:
        chunk = 1
    elif chunk is None:
        chunk = default_chunk(spec, min(batch_size, syn.size), runs, device)
    chunk = _positive_int("chunk", chunk)
    pieces = -(-runs // chunk)
    sizes = [runs // pieces + (1 if i < runs % pieces else 0) for i in range(pieces)]  # as even as possible
    groups = [(sum(sizes[:i]), n) for i, n in enumerate(sizes)]
    all_streams = RunStreams(as_seeds(int(seed) * 1_000_003, runs))
    curves, finals = [], []
    for g_index, (first, count) in enumerate(groups):
        streams = all_streams.subset(slice(first, first + count))
        params = spec.init(count, device=device, streams=streams)
        curve: list[torch.Tensor] = []

        def on_epoch(epoch: int, p: Params, curve=curve, g_index=g_index) -> None:
            if epoch in checkpoints:
                curve.append(test_accuracy(spec, p, x_test, y_test))
            if progress is not None:
                progress(g_index * epochs + epoch, epochs * len(groups))

        params = train_networks(spec, params, x, targets, epochs=epochs, lr=rate, loss=syn.label_loss,
                                batch_size=batch_size, strategy=strategy, on_epoch=on_epoch,
                                streams=streams)
        curves.append(torch.stack(curve, 1).cpu())
        finals.append(curves[-1][:, -1])
    accuracy = torch.cat(finals).numpy()
    settings = {"runs": runs, "epochs": epochs, "lr": rate, "lr_source": "synthetic set" if syn.lr else "protocol",
                "batch_size": batch_size, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                "lr_schedule": "x0.1 at half", "loss": syn.label_loss + (" (soft labels)" if syn.soft else ""),
                "augment": list(strategy) if strategy else None, "seed": seed, "sequential": sequential, "chunk": chunk,
                "train_size": syn.size, "test_size": int(x_test.shape[0])}
    text = label or f"{syn.method} ipc={syn.ipc}: {spec.name}" + (" +DSA" if strategy else "")
    return EvalResult(text, spec.to_dict(), accuracy, np.array(checkpoints), torch.cat(curves, 0).numpy(), settings,
                      time.perf_counter() - started)


def evaluate_full(data: DistillData, *, epochs: int = 20, **options) -> EvalResult:
    """The ceiling: the same protocol trained on the whole real training set (mini-batches of 256)."""
    full = SyntheticSet(data.x_train, data.y_train, data.num_classes, "full", data.name,
                        ipc=int(torch.bincount(data.y_train).max()))
    options.setdefault("label", f"full training set ({full.size} images)")
    return evaluate(full, data, epochs=epochs, **options)
