r"""An oracle trained on real images and pruned to small widths (the talk's CIFAR-10 oracle pruned to
45-32-32-20; here scikit-learn's 8x8 digits by default, CIFAR-10 from the user's own copy), batched over runs.

Per run: a random train / held-out split of the images (pixels in [0, 1]); a ReLU network
``grow`` times wider than the target widths is trained by SGD + momentum on the cross-entropy with the true
labels (optionally with data augmentation: every minibatch image shifted by up to one pixel in each
direction, zero filled), then every hidden layer is pruned to its target width by keeping the units of
largest importance (activation std over the training data times fan-out norm), and the pruned network
is fine-tuned; its read-out is then scaled to unit logit std over the training data (argmax unchanged),
so that logit training's squared-error targets are O(1). The input plane is the span of the run's
training images: the top right-singular vectors holding ``plane_energy`` of their squared norm (digits
have always-blank border pixels, so the data are low rank).

References:
    Yang, Chen, Cai, Chen, Li & Tian, "Understanding Robustness in Teacher-Student Setting: A New
    Perspective", AISTATS 2021 (pruned CIFAR-10 oracles); Tian's teacher-student talk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

import torch
import torch.nn.functional as F

from .. import nets
from ..learners.updates import momentum_step
from ..random import RunStreams
from ..teacher_student.training import Network
from .training import AdversarialConfig, AdversarialResult, Oracle, train_adversarial

__all__ = ["ImageOracle", "cifar_arrays", "cifar_oracle", "digits_oracle", "image_oracle", "shift_images",
           "train_on_image"]


@dataclass
class ImageOracle:
    """A trained, pruned oracle with its data.

    Attributes:
        oracle: the networks and input planes. X_train [R, N, d], X_eval [R, M, d]: each run's split.
        accuracy: [R] held-out accuracy of the pruned oracle on the true labels; accuracy_unpruned: [R] before
        pruning. rank: [R] dimension of each run's input plane.
    """

    oracle: Oracle
    X_train: torch.Tensor
    X_eval: torch.Tensor
    accuracy: torch.Tensor
    accuracy_unpruned: torch.Tensor
    rank: torch.Tensor


def shift_images(X: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, side: int, channels: int = 1) -> torch.Tensor:
    """Shift square images X [R, n, channels*side*side] (channel-major) by (dx, dy) in {-1, 0, 1} pixels
    each ([R, n]), zero filled."""
    R, n, _ = X.shape
    padded = F.pad(X.reshape(R, n * channels, side, side), (1, 1, 1, 1))
    grid = torch.arange(side, device=X.device)
    dy, dx = (v.repeat_interleave(channels, dim=1) for v in (dy, dx))
    rows = (grid[None, None, :] + 1 - dy[..., None])[..., :, None].expand(R, n * channels, side, side)
    cols = (grid[None, None, :] + 1 - dx[..., None])[..., None, :].expand(R, n * channels, side, side)
    flat = padded.reshape(R, n * channels, -1)
    return torch.gather(flat, 2, (rows * (side + 2) + cols).reshape(R, n * channels, -1)).reshape(R, n, -1)


def _train(arch: nets.Architecture, params, X, y, streams, tag, epochs, lr, momentum, batch, augment, channels):
    R, N, _ = X.shape
    params = [p.clone().requires_grad_(True) for p in params]
    velocity = [torch.zeros_like(p) for p in params]
    offsets = (torch.arange(R, device=X.device) * N)[:, None]
    flat_X, flat_y = X.reshape(R * N, -1), y.reshape(R * N)
    for epoch in range(epochs):
        order = torch.argsort(streams.uniform(f"{tag}-order", epoch, (N,)), dim=1).to(X.device)
        for b in range(max(1, N // batch)):
            idx = order[:, b * batch:(b + 1) * batch] + offsets
            xb, yb = flat_X[idx], flat_y[idx]
            if augment:
                step = epoch * (N // batch + 1) + b
                shifts = streams.integers(f"{tag}-shift", step, 3, (2, xb.shape[1])).to(X.device) - 1
                xb = shift_images(xb, shifts[:, 0], shifts[:, 1], math.isqrt(xb.shape[-1] // channels), channels)
            with torch.enable_grad():
                out = arch.outputs(params, xb)
                loss = F.cross_entropy(out.transpose(1, 2), yb, reduction="none").mean(1).sum()
                grads = torch.autograd.grad(loss, params)  # runs never interact
            with torch.no_grad():
                for i, (p, g, v) in enumerate(zip(params, grads, velocity)):
                    new, velocity[i] = momentum_step(p, g, v, lr, momentum)
                    params[i] = new.requires_grad_(True)
    return [p.detach() for p in params]


def _accuracy(arch, params, X, y) -> torch.Tensor:
    with torch.no_grad():
        return (arch.outputs(params, X).argmax(-1) == y).to(torch.float64).mean(1).cpu()


def _prune(arch: nets.Architecture, params, X, widths: Sequence[int]) -> list[torch.Tensor]:
    """Keep, in every hidden layer, the units of largest activation std x fan-out norm."""
    layers = [list(layer) for layer in arch.layers(params)]
    h = X
    for l, keep in enumerate(widths):
        W, b = layers[l]
        act = torch.relu(nets.linear(h, W, b))
        importance = act.std(1) * layers[l + 1][0].norm(dim=2)  # [R, units]
        idx = importance.topk(keep, dim=1).indices.sort(dim=1).values
        layers[l] = [torch.gather(W, 2, idx[:, None, :].expand(-1, W.shape[1], -1)), torch.gather(b, 1, idx)]
        W_next = layers[l + 1][0]
        layers[l + 1][0] = torch.gather(W_next, 1, idx[:, :, None].expand(-1, -1, W_next.shape[2]))
        h = torch.relu(nets.linear(h, *layers[l]))
    return [t for layer in layers for t in layer]


def digits_oracle(streams: RunStreams, **kwargs) -> ImageOracle:
    """Train, prune and fine-tune an oracle on scikit-learn's 8x8 digits, per run (keyword arguments as in
    :func:`image_oracle`)."""
    from ..problems import digits_arrays

    X, y = digits_arrays()
    return image_oracle(streams, X, y, channels=1, **kwargs)


def cifar_arrays(folder, limit: int | None = 10000) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10's training images [n, 3072] (channel-major, pixels in [0, 1]) and labels [n] from the user's
    copy in ``folder`` (the python batches, or their parent folder; nothing is downloaded).

    Args:
        folder: the folder holding ``data_batch_1`` .. ``data_batch_5``, or its parent.
        limit: keep only the first ``limit`` images (None: all of them).

    Raises:
        TypeError: ``folder`` is not a path. ValueError: a bad ``limit``, or a malformed batch (named).
        FileNotFoundError: the folder does not exist or holds no training batch.
    """
    from ..data import load_cifar

    if folder is None or not isinstance(folder, (str, bytes, PathLike)):
        raise TypeError(f"folder must be a path to CIFAR-10's python batches, got {folder!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 2):
        raise ValueError(f"limit must be an integer >= 2 or None, got {limit!r}")
    X, y = load_cifar(folder, 10, "train", flatten=True, normalise=True)
    if limit is not None:
        X, y = X[:limit], y[:limit]
    return torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.int64)


