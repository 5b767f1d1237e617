"""Teaching problems: a pool (X, y), an optional test split, a target w* and initial w0, for R runs.

A pool is either shared by all runs (leading axis 1) or drawn per run (leading axis R). Every
random quantity comes from :class:`teachtheory.random.RunStreams`, so run r of a batch equals a
single run with the same seed, bit for bit.

Seeding of shared pools: a pool shared by all runs (and the digits split and projection) is drawn
from ``pool_seed``, which defaults to the first run's seed (``seed`` itself when ``seed`` is an int).
It therefore does not depend on the number of runs: run r of a batch with seed s equals the single
run ``runs=1, seed=s + r, pool_seed=s``. Per-run pools and the initial weights use each run's own seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from .learners import MLP, Learner, LeastSquares, Logistic, Softmax
from .random import RunStreams
from .validation import (
    NonConvergenceError,
    NonConvergenceWarning,
    check_choice,
    check_device,
    check_finite_scalar,
    check_instance,
    check_int,
    check_non_negative,
    check_positive,
    check_positive_int,
    check_probability,
    check_seed,
    check_seeds,
    check_tensor,
)

__all__ = [
    "Problem",
    "digits",
    "digits35",
    "fit_target",
    "gaussian_clusters",
    "init_weights",
    "linear_regression",
    "moons",
]


@dataclass
class Problem:
    """A teaching problem for R runs.

    Attributes:
        X: pool inputs [Rp, n, d] with Rp in {1, R}.
        y: pool labels [Rp, n] (scalar) or [Rp, n, K].
        w_star: target parameters [Rw, p], Rw in {1, R}.
        w0: initial parameters [R, p].
        X_test, y_test: optional held-out split, same conventions.
        label_values: the discrete label space [C, ...] for classification (DHT draws from it).
        name: short description; meta: how the problem was built (target fit, seeds, ...).
    """

    X: torch.Tensor
    y: torch.Tensor
    w_star: torch.Tensor
    w0: torch.Tensor
    X_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    label_values: torch.Tensor | None = None
    name: str = "problem"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # numpy arrays are accepted and converted; integer labels take the pool's floating dtype; floating
        # tensors in another precision than X are refused (silent mixing hides bugs)
        X = check_tensor(self.X, "X")
        if X.dim() != 3:
            raise ValueError(f"X must have shape [runs or 1, n, d], got {tuple(X.shape)}")
        if not X.is_floating_point():
            X = X.to(torch.float64)
        dtype = X.dtype
        self.X = X
        if self.X.shape[1] == 0:
            raise ValueError("X: the pool is empty (n = 0)")
        if self.X.shape[0] == 0 or self.X.shape[2] == 0:
            raise ValueError(f"X must have shape [runs or 1, n, d] with n, d >= 1, got {tuple(self.X.shape)}")
        for name in ("y", "w_star", "w0", "X_test", "y_test", "label_values"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, check_tensor(value, name, dtype=dtype))
        if self.y.shape[:2] != self.X.shape[:2] or self.y.dim() not in (2, 3):
            raise ValueError(
                f"y must have shape {tuple(self.X.shape[:2])} or {tuple(self.X.shape[:2])} + (K,), "
                f"got {tuple(self.y.shape)}"
            )
        if self.w0.dim() != 2 or self.w0.shape[0] == 0 or self.w0.shape[1] == 0:
            raise ValueError(f"w0 must have shape [runs, p] with runs, p >= 1, got {tuple(self.w0.shape)}")
        if self.w_star.dim() != 2 or self.w_star.shape[1] != self.w0.shape[1]:
            raise ValueError(f"w_star must have shape [runs or 1, {self.w0.shape[1]}], got {tuple(self.w_star.shape)}")
        R = self.w0.shape[0]
        for name in ("X", "y", "w_star"):
            lead = getattr(self, name).shape[0]
            if lead not in (1, R):
                raise ValueError(f"{name} has leading size {lead}; expected 1 (shared) or runs={R}")
        if (self.X_test is None) != (self.y_test is None):
            raise ValueError("X_test and y_test must be given together")
        if self.X_test is not None:
            Xt, yt = self.X_test, self.y_test
            if Xt.dim() != 3 or Xt.shape[2] != self.X.shape[2] or Xt.shape[0] not in (1, R):
                raise ValueError(
                    f"X_test must have shape [1 or runs={R}, n_test, d={self.X.shape[2]}], got {tuple(Xt.shape)}"
                )
            if tuple(yt.shape[:2]) != tuple(Xt.shape[:2]) or tuple(yt.shape[2:]) != tuple(self.y.shape[2:]):
                raise ValueError(
                    f"y_test must have shape {tuple(Xt.shape[:2]) + tuple(self.y.shape[2:])} (matching X_test and "
                    f"the pool's label shape), got {tuple(yt.shape)}"
                )
        devices = {t.device for t in (self.X, self.y, self.w_star, self.w0, self.X_test, self.y_test) if t is not None}
        if len(devices) > 1:
            raise ValueError(f"the problem's tensors are on different devices ({', '.join(map(str, devices))}); "
                             "use Problem.to(device)")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {type(self.name).__name__}")
        if not isinstance(self.meta, dict):
            raise TypeError(f"meta must be a dict, got {type(self.meta).__name__}")

    @property
    def runs(self) -> int:
        """Number of runs of the initial weights (leading axis of ``w0``)."""
        return self.w0.shape[0]

    @property
    def pool_size(self) -> int:
        """Number n of examples in each run's pool."""
        return self.X.shape[1]

    @property
    def dim(self) -> int:
        """Input dimension d."""
        return self.X.shape[2]

    @property
    def has_test(self) -> bool:
        """Whether the problem carries a test set."""
        return self.X_test is not None

    def box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature minimum and maximum of the pool, each [Rp, d] (DHT's data box)."""
        return self.X.amin(1), self.X.amax(1)

    def to(self, device=None, dtype=None) -> Problem:
        """The same problem on ``device`` and/or in floating ``dtype`` (integer tensors keep their dtype)."""
        if device is not None:
            device = check_device(device)
        if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch dtype such as torch.float64, got {dtype!r}")

        def move(t):
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return replace(
            self, X=move(self.X), y=move(self.y), w_star=move(self.w_star), w0=move(self.w0),
            X_test=move(self.X_test), y_test=move(self.y_test), label_values=move(self.label_values),
        )

    def check_learner(self, learner: Learner) -> None:
        """Refuse a learner that does not fit the problem: sizes, label shape, classifier on a regression problem.

        Raises:
            TypeError: ``learner`` is not a Learner. ValueError: the mismatch, named.
        """
        check_instance(learner, "learner", Learner, "teachtheory Learner")
        if learner.input_dim != self.dim:
            raise ValueError(f"learner expects input_dim={learner.input_dim} but the pool has d={self.dim}")
        if learner.num_params != self.w0.shape[1]:
            raise ValueError(
                f"learner has {learner.num_params} parameters but w0 has {self.w0.shape[1]}"
            )
        expected = learner.label_shape()
        if tuple(self.y.shape[2:]) != expected:
            raise ValueError(f"{learner.name} expects labels of shape {expected} per example, "
                             f"got {tuple(self.y.shape[2:])}")
        if learner.classification:  # class labels, not regression targets
            if learner.scalar_labels:  # +-1 classes (soft labels in [-1, 1] are allowed)
                largest = float(self.y.abs().max())
                if largest > 1.0:
                    raise ValueError(f"learner {learner.name!r} expects labels in [-1, 1] (+-1 classes), "
                                     f"but the pool's labels reach {largest:g}: a regression problem needs a "
                                     "LeastSquares learner")
            elif bool((self.y < 0).any()):
                raise ValueError(f"learner {learner.name!r} expects one-hot or probability labels, but the pool has "
                                 "negative labels: a regression problem needs a LeastSquares learner")


# -- targets -----------------------------------------------------------------------


def fit_target(
    learner: Learner,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    l2: float = 0.0,
    init: torch.Tensor | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> tuple[torch.Tensor, dict]:
    """Fit w* = argmin_w mean_i l(w; x_i, y_i) + l2/2 ||w||^2 on the pool, in float64.

    Least squares is solved exactly; logistic and softmax regression by damped Newton
    iterations until the gradient norm is below ``tol``; the MLP by L-BFGS from ``init``
    (a local minimum). Returns (w* [Rp, p] in the input dtype, info with the final gradient
    norm and the method), so users can see how well the target is a stationary point.

    Raises:
        ValueError: ``l2`` negative or not finite, ``tol`` not positive, ``max_iter`` not a positive integer.
        NonConvergenceError: Newton stopped above ``tol`` (the target would not be the optimum the
            theory assumes; raise ``l2`` or ``max_iter``).

    Warns:
        NonConvergenceWarning: L-BFGS (MLP) stopped above ``tol``; a local optimum is expected there, so the
            fit is kept and ``info["converged"]`` is False.
    """
    check_instance(learner, "learner", Learner, "teachtheory Learner")
    l2 = check_non_negative(l2, "l2")
    tol = check_positive(tol, "tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    X = check_tensor(X, "X", ndim=3)
    y = check_tensor(y, "y", ndim=(2, 3))
    dtype = X.dtype
    X64, y64 = X.double(), y.double()
    Rp = X.shape[0]
    p = learner.num_params
    if isinstance(learner, LeastSquares):
        K = learner.output_dim
        Y = y64.reshape(Rp, X.shape[1], K)
        n = X.shape[1]
        gram = X64.transpose(1, 2) @ X64 / n + l2 * torch.eye(X.shape[2], dtype=torch.float64)
        rhs = X64.transpose(1, 2) @ Y / n
        # gelsd: deterministic (the default driver is not bit-reproducible) and fine when singular
        W = torch.linalg.lstsq(gram, rhs, driver="gelsd").solution
        w = W.reshape(Rp, p)
        grad = learner.mean_grad(w, X64, y64) + l2 * w
        info = {"method": "normal equations", "grad_norm": float(grad.norm(dim=-1).max())}
        return w.to(dtype), info
    if isinstance(learner, (Logistic, Softmax)):
        w = torch.zeros(Rp, p, dtype=torch.float64) if init is None else init.double().clone()
        eye = torch.eye(p, dtype=torch.float64)
        grad_norm = math.inf

        def objective(v):  # sum over runs of each run's regularised mean loss
            return learner.loss(v, X64, y64).mean(-1).sum() + 0.5 * l2 * (v * v).sum()

        def run_objective(v, Xr, yr):
            return learner.loss(v[None], Xr[None], yr[None]).mean() + 0.5 * l2 * (v * v).sum()

        run_hessian = torch.func.vmap(torch.func.hessian(run_objective))
        for iteration in range(max_iter):  # noqa: B007  (read after the loop)
            w_req = w.detach().requires_grad_(True)
            grad = torch.autograd.grad(objective(w_req), w_req)[0]
            grad_norm = float(grad.norm(dim=-1).max())
            if grad_norm < tol:
                break
            hess = run_hessian(w, X64.expand(Rp, *X64.shape[1:]), y64.expand(Rp, *y64.shape[1:]))
            step = torch.linalg.solve(hess + 1e-12 * eye, grad.unsqueeze(-1))[..., 0]
            # Backtracking keeps Newton monotone far from the optimum.
            t = 1.0
            base = objective(w)
            while t > 1e-8 and objective(w - t * step) > base - 1e-4 * t * (grad * step).sum():
                t *= 0.5
            w = w - t * step
        else:  # the loop ran out without the gradient falling below tol: measure where it stopped
            w_req = w.detach().requires_grad_(True)
            grad_norm = float(torch.autograd.grad(objective(w_req), w_req)[0].norm(dim=-1).max())
            if not grad_norm < tol:
                raise NonConvergenceError(
                    f"fit_target: Newton stopped after {max_iter} iterations with gradient norm {grad_norm:.3g} "
                    f"above tol={tol:g} (l2={l2:g}); raise l2 (a separable pool has no finite optimum without it) "
                    "or max_iter")
        info = {"method": "Newton", "grad_norm": grad_norm, "iterations": iteration + 1, "l2": l2, "converged": True}
        return w.to(dtype), info
    if isinstance(learner, MLP):
        if init is None:
            raise ValueError("init: the MLP target needs initial weights (a local minimum is fitted)")
        w = init.double().clone().requires_grad_(True)
        opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter * 5, tolerance_grad=tol,
                                tolerance_change=0.0, history_size=50, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            value = learner.loss(w, X64, y64).mean(-1).sum() + 0.5 * l2 * (w * w).sum()
            value.backward()
            return value

        opt.step(closure)
        w = w.detach()
        grad = learner.mean_grad(w, X64, y64) + l2 * w
        grad_norm = float(grad.norm(dim=-1).max())
        converged = grad_norm < tol
        if not math.isfinite(grad_norm):
            raise NonConvergenceError(f"fit_target: L-BFGS for the MLP target diverged (gradient norm {grad_norm})")
        if not converged:
            warnings.warn(f"fit_target: L-BFGS stopped with gradient norm {grad_norm:.3g} above tol={tol:g}; the MLP "
                          "target is kept as an approximate local minimum", NonConvergenceWarning, stacklevel=2)
        return w.to(dtype), {"method": "L-BFGS", "grad_norm": grad_norm, "l2": l2, "converged": converged}
    raise TypeError(f"fit_target does not know learner {type(learner).__name__}")


def init_weights(learner: Learner, streams: RunStreams, tag: str, scale: float, dtype) -> torch.Tensor:
    """Initial weights [R, p]: N(0, scale^2) for linear learners; He-style per layer for the MLP."""
    w = streams.normal(tag, 0, (learner.num_params,), dtype=dtype)
    if isinstance(learner, MLP):
        blocks = learner.param_blocks()
        w[:, blocks["first"]] *= scale * math.sqrt(2.0 / learner.input_dim)
        w[:, blocks["output"]] *= scale * math.sqrt(1.0 / learner.hidden)
        return w
    return scale * w


def _one_hot(labels: torch.Tensor, K: int, dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, K).to(dtype)


def _split_streams(seed, runs) -> RunStreams:
    return RunStreams(check_seeds(seed, runs))


def _pool_streams(streams: RunStreams, shared: bool, pool_seed) -> RunStreams:
    """Streams of the pool: per run, or one stream for a shared pool seeded by ``pool_seed`` (default: first seed)."""
    if not shared:
        if pool_seed is not None:
            raise ValueError("pool_seed applies to a shared pool only (shared_pool=True)")
        return streams
    if pool_seed is None:
        return streams.subset(slice(0, 1))
    return RunStreams(torch.tensor([check_seed(pool_seed, "pool_seed")], dtype=torch.int64))


def _check_common(runs, dtype, device) -> torch.device:
    check_positive_int(runs, "runs")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype such as torch.float64, got {dtype!r}")
    return check_device(device)


# -- generators ----------------------------------------------------------------------


def linear_regression(
    dim: int = 10,
    pool_size: int = 100,
    runs: int = 1,
    seed: int | Sequence[int] = 0,
    *,
    noise: float = 0.0,
    test_size: int = 0,
    shared_pool: bool = False,
    target: str = "fitted",
    init_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
    device="cpu",
    pool_seed: int | None = None,
) -> Problem:
    """Linear-Gaussian regression: x ~ N(0, I_d), y = <w_gen, x> + noise * N(0, 1), w_gen ~ N(0, I_d).

    ``target="fitted"`` takes w* as the least-squares solution on the pool (equal to w_gen when
    noise is 0 and n >= d); ``target="given"`` takes w* = w_gen. w0 ~ N(0, init_scale^2 I).
    A shared pool is drawn from ``pool_seed`` (default: the first run's seed; see the module docstring).

    References: LAST Sec. 6.1 (Fig. 7 setting).

    Example:
        Four runs, each with its own pool of 20 examples in 3 dimensions; without noise the fitted
        target w* reproduces every label:

        >>> p = linear_regression(dim=3, pool_size=20, runs=4, seed=0)
        >>> p.runs, p.pool_size, p.dim
        (4, 20, 3)
        >>> tuple(p.X.shape), tuple(p.y.shape), tuple(p.w_star.shape)
        ((4, 20, 3), (4, 20), (4, 3))
        >>> bool(torch.allclose((p.X @ p.w_star[..., None])[..., 0], p.y))
        True
    """
    device = _check_common(runs, dtype, device)
    check_positive_int(dim, "dim")
    check_positive_int(pool_size, "pool_size")
    noise = check_non_negative(noise, "noise")
    test_size = check_int(test_size, "test_size", min=0)
    init_scale = check_non_negative(init_scale, "init_scale")
    check_choice(target, "target", ("fitted", "given"))
    streams = _split_streams(seed, runs)
    pool_streams = _pool_streams(streams, shared_pool, pool_seed)
    w_gen = pool_streams.normal("w_gen", 0, (dim,), dtype=dtype)
    X = pool_streams.normal("pool_x", 0, (pool_size, dim), dtype=dtype)
    y = (X @ w_gen.unsqueeze(-1))[..., 0] + noise * pool_streams.normal("pool_noise", 0, (pool_size,), dtype=dtype)
    X_test = y_test = None
    if test_size:
        X_test = pool_streams.normal("test_x", 0, (test_size, dim), dtype=dtype)
        y_test = ((X_test @ w_gen.unsqueeze(-1))[..., 0]
                  + noise * pool_streams.normal("test_noise", 0, (test_size,), dtype=dtype))
    learner = LeastSquares(dim)
    info: dict = {"target": target}
    if target == "fitted":
        w_star, fit = fit_target(learner, X, y)
        info.update(fit)
    else:
        w_star = w_gen
    w0 = init_weights(learner, streams, "w0", init_scale, dtype)
    problem = Problem(X, y, w_star, w0, X_test, y_test, None, f"linear-regression(d={dim}, n={pool_size})",
                      {"generator": "linear_regression", "noise": noise, "shared_pool": shared_pool, **info})
    return problem.to(device)


def _classification_problem(
    X, labels, X_test, labels_test, *, learner, label_format, streams, init_scale, l2, name, meta, dtype,
    target_init=None,
) -> Problem:
    K = int(max(int(labels.max()), int(labels_test.max()) if labels_test is not None else 0)) + 1
    if label_format == "signs":
        y = (2.0 * labels - 1.0).to(dtype)
        y_test = None if labels_test is None else (2.0 * labels_test - 1.0).to(dtype)
        label_values = torch.tensor([-1.0, 1.0], dtype=dtype)
    else:
        y = _one_hot(labels, K, dtype)
        y_test = None if labels_test is None else _one_hot(labels_test, K, dtype)
        label_values = torch.eye(K, dtype=dtype)
    w_star, fit = fit_target(learner, X, y, l2=l2, init=target_init)
    w0 = init_weights(learner, streams, "w0", init_scale, dtype)
    return Problem(X, y, w_star, w0, X_test, y_test, label_values, name, {**meta, "target_fit": fit})


def _learner_for(kind: str, dim: int, classes: int, hidden: int) -> tuple[Learner, str]:
    if kind == "logistic":
        if classes != 2:
            raise ValueError(f"learner 'logistic' needs 2 classes, got {classes}")
        return Logistic(dim), "signs"
    if kind == "softmax":
        return Softmax(dim, classes), "onehot"
    if kind == "mlp":
        return MLP(dim, hidden, classes), "onehot"
    raise ValueError(f"learner must be one of 'logistic', 'softmax', 'mlp'; got {kind!r}")


def _add_bias(X: torch.Tensor) -> torch.Tensor:
    return torch.cat([X, torch.ones(*X.shape[:-1], 1, dtype=X.dtype)], dim=-1)


def gaussian_clusters(
    pool_size: int = 200, runs: int = 1, seed=0, *, dim: int = 2, separation: float = 2.0, test_size: int = 200,
    learner: str = "logistic", bias: bool = True, shared_pool: bool = True, l2: float = 1e-3,
    init_scale: float = 0.1, dtype=torch.float64, device="cpu", pool_seed: int | None = None,
) -> Problem:
    """Two Gaussian clusters N(+-separation/2 e_1, I_d), classes balanced in expectation.

    The target is the L2-regularised (``l2``) logistic/softmax fit on the pool (Newton to a
    gradient norm of 1e-10): regularisation keeps w* finite when the pool is separable. A shared
    pool is drawn from ``pool_seed`` (default: the first run's seed; see the module docstring).

    References: LAST Sec. 6.1 and Appendix F (Gaussian cluster data).
    """
    device = _check_common(runs, dtype, device)
    check_positive_int(dim, "dim")
    separation = check_finite_scalar(separation, "separation")

    def draw_x(pool_streams, tag, labels):
        centre = torch.zeros(dim, dtype=dtype)
        centre[0] = separation / 2
        n = labels.shape[-1]
        sign = (2 * labels - 1)[..., None].to(dtype)
        return pool_streams.normal(tag + "_x", 0, (n, dim), dtype=dtype) + sign * centre

    return _two_class_problem(
        draw_x, pool_size=pool_size, runs=runs, seed=seed, test_size=test_size, learner=learner, bias=bias,
        shared_pool=shared_pool, l2=l2, init_scale=init_scale, dtype=dtype, device=device, pool_seed=pool_seed,
        name=f"gaussian-clusters(d={dim}, n={pool_size})",
        meta={"generator": "gaussian_clusters", "separation": separation},
    )


def moons(
    pool_size: int = 200, runs: int = 1, seed=0, *, noise: float = 0.1, test_size: int = 200,
    learner: str = "logistic", bias: bool = True, shared_pool: bool = True, l2: float = 1e-3,
    init_scale: float = 0.1, dtype=torch.float64, device="cpu", pool_seed: int | None = None,
) -> Problem:
    """Two interleaving half-moons in 2-D (centred), with Gaussian noise, plus a bias feature.

    Outer moon (cos t, sin t), inner moon (1 - cos t, 1/2 - sin t), t ~ U(0, pi), shifted by
    (-1/2, -1/4) so the data are centred. Target: L2-regularised logistic fit (see
    :func:`gaussian_clusters`).

    A shared pool is drawn from ``pool_seed`` (default: the first run's seed).

    References: LAST Fig. 8-9; DHT Fig. 3 (half-moon data).
    """
    device = _check_common(runs, dtype, device)
    noise = check_non_negative(noise, "noise")

    def draw_x(pool_streams, tag, labels):
        n = labels.shape[-1]
        t = math.pi * pool_streams.uniform(tag + "_t", 0, (n,), dtype=dtype)
        outer = torch.stack([torch.cos(t), torch.sin(t)], -1)
        inner = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], -1)
        X = torch.where(labels[..., None] == 0, outer, inner) + torch.tensor([-0.5, -0.25], dtype=dtype)
        return X + noise * pool_streams.normal(tag + "_noise", 0, (n, 2), dtype=dtype)

    return _two_class_problem(
        draw_x, pool_size=pool_size, runs=runs, seed=seed, test_size=test_size, learner=learner, bias=bias,
        shared_pool=shared_pool, l2=l2, init_scale=init_scale, dtype=dtype, device=device, pool_seed=pool_seed,
        name=f"moons(n={pool_size})", meta={"generator": "moons", "noise": noise},
    )


def _two_class_problem(draw_x, *, pool_size, runs, seed, test_size, learner, bias, shared_pool, l2, init_scale, dtype,
                       device, pool_seed, name, meta) -> Problem:
    """The two-class generators' shared body: balanced labels, inputs ``draw_x(streams, tag, labels)``, target fit."""
    check_positive_int(pool_size, "pool_size")
    test_size = check_int(test_size, "test_size", min=0)
    l2 = check_non_negative(l2, "l2")
    init_scale = check_non_negative(init_scale, "init_scale")
    check_choice(learner, "learner", ("logistic", "softmax"))
    streams = _split_streams(seed, runs)
    pool_streams = _pool_streams(streams, shared_pool, pool_seed)

    def draw(tag, n):
        labels = (pool_streams.uniform(tag + "_label", 0, (n,)) < 0.5).to(torch.int64)
        X = draw_x(pool_streams, tag, labels)
        return (_add_bias(X) if bias else X), labels

    X, labels = draw("pool", pool_size)
    X_test, labels_test = draw("test", test_size) if test_size else (None, None)
    model, fmt = _learner_for(learner, X.shape[-1], 2, 0)
    return _classification_problem(
        X, labels, X_test, labels_test, learner=model, label_format=fmt, streams=streams, init_scale=init_scale,
        l2=l2, name=name, dtype=dtype, meta=meta | {"bias": bias, "learner": learner},
    ).to(device)


def digits_arrays(classes: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits as (X [n, 64] float64 in [0, 1], labels int64), optionally only
    ``classes``, relabelled 0..len(classes)-1 in the order given."""
    from sklearn.datasets import load_digits

    data = load_digits()
    X = torch.tensor(data.data, dtype=torch.float64) / 16.0
    labels = torch.tensor(data.target, dtype=torch.int64)
    if classes is not None:
        keep = torch.isin(labels, torch.tensor(list(classes)))
        X, labels = X[keep], labels[keep]
        lookup = torch.full((10,), -1, dtype=torch.int64)
        lookup[torch.tensor(list(classes))] = torch.arange(len(classes))
        labels = lookup[labels]
    return X, labels


def _digits_problem(
    classes, runs, seed, *, project_dim, test_fraction, learner, hidden, l2, init_scale, dtype, device, name,
    standardise=True, pool_seed=None,
):
    device = _check_common(runs, dtype, device)
    test_fraction = check_probability(test_fraction, "test_fraction", include_one=False)
    l2 = check_non_negative(l2, "l2")
    init_scale = check_non_negative(init_scale, "init_scale")
    check_choice(learner, "learner", ("logistic", "softmax", "mlp"))
    if learner == "mlp":
        check_positive_int(hidden, "hidden")
    if project_dim is not None:
        check_positive_int(project_dim, "project_dim")
    streams = _split_streams(seed, runs)
    X, labels = digits_arrays(classes)
    # the split and projection are shared by all runs: drawn from pool_seed (default: the first run's seed)
    shared = _pool_streams(streams, True, pool_seed)
    if project_dim is not None:
        proj = shared.normal("projection", 0, (X.shape[1], project_dim))[0] / math.sqrt(project_dim)
        X = X @ proj
    if standardise:
        X = (X - X.mean(0)) / X.std(0).clamp_min(1e-8)
    order = torch.argsort(shared.uniform("split", 0, (X.shape[0],))[0])
    n_test = round(test_fraction * X.shape[0])
    test_idx, train_idx = order[:n_test], order[n_test:]
    Xtr, Xte = X[train_idx][None].to(dtype), (X[test_idx][None].to(dtype) if n_test else None)
    ltr, lte = labels[train_idx][None], (labels[test_idx][None] if n_test else None)
    K = len(classes) if classes is not None else 10
    model, fmt = _learner_for(learner, Xtr.shape[-1], K, hidden)
    target_init = None
    if isinstance(model, MLP):
        target_init = init_weights(model, shared, "target_init", 1.0, torch.float64)
    return _classification_problem(
        Xtr, ltr, Xte, lte, learner=model, label_format=fmt, streams=streams, init_scale=init_scale, l2=l2,
        name=name, dtype=dtype, target_init=target_init,
        meta={"generator": name, "project_dim": project_dim, "learner": learner, "hidden": hidden,
              "pool_seed": int(shared.seeds[0])},
    ).to(device)


def digits35(
    runs: int = 1, seed=0, *, project_dim: int | None = 24, test_fraction: float = 0.3, learner: str = "logistic",
    hidden: int = 16, l2: float = 1e-3, init_scale: float = 0.1, dtype=torch.float64, device="cpu",
    pool_seed: int | None = None,
) -> Problem:
    """scikit-learn's 8x8 digits, classes 3 vs 5 (the stand-in for MNIST 3/5).

    Pixels are scaled to [0, 1], optionally projected to ``project_dim`` dimensions by a seeded
    Gaussian matrix (the papers project MNIST 3/5 to 24 dimensions), then standardised. The pool
    is shared by all runs (the split and projection come from ``pool_seed``, default the first run's
    seed); w0 differs per run. Target:
    L2-regularised fit (Newton; L-BFGS to a local minimum for the MLP).

    References: LAST Fig. 8, 10; DHT Fig. 3.
    """
    return _digits_problem((3, 5), runs, seed, project_dim=project_dim, test_fraction=test_fraction,
                           learner=learner, hidden=hidden, l2=l2, init_scale=init_scale, dtype=dtype,
                           device=device, name="digits35", pool_seed=pool_seed)


def digits(
    runs: int = 1, seed=0, *, project_dim: int | None = None, test_fraction: float = 0.3, learner: str = "softmax",
    hidden: int = 32, l2: float = 1e-3, init_scale: float = 0.1, dtype=torch.float64, device="cpu",
    pool_seed: int | None = None,
) -> Problem:
    """All ten digit classes (multi-class softmax or MLP learner); see :func:`digits35`."""
    return _digits_problem(None, runs, seed, project_dim=project_dim, test_fraction=test_fraction,
                           learner=learner, hidden=hidden, l2=l2, init_scale=init_scale, dtype=dtype,
                           device=device, name="digits", pool_seed=pool_seed)
