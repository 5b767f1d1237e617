r"""Losses, population gradients and training loops for self-supervised learning, batched over runs.

* :func:`contrastive_l2` — the loss :math:`\tfrac12[(1+\beta)\|f(x_1)-f(x_+)\|^2 - \|f(x_1)-f(x_-)\|^2]`.
* :func:`exact_expected_gradient` — its population gradient on a finite model by autograd of the
  loss summed over every (x1, x+) and (x1, x-) pair with its exact probability (no use of K_l).
* :func:`sampled_gradients` — group means of sampled gradients (autograd), for standard errors.
* :func:`info_nce`, :func:`byol_loss`, :func:`train_simclr`, :func:`train_byol` — SimCLR and BYOL on
  a generative model, every run one slice of the leading axis (all runs in one tensor computation).
* :func:`latent_correlations`, :func:`split_half_covariance_trace`, :func:`linear_probe_accuracy` —
  what the simulation tracks.

References:
    Tian, Yu, Chen, Ganguli 2020 (Sec. 3, 5, 6); Chen et al. 2020 (SimCLR, InfoNCE);
    Grill et al. 2020 (BYOL); Tian's teacher-student talk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch

from .. import nets
from ..learners.updates import momentum_step
from ..random import RunStreams, as_seeds
from .networks import ReLUNet

__all__ = [
    "BYOLConfig",
    "SimCLRConfig",
    "batch_norm",
    "byol_loss",
    "contrastive_l2",
    "eval_set",
    "exact_expected_gradient",
    "exact_expected_loss",
    "info_nce",
    "init_mlp",
    "latent_correlations",
    "linear_probe_accuracy",
    "mlp_activations",
    "sampled_gradients",
    "split_half_covariance_trace",
    "train_byol",
    "train_simclr",
]


def contrastive_l2(f1: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, beta: float = 0.0) -> torch.Tensor:
    r"""Per-sample :math:`\tfrac12[(1+\beta)\|f_1 - f_+\|^2 - \|f_1 - f_-\|^2]` (last axis summed)."""
    return 0.5 * ((1.0 + beta) * ((f1 - fp) ** 2).sum(-1) - ((f1 - fn) ** 2).sum(-1))


def _leaf_copies(weights: Sequence[torch.Tensor], repeats: int = 1) -> list[torch.Tensor]:
    out = []
    for w in weights:
        c = w.detach().repeat_interleave(repeats, 0) if repeats > 1 else w.detach().clone()
        out.append(c.requires_grad_(True))
    return out


def exact_expected_loss(net: ReLUNet, weights: Sequence[torch.Tensor], enumeration, *, beta: float = 0.0,
                        pi_negative: torch.Tensor | None = None, stop_gradient: bool = False,
                        method: str = "pairs") -> torch.Tensor:
    r"""Exact :math:`E L` per run, [R], on a finite model.

    ``method="pairs"``: the sum over every input pair (a, b) of :math:`\tfrac12\|f(x_a) - f(x_b)\|^2`
    times its probability — positive pairs :math:`\sum_z p(z)p(x_a|z)p(x_b|z)`, negative pairs
    :math:`p(x_a)p(x_b)` (or :math:`\sum_{z,z'}\pi(z,z')p(x_a|z)p(x_b|z')` for a latent pairing ``pi_negative``).
    With ``stop_gradient`` the second member of each pair (x+, x-) is detached (gradients flow through
    the anchor only). ``method="moments"`` computes the same sum in O(N Z) memory from
    :math:`\sum_{ab} w_{ab} f_a^\top f_b` written with the augment means (default pairing only,
    no stop-gradient); it is for enumerations too large for an N x N pair table.
    """
    if method not in ("pairs", "moments"):
        raise ValueError(f"method must be 'pairs' or 'moments', got {method!r}")
    f = net.outputs(weights, enumeration.inputs)  # [R, N, O]
    if method == "moments":
        if pi_negative is not None or stop_gradient:
            raise ValueError("method='moments' supports the independent pairing without stop_gradient only")
        p_x = enumeration.marginal.to(f)
        p_in, p_z = enumeration.p_input.to(f), enumeration.p_latent.to(f)
        second = torch.einsum("n,rn->r", p_x, (f * f).sum(-1))
        fbar = torch.einsum("zn,rno->rzo", p_in, f)
        within = torch.einsum("z,rz->r", p_z, (fbar * fbar).sum(-1))
        mean = torch.einsum("z,rzo->ro", p_z, fbar)
        return (1.0 + beta) * (second - within) - (second - (mean * mean).sum(-1))
    pos = enumeration.positive_pair_weights().to(f)
    neg = enumeration.negative_pair_weights(pi_negative).to(f)
    g = f.detach() if stop_gradient else f
    dist = (f * f).sum(-1)[:, :, None] + (g * g).sum(-1)[:, None, :] - 2.0 * f @ g.transpose(1, 2)  # ||f_a - g_b||^2
    return 0.5 * ((1.0 + beta) * (pos * dist).sum((1, 2)) - (neg * dist).sum((1, 2)))


def exact_expected_gradient(net: ReLUNet, weights: Sequence[torch.Tensor], enumeration, *, beta: float = 0.0,
                            pi_negative: torch.Tensor | None = None, stop_gradient: bool = False,
                            method: str = "pairs") -> list[torch.Tensor]:
    r"""Exact :math:`E\nabla_{\mathrm{vec} W_l} L` for every layer, [R, P_l] each: autograd of
    :func:`exact_expected_loss` (K_l is not used). Gradients of masked-out weights are zero."""
    leaves = _leaf_copies(weights)
    loss = exact_expected_loss(net, leaves, enumeration, beta=beta, pi_negative=pi_negative,
                               stop_gradient=stop_gradient, method=method)
    grads = torch.autograd.grad(loss.sum(), leaves)
    return [g.reshape(g.shape[0], -1) for g in grads]


def sampled_gradients(net: ReLUNet, weights: Sequence[torch.Tensor], x1: torch.Tensor, xp: torch.Tensor,
                      xn: torch.Tensor, groups: int, beta: float = 0.0) -> list[torch.Tensor]:
    """Mean gradient of :func:`contrastive_l2` over each of ``groups`` equal groups of samples.

    Args:
        x1, xp, xn: anchors, positives, negatives, [R, n, n0] (n divisible by ``groups``).

    Returns:
        per layer [R, groups, P_l] (group means; their spread gives the standard error).
    """
    R, n, n0 = x1.shape
    if n % groups:
        raise ValueError(f"groups must divide the number of samples n={n}, got {groups}")
    leaves = _leaf_copies(weights, groups)

    def regroup(x):
        return x.reshape(R * groups, n // groups, n0)

    f1, fp, fn = (net.outputs(leaves, regroup(x)) for x in (x1, xp, xn))
    loss = contrastive_l2(f1, fp, fn, beta).mean(-1)
    grads = torch.autograd.grad(loss.sum(), leaves)
    return [g.reshape(R, groups, -1) for g in grads]


# -- SimCLR / BYOL -----------------------------------------------------------------------------


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""SimCLR's NT-Xent over 2B views, per run: z1, z2 [R, B, O] (normalised) -> [R].

    For anchor i the positive is its other view and the negatives are the other 2B - 2 views:
    :math:`-\log \frac{e^{s_{i+}/\tau}}{\sum_{k\ne i} e^{s_{ik}/\tau}}`, s the cosine similarity
    With unit vectors :math:`s = 1 - r/2`, r the squared distance, so this is the slide's form
    :math:`-\log e^{-r_+/\tau'} / (e^{-r_+/\tau'} + \sum_k e^{-r_{k-}/\tau'})` with :math:`\tau' = 2\tau`.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    B = z1.shape[1]
    z = torch.cat([z1, z2], 1)
    logits = z @ z.transpose(1, 2) / temperature
    eye = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    target = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)]).to(z.device)
    logp = torch.log_softmax(logits, -1)
    return -logp[:, torch.arange(2 * B, device=z.device), target].mean(-1)


def byol_loss(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(p, t) averaged over the batch: p (online prediction), t (target, no gradient), [R, B, O] -> [R]."""
    p = torch.nn.functional.normalize(p, dim=-1)
    t = torch.nn.functional.normalize(t.detach(), dim=-1)
    return (2.0 - 2.0 * (p * t).sum(-1)).mean(-1)


