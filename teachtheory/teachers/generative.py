r"""Generative teaching policies (DHT Sec. 3.3.2): a GAN-based and a VAE-based teacher, batched over runs.

Both synthesize the teaching input :math:`\tilde x` for a pool example (x, y) drawn uniformly, conditioned on
that example, the learner state and the direction :math:`e = w - w^*` (the features of
:class:`~teachtheory.teachers.learned.TeachingPolicy`, and :func:`input_direction`,
:math:`\nabla_x \langle e, \nabla_w \ell(w; x, y)\rangle`, the first-order greedy direction in x); the
learner receives :math:`(\tilde x, y)`, the label being the sampled example's true one (DHT Fig. 7: samples
conditioned on the ground-truth labels).

* **GAN-based**: a generator :math:`\tilde x = \pi_\theta(z, x, y, w, w^*)`, :math:`z \sim N(0, I)`, trained
  on :math:`\|w_v(\theta) - w^*\|^2 + \lambda \sum_i \ell(\pi_\theta(z, x_i, y_i, w_i^{\mathrm{sg}}); y_i \mid
  w_i^{\mathrm{sg}})` plus the generator's adversarial term against a discriminator D that is trained,
  alternately, to tell pool inputs from synthesized ones (the non-saturating form :math:`-\log D(\tilde x)` of
  Goodfellow et al.'s min-max, the usual way of solving it).
* **VAE-based**: a conditional VAE :math:`p(x \mid u, y)` is pre-trained on the pool (:func:`pretrain_vae`);
  the policy outputs a Gaussian :math:`q_\theta(u) = N(\mu, \mathrm{diag}\,\sigma^2)` over the latent code
  (a change of the encoder's posterior of the sampled example),
  :math:`\tilde x` is the decoder's mean at :math:`u = \mu + \sigma \varepsilon`, and the objective adds
  :math:`\mathrm{KL}(q_\theta \,\|\, N(0, I))`, the distribution-divergence constraint in penalty form.

Both generators, and the VAE decoder, emit inputs inside the pool's per-coordinate range
:math:`[\min_i x_i, \max_i x_i]` (a sigmoid onto the box; constant coordinates such as a bias feature stay
fixed), the constraint DHT Sec. 5.1 puts on its synthesized samples; the GAN's generator outputs a change of
the sampled example in the box's logit coordinates, so both untrained policies start close to SGD. The
v-step unrolling goes through :func:`teachtheory.unroll.rollout`.

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 3.3.2, Figs. 5-7;
    Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014;
    Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import nets
from ..learners import Learner
from ..problems import Problem
from ..random import RunStreams, as_seeds
from ..unroll import rollout
from .base import Teacher, TeachingBatch, TeachingContext, gather_pool
from .learned import TeachingPolicy
from .training import TRAIN_STREAM, PolicyTraining, _positive_float, _positive_int

__all__ = ["GENERATIVE_KINDS", "ConditionalVAE", "GenerativePolicy", "GenerativeTeacher", "VAEFit", "data_box",
           "input_direction",
           "pretrain_vae", "train_generative"]

GENERATIVE_KINDS = ("gan", "vae")
NOISE_STREAM = "generator-noise"  # teaching-time noise z (GAN) or epsilon (VAE)
TRAIN_NOISE_STREAM = "generator-train-noise"
REAL_STREAM = "discriminator-real"
VAE_STREAM = "vae-train"


def data_box(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-coordinate range of a pool X [Rp, n, d]: (lo, hi), each [Rp, d]."""
    return X.amin(1), X.amax(1)


