r"""Unrolled differentiation through learner SGD steps: the one utility every learned teacher uses.

A learner with parameters :math:`\theta` takes N SGD steps on a training loss that depends on
parameters :math:`\phi` (a loss network, example weights, a teacher's output):

.. math:: \theta^i = \theta^{i-1} - \eta w \nabla_\theta L_\phi(\theta^{i-1}; i), \qquad i = 1, \dots, N,

and a validation loss :math:`e(\theta^N)` is differentiated with respect to :math:`\phi` (and to
:math:`\theta^0`). Two methods, equal in exact arithmetic:

* ``"autograd"``: differentiate through the unrolled graph (``create_graph=True``); memory grows
  with N (every step's graph is kept).
* ``"reverse"``: the reverse-mode recurrence of L2T-DLN Eqs. (4)-(6),

  .. math:: \nabla\theta^N = \partial e/\partial\theta^N,\quad
            \nabla\phi \mathrel{-}= \eta w\, \partial^2_{\theta\phi} L_\phi(\theta^{i-1})\, \nabla\theta^i,\quad
            \nabla\theta^{i-1} = \nabla\theta^i - \eta w\, \partial^2_{\theta\theta} L_\phi(\theta^{i-1})\,
            \nabla\theta^i,

  for :math:`i = N, \dots, 1` (Algorithm 1 lines 9-12; the text's range :math:`i = N-1, \dots, 1` drops
  one step). Each product is one double-backward pass (a Hessian-vector and a mixed
  vector-Jacobian product from the same graph), built and freed per step; only the weight trajectory
  is stored (``checkpoint_every=k`` stores every k-th iterate and recomputes the rest, memory
  O(N/k + k) parameter vectors).
* ``"backgradient"``: the same recurrence, but the trajectory is not stored: each earlier iterate is
  reconstructed by running the step backwards, :math:`\theta^{i-1} \approx \theta^i + \eta w
  \nabla_\theta L_\phi(\theta^i; i)` (Domke 2012; Maclaurin et al. 2015; the back-gradient of
  Mu\~noz-Gonz\'alez et al. 2017, which Wang et al.'s Dataset Distillation uses for long unrolls). Memory is
  O(1) in N (two parameter vectors); the price is an :math:`O(\eta^2)` error per step in the reconstructed
  iterates, so it equals the other two methods only to first order in the step size.

Parameters are tuples of tensors. ``train_loss(theta, phi, i)`` returns a scalar (sum the per-run
losses for a batch of independent runs: the gradient of a sum of independent terms is the per-run
gradient); ``val_loss(theta)`` returns a scalar. The step index ``i`` (global, ``start + k``) lets
the loss pick its mini-batch deterministically, so forward recomputation is exact.

:func:`rollout` unrolls any differentiable update map (a teaching policy's steps); its state may carry an
optimiser's moments besides the weights: :class:`LearnerOptimizer` and :func:`adam_step` give the learner's Adam
as a pure function, so a hypergradient runs through Adam steps as well as SGD steps.

References:
    Hai et al., L2T-DLN, NeurIPS 2023, Eqs. (2), (4)-(6), (8) and Algorithm 1; Maclaurin, Duvenaud &
    Adams, "Gradient-based hyperparameter optimization through reversible learning", ICML 2015;
    Franceschi et al., "Forward and reverse gradient-based hyperparameter optimization", ICML 2017;
    Domke, "Generic methods for optimization-based modeling", AISTATS 2012; Munoz-Gonzalez et al., "Towards
    poisoning of deep learning algorithms with back-gradient optimization", AISec 2017; Wang et al., "Dataset
    Distillation", arXiv 2018, Sec. 3.3; Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015,
    Algorithm 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["LEARNER_OPTIMIZERS", "METHODS", "LearnerOptimizer", "Rollout", "Unrolled", "adam_step",
           "central_difference", "chain_to", "hypergradient", "noise_level", "rollout", "sgd_steps"]

Params = tuple[torch.Tensor, ...]
TrainLoss = Callable[[Params, Params, int], torch.Tensor]
ValLoss = Callable[[Params], torch.Tensor]
METHODS = ("reverse", "autograd", "backgradient")
LEARNER_OPTIMIZERS = ("sgd", "adam")


@dataclass
class Unrolled:
    """Result of :func:`hypergradient`.

    Attributes:
        value: e(theta^N), detached scalar. grad_phi: de/dphi (tuple like phi). grad_theta0: de/dtheta^0.
        theta: theta^N (detached tuple), so the caller can continue training from it.
    """

    value: torch.Tensor
    grad_phi: Params
    grad_theta0: Params
    theta: Params


def _as_params(name: str, params) -> Params:
    if isinstance(params, torch.Tensor):
        params = (params,)
    if not isinstance(params, (tuple, list)) or not params or not all(isinstance(p, torch.Tensor) for p in params):
        raise TypeError(f"{name} must be a tensor or a non-empty tuple of tensors")
    for p in params:
        if not p.is_floating_point():
            raise TypeError(f"{name}: parameters must be floating point, got {p.dtype}")
        if not torch.isfinite(p).all():
            raise ValueError(f"{name} contains NaN or infinite entries")
    return tuple(params)


def _check(steps: int, lr, weight, checkpoint_every: int | None) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    lr_t = torch.as_tensor(lr)
    if not torch.isfinite(lr_t).all() or (lr_t <= 0).any():
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    w_t = torch.as_tensor(weight)
    if not torch.isfinite(w_t).all():
        raise ValueError(f"weight must be finite, got {weight!r}")
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                         or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive integer or None, got {checkpoint_every!r}")


def _leaves(params: Params) -> Params:
    return tuple(p.detach().requires_grad_(True) for p in params)


def _step(train_loss: TrainLoss, theta: Params, phi: Params, i: int, scale) -> Params:
    """One plain SGD step (no graph kept): theta - lr w grad_theta L."""
    with torch.enable_grad():
        leaves = _leaves(theta)
        grads = torch.autograd.grad(train_loss(leaves, phi, i), leaves, allow_unused=True)
    return tuple((t - scale * g).detach() if g is not None else t.detach() for t, g in zip(theta, grads))


def sgd_steps(train_loss: TrainLoss, theta0, phi, steps: int, lr, *, weight=1.0, start: int = 0) -> Params:
    r"""N plain SGD steps :math:`\theta^i = \theta^{i-1} - \eta w \nabla_\theta L_\phi(\theta^{i-1}; i)` (Eq. 2),
    no graph kept; returns :math:`\theta^N` (detached)."""
    theta, phi = _as_params("theta0", theta0), tuple(p.detach() for p in _as_params("phi", phi))
    _check(steps, lr, weight, None)
    for k in range(steps):
        theta = _step(train_loss, theta, phi, start + k, lr * weight)
    return theta


def hypergradient(
    train_loss: TrainLoss,
    val_loss: ValLoss,
    theta0,
    phi,
    steps: int,
    lr,
    *,
    weight=1.0,
    method: str = "reverse",
    hessian: bool = True,
    checkpoint_every: int | None = None,
    start: int = 0,
) -> Unrolled:
    r"""Gradient of :math:`e(\theta^N)` with respect to :math:`\phi` and :math:`\theta^0` through N SGD steps.

    Args:
        train_loss: (theta, phi, i) -> scalar training loss at global step i.
        val_loss: theta -> scalar validation loss.
        theta0, phi: tensors or tuples of tensors (detached copies are used).
        steps: N >= 0. lr: eta > 0 (a number or a tensor broadcasting against each parameter).
        weight: the example weight w of Eq. (2).
        method: ``"reverse"`` (Eqs. 4-6), ``"autograd"`` (through the unrolled graph) or ``"backgradient"``
            (Eqs. 4-6 on iterates reconstructed by reversed steps: memory O(1) in N, exact to first order in lr).
        hessian: keep the Hessian term of Eq. (5) (``False`` drops it: first-order approximation,
            used as the power check; only for ``"reverse"`` and ``"backgradient"``).
        checkpoint_every: with ``"reverse"``, store every k-th iterate and recompute the others.
        start: global index of the first step (passed to ``train_loss``).

    Returns:
        :class:`Unrolled` with the value, both gradients and theta^N.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not hessian and method == "autograd":
        raise ValueError("hessian=False is only defined for method='reverse' or 'backgradient'")
    theta0 = tuple(p.detach() for p in _as_params("theta0", theta0))
    phi = tuple(p.detach() for p in _as_params("phi", phi))
    _check(steps, lr, weight, checkpoint_every)
    scale = lr * weight
    if method == "autograd":
        return _autograd(train_loss, val_loss, theta0, phi, steps, scale, start)
    if method == "backgradient":
        return _backgradient(train_loss, val_loss, theta0, phi, steps, scale, start, hessian)
    return _reverse(train_loss, val_loss, theta0, phi, steps, scale, start, hessian, checkpoint_every)


