r"""Label distillation (Bohdal, Yang & Hospedales, "Flexible Dataset Distillation: Learn Labels Instead of
Images", NeurIPS 2020 workshop on meta-learning): keep a fixed set of real base examples and learn only their
labels (distributions, softmax of learned logits, started uniform as in the paper's Algorithm 1).

Two ways to get the labels' gradient, side by side:

* ``mode="rr"`` (the paper's Algorithm 1): the network is a feature extractor :math:`\Theta` and a global
  ridge-regression classifier W. Each iteration solves ridge regression of the base examples' labels on their
  features (Eq. 3, dual form),

  .. math:: W_l = \Phi_s^\top(\Phi_s\Phi_s^\top + \lambda I)^{-1}\tilde Y,

  moves the global classifier by a pseudo-gradient step :math:`W \leftarrow (1-\alpha)W + \alpha W_l`,
  updates the labels by the gradient of the real mini-batch's cross-entropy of :math:`f_{W\circ\Theta}`
  through :math:`W_l(\tilde Y)`, and trains :math:`\Theta` one step on the base examples with their labels.
  :func:`ridge_weights` and :func:`ridge_label_gradient` (the same gradient in closed form) expose the pieces.
* ``mode="unroll"`` (the paper's second-order version): one (or ``inner_steps``) SGD step of the whole network on
  the base examples with their labels, differentiated with :func:`teachtheory.unroll.hypergradient`, then the
  model itself takes that step (model and labels descend together instead of nesting many inner steps).

In both, the model is reset (new :math:`\Theta`, W = 0) when the moving average of the real loss has not
improved for ``patience`` iterations, which keeps the labels useful across the whole of training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..unroll import hypergradient
from .baselines import real_init
from .data import DistillData
from .evaluate import batched_loss
from .nets import make_net
from .synthetic import SyntheticSet

__all__ = ["LD_MODES", "ld", "ridge_label_gradient", "ridge_weights"]

LD_MODES = ("rr", "unroll")


def ridge_weights(features: torch.Tensor, labels: torch.Tensor, lam: float) -> torch.Tensor:
    r"""Ridge regression of ``labels [N, K]`` on ``features [N, d]`` (Eq. 3, dual form):
    :math:`\Phi^\top(\Phi\Phi^\top + \lambda I)^{-1}Y`, ``[d, K]``; differentiable in both."""
    N = features.shape[0]
    gram = features @ features.T + lam * torch.eye(N, dtype=features.dtype, device=features.device)
    return features.T @ torch.linalg.solve(gram, labels)


def ridge_label_gradient(features_s: torch.Tensor, labels: torch.Tensor, features_t: torch.Tensor,
                         targets_t: torch.Tensor, lam: float, alpha: float = 1.0,
                         w_prev: torch.Tensor | None = None) -> torch.Tensor:
    r"""The labels' pseudo-gradient in closed form: with :math:`W = (1-\alpha)W_{prev} + \alpha W_l(\tilde Y)` and
    the mean cross-entropy L of the real features ``features_t`` with class ``targets_t``,
    :math:`\partial L/\partial\tilde Y = \alpha\,\Phi_s(\Phi_s^\top\Phi_s + \lambda I)^{-1} G`,
    :math:`G = \Phi_t^\top(\mathrm{softmax}(\Phi_t W) - Y_t)/n` (the gradient in W)."""
    d = features_s.shape[1]
    W = alpha * ridge_weights(features_s, labels, lam)
    if w_prev is not None:
        W = W + (1 - alpha) * w_prev
    probs = torch.softmax(features_t @ W, -1)
    G = features_t.T @ (probs - F.one_hot(targets_t, labels.shape[1]).to(probs)) / features_t.shape[0]
    primal = features_s.T @ features_s + lam * torch.eye(d, dtype=features_s.dtype, device=features_s.device)
    return alpha * features_s @ torch.linalg.solve(primal, G)


def _with_bias(features: torch.Tensor) -> torch.Tensor:
    return torch.cat([features, torch.ones_like(features[..., :1])], -1)


def ld(data: DistillData, ipc: int, *, steps: int = 300, seed: int = 0, progress=None, mode: str = "rr",
       net: str = "convnet", width: int | None = 32, lam: float = 1e-2, alpha: float = 0.1, lr_label: float = 0.05,
       lr_net: float = 0.01, lr_inner: float = 0.1, inner_steps: int = 1, batch_real: int = 256,
       patience: int = 50, label_init: str = "uniform", **_) -> SyntheticSet:
    """Learn the labels of ``ipc`` random real images per class (see the module docstring).

    Args:
        mode: ``rr`` (ridge-regression pseudo-gradient) or ``unroll`` (second order, through SGD steps).
        lam: ridge regularisation; alpha: pseudo-gradient step of the global classifier.
        lr_label: Adam rate of the label logits; lr_net: SGD rate of the model's own step on the base examples
            (``rr``: the feature extractor); lr_inner, inner_steps: the differentiated steps (``unroll``).
        patience: iterations without improvement of the real loss's moving average before a reset.
        label_init: ``uniform`` (the paper's) or ``onehot`` (the base examples' own classes).

    Raises:
        ValueError: an unknown mode or label_init, or bad sizes.
    """
    if mode not in LD_MODES:
        raise ValueError(f"mode must be one of {', '.join(LD_MODES)}, got {mode!r}")
    if label_init not in ("uniform", "onehot"):
        raise ValueError(f"label_init must be 'uniform' or 'onehot', got {label_init!r}")
    for name, value in (("lam", lam), ("alpha", alpha), ("lr_label", lr_label), ("lr_net", lr_net),
                        ("lr_inner", lr_inner)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if alpha > 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    for name, value in (("inner_steps", inner_steps), ("patience", patience), ("batch_real", batch_real)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    K = data.num_classes
    spec = make_net(net, data.image_shape, K, width=width)
    gen = torch.Generator().manual_seed(seed)
    base, base_classes = real_init(data, ipc, gen)  # the same base images as the random baseline of this seed
    device = base.device
    start = torch.zeros(base.shape[0], K) if label_init == "uniform" else 4.0 * F.one_hot(base_classes.cpu(), K)
    logits = start.to(device=device, dtype=base.dtype).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr_label)
    names = list(spec.shapes())
    n_real = data.x_train.shape[0]
    params = spec.init(1, gen, device)
    W = torch.zeros(spec.feature_dim + 1, K, dtype=base.dtype, device=device)
    curve, resets, best, since, average = [], 0, math.inf, 0, None
    for step in range(steps):
        batch = torch.randperm(n_real, generator=gen)[:batch_real].to(device)
        x_real, y_real = data.x_train[batch], data.y_train[batch]
        if mode == "rr":
            theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            feats_s = _with_bias(spec.embed(theta, base)[0])
            with torch.no_grad():
                feats_t = _with_bias(spec.embed(theta, x_real)[0])
            W_new = (1 - alpha) * W + alpha * ridge_weights(feats_s.detach(), torch.softmax(logits, -1), lam)
            value = F.cross_entropy(feats_t @ W_new, y_real)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            W = W_new.detach()
            # the feature extractor's own step on the base examples with their (now fixed) labels
            train = -(torch.softmax(logits.detach(), -1) * F.log_softmax(feats_s @ W, -1)).sum(1).mean()
            grads = torch.autograd.grad(train, [theta[k] for k in names if k in theta and not k.startswith("head")],
                                        allow_unused=True)
            body = [k for k in names if not k.startswith("head")]
            params = dict(params)
            for k, g in zip(body, grads):
                if g is not None:
                    params[k] = (theta[k] - lr_net * g).detach()
        else:
            theta0 = tuple(params[k] for k in names)

            def train_loss(theta, phi, i):
                out = spec(dict(zip(names, theta)), base)
                return batched_loss(out, torch.softmax(phi[0], -1)[None], "ce")

            def val_loss(theta, x_real=x_real, y_real=y_real):
                return batched_loss(spec(dict(zip(names, theta)), x_real), y_real[None], "ce")

            result = hypergradient(train_loss, val_loss, theta0, (logits,), inner_steps, lr_inner)
            opt.zero_grad(set_to_none=True)
            logits.grad = result.grad_phi[0]
            opt.step()
            value = result.value
            params = dict(zip(names, result.theta))  # the model moves on with the same steps
        value = float(value.detach())
        curve.append(value)
        # reset when the moving average of the real loss stops improving (the paper's overfitting detection)
        average = value if average is None else 0.9 * average + 0.1 * value
        if average < best - 1e-4:
            best, since = average, 0
        else:
            since += 1
        if since >= patience:
            params = spec.init(1, gen, device)
            W = torch.zeros_like(W)
            best, since, average, resets = math.inf, 0, None, resets + 1
        if progress is not None:
            progress(step + 1, steps)
    settings = {"seed": seed, "steps": steps, "mode": mode, "net": spec.to_dict(), "lam": lam, "alpha": alpha,
                "lr_label": lr_label, "lr_net": lr_net, "lr_inner": lr_inner, "inner_steps": inner_steps,
                "batch_real": batch_real, "patience": patience, "label_init": label_init, "resets": resets,
                "base_classes": base_classes.tolist(), "loss_curve": curve,
                "loss_name": "real-batch cross-entropy of the model with the distilled labels"}
    return SyntheticSet(base.detach(), torch.softmax(logits, -1).detach(), K, "ld", data.name, ipc,
                        provenance=settings)