def _to_box(raw: torch.Tensor, box: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """raw [R, m, d] -> lo + (hi - lo) sigmoid(raw), inside the pool's range."""
    lo, hi = box
    return lo[:, None] + (hi - lo)[:, None] * torch.sigmoid(raw)


def _from_box(x: torch.Tensor, box: tuple[torch.Tensor, torch.Tensor], margin: float = 1e-3) -> torch.Tensor:
    """The inverse of :func:`_to_box` for inputs x [R, m, d] of the pool (clamped off the box's edges)."""
    lo, hi = box
    span = (hi - lo)[:, None]
    position = torch.where(span > 0, (x - lo[:, None]) / torch.where(span > 0, span, 1.0), 0.5)
    return torch.logit(position.clamp(margin, 1 - margin))


def _label_input(learner: Learner, y: torch.Tensor, dtype) -> torch.Tensor:
    """The label as network input: [R, m, 1] for scalar labels, [R, m, K] otherwise."""
    return (y.unsqueeze(-1) if learner.scalar_labels else y).to(dtype)


def input_direction(learner: Learner, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                    direction: torch.Tensor) -> torch.Tensor:
    """grad_x <e, grad_w l(w; x, y)> per example, [R, m, d]: how moving each input changes the learner's step
    along e (for e = w - w*, the first-order term of the greedy one-step objective in x)."""
    _, pullback = torch.func.vjp(lambda inputs: learner.grad(w, inputs, y), x)
    (out,) = pullback(direction[:, None, :].expand(*x.shape[:2], direction.shape[-1]))
    return out


def _gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), summed over the last axis."""
    return 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(-1)


# -- the VAE --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionalVAE:
    """A conditional VAE p(x | u, y) q(u | x, y) of run-batched MLPs (configuration only).

    Attributes:
        input_dim: d. label_dim: 1 for scalar labels, K otherwise. latent: the code size.
        hidden: hidden widths of encoder and decoder (tanh).
    """

    input_dim: int
    label_dim: int
    latent: int = 4
    hidden: tuple[int, ...] = (64,)

    @property
    def encoder(self) -> nets.Architecture:
        """(x, y) -> (mu, log variance)."""
        return nets.Architecture((self.input_dim + self.label_dim, *self.hidden, 2 * self.latent), act="tanh")

    @property
    def decoder(self) -> nets.Architecture:
        """(u, y) -> the decoder's mean before the squashing onto the data box."""
        return nets.Architecture((self.latent + self.label_dim, *self.hidden, self.input_dim), act="tanh")

    def encode(self, params, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log variance) [R, m, latent] of q(u | x, y); y as :func:`_label_input` gives it."""
        out = self.encoder.outputs(params, torch.cat([x, y], -1))
        return out[..., :self.latent], out[..., self.latent:].clamp(-10.0, 10.0)

    def decode(self, params, u: torch.Tensor, y: torch.Tensor, box) -> torch.Tensor:
        """The decoder's mean input [R, m, d] for codes u and labels y, inside ``box``."""
        return _to_box(self.decoder.outputs(params, torch.cat([u, y], -1)), box)


@dataclass
class VAEFit:
    """A pre-trained :class:`ConditionalVAE`: encoder and decoder parameters (run axis R), the data box
    and the negative ELBO per iteration ([iterations, R])."""

    vae: ConditionalVAE
    encoder: tuple[torch.Tensor, ...]
    decoder: tuple[torch.Tensor, ...]
    box: tuple[torch.Tensor, torch.Tensor]
    history: np.ndarray


