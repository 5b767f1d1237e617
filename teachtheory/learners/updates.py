"""Learner update rules Q of GIT(m, v, M, Q): SGD (default), heavy-ball momentum, Adam.

Each rule is a thin configuration object with pure ``init``/``step`` functions over a state
dict of [R, p] tensors, so a batch of runs updates in one call.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 5.2, Eq. (7).
"""

from __future__ import annotations

import torch

__all__ = ["SGD", "Adam", "Momentum", "UpdateRule", "make_update_rule", "momentum_step"]


def momentum_step(
    w: torch.Tensor, grad: torch.Tensor, velocity: torch.Tensor, lr: float | torch.Tensor, momentum: float,
    weight_decay: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One heavy-ball step, the single implementation every trainer uses: with g = grad + weight_decay w,
    v <- momentum v + g and w <- w - lr v. Returns the new (w, v); the inputs are not modified.

    (torch.optim.SGD's momentum convention, no dampening or Nesterov term.)
    """
    if weight_decay:
        grad = grad + weight_decay * w
    velocity = momentum * velocity + grad
    return w - lr * velocity, velocity


class UpdateRule:
    """Base optimiser rule: maps (w, gradient, lr, state, step) to the next w and state, batched over runs."""
    name = "rule"

    def init(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """Initial optimiser state for the parameters w (none for the base rule)."""
        return {}

    def step(
        self, w: torch.Tensor, grad: torch.Tensor, lr: float | torch.Tensor, state: dict, t: int
    ) -> tuple[torch.Tensor, dict]:
        """One update of w [R, p] with gradient grad and learning rate lr at step t; returns (new w, new state)."""
        raise NotImplementedError

    def to_spec(self) -> dict:
        """Specification dictionary of the rule (its name)."""
        return {"name": self.name}


class SGD(UpdateRule):
    """w <- w - lr g."""

    name = "sgd"

    def step(self, w, grad, lr, state, t):
        """Plain gradient step w - lr g; the state is unchanged."""
        return w - lr * grad, state


class Momentum(UpdateRule):
    """Heavy ball (:func:`momentum_step`): v <- mu v + g, w <- w - lr v, optionally with weight decay."""

    name = "momentum"

    def __init__(self, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)

    def init(self, w):
        """Zero velocity, shaped like w."""
        return {"velocity": torch.zeros_like(w)}

    def step(self, w, grad, lr, state, t):
        """Heavy-ball step; returns the new w and the updated velocity."""
        w, velocity = momentum_step(w, grad, state["velocity"], lr, self.momentum, self.weight_decay)
        return w, {"velocity": velocity}

    def to_spec(self):
        """Specification dictionary: name, momentum and (if set) weight decay."""
        spec = {"name": self.name, "momentum": self.momentum}
        if self.weight_decay:
            spec["weight_decay"] = self.weight_decay
        return spec


class Adam(UpdateRule):
    """Adam (Kingma & Ba 2015) with bias correction; t counts from 0."""

    name = "adam"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        for arg, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{arg} must lie in [0, 1), got {value}")
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def init(self, w):
        """Zero first and second moment estimates, shaped like w."""
        return {"m": torch.zeros_like(w), "v": torch.zeros_like(w)}

    def step(self, w, grad, lr, state, t):
        """Adam step with bias-corrected moments at step t; returns the new w and moments."""
        m = self.beta1 * state["m"] + (1 - self.beta1) * grad
        v = self.beta2 * state["v"] + (1 - self.beta2) * grad * grad
        m_hat = m / (1 - self.beta1 ** (t + 1))
        v_hat = v / (1 - self.beta2 ** (t + 1))
        return w - lr * m_hat / (torch.sqrt(v_hat) + self.eps), {"m": m, "v": v}

    def to_spec(self):
        """Specification dictionary: name, beta1, beta2 and eps."""
        return {"name": self.name, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


_RULES = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_update_rule(rule: str | UpdateRule) -> UpdateRule:
    """An UpdateRule instance as given, or the rule named 'sgd', 'momentum' or 'adam' with its defaults."""
    if isinstance(rule, UpdateRule):
        return rule
    if rule not in _RULES:
        raise ValueError(f"update: unknown rule {rule!r}; accepted: {', '.join(sorted(_RULES))}")
    return _RULES[rule]()