def cifar_oracle(streams: RunStreams, folder, *, limit: int | None = 10000, **kwargs) -> ImageOracle:
    """The same on CIFAR-10's training batches in ``folder`` (the user's copy; nothing is downloaded).

    Args:
        limit: use only the first ``limit`` images (None: all 50000). Other keyword arguments as in
            :func:`image_oracle`.
    """
    X, y = cifar_arrays(folder, limit)
    return image_oracle(streams, X, y, channels=3, **kwargs)


def train_on_image(image: ImageOracle, seeds, *, device="cpu", keep_networks: bool = False,
                   **config) -> AdversarialResult:
    """Train students against an image oracle: :func:`~teachtheory.adversarial.training.train_adversarial` with
    ``AdversarialConfig(**config)`` whose input_dim, teacher_widths and output_dim are the oracle's (full rank:
    the data are the images themselves).

    Args:
        image: the oracle and its data. seeds: the runs' seeds (those the oracle was built with).
        device, keep_networks: as for ``train_adversarial``. config: the other AdversarialConfig fields.
    """
    weights = image.oracle.teacher.weights
    cfg = AdversarialConfig(input_dim=int(weights[0].shape[1]), rank=None,
                            teacher_widths=tuple(int(W.shape[-1]) for W in weights[:-1]),
                            output_dim=int(weights[-1].shape[-1]), **config)
    return train_adversarial(cfg, seed=seeds, device=device, keep_networks=keep_networks, oracle=image.oracle,
                             data=(image.X_train, image.X_eval))