def pretrain_vae(
    problem: Problem,
    learner: Learner,
    *,
    latent: int = 4,
    hidden: Sequence[int] = (64,),
    iterations: int = 1000,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int | Sequence[int] = 0,
) -> VAEFit:
    """Pre-train one conditional VAE per run on the pool (unit-variance Gaussian decoder, Adam, minibatches).

    Args:
        problem: the pool (X, y) to model. learner: fixes the label format.
        latent, hidden: the VAE's code size and hidden widths. iterations, batch_size, lr: Adam's schedule.
        seed: per-run seeds of the initialisation and the minibatches.

    Returns:
        :class:`VAEFit`.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem, got {type(problem).__name__}")
    latent, iterations = _positive_int("latent", latent), _positive_int("iterations", iterations)
    batch_size, lr = _positive_int("batch_size", batch_size), _positive_float("lr", lr)
    R, n, d = problem.runs, problem.pool_size, problem.dim
    dtype, device = problem.X.dtype, problem.X.device
    label_dim = 1 if learner.scalar_labels else learner.output_dim
    vae = ConditionalVAE(d, label_dim, latent, tuple(hidden))
    streams = RunStreams(as_seeds(seed, R), device=device)
    enc = tuple(p.requires_grad_(True) for p in vae.encoder.init(streams, tag="vae-encoder", dtype=dtype,
                                                                 device=device))
    dec = tuple(p.requires_grad_(True) for p in vae.decoder.init(streams, tag="vae-decoder", dtype=dtype,
                                                                 device=device))
    box = data_box(problem.X)
    opt = torch.optim.Adam(enc + dec, lr=lr)
    history = []
    with torch.enable_grad():
        for it in range(iterations):
            x, y = gather_pool(problem.X, problem.y, streams.integers(VAE_STREAM, it, n, (batch_size,)).to(device))
            yv = _label_input(learner, y, dtype)
            mu, logvar = vae.encode(enc, x, yv)
            u = mu + (0.5 * logvar).exp() * streams.normal(VAE_STREAM + "-eps", it, (batch_size, latent),
                                                           dtype=dtype).to(device)
            recon = 0.5 * ((vae.decode(dec, u, yv, box) - x) ** 2).sum(-1)
            loss = (recon + _gaussian_kl(mu, logvar)).mean(-1)  # [R]
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
            history.append(loss.detach().cpu().numpy())
    return VAEFit(vae, tuple(p.detach() for p in enc), tuple(p.detach() for p in dec), box, np.stack(history))


# -- the policy -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerativePolicy:
    """Configuration of a generative teaching policy (DHT Sec. 3.3.2).

    Attributes:
        learner: the learner taught. kind: ``"gan"`` (generator in input space) or ``"vae"`` (a Gaussian over
            the latent code of a pre-trained VAE). omniscient: whether the state holds w - w* (else the
            validation-loss gradient, as in :meth:`TeachingPolicy.direction`).
        noise_dim: size of z (GAN); a VAE policy's noise is its latent size. latent: the VAE code size.
        hidden: hidden widths of the generator (tanh). last_gain: initial scale of its last layer.
    """

    learner: Learner
    kind: str = "gan"
    omniscient: bool = True
    noise_dim: int = 8
    latent: int = 4
    hidden: tuple[int, ...] = (64,)
    last_gain: float = 1.0
    context: TeachingPolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in GENERATIVE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(GENERATIVE_KINDS)}, got {self.kind!r}")
        _positive_int("noise_dim", self.noise_dim)
        _positive_int("latent", self.latent)
        # the per-example state (x, y, learner output, direction, label statistics) of the transformation policy
        object.__setattr__(self, "context", TeachingPolicy(self.learner, kind="input", bound=1.0,
                                                           omniscient=self.omniscient, hidden=tuple(self.hidden)))

    @property
    def noise_size(self) -> int:
        """Standard normal numbers drawn per example: z (GAN) or epsilon (VAE)."""
        return self.noise_dim if self.kind == "gan" else self.latent

    @property
    def state_dim(self) -> int:
        """Per-example state: the transformation policy's features, the unit input direction and its log norm."""
        return self.context.feature_dim + self.learner.input_dim + 1

    @property
    def architecture(self) -> nets.Architecture:
        """GAN: (z, state) -> raw input; VAE: state -> (mu, log variance) of the latent code."""
        if self.kind == "gan":
            sizes = (self.noise_dim + self.state_dim, *self.context.hidden, self.learner.input_dim)
        else:
            sizes = (self.state_dim, *self.context.hidden, 2 * self.latent)
        return nets.Architecture(sizes, act="tanh")

    def init(self, streams: RunStreams, *, dtype=torch.float64, device="cpu") -> tuple[torch.Tensor, ...]:
        """Initial generator parameters, one network per run."""
        return self.architecture.init(streams, last_gain=self.last_gain, tag="generator-init", dtype=dtype,
                                      device=device)

    def generate(self, params, w, x, y, direction, noise, box, vae: VAEFit | None = None):
        """(synthesized inputs [R, m, d], KL of the latent Gaussian [R, m], zero for a GAN)."""
        # Both start from the sampled example (the network's output is a change): the GAN in the box's logit
        # coordinates of x, the VAE from the encoder's posterior of (x, y); an untrained policy is close to SGD.
        steer = input_direction(self.learner, w, x, y, direction)
        norm = steer.norm(dim=-1, keepdim=True)
        state = torch.cat([self.context.features(w, x, y, direction), steer / norm.clamp_min(1e-12),
                           torch.log1p(norm)], -1)
        if self.kind == "gan":
            raw = self.architecture.outputs(params, torch.cat([noise, state], -1))
            return _to_box(_from_box(x, box) + raw, box), torch.zeros(x.shape[:2], dtype=x.dtype, device=x.device)
        if vae is None:
            raise ValueError("a VAE policy needs the pre-trained VAE (vae=VAEFit)")
        yv = _label_input(self.learner, y, x.dtype)
        mu0, logvar0 = vae.vae.encode(vae.encoder, x, yv)
        out = self.architecture.outputs(params, state)
        mu, logvar = mu0 + out[..., :self.latent], (logvar0 + out[..., self.latent:]).clamp(-10.0, 10.0)
        u = mu + (0.5 * logvar).exp() * noise
        return vae.vae.decode(vae.decoder, u, yv, vae.box), _gaussian_kl(mu, logvar)

    def to_spec(self) -> dict:
        """A JSON-able description."""
        return {"kind": self.kind, "omniscient": self.omniscient, "noise_dim": self.noise_dim,
                "latent": self.latent, "hidden": list(self.hidden)}