def _zeros_for(grads, params: Params) -> Params:
    return tuple(torch.zeros_like(p) if g is None else g for g, p in zip(grads, params))


def _autograd(train_loss, val_loss, theta0, phi, steps, scale, start) -> Unrolled:
    with torch.enable_grad():
        theta_leaves, phi_leaves = _leaves(theta0), _leaves(phi)
        theta = theta_leaves
        for k in range(steps):
            grads = torch.autograd.grad(train_loss(theta, phi_leaves, start + k), theta, create_graph=True,
                                        allow_unused=True)
            theta = tuple(t - scale * g if g is not None else t for t, g in zip(theta, grads))
        value = val_loss(theta)
        grads = torch.autograd.grad(value, phi_leaves + theta_leaves, allow_unused=True)
    n = len(phi)
    return Unrolled(value.detach(), _zeros_for(grads[:n], phi), _zeros_for(grads[n:], theta0),
                    tuple(t.detach() for t in theta))


def _final_gradient(val_loss, theta: Params) -> tuple[torch.Tensor, Params]:
    """e(theta^N) and its gradient in theta^N (Eq. 4)."""
    with torch.enable_grad():
        leaves = _leaves(theta)
        value = val_loss(leaves)
        return value, _zeros_for(torch.autograd.grad(value, leaves, allow_unused=True), theta)