def image_oracle(streams: RunStreams, X_all: torch.Tensor, y_all: torch.Tensor, *, channels: int = 1,
                 widths: Sequence[int] = (45, 32, 32, 20), grow: int = 2, epochs: int = 40, finetune: int = 20,
                 augment: bool = False, lr: float = 0.05, momentum: float = 0.9, batch_size: int = 64,
                 eval_fraction: float = 0.3, plane_energy: float = 0.99, dtype=torch.float32,
                 device="cpu") -> ImageOracle:
    """Train, prune and fine-tune an image oracle per run (see the module docstring).

    Args:
        X_all [n, channels*side*side] (channel-major square images, pixels in [0, 1]), y_all [n] labels 0..K-1.
        widths: hidden widths after pruning; the network is trained at ``grow`` times these.
        epochs, finetune: SGD epochs before and after pruning. augment: one-pixel shift augmentation.
        eval_fraction: held-out share of the images. plane_energy: share of squared norm the plane keeps.
    """
    if X_all.dim() != 2 or y_all.shape != X_all.shape[:1]:
        raise ValueError(f"X_all must be [n, d] and y_all [n], got {tuple(X_all.shape)} and {tuple(y_all.shape)}")
    side = math.isqrt(X_all.shape[1] // channels)
    if channels < 1 or channels * side * side != X_all.shape[1]:
        raise ValueError(f"X_all rows ({X_all.shape[1]} values) are not {channels} square channel(s)")
    widths = tuple(int(w) for w in widths)
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"widths must be positive integers, got {widths!r}")
    if isinstance(grow, bool) or not isinstance(grow, int) or grow < 1:
        raise ValueError(f"grow must be an integer >= 1, got {grow!r}")
    if not 0 < eval_fraction < 1:
        raise ValueError(f"eval_fraction must lie in (0, 1), got {eval_fraction!r}")
    if not 0 < plane_energy <= 1:
        raise ValueError(f"plane_energy must lie in (0, 1], got {plane_energy!r}")
    n = X_all.shape[0]
    classes = int(y_all.max()) + 1
    n_eval = round(eval_fraction * n)
    order = torch.argsort(streams.uniform("digits-split", 0, (n,)), dim=1)
    X = X_all[order].to(dtype=dtype, device=device)
    y = y_all[order].to(device)
    X_train, X_eval, y_train, y_eval = X[:, n_eval:], X[:, :n_eval], y[:, n_eval:], y[:, :n_eval]
    d = X.shape[-1]
    wide = nets.Architecture((d, *(grow * w for w in widths), classes))
    params = wide.init(streams, tag="digits-oracle", dtype=dtype, device=device)
    params = _train(wide, params, X_train, y_train, streams, "digits-oracle", epochs, lr, momentum, batch_size,
                    augment, channels)
    accuracy_unpruned = _accuracy(wide, params, X_eval, y_eval)
    with torch.no_grad():
        params = _prune(wide, params, X_train, widths)
    small = nets.Architecture((d, *widths, classes))
    params = _train(small, params, X_train, y_train, streams, "digits-oracle-finetune", finetune, lr, momentum,
                    batch_size, augment, channels)
    accuracy = _accuracy(small, params, X_eval, y_eval)
    layers = small.layers(params)
    with torch.no_grad():  # unit logit scale over the training data: the L2 targets of logit training stay O(1)
        scale = small.outputs(params, X_train).std(dim=(1, 2)).clamp_min(1e-12)
    layers[-1] = (layers[-1][0] / scale[:, None, None], layers[-1][1] / scale[:, None])
    teacher = Network([W for W, _ in layers], [b for _, b in layers])
    # the input plane: top right-singular vectors of the run's training images holding plane_energy of the norm
    _, S, Vh = torch.linalg.svd(X_train.to(torch.float64), full_matrices=False)
    energy = torch.cumsum(S**2, dim=1) / (S**2).sum(1, keepdim=True)
    rank = (energy < plane_energy - 1e-12).sum(1) + 1
    mask = (torch.arange(S.shape[1], device=S.device)[None, :] < rank[:, None]).to(torch.float64)
    basis = Vh.transpose(1, 2) * mask[:, None, :]
    plane = torch.matmul(basis, basis.transpose(1, 2))
    oracle = Oracle(teacher, basis.to(dtype), plane.to(dtype))
    return ImageOracle(oracle, X_train, X_eval, accuracy, accuracy_unpruned, rank.cpu())