def _expand(params, R):
    runs = params[0].shape[0]
    if runs not in (1, R):
        raise ValueError(f"the generator has parameters for {runs} runs, the problem has {R}")
    return tuple(p.expand(R, *p.shape[1:]) for p in params)


class GenerativeTeacher(Teacher):
    """A trained generative policy as a teacher of ``teach()``: a pool example drawn uniformly, its input
    replaced by the synthesized one, its true label kept.

    Args:
        policy: the configuration. params: generator parameters (run axis R or 1).
        vae: the pre-trained VAE (VAE policies). keep: record run ``keep``'s synthesized inputs, their labels
            and the learner state at every step in ``samples`` / ``labels`` / ``states`` (for the figures); None
            records nothing.
        name: the label in results.
    """

    def __init__(self, policy: GenerativePolicy, params: Sequence[torch.Tensor], *, vae: VAEFit | None = None,
                 keep: int | None = 0, name: str = "generative") -> None:
        if not isinstance(policy, GenerativePolicy):
            raise TypeError(f"policy must be a GenerativePolicy, got {type(policy).__name__}")
        policy.architecture.layers(tuple(params))
        if policy.kind == "vae" and not isinstance(vae, VAEFit):
            raise ValueError("a VAE policy needs vae=VAEFit (see pretrain_vae)")
        self.policy, self.params, self.vae = policy, tuple(p.detach() for p in params), vae
        self.keep, self.name, self.omniscient = keep, name, policy.omniscient
        self.samples: dict[int, np.ndarray] = {}
        self.labels: dict[int, np.ndarray] = {}
        self.states: dict[int, np.ndarray] = {}

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform pool examples with their inputs synthesized at the current w."""
        batch = self.sample_uniform(ctx, step)
        R, m = batch.x.shape[:2]
        noise = ctx.streams.normal(NOISE_STREAM, step, (m, self.policy.noise_size), dtype=w.dtype).to(w.device)
        e = self.policy.context.direction(w, ctx.w_star if self.omniscient else None,
                                          None if self.omniscient else ctx.pool())
        box = self.vae.box if self.vae is not None else data_box(ctx.problem.X)
        x, _ = self.policy.generate(_expand(self.params, R), w, batch.x, batch.y, e, noise, box, self.vae)
        if self.keep is not None:
            self.samples[step] = x[self.keep].detach().cpu().numpy()
            self.labels[step] = batch.y[self.keep].detach().cpu().numpy()
            self.states[step] = w[self.keep].detach().cpu().numpy()
        batch.x, batch.index = x.detach(), None
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name and the policy's settings."""
        return {"name": self.name, **self.policy.to_spec()}