def _reverse_step(train_loss, prev: Params, phi: Params, i: int, scale, g_theta: Params, g_phi: Params,
                  hessian: bool) -> tuple[Params, Params]:
    """One step of the recurrence (Eqs. 5-6) at theta^{i-1} = ``prev``: one double-backward pass gives the
    Hessian-vector and the mixed products with the adjoint ``g_theta``."""
    with torch.enable_grad():
        t_leaves, p_leaves = _leaves(prev), _leaves(phi)
        grads = torch.autograd.grad(train_loss(t_leaves, p_leaves, i), t_leaves, create_graph=True,
                                    allow_unused=True)
        dot = sum(((g * v).sum() for g, v in zip(grads, g_theta) if g is not None),
                  torch.zeros((), dtype=g_theta[0].dtype, device=g_theta[0].device))
        if dot.requires_grad:
            second = torch.autograd.grad(dot, t_leaves + p_leaves, allow_unused=True)
        else:
            second = (None,) * (len(t_leaves) + len(p_leaves))
    hv_theta = _zeros_for(second[:len(t_leaves)], prev)
    hv_phi = _zeros_for(second[len(t_leaves):], phi)
    g_phi = tuple(gp - scale * h for gp, h in zip(g_phi, hv_phi))  # Eq. (6)
    if hessian:
        g_theta = tuple(gt - scale * h for gt, h in zip(g_theta, hv_theta))  # Eq. (5)
    return g_theta, g_phi


