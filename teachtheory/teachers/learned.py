r"""Learned teaching policies: a run-batched policy network as an ordinary :class:`Teacher`.

A policy :math:`\pi_\theta` maps what the teacher sees about one candidate example (its input x, its
true label y, the learner's output on it, the learner's per-example gradient statistics and the
learner state) to a *teaching action*:

* ``kind="label"``: the label fed to the learner (LAST Sec. 4, the parameterized label synthesiser);
* ``kind="input"``: an input change bounded by epsilon per coordinate (DHT Sec. 3.3.1's transformation);
* ``kind="both"``: input and label together (DHT's full teaching space, Fig. 8);
* ``kind="mixup"``: a Mixup coefficient for a pair of pool examples (DHT Sec. 4.1).

With ``kind="input"`` the learner gets :math:`x' = x + \epsilon \tanh(\text{out})`; ``"both"`` adds an unbounded
label change; ``"mixup"`` feeds :math:`\lambda x_i + (1 - \lambda) x_j` with the same mix of labels, where
:math:`\lambda` is sigmoid(out) (continuous) or one of ``actions``, default {0, 0.5, 1} (discrete). Actions are
either *continuous* (the network output itself, trained by unrolling) or *discrete* (a softmax over a
fixed action set, trained by policy gradient). The omniscient policy sees :math:`w - w^*`; the
black-box one (``omniscient=False``: BLAST, LAST Sec. 4; DHT Fig. 8) sees only w.

Every parameter carries the leading run axis R of :mod:`teachtheory.nets`: run r trains and uses its
own policy on its own problem, so R policies train together in one batched computation.
Training lives in :mod:`teachtheory.teachers.training`.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Secs. 3.3 and 4;
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 3.3.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .. import nets
from ..learners import Learner
from ..random import RunStreams
from .base import Teacher, TeachingBatch, TeachingContext, gather_pool

__all__ = ["KINDS", "MODES", "LearnedTeacher", "MixupTeacher", "TeachingPolicy", "default_actions", "mix",
           "sample_partner"]

KINDS = ("label", "input", "both", "mixup")
MODES = ("continuous", "discrete")
# Stream for the action a discrete policy samples at teaching time (deterministic argmax otherwise).
ACTION_STREAM = "policy-action"
# Stream of the second example of each Mixup pair (the first comes from the shared sampling stream).
PARTNER_STREAM = "mixup-partner"


def mix(lam: torch.Tensor, x1: torch.Tensor, y1: torch.Tensor, x2: torch.Tensor,
        y2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup of pairs: lam [R, m] -> (lam x1 + (1 - lam) x2, lam y1 + (1 - lam) y2), labels scalar or vector."""
    lx = lam[..., None]
    ly = lam if y1.dim() == lam.dim() else lam[..., None]
    return lx * x1 + (1 - lx) * x2, ly * y1 + (1 - ly) * y2