# -- training -------------------------------------------------------------------------------------------------


def train_generative(
    policy: GenerativePolicy,
    problem: Problem,
    *,
    lr: float,
    horizon: int,
    iterations: int,
    episode_steps: int | None = None,
    policy_lr: float = 1e-3,
    aux_weight: float = 0.0,
    gan_weight: float = 1.0,
    kl_weight: float = 1.0,
    disc_hidden: Sequence[int] = (64,),
    disc_lr: float = 1e-3,
    real_batch: int = 16,
    vae: VAEFit | None = None,
    seed: int | Sequence[int] = 0,
    name: str | None = None,
) -> PolicyTraining:
    """Train a generative policy by unrolling ``horizon`` (v) learner SGD steps, one example per step.

    Objective per window: ||w_v - w*||^2 + aux_weight sum_i l(x~_i, y_i | w_i^sg) + (GAN) gan_weight
    mean_i -log D(x~_i) or (VAE) kl_weight mean_i KL(q_theta || N(0, I)); a GAN's discriminator takes one
    Adam step per window on ``real_batch`` pool inputs against the window's synthesized ones. Windows run
    along one trajectory, restarting at w0 every ``episode_steps`` (default ``horizon``).

    Args:
        policy: the configuration (``omniscient=True``: the objective needs w*). problem: R runs.
        lr: the learner's step size. horizon, iterations, episode_steps, policy_lr: as
            :func:`~teachtheory.teachers.training.train_unrolled`.
        aux_weight: lambda of the stop-gradient auxiliary learner loss (DHT Sec. 3.3.1-3.3.2).
        gan_weight, disc_hidden, disc_lr, real_batch: the adversarial term and its discriminator (GAN).
        kl_weight: weight of the KL constraint (VAE). vae: the pre-trained VAE (VAE policies).
        seed: per-run seeds. name: the teacher's name (default ``"gan"`` / ``"vae"``).

    Returns:
        :class:`~teachtheory.teachers.training.PolicyTraining` whose teacher is a :class:`GenerativeTeacher`;
        ``history`` holds the window's ||w_v - w*||^2 per run, ``config["discriminator"]`` the final mean
        D output on pool and on synthesized inputs (GAN).
    """
    if not isinstance(policy, GenerativePolicy):
        raise TypeError(f"policy must be a GenerativePolicy, got {type(policy).__name__}")
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem, got {type(problem).__name__}")
    problem.check_learner(policy.learner)
    if not policy.omniscient:
        raise ValueError("train_generative minimises ||w_v - w*||^2: the policy must be omniscient")
    if policy.kind == "vae" and not isinstance(vae, VAEFit):
        raise ValueError("a VAE policy needs vae=VAEFit (see pretrain_vae)")
    lr, policy_lr, disc_lr = (_positive_float(k, v) for k, v in (("lr", lr), ("policy_lr", policy_lr),
                                                                   ("disc_lr", disc_lr)))
    horizon, iterations = _positive_int("horizon", horizon), _positive_int("iterations", iterations)
    real_batch = _positive_int("real_batch", real_batch)
    episode_steps = horizon if episode_steps is None else _positive_int("episode_steps", episode_steps)
    if episode_steps % horizon:
        raise ValueError(f"episode_steps={episode_steps} must be a multiple of horizon={horizon}")
    for key, value in (("aux_weight", aux_weight), ("gan_weight", gan_weight), ("kl_weight", kl_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{key} must be a non-negative number, got {value!r}")
    learner, R, n = policy.learner, problem.runs, problem.pool_size
    X, Y, dtype, device = problem.X, problem.y, problem.X.dtype, problem.X.device
    streams = RunStreams(as_seeds(seed, R), device=device)
    theta = tuple(p.requires_grad_(True) for p in policy.init(streams, dtype=dtype, device=device))
    opt = torch.optim.Adam(theta, lr=policy_lr)
    box = vae.box if vae is not None else data_box(X)
    w_star = problem.w_star.expand_as(problem.w0)
    adversarial = policy.kind == "gan" and gan_weight > 0
    if adversarial:
        disc = nets.Architecture((learner.input_dim, *tuple(disc_hidden), 1), act="leaky_relu")
        phi = tuple(p.requires_grad_(True) for p in disc.init(streams, tag="discriminator-init", dtype=dtype,
                                                              device=device))
        disc_opt = torch.optim.Adam(phi, lr=disc_lr)

    history, d_real, d_fake = [], float("nan"), float("nan")
    w = problem.w0.detach()
    for it in range(iterations):
        if (it * horizon) % episode_steps == 0:
            w = problem.w0.detach()
        made, extra = [], []

        def step(ws, i):
            (wi,) = ws
            x, y = gather_pool(X, Y, streams.integers(TRAIN_STREAM, i, n, (1,)).to(device))
            noise = streams.normal(TRAIN_NOISE_STREAM, i, (1, policy.noise_size), dtype=dtype).to(device)
            x2, kl = policy.generate(theta, wi, x, y, wi - w_star, noise, box, vae)
            made.append(x2)
            term = kl_weight * kl.mean(-1) if policy.kind == "vae" else 0.0
            if aux_weight > 0:  # the learner's loss on the synthesized example at the stop-gradient state
                ws_ = wi.detach()
                xs, _ = policy.generate(theta, ws_, x, y, ws_ - w_star, noise, box, vae)
                term = term + aux_weight * learner.loss(ws_, xs, y).mean(-1)
            extra.append(term)
            return (wi - lr * learner.mean_grad(wi, x2, y),)

        with torch.enable_grad():
            final = rollout(step, (w,), horizon, start=it * horizon).iterates[-1][0]
            main = ((final - w_star) ** 2).sum(-1)
            total = main.sum() + sum(torch.as_tensor(t).sum() for t in extra)
            fake = torch.cat(made, 1)  # [R, v, d]
            if adversarial:
                total = total + gan_weight * (-F.logsigmoid(disc.outputs(phi, fake)[..., 0])).mean(-1).sum()
            opt.zero_grad()
            total.backward()
        opt.step()
        if adversarial:
            with torch.enable_grad():
                real, _ = gather_pool(X, Y, streams.integers(REAL_STREAM, it, n, (real_batch,)).to(device))
                logit_real = disc.outputs(phi, real)[..., 0]
                logit_fake = disc.outputs(phi, fake.detach())[..., 0]
                d_loss = (-F.logsigmoid(logit_real)).mean(-1) + (-F.logsigmoid(-logit_fake)).mean(-1)
                disc_opt.zero_grad()
                d_loss.sum().backward()
            disc_opt.step()
            d_real = float(torch.sigmoid(logit_real).mean().detach())
            d_fake = float(torch.sigmoid(logit_fake).mean().detach())
        w = final.detach()
        if not torch.isfinite(w).all():
            raise FloatingPointError(f"the learner diverged while training the generator (iteration {it}); "
                                     f"lower lr={lr}")
        history.append(main.detach().cpu().numpy())
    params = tuple(p.detach() for p in theta)
    config = {"method": f"unrolled-{policy.kind}", "horizon": horizon, "iterations": iterations,
              "episode_steps": episode_steps, "lr": lr, "policy_lr": policy_lr, "aux_weight": float(aux_weight),
              "gan_weight": float(gan_weight) if policy.kind == "gan" else None,
              "kl_weight": float(kl_weight) if policy.kind == "vae" else None, "policy": policy.to_spec()}
    if adversarial:
        config["discriminator"] = {"hidden": list(disc_hidden), "lr": disc_lr, "real_batch": real_batch,
                                   "mean_D_real": d_real, "mean_D_synthesized": d_fake}
    teacher = GenerativeTeacher(policy, params, vae=vae, name=name or policy.kind)
    return PolicyTraining(teacher, params, np.stack(history), config)