def _backgradient(train_loss, val_loss, theta0, phi, steps, scale, start, hessian) -> Unrolled:
    theta = theta0
    for i in range(steps):
        theta = _step(train_loss, theta, phi, start + i, scale)
    theta_final = theta
    value, g_theta = _final_gradient(val_loss, theta)
    g_phi = tuple(torch.zeros_like(p) for p in phi)
    for i in range(steps, 0, -1):
        # reverse step: theta^{i-1} ~ theta^i + lr w grad L(theta^i; i - 1) (the gradient at the later iterate)
        theta = _step(train_loss, theta, phi, start + i - 1, -scale)
        g_theta, g_phi = _reverse_step(train_loss, theta, phi, start + i - 1, scale, g_theta, g_phi, hessian)
    return Unrolled(value.detach(), g_phi, g_theta, theta_final)


def _reverse(train_loss, val_loss, theta0, phi, steps, scale, start, hessian, checkpoint_every) -> Unrolled:
    k = checkpoint_every or 1
    # forward: keep theta^i for i = 0, k, 2k, ... (all of them when k = 1)
    checkpoints: dict[int, Params] = {0: theta0}
    theta = theta0
    for i in range(steps):
        theta = _step(train_loss, theta, phi, start + i, scale)
        if (i + 1) % k == 0 and i + 1 < steps:
            checkpoints[i + 1] = theta
    value, g_theta = _final_gradient(val_loss, theta)  # Eq. (4)
    g_phi = tuple(torch.zeros_like(p) for p in phi)
    theta_final = theta
    # reverse, one checkpoint segment at a time: [s, e) holds the steps i = s+1 .. e
    segment_starts = sorted(checkpoints)
    for s in reversed(segment_starts):
        e = min(s + k, steps)
        trajectory = [checkpoints[s]]
        for i in range(s, e - 1):  # recompute theta^{s+1} .. theta^{e-1}
            trajectory.append(_step(train_loss, trajectory[-1], phi, start + i, scale))
        for i in range(e, s, -1):  # step i maps theta^{i-1} -> theta^i
            g_theta, g_phi = _reverse_step(train_loss, trajectory[i - 1 - s], phi, start + i - 1, scale, g_theta,
                                           g_phi, hessian)
        del trajectory
    return Unrolled(value.detach(), g_phi, g_theta, theta_final)


@dataclass
class Rollout:
    """Result of :func:`rollout`.

    Attributes:
        iterates: theta^0 .. theta^N, each a tuple of tensors carrying the graph back to phi (and theta^0).
        greedy: per step i = 1 .. N, the step applied to the *detached* theta^{i-1} (empty unless asked for):
            the stop-gradient one-step iterates (each reaches the step's parameters only through step i).
        aux: per step i = 1 .. N, ``aux(sg(theta^{i-1}), i)`` (empty without ``aux``): a term evaluated at the
            stop-gradient state entering the step, such as the auxiliary loss of DHT Sec. 3.3.1.
    """

    iterates: list[Params]
    greedy: list[Params]
    aux: list[torch.Tensor] = field(default_factory=list)