def batch_norm(h: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per run, per unit: (h - mean) / sqrt(var + eps) over the batch axis (dim 1), no affine part."""
    mean = h.mean(1, keepdim=True)
    var = h.var(1, unbiased=False, keepdim=True)
    return (h - mean) / torch.sqrt(var + eps)


def mlp_activations(weights: Sequence[torch.Tensor], x: torch.Tensor, *, bn: bool | str = False) -> list[torch.Tensor]:
    """Bias-free MLP (:func:`teachtheory.nets.forward`): hidden layers Linear -> (BN) -> ReLU, last layer
    linear. ``bn``: True (full BatchNorm), False, or a mode of :func:`teachtheory.theory.ssl.bn_forward`.
    Returns every activation [x, h_1, ..., output], each [R, B, n]."""
    if isinstance(bn, str):
        from ..theory.ssl import bn_forward

        norm = None if bn == "none" else (lambda h: bn_forward(h, bn))
    else:
        norm = batch_norm if bn else None
    return nets.forward([(w, None) for w in weights], x, act="relu", hidden_norm=norm).post


def latent_correlations(acts: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """For each latent, the largest |Pearson correlation| with any unit: acts [R, M, U], latents [R, M, Q]
    -> [R, Q]. Constant units count as uncorrelated."""
    a = acts - acts.mean(1, keepdim=True)
    z = latents.to(acts) - latents.to(acts).mean(1, keepdim=True)
    cov = torch.einsum("rmu,rmq->ruq", a, z) / acts.shape[1]
    sa = a.pow(2).mean(1).sqrt()
    sz = z.pow(2).mean(1).sqrt()
    denom = sa[:, :, None] * sz[:, None, :]
    corr = torch.where(denom > 1e-12, cov / denom.clamp_min(1e-12), torch.zeros_like(cov))
    return corr.abs().amax(1)


def split_half_covariance_trace(f_prev: torch.Tensor, J: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    r"""Unbiased :math:`\mathrm{tr}\,V_{z_0}[\bar K_l] = \tfrac14\|\bar K_l(+1) - \bar K_l(-1)\|_F^2` for an
    equiprobable binary root, from two independent halves of a class-balanced sample.

    K_l = f_{l-1} (x) J_l^T is never formed: the class-mean difference is contracted directly.

    Args:
        f_prev: f_{l-1} [R, M, n_{l-1}]; J: J_l [R, M, n_L, n_l] (M even; samples 0..M/2-1 and M/2..M-1
            are the two halves); root: [R, M] in {-1, +1}, every half containing both classes.

    Returns:
        [R]: (1/4) <D_a, D_b>, D_h = mean of K_l over root = +1 minus over root = -1 within half h.
    """
    half = root.shape[1] // 2
    diffs = []
    for sl in (slice(0, half), slice(half, 2 * half)):
        r = root[:, sl].to(J)
        pos, neg = (r > 0).to(J), (r < 0).to(J)
        if (pos.sum(1) == 0).any() or (neg.sum(1) == 0).any():
            raise ValueError("root: every half must contain both classes")
        wts = pos / pos.sum(1, keepdim=True) - neg / neg.sum(1, keepdim=True)
        diffs.append(torch.einsum("rmi,rmoj->rijo", wts[..., None] * f_prev[:, sl], J[:, sl]))
    return 0.25 * (diffs[0] * diffs[1]).sum((1, 2, 3))


def linear_probe_accuracy(feats_train: torch.Tensor, y_train: torch.Tensor, feats_test: torch.Tensor,
                          y_test: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    """Least-squares linear probe (with a bias, features standardised) predicting y in {-1, +1}: accuracy [R]."""
    mu = feats_train.mean(1, keepdim=True)
    sd = feats_train.std(1, keepdim=True).clamp_min(1e-8)

    def design(f):
        f = (f - mu) / sd
        return torch.cat([f, torch.ones_like(f[..., :1])], -1).to(torch.float64)

    A, At = design(feats_train), design(feats_test)
    gram = A.transpose(1, 2) @ A / A.shape[1] + ridge * torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    coef = torch.linalg.solve(gram, A.transpose(1, 2) @ y_train.to(A)[..., None] / A.shape[1])
    pred = torch.sign((At @ coef)[..., 0])
    return (pred == y_test.to(pred)).to(torch.float64).mean(1)


def init_mlp(streams: RunStreams, widths: Sequence[int], tag: str, dtype, device) -> list[torch.Tensor]:
    """Bias-free MLP weights of the given widths from the runs' streams under ``tag`` (how every SSL network starts)."""
    net = ReLUNet(list(widths))
    return [w.to(dtype=dtype, device=device) for w in net.init(streams, tag=tag)]


@dataclass
class SimCLRConfig:
    """SimCLR on a generative model (see :func:`train_simclr`)."""

    widths: tuple[int, ...] = (32, 64, 64, 32)
    batch: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    temperature: float = 0.1
    eval_every: int = 25
    eval_samples: int = 2048


@dataclass
class BYOLConfig:
    """BYOL switches (the seed's ablation): a predictor, an EMA target, BatchNorm in the hidden layers.

    ``bn_mode`` picks a BatchNorm component variant (:data:`teachtheory.theory.ssl.BN_MODES`: mu, sigma, detached
    mu#, sigma#, ...) and overrides ``bn``; ``predictor_kind`` is a two-layer "mlp" or a bias-free "linear" map;
    ``predictor_reinit`` > 0 re-initialises the predictor (and its momentum) every that many steps.
    """

    widths: tuple[int, ...] = (32, 64, 64, 32)
    predictor: bool = True
    ema: bool = True
    bn: bool = True
    predictor_hidden: int = 32
    ema_decay: float = 0.99
    batch: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    eval_every: int = 25
    eval_samples: int = 2048
    extra: dict = field(default_factory=dict)
    bn_mode: str | None = None
    predictor_kind: str = "mlp"
    predictor_reinit: int = 0

    def __post_init__(self) -> None:
        from ..theory.ssl import BN_MODES

        if self.bn_mode is not None and self.bn_mode not in BN_MODES:
            raise ValueError(f"bn_mode must be None or one of {', '.join(BN_MODES)}, got {self.bn_mode!r}")
        if self.predictor_kind not in PREDICTOR_KINDS:
            raise ValueError(f"predictor_kind must be one of {', '.join(PREDICTOR_KINDS)}, got {self.predictor_kind!r}")
        if isinstance(self.predictor_reinit, bool) or not isinstance(self.predictor_reinit, int) \
                or self.predictor_reinit < 0:
            raise ValueError(f"predictor_reinit must be a non-negative integer, got {self.predictor_reinit!r}")

    @property
    def norm_mode(self) -> str:
        """The BatchNorm variant in use: ``bn_mode``, else "mu,sigma" with ``bn`` and "none" without."""
        return self.bn_mode if self.bn_mode is not None else ("mu,sigma" if self.bn else "none")


PREDICTOR_KINDS = ("mlp", "linear")


def _check_training_args(model, runs: int, steps: int, cfg) -> None:
    for name, value in (("runs", runs), ("steps", steps), ("batch", cfg.batch), ("eval_every", cfg.eval_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"lr must be a positive number, got {cfg.lr!r}")
    if cfg.widths[0] != model.input_dim:
        raise ValueError(f"widths[0] must equal the model's input dimension {model.input_dim}, got {cfg.widths[0]}")
    if cfg.eval_samples < 8 or cfg.eval_samples % 4:
        raise ValueError(f"eval_samples must be a multiple of 4 and >= 8, got {cfg.eval_samples}")


class _SGD:
    """SGD with momentum and weight decay (:func:`teachtheory.learners.updates.momentum_step`) on a list
    of run-batched leaf tensors, updated in place so that the caller's references stay valid."""

    def __init__(self, params: list[torch.Tensor], lr: float, momentum: float, weight_decay: float) -> None:
        self.params, self.lr, self.momentum, self.wd = params, lr, momentum, weight_decay
        self.buf = [torch.zeros_like(p) for p in params]

    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """One step from the gradients of the current parameters."""
        with torch.no_grad():
            for i, (p, g, b) in enumerate(zip(self.params, grads, self.buf)):
                new, self.buf[i] = momentum_step(p, g, b, self.lr, self.momentum, self.wd)
                p.copy_(new)


def eval_set(model, runs: int, seed: int, n: int, dtype, device):
    """A fixed evaluation sample (class-balanced root: the first half -1, the second +1 within each half)."""
    streams = RunStreams(as_seeds(seed + 7_919_000, runs), device="cpu")
    quarter = n // 4
    root = torch.cat([-torch.ones(runs, quarter), torch.ones(runs, quarter)] * 2, 1).to(dtype)
    levels, x = model.sample_tree(streams, 0, n, 1, dtype, tag="eval", root=root)
    levels = [lv[:, :, 0].to(device) for lv in levels]
    return levels, x[:, :, 0].to(device)


def _track(acts: list[torch.Tensor], levels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """best |corr| per (layer, tree level), mean over the level's latents: [R, layers, levels]."""
    table = torch.stack([torch.stack([latent_correlations(a, lv).mean(-1) for lv in levels], -1) for a in acts[1:]], 1)
    return {"corr": table}


def _probe(feats: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    M = feats.shape[1] // 2
    return linear_probe_accuracy(feats[:, :M], root[:, :M], feats[:, M:], root[:, M:])


def _views(model, streams: RunStreams, t: int, batch: int, dtype, device) -> torch.Tensor:
    """Step t's two augmented views [R, batch, 2, d] of the SimCLR/BYOL data stream (the same for both methods)."""
    return model.sample_views(streams, t, batch, 2, dtype, tag="simclr-data")[1].to(device)


def _run_steps(steps: int, eval_every: int, step: Callable[[int], torch.Tensor], evaluate: Callable[[int], None],
               progress: Callable[[int, int], None] | None) -> torch.Tensor:
    """The SSL training loop: ``step(t)`` for t < steps (it returns the loss [R]); ``evaluate`` at 0, after every
    ``eval_every`` steps and at the end. Returns the losses [R, steps] on the CPU."""
    losses = []
    evaluate(0)
    for t in range(steps):
        losses.append(step(t).detach())
        if (t + 1) % eval_every == 0 or t + 1 == steps:
            evaluate(t + 1)
        if progress is not None:
            progress(t + 1, steps)
    return torch.stack(losses, 1).cpu()


def train_simclr(model, runs: int, steps: int, seed: int, cfg: SimCLRConfig | None = None, *,
                 dtype: torch.dtype = torch.float32, device: str = "cpu",
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """SimCLR (InfoNCE with temperature, L2-normalised output) on an :class:`~teachtheory.ssl.HLTM`.

    Tracks, every ``eval_every`` steps on a fixed evaluation sample: the best |corr| between hidden
    units and the latent variables of every tree level (per layer), tr V_{z0}[Kbar_l] per layer
    (split-half unbiased, connection of the un-normalised network), and a linear-probe accuracy of z0.

    Returns:
        dict of tensors: ``steps`` [E], ``corr`` [R, E, layers, levels], ``cov_trace`` [R, E, layers],
        ``probe`` [R, E], ``loss`` [R, steps], ``weights`` (final), ``seconds``.
    """
    cfg = cfg or SimCLRConfig()
    _check_training_args(model, runs, steps, cfg)
    start = time.perf_counter()
    streams = RunStreams(as_seeds(seed, runs), device="cpu")
    net = ReLUNet(list(cfg.widths), normalize=True)
    weights = [w.to(dtype=dtype, device=device).requires_grad_(True) for w in net.init(streams, tag="simclr-init")]
    opt = _SGD(weights, cfg.lr, cfg.momentum, cfg.weight_decay)
    levels, x_eval = eval_set(model, runs, seed, cfg.eval_samples, dtype, device)
    body = ReLUNet(list(cfg.widths))  # the un-normalised network whose connections are tracked
    record: dict[str, list] = {"steps": [], "corr": [], "cov_trace": [], "probe": []}

    def evaluate(t: int) -> None:
        with torch.no_grad():
            acts, _ = body.forward([w.detach() for w in weights], x_eval)
            record["corr"].append(_track(acts, levels)["corr"])
            Js = body.jacobians([w.detach() for w in weights], x_eval)
            record["cov_trace"].append(torch.stack([split_half_covariance_trace(acts[i], J, levels[0][..., 0])
                                                    for i, J in enumerate(Js)], -1))
            record["probe"].append(_probe(acts[-2], levels[0][..., 0]))
            record["steps"].append(t)

    def step(t: int) -> torch.Tensor:
        x = _views(model, streams, t, cfg.batch, dtype, device)
        z1 = net.outputs(weights, x[:, :, 0])
        z2 = net.outputs(weights, x[:, :, 1])
        loss = info_nce(z1, z2, cfg.temperature)
        grads = torch.autograd.grad(loss.sum(), weights)
        opt.step(grads)
        return loss

    losses = _run_steps(steps, cfg.eval_every, step, evaluate, progress)
    return {
        "steps": torch.tensor(record["steps"]), "corr": torch.stack(record["corr"], 1).cpu(),
        "cov_trace": torch.stack(record["cov_trace"], 1).cpu(), "probe": torch.stack(record["probe"], 1).cpu(),
        "loss": losses, "weights": [w.detach().cpu() for w in weights],
        "seconds": time.perf_counter() - start, "config": asdict(cfg),
    }


def train_byol(model, runs: int, steps: int, seed: int, cfg: BYOLConfig | None = None, *,
               dtype: torch.dtype = torch.float32, device: str = "cpu",
               progress: Callable[[int, int], None] | None = None) -> dict:
    """BYOL on an :class:`~teachtheory.ssl.HLTM` with switches for the predictor, the EMA target and BN.

    Online: encoder (hidden layers Linear -> BN? -> ReLU, linear output) then, if ``predictor``, a
    two-layer predictor (Linear -> BN? -> ReLU -> Linear). Target: the encoder with EMA weights
    (decay ``ema_decay``) or, without EMA, the online encoder's current weights, never differentiated.
    Loss: 2 - 2 cos(prediction(view 1), target(view 2)), symmetrised. The same initial encoder and
    data stream as :func:`train_simclr` for the same seed.

    Returns:
        dict of tensors: ``steps``, ``corr`` [R, E, layers, levels], ``probe`` [R, E], ``spread`` [R, E]
        (sqrt(O) x mean per-dimension std of the normalised output: ~1 when spread, 0 when collapsed),
        ``loss`` [R, steps], ``seconds``.
    """
    cfg = cfg or BYOLConfig()
    _check_training_args(model, runs, steps, cfg)
    start = time.perf_counter()
    streams = RunStreams(as_seeds(seed, runs), device="cpu")
    encoder = [w.to(dtype=dtype, device=device).requires_grad_(True)
               for w in ReLUNet(list(cfg.widths)).init(streams, tag="simclr-init")]
    out_dim = cfg.widths[-1]
    pred_widths = (out_dim, cfg.predictor_hidden, out_dim) if cfg.predictor_kind == "mlp" else (out_dim, out_dim)
    predictor = ([w.requires_grad_(True) for w in init_mlp(streams, pred_widths, "byol-pred", dtype, device)]
                 if cfg.predictor else [])
    mode = cfg.norm_mode
    target = [w.detach().clone() for w in encoder]
    params = encoder + predictor
    opt = _SGD(params, cfg.lr, cfg.momentum, cfg.weight_decay)
    levels, x_eval = eval_set(model, runs, seed, cfg.eval_samples, dtype, device)
    record: dict[str, list] = {"steps": [], "corr": [], "probe": [], "spread": []}

    def evaluate(t: int) -> None:
        with torch.no_grad():
            acts = mlp_activations([w.detach() for w in encoder], x_eval, bn=mode)
            record["corr"].append(_track(acts, levels)["corr"])
            record["probe"].append(_probe(acts[-2], levels[0][..., 0]))
            out = torch.nn.functional.normalize(acts[-1], dim=-1)
            record["spread"].append(out.std(1).mean(-1) * math.sqrt(out.shape[-1]))
            record["steps"].append(t)

    def online(x):
        h = mlp_activations(encoder, x, bn=mode)[-1]
        return mlp_activations(predictor, h, bn=mode)[-1] if cfg.predictor else h

    def step(t: int) -> torch.Tensor:
        x = _views(model, streams, t, cfg.batch, dtype, device)
        with torch.no_grad():
            tgt = target if cfg.ema else [w.detach() for w in encoder]
            t1 = mlp_activations(tgt, x[:, :, 0], bn=mode)[-1]
            t2 = mlp_activations(tgt, x[:, :, 1], bn=mode)[-1]
        loss = byol_loss(online(x[:, :, 0]), t2) + byol_loss(online(x[:, :, 1]), t1)
        grads = torch.autograd.grad(loss.sum(), params)
        opt.step(grads)
        if cfg.ema:
            with torch.no_grad():
                for wt, wo in zip(target, encoder):
                    wt.mul_(cfg.ema_decay).add_((1.0 - cfg.ema_decay) * wo.detach())
        if cfg.predictor and cfg.predictor_reinit and (t + 1) % cfg.predictor_reinit == 0 and t + 1 < steps:
            # a fresh draw per re-initialisation (the tag names the step); momentum restarts with it
            fresh = init_mlp(streams, pred_widths, f"byol-pred-reinit-{t + 1}", dtype, device)
            with torch.no_grad():
                for i, w in enumerate(fresh):
                    predictor[i].copy_(w)
                    opt.buf[len(encoder) + i].zero_()
        return loss

    losses = _run_steps(steps, cfg.eval_every, step, evaluate, progress)
    return {
        "predictor": [w.detach().cpu() for w in predictor], "encoder": [w.detach().cpu() for w in encoder],
        "steps": torch.tensor(record["steps"]), "corr": torch.stack(record["corr"], 1).cpu(),
        "probe": torch.stack(record["probe"], 1).cpu(), "spread": torch.stack(record["spread"], 1).cpu(),
        "loss": losses, "seconds": time.perf_counter() - start, "config": asdict(cfg),
    }
