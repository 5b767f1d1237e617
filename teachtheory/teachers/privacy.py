"""Privacy-preserving teaching by constrained DHT (DHT Sec. 5.3, Eq. 10): synthesized inputs kept away from a privacy
set in a perceptual feature space.

The teacher minimises, per step and per batch slot, the greedy DHT objective (Eq. 4) plus the hinge
lambda max{0, epsilon - d(x~)}, where d(x~) = min_{x in privacy set} ||phi(x~) - phi(x)||^2 is the private perceptual
distance and phi a small network trained here as a classifier of the pool (its hidden layer is the perceptual
space). The constraint d(x~) >= epsilon is enforced exactly: the search starts from the best pool example that
satisfies it and only feasible iterates are kept. This is Eq. (10) with horizon v = 1 (the greedy teacher).

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 5.3, Eq. (10), Figs. 9-10.
"""

from __future__ import annotations

import torch

from .base import Teacher, TeachingBatch, TeachingContext
from .imt import example_scores

__all__ = ["PerceptualNet", "train_perceptual", "private_distance", "PrivateDHTTeacher"]


class PerceptualNet:
    """phi(x) = tanh(x A + a): the hidden layer of a one-hidden-layer classifier, applied to inputs [..., d]."""

    def __init__(self, A: torch.Tensor, a: torch.Tensor) -> None:
        self.A, self.a = A, a

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Perceptual features [..., k] of inputs [..., d]."""
        return torch.tanh(x @ self.A.to(x) + self.a.to(x))


def train_perceptual(X: torch.Tensor, labels: torch.Tensor, hidden: int = 16, steps: int = 300, lr: float = 1e-2,
                     seed: int = 0) -> PerceptualNet:
    """Train a one-hidden-layer tanh classifier on (X [n, d], integer labels [n]) with Adam; return its hidden layer."""
    if X.dim() != 2 or labels.shape != X.shape[:1]:
        raise ValueError(f"X must be [n, d] and labels [n], got {tuple(X.shape)} and {tuple(labels.shape)}")
    if hidden < 1 or steps < 0:
        raise ValueError(f"hidden must be positive and steps non-negative, got {hidden}, {steps}")
    gen = torch.Generator().manual_seed(seed)
    d, K = X.shape[1], int(labels.max()) + 1
    X = X.double()
    A = (torch.randn(d, hidden, generator=gen, dtype=X.dtype) / d ** 0.5).requires_grad_(True)
    a = torch.zeros(hidden, dtype=X.dtype, requires_grad=True)
    B = (torch.randn(hidden, K, generator=gen, dtype=X.dtype) / hidden ** 0.5).requires_grad_(True)
    opt = torch.optim.Adam([A, a, B], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(torch.tanh(X @ A + a) @ B, labels).backward()
            opt.step()
    return PerceptualNet(A.detach(), a.detach())


def private_distance(phi, x: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """min over the privacy set [P, d] of ||phi(x) - phi(p)||^2 for inputs x [R, n, d] -> [R, n]."""
    fx, fp = phi(x), phi(private.to(x))
    sq = (fx * fx).sum(-1, keepdim=True) - 2 * fx @ fp.T + (fp * fp).sum(-1)
    return sq.amin(-1).clamp_min(0)


class PrivateDHTTeacher(Teacher):
    """Omniscient greedy DHT with the privacy hinge and constraint of DHT Eq. (10).

    Args:
        phi: the perceptual network (e.g. from :func:`train_perceptual`).
        private: the privacy set [P, d] in the problem's input space.
        epsilon: the least squared perceptual distance to the privacy set.
        hinge: weight lambda of the hinge term.
        iterations, restarts, step_fraction: the projected Adam search, as in
            :class:`~teachtheory.teachers.dht.DHTTeacher`.
        distances: a list or None; when a list, each step appends the private distances [R, m] of the examples.
    """

    name = "dht-private"
    omniscient = True

    def __init__(self, phi, private: torch.Tensor, epsilon: float, hinge: float = 1.0, iterations: int = 50,
                 restarts: int = 2, step_fraction: float = 0.05, distances: list | None = None) -> None:
        if private.dim() != 2 or private.shape[0] < 1:
            raise ValueError(f"private must be a non-empty [P, d] tensor, got shape {tuple(private.shape)}")
        if epsilon <= 0 or hinge < 0:
            raise ValueError(f"epsilon must be positive and hinge non-negative, got {epsilon}, {hinge}")
        if iterations < 0 or restarts < 0 or step_fraction <= 0:
            raise ValueError("iterations and restarts must be non-negative and step_fraction positive, got "
                             f"{iterations}, {restarts}, {step_fraction}")
        self.phi, self.private, self.epsilon, self.hinge = phi, private, float(epsilon), float(hinge)
        self.iterations, self.restarts, self.step_fraction = int(iterations), int(restarts), float(step_fraction)
        self.distances = distances

    def teach(self, ctx: TeachingContext, w: torch.Tensor, step: int) -> TeachingBatch:
        """Labels drawn from the label space; inputs hallucinated for them outside the privacy neighbourhood."""
        values = ctx.problem.label_values
        if values is None:
            raise ValueError("private DHT needs a discrete label space: the problem has no label_values")
        R, m = w.shape[0], ctx.batch_size
        y = values[ctx.streams.integers("dht-label", step, values.shape[0], (m,)).to(values.device)]  # [R, m(, K)]
        X, Y = ctx.pool()
        n, d = X.shape[1], X.shape[2]
        # Start: per slot, the best feasible pool example whose label is the drawn one (all slots scored at once).
        flat_y = y[:, :, None].expand(R, m, n, *y.shape[2:]).reshape(R, m * n, *y.shape[2:])
        pool_scores = example_scores(ctx.learner, w, ctx.w_star, X.expand(R, n, d).repeat(1, m, 1), flat_y,
                                     ctx.lr).reshape(R, m, n)
        same = Y.expand(R, *Y.shape[1:])[:, None] == y[:, :, None]
        same = same if same.dim() == 3 else same.all(-1)
        feasible = (private_distance(self.phi, X, self.private) >= self.epsilon).expand(R, n)[:, None]
        if not bool(feasible.any()):
            raise ValueError(f"no pool example is at least epsilon={self.epsilon:g} away from the privacy set")
        ranked = torch.where(same & feasible, pool_scores, torch.inf)
        ranked = torch.where(torch.isfinite(ranked).any(-1, keepdim=True), ranked,
                             torch.where(feasible, pool_scores, torch.inf))  # no feasible example of that label
        start = X.expand(R, n, d).gather(1, ranked.argmin(-1)[..., None].expand(R, m, d))  # [R, m, d]
        lo, hi = ctx.problem.box()
        lo, hi = lo[:, None, None, :], hi[:, None, None, :]
        points = torch.cat([start[:, None], lo + (hi - lo) * ctx.streams.uniform(
            "dht-private-start", step, (self.restarts, m, d), dtype=X.dtype)], 1)  # [R, S, m, d]
        x = self._search(ctx, w, y, points, lo, hi)
        if self.distances is not None:
            self.distances.append(private_distance(self.phi, x, self.private).detach())
        return TeachingBatch(x=x, y=y)

    def _search(self, ctx, w, y, points, lo, hi):
        """Projected Adam on score + hinge from every start; the best feasible iterate per slot (the start is one)."""
        R, S, m, d = points.shape
        y_rep = y[:, None].expand(R, S, *y.shape[1:]).reshape(R, S * m, *y.shape[2:])

        def evaluate(x):
            flat = x.reshape(R, S * m, d)
            score = example_scores(ctx.learner, w, ctx.w_star, flat, y_rep, ctx.lr).reshape(R, S, m)
            dist = private_distance(self.phi, flat, self.private).reshape(R, S, m)
            return score, dist

        width = (hi - lo).clamp_min(1e-12)
        score, dist = evaluate(points)
        ok = dist >= self.epsilon
        best_val = torch.where(ok, score, torch.inf)
        best_val[:, 0] = score[:, 0]  # the pool start is feasible by construction
        best_x = points.clone()
        with torch.enable_grad():
            u = ((points - lo) / width).clone().requires_grad_(True)
            opt = torch.optim.Adam([u], lr=self.step_fraction)
            for _ in range(self.iterations):
                opt.zero_grad()
                score, dist = evaluate(lo + width * u)
                (score + self.hinge * (self.epsilon - dist).clamp_min(0)).sum().backward()
                opt.step()
                with torch.no_grad():
                    u.clamp_(0.0, 1.0)
                    current = lo + width * u
                    score, dist = evaluate(current)
                    better = (dist >= self.epsilon) & (score < best_val)
                    best_val = torch.where(better, score, best_val)
                    best_x = torch.where(better[..., None], current, best_x)
        pick = best_val.argmin(1)  # [R, m]
        return best_x.gather(1, pick[:, None, :, None].expand(R, 1, m, d))[:, 0].detach()

    def to_spec(self) -> dict:
        """Specification dictionary: epsilon, hinge weight, privacy-set size and the search settings."""
        return {"name": self.name, "epsilon": self.epsilon, "hinge": self.hinge, "private": int(self.private.shape[0]),
                "iterations": self.iterations, "restarts": self.restarts, "step_fraction": self.step_fraction}