def rollout(step: Callable[[Params, int], Params], theta0, steps: int, *, start: int = 0,
            stop_gradient_steps: bool = False, aux: Callable[[Params, int], torch.Tensor] | None = None) -> Rollout:
    r"""Differentiable rollout of an arbitrary update map :math:`\theta^i = T(\theta^{i-1}, i)`, keeping the graph.

    The general form of the unrolled training of :func:`hypergradient`'s ``"autograd"`` method, for updates
    that are not plain SGD on a loss: a teaching policy that chooses the label or the input from the
    current learner state makes the step depend on :math:`\theta^{i-1}` through the policy too, and the
    full derivative of :math:`e(\theta^N)` must carry that path. The caller closes ``step`` over the
    policy parameters and back-propagates any function of the iterates. The carried state may hold more
    than the learner's weights (an optimiser's moments, see :class:`LearnerOptimizer`).

    Args:
        step: (theta, i) -> theta', differentiable; ``i`` is the global step (``start + k``) so the
            caller picks its mini-batch deterministically.
        theta0: tensor or tuple of tensors (used as given: pass a detached copy to cut the graph).
        steps: N >= 0.
        stop_gradient_steps: also return :math:`T(\mathrm{sg}(\theta^{i-1}), i)` for every step (greedy
            one-step iterates whose gradient reaches the policy only through step i).
        aux: (theta, i) -> tensor, evaluated at the stop-gradient state :math:`\mathrm{sg}(\theta^{i-1})` of
            every step: the terms :math:`\ell(\pi_\theta(x_i, y_i, w_i^{SG}, w^*); y_i \mid w_i^{SG})` of DHT
            Sec. 3.3.1's auxiliary loss, whose gradient reaches the policy only through the example it makes.

    Returns:
        :class:`Rollout`.

    References:
        Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 3.3.1;
        Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 4.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if aux is not None and not callable(aux):
        raise TypeError(f"aux must be callable (theta, i) -> tensor or None, got {type(aux).__name__}")
    theta = _as_params("theta0", theta0)
    iterates, greedy, terms = [theta], [], []
    for k in range(steps):
        prev = iterates[-1]
        nxt = step(prev, start + k)
        nxt = (nxt,) if isinstance(nxt, torch.Tensor) else tuple(nxt)
        if len(nxt) != len(prev):
            raise ValueError(f"step returned {len(nxt)} tensors for {len(prev)} parameters")
        iterates.append(nxt)
        if stop_gradient_steps or aux is not None:
            detached = tuple(t.detach() for t in prev)
        if stop_gradient_steps:
            out = step(detached, start + k)
            greedy.append((out,) if isinstance(out, torch.Tensor) else tuple(out))
        if aux is not None:
            terms.append(aux(detached, start + k))
    return Rollout(iterates, greedy, terms)


def adam_step(w: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, lr,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One functional, differentiable Adam step (Kingma & Ba, ICLR 2015, Algorithm 1), elementwise, so a
    leading run axis R is batched for free:

    .. math:: m' = \beta_1 m + (1 - \beta_1) g,\quad v' = \beta_2 v + (1 - \beta_2) g^2,\quad
              w' = w - \frac{\eta}{1 - \beta_1^{t+1}} \frac{m'}{\sqrt{v'} / \sqrt{1 - \beta_2^{t+1}} + \epsilon},

    torch.optim.Adam's arrangement of the bias corrections. ``t`` counts the steps taken before this one
    (0 for the first, as :class:`teachtheory.learners.updates.Adam`). Nothing is modified in place, so the
    graph runs through w, g and the moments. Where :math:`v' = 0` (a coordinate whose gradient has been
    exactly zero so far) the square root's derivative is infinite; there the root is taken as a constant 0
    (its one-sided limit times the zero change of :math:`v'`), which keeps the hypergradient finite.

    Returns:
        (w', m', v').
    """
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    positive = v > 0
    root = torch.where(positive, torch.where(positive, v, torch.ones_like(v)).sqrt(), torch.zeros_like(v))
    bias1, bias2 = 1 - beta1 ** (t + 1), 1 - beta2 ** (t + 1)
    return w - (lr / bias1) * m / (root / math.sqrt(bias2) + eps), m, v