def default_actions(learner: Learner, count: int = 9, bound: float = 2.0, *, dtype=torch.float64) -> torch.Tensor:
    """A discretised label space: ``count`` scalar values evenly in [-bound, bound] ([A]) for scalar learners;
    for K outputs, the scaled one-hot vectors s e_k, s in ``count`` values evenly in (0, bound] ([A = count K, K]).
    With a relative policy (the default) these are offsets added to the true label; include 0 (odd ``count``
    for scalars) so that plain SGD is one of the actions."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 2:
        raise ValueError(f"count must be an integer >= 2, got {count!r}")
    if not (isinstance(bound, (int, float)) and math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a positive number, got {bound!r}")
    if learner.scalar_labels:
        return torch.linspace(-bound, bound, count, dtype=dtype)
    K = learner.output_dim
    scales = torch.linspace(bound / count, bound, count, dtype=dtype)
    return (scales[:, None, None] * torch.eye(K, dtype=dtype)[None]).reshape(count * K, K)


@dataclass(frozen=True)
class TeachingPolicy:
    """Configuration of a policy network pi_theta(state of one example) -> action.

    Attributes:
        learner: the learner it teaches (fixes the feature and action sizes).
        kind: ``"label"`` or ``"input"`` (see the module docstring).
        mode: ``"continuous"`` (differentiable action) or ``"discrete"`` (logits over ``actions``).
        omniscient: whether the state includes w - w* (else only w: the black-box teacher).
        hidden: hidden widths of the network. act: its activation.
        bound: continuous labels are y_true + bound tanh(out) (None: y_true + out); inputs are
            x + bound tanh(out) (bound required for ``kind="input"`` and ``"both"``, whose label change is
            unbounded).
        actions: the discrete action set, labels [A] (scalar learners) or [A, K]; default
            :func:`default_actions` (Mixup: {0, 0.5, 1}). Discrete inputs are not supported.
        relative: discrete actions are offsets added to the true label (True) or absolute labels (False).
    """

    learner: Learner
    kind: str = "label"
    mode: str = "continuous"
    omniscient: bool = True
    hidden: tuple[int, ...] = (32,)
    act: str = "tanh"
    bound: float | None = None
    actions: torch.Tensor | None = field(default=None, compare=False)
    relative: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.learner, Learner):
            raise TypeError(f"learner must be a Learner, got {type(self.learner).__name__}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.kind in ("input", "both") and self.mode == "discrete":
            raise ValueError(f"kind={self.kind!r} needs mode='continuous' "
                             "(no discrete input transformation is defined)")
        if self.kind in ("input", "both") and self.bound is None:
            raise ValueError(f"kind={self.kind!r} needs a bound epsilon on the transformation (x' = x + bound tanh(.))")
        if self.bound is not None and not (isinstance(self.bound, (int, float)) and math.isfinite(self.bound)
                                           and self.bound > 0):
            raise ValueError(f"bound must be a positive number or None, got {self.bound!r}")
        hidden = tuple(self.hidden)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden must be positive integers, got {self.hidden!r}")
        object.__setattr__(self, "hidden", hidden)
        if self.mode == "discrete" and self.kind == "mixup":
            actions = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64) if self.actions is None else \
                torch.as_tensor(self.actions)
            if actions.dim() != 1 or not ((actions >= 0) & (actions <= 1)).all():
                raise ValueError(f"mixup actions must be coefficients in [0, 1], shape [A], got {actions!r}")
            object.__setattr__(self, "actions", actions)
        elif self.mode == "discrete":
            actions = default_actions(self.learner) if self.actions is None else torch.as_tensor(self.actions)
            shape = (actions.shape[0],) + self.learner.label_shape()
            if actions.dim() != 1 + len(self.learner.label_shape()) or tuple(actions.shape) != shape:
                raise ValueError(f"actions must have shape [A{', K' if not self.learner.scalar_labels else ''}] for "
                                 f"{self.learner.name}, got {tuple(actions.shape)}")
            object.__setattr__(self, "actions", actions)
        _ = self.architecture  # validates act and the sizes

    # -- sizes ------------------------------------------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        """Length of the per-example state: x, y, the learner output, the direction e and 3 K label statistics."""
        K = self.learner.output_dim
        single = self.learner.input_dim + 2 * K + self.learner.num_params + 3 * K
        return 2 * single if self.kind == "mixup" else single  # Mixup sees both examples of the pair

    @property
    def output_dim(self) -> int:
        """Network outputs per example: the label size, the input size, or the number of actions."""
        if self.mode == "discrete":
            return int(self.actions.shape[0])
        return {"input": self.learner.input_dim, "label": self.learner.output_dim, "mixup": 1,
                "both": self.learner.input_dim + self.learner.output_dim}[self.kind]

    @property
    def architecture(self) -> nets.Architecture:
        """The run-batched network (feature_dim -> hidden -> output_dim)."""
        return nets.Architecture((self.feature_dim, *self.hidden, self.output_dim), act=self.act)

    def init(self, streams: RunStreams, *, dtype=torch.float64, device="cpu", last_gain: float = 1e-2,
             tag: str = "policy-init") -> tuple[torch.Tensor, ...]:
        """Initial parameters, one network per run; the small last layer makes the initial policy close to
        plain SGD (zero label/input change) or to the uniform distribution over actions."""
        return self.architecture.init(streams, last_gain=last_gain, tag=tag, dtype=dtype, device=device)

    # -- state and action --------------------------------------------------------------------------------
    def direction(self, w: torch.Tensor, w_star: torch.Tensor | None = None,
                  validation: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The direction e [R, p] the teacher wants the learner to move against: w - w* when omniscient; for
        a black-box policy the gradient of the learner's mean loss on the validation set (X, y)."""
        if self.omniscient:
            if w_star is None:
                raise ValueError("an omniscient policy needs w_star")
            return w - w_star.expand_as(w)
        if validation is None:
            raise ValueError("a black-box policy needs a validation set (X, y)")
        return self.learner.mean_grad(w, *validation)

    def features(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        """The state of each example, [R, m, feature_dim].

        x, y, the learner output z, the direction e (:meth:`direction`) and, with J_k = d g / d y_k the
        sensitivity of the per-example gradient g = grad_w l(w; x, y) to the k-th label entry at the true
        label: a_k = <e, J_k>, b_k = ||J_k||^2 and a_k / b_k. These are the quantities of the greedy
        one-step objective ||e - eta g(y)||^2 (for least squares the greedy label is z + (a / b) / eta).
        """
        learner = self.learner
        R, m = x.shape[:2]
        yv = y.unsqueeze(-1) if learner.scalar_labels else y
        z = learner.outputs(w, x)
        zv = z.unsqueeze(-1) if learner.scalar_labels else z
        K = zv.shape[-1]
        a, b = [], []
        for k in range(K):
            tangent = torch.zeros_like(yv)
            tangent[..., k] = 1.0
            if learner.scalar_labels:
                tangent = tangent[..., 0]
            _, J = torch.func.jvp(lambda label: learner.grad(w, x, label), (y,), (tangent,))  # [R, m, p]
            a.append(torch.einsum("rp,rmp->rm", direction, J))
            b.append((J * J).sum(-1))
        a, b = torch.stack(a, -1), torch.stack(b, -1)
        ratio = a / b.clamp_min(torch.finfo(b.dtype).eps)
        return torch.cat([x, yv.to(x.dtype), zv, direction[:, None, :].expand(R, m, direction.shape[-1]), a, b, ratio],
                         -1)

    def network(self, params: Sequence[torch.Tensor], features: torch.Tensor) -> torch.Tensor:
        """Raw outputs [R, ..., output_dim] of the run-batched network for features [R, ..., feature_dim]."""
        return self.architecture.outputs(params, features)

    def state(self, w, x, y, direction, partner=None) -> torch.Tensor:
        """The network input: :meth:`features`, of both examples for Mixup (``partner`` = (x2, y2))."""
        feats = self.features(w, x, y, direction)
        if self.kind != "mixup":
            return feats
        if partner is None:
            raise ValueError("a Mixup policy needs the partner examples (x2, y2)")
        return torch.cat([feats, self.features(w, *partner, direction)], -1)

    def apply(self, params, w, x, y, direction, partner=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous action: the (x', y') handed to the learner, both differentiable in params and w."""
        if self.mode != "continuous":
            raise ValueError("apply needs mode='continuous'; use logits for a discrete policy")
        out = self.network(params, self.state(w, x, y, direction, partner))
        if self.kind == "mixup":
            return mix(torch.sigmoid(out[..., 0]), x, y, *partner)
        if self.kind == "input":
            return x + self.bound * torch.tanh(out), y
        if self.kind == "both":
            d = self.learner.input_dim
            x, out = x + self.bound * torch.tanh(out[..., :d]), out[..., d:]
            delta = out
        else:
            delta = out if self.bound is None else self.bound * torch.tanh(out)
        if self.learner.scalar_labels:
            delta = delta[..., 0]
        return x, y + delta

    def logits(self, params, w, x, y, direction, partner=None) -> torch.Tensor:
        """Discrete policy: log-probabilities over the action set, [R, m, A]."""
        if self.mode != "discrete":
            raise ValueError("logits needs mode='discrete'")
        return torch.log_softmax(self.network(params, self.state(w, x, y, direction, partner)), -1)

    def take(self, action: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            partner=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x', y') for discrete action indices [R, m]: the chosen label (offset) or Mixup coefficient."""
        chosen = self.actions.to(device=y.device, dtype=y.dtype)[action]
        if self.kind == "mixup":
            return mix(chosen, x, y, *partner)
        return x, (y + chosen if self.relative else chosen)

    def to_spec(self) -> dict:
        """A JSON-able description."""
        return {"kind": self.kind, "mode": self.mode, "omniscient": self.omniscient, "hidden": list(self.hidden),
                "act": self.act, "bound": self.bound,
                "actions": None if self.actions is None else int(self.actions.shape[0]), "relative": self.relative}


class LearnedTeacher(Teacher):
    """A trained :class:`TeachingPolicy` as a teacher of ``teach()``: x drawn uniformly from the pool (the
    SGD stream), then the policy's label or input transformation.

    Args:
        policy: the policy configuration. params: its parameters, leading run axis R (or 1, shared).
        sample: for a discrete policy, sample the action (from the teaching streams) instead of the argmax.
        name: the label in results.
    """

    def __init__(self, policy: TeachingPolicy, params: Sequence[torch.Tensor], *, sample: bool = False,
                 name: str = "learned") -> None:
        if not isinstance(policy, TeachingPolicy):
            raise TypeError(f"policy must be a TeachingPolicy, got {type(policy).__name__}")
        policy.architecture.layers(tuple(params))  # shape check
        self.policy = policy
        self.params = tuple(p.detach() for p in params)
        self.sample = bool(sample)
        self.name = name
        self.omniscient = policy.omniscient

    def _params_for(self, R: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        runs = self.params[0].shape[0]
        if runs not in (1, R):
            raise ValueError(f"the policy has parameters for {runs} runs, the problem has {R}")
        return tuple(p.to(like).expand(R, *p.shape[1:]) for p in self.params)

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform samples with labels (or inputs) changed by the policy's action at the current w."""
        batch = self.sample_uniform(ctx, step)
        partner = sample_partner(ctx, step) if self.policy.kind == "mixup" else None
        params = self._params_for(w.shape[0], w)
        # The black-box teacher's validation set is the pool with its true labels.
        e = self.policy.direction(w, ctx.w_star if self.omniscient else None, None if self.omniscient else ctx.pool())
        if self.policy.mode == "continuous":
            batch.x, batch.y = self.policy.apply(params, w, batch.x, batch.y, e, partner)
            if self.policy.kind != "label":
                batch.index = None
            return batch
        logp = self.policy.logits(params, w, batch.x, batch.y, e, partner)
        if self.sample:
            u = ctx.streams.uniform(ACTION_STREAM, step, logp.shape[1:2], dtype=logp.dtype).to(logp.device)
            action = (logp.exp().cumsum(-1) < u[..., None]).sum(-1).clamp_max(logp.shape[-1] - 1)
        else:
            action = logp.argmax(-1)
        batch.x, batch.y = self.policy.take(action, batch.x, batch.y, partner)
        if self.policy.kind == "mixup":
            batch.index = None
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name, the policy's settings and the sampling mode."""
        return {"name": self.name, **self.policy.to_spec(), "sample": self.sample}


def sample_partner(ctx: TeachingContext, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The second example of each Mixup pair, uniformly from the pool (its own stream): ([R, m, d], [R, m(, K)])."""
    index = ctx.streams.integers(PARTNER_STREAM, step, ctx.problem.pool_size, (ctx.batch_size,))
    return gather_pool(*ctx.pool(), index.to(ctx.problem.X.device))


class MixupTeacher(Teacher):
    """Mixup baselines without a policy (DHT Sec. 4.1, Table 1): pairs drawn uniformly, lambda from
    Beta(alpha, alpha) (``mode="beta"``), uniformly from ``values`` (``"discrete"``, default {0, 0.5, 1}),
    or 1 (``"erm"``: plain SGD on the first example)."""

    name = "mixup"

    def __init__(self, mode: str = "beta", alpha: float = 1.0, values: Sequence[float] = (0.0, 0.5, 1.0)) -> None:
        if mode not in ("beta", "discrete", "erm"):
            raise ValueError(f"mode must be 'beta', 'discrete' or 'erm', got {mode!r}")
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        values = tuple(float(v) for v in values)
        if not values or any(not 0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"values must be coefficients in [0, 1], got {values!r}")
        self.mode, self.alpha, self.values = mode, float(alpha), values

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Uniform samples mixed with pool partners at the chosen lambda (ERM: the samples unchanged)."""
        batch = self.sample_uniform(ctx, step)
        if self.mode == "erm":
            return batch
        x2, y2 = sample_partner(ctx, step)
        u = ctx.streams.uniform("mixup-lambda", step, (ctx.batch_size,))
        if self.mode == "beta":
            from scipy.special import betaincinv  # inverse CDF of the uniform draw: one draw per (run, slot)

            lam = torch.as_tensor(betaincinv(self.alpha, self.alpha, u.cpu().numpy()))
        else:
            lam = torch.tensor(self.values, dtype=torch.float64)[(u * len(self.values)).long().clamp_max(
                len(self.values) - 1)]
        batch.x, batch.y = mix(lam.to(batch.x), batch.x, batch.y, x2, y2)
        batch.index = None
        return batch

    def to_spec(self) -> dict:
        """Specification dictionary: name, mode, Beta alpha and the fixed lambda values."""
        return {"name": self.name, "mode": self.mode, "alpha": self.alpha, "values": list(self.values)}