@dataclass(frozen=True)
class LearnerOptimizer:
    r"""The learner's update rule inside an unrolled rollout, as a pure function of a carried state.

    ``"sgd"``: :math:`w' = w - \eta g`, no state. ``"adam"``: :func:`adam_step` with ``betas`` =
    (:math:`\beta_1`, :math:`\beta_2`), the decay rates of the first and second moment estimates (default
    (0.9, 0.999)), and ``eps`` the :math:`\epsilon` added to the root of the second moment (default 1e-8),
    torch.optim.Adam's defaults; the moments (m, v), each shaped like w, ride in the rollout's state after w,
    so the hypergradient flows through them.
    """

    name: str = "sgd"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.name not in LEARNER_OPTIMIZERS:
            raise ValueError(f"learner_optimizer must be one of {', '.join(LEARNER_OPTIMIZERS)}, got {self.name!r}")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else None
        if (betas is None or len(betas) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"learner_betas must be two numbers in [0, 1), got {self.betas!r}")
        if isinstance(self.eps, bool) or not isinstance(self.eps, (int, float)) or not (0 < self.eps < math.inf):
            raise ValueError(f"learner_eps must be a positive finite number, got {self.eps!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        object.__setattr__(self, "eps", float(self.eps))

    def init(self, w: torch.Tensor) -> Params:
        """The initial state: () for SGD, zero moments (m, v) shaped like w for Adam."""
        return () if self.name == "sgd" else (torch.zeros_like(w), torch.zeros_like(w))

    def step(self, w: torch.Tensor, grad: torch.Tensor, state: Params, lr, t: int) -> tuple[torch.Tensor, Params]:
        """One update at step t (0 for the first since the state was initialised): (w', state')."""
        if self.name == "sgd":
            return w - lr * grad, state
        w, m, v = adam_step(w, grad, *state, t, lr, self.betas, self.eps)
        return w, (m, v)

    def to_spec(self) -> dict:
        """A JSON-able description."""
        if self.name == "sgd":
            return {"name": "sgd"}
        return {"name": "adam", "betas": list(self.betas), "eps": self.eps}


def chain_to(outputs: Params, inputs: Params, cotangent: Params) -> Params:
    r"""Vector-Jacobian product :math:`(\partial\,\text{outputs}/\partial\,\text{inputs})^\top \text{cotangent}`:
    carries a hypergradient of the updated loss parameters back to the teacher that produced them
    (L2T-DLN Eq. 8: :math:`\nabla\varphi = \gamma (\partial g/\partial\varphi)^\top \nabla\phi^1` for
    :math:`\phi^1 = \phi^0 + \gamma g(\nabla\phi^0; \varphi)`). ``outputs`` must carry a graph to ``inputs``."""
    grads = torch.autograd.grad(tuple(outputs), tuple(inputs), grad_outputs=tuple(cotangent), allow_unused=True)
    return _zeros_for(grads, tuple(inputs))


def central_difference(fn: Callable[[Params], torch.Tensor], params, direction, h: float) -> float:
    r"""Central difference of a scalar function along a direction:
    :math:`(f(p + h d) - f(p - h d)) / (2h)`. Truncation error :math:`h^2 |f'''|/6`, rounding error
    about :math:`\epsilon_f / h` (:math:`\epsilon_f` = the evaluation noise, see :func:`noise_level`)."""
    params, direction = _as_params("params", params), _as_params("direction", direction)
    if not (h > 0 and math.isfinite(h)):
        raise ValueError(f"h must be positive and finite, got {h!r}")
    with torch.no_grad():
        plus = fn(tuple(p + h * d for p, d in zip(params, direction)))
        minus = fn(tuple(p - h * d for p, d in zip(params, direction)))
    return float((plus - minus) / (2 * h))


def noise_level(fn: Callable[[Params], torch.Tensor], params, direction, *, order: int = 6,
                spacing: float | None = None) -> float:
    r"""Evaluation noise :math:`\epsilon_f` of a scalar function (Moré & Wild 2011, ECnoise): the
    ``order``-th finite differences of f on a grid of tiny spacing along ``direction`` remove the smooth
    part; for independent noise :math:`E(\Delta^k f)^2 = \binom{2k}{k}\epsilon_f^2`. Floor: one ulp of |f|."""
    params, direction = _as_params("params", params), _as_params("direction", direction)
    dtype = params[0].dtype
    eps = torch.finfo(dtype).eps
    if spacing is None:
        spacing = 1e3 * eps * max(1.0, max(float(p.abs().max()) for p in params))
    with torch.no_grad():
        values = torch.stack([fn(tuple(p + (j * spacing) * d for p, d in zip(params, direction))).to(torch.float64)
                              for j in range(order + 1)])
    diffs = values
    for _ in range(order):
        diffs = diffs[1:] - diffs[:-1]
    gamma = math.comb(2 * order, order)
    level = math.sqrt(float((diffs**2).mean()) / gamma)
    return max(level, eps * float(values.abs().max()))

