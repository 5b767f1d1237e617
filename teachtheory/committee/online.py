r"""Online SGD for soft committee machines (teacher-student), batched over runs.

Two engines with the same interface and the same law:

* :func:`simulate_sgd` trains the actual networks: student first-layer weights ``W`` [R, K, N] and
  second-layer weights ``v`` [R, K] against a teacher ``(W*, v*)``, one fresh Gaussian input per step,
  all R runs as one tensor computation (the Python loop is over time only). Cost O(R (K + M) N) per step.
* :func:`simulate_order_parameters` runs the same SGD in the coordinates that matter. Because x is
  isotropic and fresh, one step depends on the weights only through the local fields
  :math:`u = (\lambda, \nu) \sim N(0, \Omega)` and :math:`\|x\|^2`, and
  :math:`\|x\|^2 = \|P x\|^2 + \chi^2_{N - r}` (P the projection on the r-dimensional span of the weight
  vectors, :math:`\|Px\|^2 = u^\top\Omega^+ u`, the rest independent). Sampling (u, ||x||^2) exactly gives
  the order-parameter process of SGD *exactly in law*, at a cost per step independent of N. It is what
  makes large N and many runs cheap; :func:`order_parameter_step` is tested to equal one weight step.

The SGD step (Goldt et al. 2019 scaling), with :math:`\lambda_k = w_k\cdot x/\sqrt N`,
:math:`\nu_n = w^*_n\cdot x/\sqrt N`, :math:`\Delta = \sum_n v^*_n g(\nu_n) + \sigma\zeta - \sum_k v_k g(\lambda_k)`:

.. math::
    w_k \leftarrow w_k + \frac{\eta}{\sqrt N}\, v_k\, g'(\lambda_k)\,\Delta\; x,\qquad
    v_k \leftarrow v_k + \frac{\eta_v}{N}\, g(\lambda_k)\,\Delta .

Why :math:`\alpha = \text{steps}/N` is the ODE time: with :math:`c_k = v_k g'(\lambda_k)\Delta`,

.. math::
    Q'_{kl} - Q_{kl} = \frac{\eta}{N}(c_k\lambda_l + \lambda_k c_l) + \frac{\eta^2}{N}\frac{\|x\|^2}{N} c_k c_l,\qquad
    R'_{kn} - R_{kn} = \frac{\eta}{N} c_k \nu_n,\qquad v'_k - v_k = \frac{\eta_v}{N} g(\lambda_k)\Delta,

every increment is O(1/N) with an O(1) mean, so after :math:`\alpha N` steps the drift is
:math:`\alpha\, E[\cdot]` (the ODEs of :mod:`teachtheory.theory.committee`) and the accumulated noise is
:math:`O(\sqrt{\alpha N}/N) = O(1/\sqrt N)`. The first-layer step is plain SGD with learning rate
:math:`\eta` on :math:`\tfrac12\Delta^2` (as :math:`\partial\lambda_k/\partial w_k = x/\sqrt N`, the
step along x is :math:`\eta/\sqrt N`); the second layer needs :math:`\eta_v/N` because
:math:`\partial\phi/\partial v_k = g(\lambda_k)` is O(1).

References:
    Saad & Solla, Phys. Rev. E 52, 4225 (1995); Goldt, Advani, Saxe, Krzakala, Zdeborova, NeurIPS 2019
    (the SGD scaling and the ODEs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..random import RunStreams, as_seeds
from ..theory import committee as theory
from ..theory.committee import g, g_prime
from ..threads import intra_op_threads

__all__ = [
    "CommitteeProblem", "CommitteeRecord", "GapScaling", "block_normals", "fit_power_law", "gap_scaling",
    "ode_check_problem", "order_parameter_step", "order_parameters", "plateau_problem", "record_steps",
    "sample_chi2", "sgd_step", "simulate_order_parameters", "simulate_sgd", "sup_gap",
    "weights_from_order_parameters",
]

# Normals per run in one input draw of the weight engine; fixes its block size in steps (max(1, this // N)),
# which must not depend on R (batch contract). Small enough that a block of R = 64 runs stays in cache
# (the hash's per-number cost doubles once the draw spills out of it), large enough to amortise a call.
BLOCK_NUMBERS = 1 << 12
CHAIN_BLOCK = 256  # steps per random block in the order-parameter engine
_CANDIDATES = 2  # Marsaglia-Tsang candidates drawn per chi-square variate (retries are rare and exact)


def _as_tensor(value, name: str, dtype: torch.dtype, ndim: int) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=dtype)
    if t.ndim < ndim:
        raise ValueError(f"{name} must have at least {ndim} dimension(s), got shape {tuple(t.shape)}")
    return t


@dataclass
class CommitteeProblem:
    r"""A teacher-student committee learning problem: initial order parameters and SGD settings.

    Attributes:
        Q0 [K, K], R0 [K, M], T [M, M]: initial overlaps (the student-teacher field covariance, must be PSD).
        v0 [K], v_star [M]: initial student and (fixed) teacher second-layer weights.
        lr: first-layer learning rate eta; lr_v: second-layer learning rate (default lr);
        train_second_layer: train v as well (Goldt et al.) or not (Saad & Solla);
        noise_std: sigma, the standard deviation of the output noise on the teacher's labels.
    """

    Q0: torch.Tensor
    R0: torch.Tensor
    T: torch.Tensor
    v0: torch.Tensor
    v_star: torch.Tensor
    lr: float = 1.0
    lr_v: float | None = None
    train_second_layer: bool = True
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        self.Q0 = _as_tensor(self.Q0, "Q0", torch.float64, 2)
        self.R0 = _as_tensor(self.R0, "R0", torch.float64, 2)
        self.T = _as_tensor(self.T, "T", torch.float64, 2)
        self.v0 = _as_tensor(self.v0, "v0", torch.float64, 1)
        self.v_star = _as_tensor(self.v_star, "v_star", torch.float64, 1)
        for name in ("Q0", "R0", "T"):
            if getattr(self, name).ndim != 2:
                raise ValueError(f"{name} must be a matrix (one problem shared by all runs), "
                                 f"got shape {tuple(getattr(self, name).shape)}")
        if not (isinstance(self.noise_std, (int, float)) and math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ValueError(f"noise_std must be a non-negative number, got {self.noise_std!r}")
        theory._check_rates(self.lr, self.lr_v, 0.0)
        try:
            theory.check_order_parameters(self.Q0, self.R0, self.T, self.v0, self.v_star)
        except ValueError as exc:
            raise ValueError(str(exc).replace("Q, R, T", "Q0, R0, T", 1)) from None

    @property
    def K(self) -> int:
        """Number K of student hidden units."""
        return int(self.Q0.shape[-1])

    @property
    def M(self) -> int:
        """Number M of teacher hidden units."""
        return int(self.T.shape[-1])

    @property
    def effective_lr_v(self) -> float:
        """Learning rate of the second layer (``lr_v``, or ``lr`` when it is None)."""
        return float(self.lr if self.lr_v is None else self.lr_v)

    def ode(self, alphas, **kwargs) -> theory.ODESolution:
        """Integrate the Saad-Solla / Goldt ODEs from this problem's order parameters (see
        :func:`teachtheory.theory.committee.integrate_ode`; kwargs: method, dt, tol, rtol, atol)."""
        return theory.integrate_ode(self.Q0, self.R0, self.T, self.v0, self.v_star, alphas, self.lr,
                                    lr_v=self.lr_v, train_second_layer=self.train_second_layer,
                                    noise_var=self.noise_std**2, **kwargs)

    def generalisation_error(self) -> float:
        """Exact generalisation error of the initial order parameters (Q0, R0, T, v0, v_star)."""
        return float(theory.generalisation_error(self.Q0, self.R0, self.T, self.v0, self.v_star))

    def to_spec(self) -> dict[str, Any]:
        """JSON-ready description of the problem (order parameters, rates, noise)."""
        return {"K": self.K, "M": self.M, "Q0": self.Q0.tolist(), "R0": self.R0.tolist(), "T": self.T.tolist(),
                "v0": self.v0.tolist(), "v_star": self.v_star.tolist(), "lr": self.lr,
                "lr_v": self.effective_lr_v, "train_second_layer": self.train_second_layer,
                "noise_std": self.noise_std}


@dataclass
class CommitteeRecord:
    """Order parameters of R runs recorded on a grid of times.

    Attributes:
        alpha [A] (= steps / N), steps [A]; Q [R, A, K, K], R [R, A, K, M], v [R, A, K]; eps [R, A]
        (the exact generalisation error of each run's order parameters); N; engine ("weights" or
        "order-parameters"); seconds (wall time).
    """

    alpha: np.ndarray
    steps: np.ndarray
    Q: torch.Tensor
    R: torch.Tensor
    v: torch.Tensor
    eps: torch.Tensor
    N: int
    engine: str
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        """Number R of runs recorded."""
        return int(self.eps.shape[0])


def block_normals(streams: RunStreams, tag: str, block: int, shape: Sequence[int],
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard normals [R, *shape] for one block of steps (Box-Muller on two uniform streams).

    Unlike :meth:`RunStreams.normal`, a prefix along the first axis does not depend on the length drawn:
    drawing n < B steps of a block gives the first n rows of the full block, so the last, partial block of a
    run costs only what it uses and a longer run starts with the same inputs.
    """
    u1 = streams.uniform(f"{tag}/1", block, shape)
    u2 = streams.uniform(f"{tag}/2", block, shape)
    return (torch.sqrt(-2.0 * torch.log1p(-u1)) * torch.cos(2.0 * math.pi * u2)).to(dtype)


# -- weights and order parameters --------------------------------------------------------------


def _square_root(omega: torch.Tensor) -> torch.Tensor:
    """L with L L^T = omega for PSD omega (eigen-decomposition, so singular Gram matrices work too)."""
    evals, evecs = torch.linalg.eigh(omega)
    return evecs * evals.clamp_min(0.0).sqrt().unsqueeze(-2)


def weights_from_order_parameters(
    Q: torch.Tensor, R: torch.Tensor, T: torch.Tensor, N: int, *, seed: int | Sequence[int] | torch.Tensor = 0,
    runs: int | None = None, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Student and teacher weights with exactly the given overlaps: :math:`W W^\top/N = Q`, :math:`W W^{*\top}/N = R`,
    :math:`W^* W^{*\top}/N = T`.

    With :math:`\Omega = L L^\top` (``L`` from the eigen-decomposition, so a singular Gram matrix is fine) and
    a random orthonormal set :math:`E` of K + M vectors in :math:`R^N` (QR of a Gaussian matrix drawn from the
    run's stream), the rows of :math:`\sqrt N\, L E` are (w_1..w_K, w*_1..w*_M).

    Args:
        Q [K, K] or [R, K, K], R [..., K, M], T [..., M, M]: overlaps (the field covariance must be PSD).
        N: input dimension, at least K + M.
        seed, runs: per-run seeds (see :func:`teachtheory.random.as_seeds`).

    Returns:
        W [R, K, N], W_star [R, M, N].
    """
    if not isinstance(N, int) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N must be a positive integer, got {N!r}")
    K, M = Q.shape[-1], T.shape[-1]
    if N < K + M:
        raise ValueError(f"N must be at least K + M = {K + M} to realise the overlaps, got {N}")
    streams = RunStreams(as_seeds(seed, runs), device=device)
    R_ = streams.runs
    omega = theory.field_covariance(Q.to(torch.float64), R.to(torch.float64), T.to(torch.float64))
    omega = omega.expand(R_, K + M, K + M).to(device)
    L = _square_root(omega)
    gauss = streams.normal("committee-basis", 0, (N, K + M))  # [R, N, P]
    E, _ = torch.linalg.qr(gauss)  # orthonormal columns [R, N, P]
    G = math.sqrt(N) * L @ E.transpose(-1, -2)  # [R, P, N]
    G = G.to(dtype)
    return G[:, :K].contiguous(), G[:, K:].contiguous()


def order_parameters(W: torch.Tensor, W_star: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Q, R, T) = (W W^T, W W*^T, W* W*^T) / N for weights [..., K, N], [..., M, N]."""
    N = W.shape[-1]
    return (W @ W.transpose(-1, -2) / N, W @ W_star.transpose(-1, -2) / N, W_star @ W_star.transpose(-1, -2) / N)


def sgd_step(W: torch.Tensor, v: torch.Tensor, W_star: torch.Tensor, v_star: torch.Tensor, x: torch.Tensor,
             lr: float, lr_v: float, *, zeta: torch.Tensor | None = None, noise_std: float = 0.0,
             train_second_layer: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One online SGD step on one input per run (module docstring), returning new (W, v).

    Args:
        W [R, K, N], v [R, K], W_star [R, M, N], v_star [R, M] or [M], x [R, N]; zeta [R] the label noise draw.
    """
    N = W.shape[-1]
    root = math.sqrt(N)
    lam = torch.einsum("rkn,rn->rk", W, x) / root
    nu = torch.einsum("rmn,rn->rm", W_star, x) / root
    delta = (g(nu) * v_star).sum(-1) - (g(lam) * v).sum(-1)
    if zeta is not None and noise_std > 0:
        delta = delta + noise_std * zeta
    coef = (lr / root) * v * g_prime(lam) * delta[:, None]
    W_new = W + coef[:, :, None] * x[:, None, :]
    v_new = v + (lr_v / N) * g(lam) * delta[:, None] if train_second_layer else v
    return W_new, v_new


def order_parameter_step(Q, R, v, v_star, lam, nu, xsq, N: int, lr: float, lr_v: float, *,
                         zeta: torch.Tensor | None = None, noise_std: float = 0.0, train_second_layer: bool = True):
    r"""The SGD step in order-parameter coordinates, given the fields (lam [R, K], nu [R, M]) and
    :math:`\|x\|^2` (xsq [R]) of the step's input: returns new (Q, R, v) (module docstring)."""
    delta = (g(nu) * v_star).sum(-1) - (g(lam) * v).sum(-1)
    if zeta is not None and noise_std > 0:
        delta = delta + noise_std * zeta
    c = v * g_prime(lam) * delta[:, None]
    outer = c[:, :, None] * lam[:, None, :]
    Q_new = Q + (lr / N) * (outer + outer.transpose(-1, -2)) + (lr * lr / N) * (xsq / N)[:, None, None] * (
        c[:, :, None] * c[:, None, :])
    R_new = R + (lr / N) * c[:, :, None] * nu[:, None, :]
    v_new = v + (lr_v / N) * g(lam) * delta[:, None] if train_second_layer else v
    return Q_new, R_new, v_new


# -- recording ---------------------------------------------------------------------------------


def record_steps(alphas, N: int) -> np.ndarray:
    """The SGD steps at which to record for times ``alphas`` (rounded to the nearest step, unique, from 0)."""
    alphas = np.asarray(alphas, dtype=float)
    if alphas.ndim != 1 or alphas.size < 1 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ValueError("alphas must be a non-empty 1-D array of non-negative finite times")
    steps = np.unique(np.rint(alphas * N).astype(np.int64))
    if steps[0] != 0:
        steps = np.concatenate([[0], steps])
    return steps


def _check_common(problem: CommitteeProblem, N: int, runs: int | None, seed) -> None:
    if not isinstance(problem, CommitteeProblem):
        raise TypeError(f"problem must be a CommitteeProblem, got {type(problem).__name__}")
    if not isinstance(N, int) or isinstance(N, bool) or N < problem.K + problem.M + 2:
        raise ValueError(f"N must be an integer >= K + M + 2 = {problem.K + problem.M + 2}, got {N!r}")
    if runs is not None and (not isinstance(runs, int) or runs < 1):
        raise ValueError(f"runs must be a positive integer, got {runs!r}")


def _eps(Q, R, T, v, v_star) -> torch.Tensor:
    return theory.generalisation_error(Q.to(torch.float64), R.to(torch.float64), T.to(torch.float64),
                                       v.to(torch.float64), v_star.to(torch.float64))


def _finish(alphas_steps, N, Qs, Rs, vs, T, v_star, engine, started, details) -> CommitteeRecord:
    Q = torch.stack(Qs, 1)
    R = torch.stack(Rs, 1)
    v = torch.stack(vs, 1)
    A = Q.shape[1]
    eps = _eps(Q, R, T[:, None].expand(-1, A, -1, -1), v, v_star[:, None].expand(-1, A, -1))
    return CommitteeRecord(alphas_steps / N, alphas_steps, Q, R, v, eps.to(Q.dtype), N, engine,
                           time.perf_counter() - started, details)


def simulate_sgd(
    problem: CommitteeProblem, N: int, alphas, *, runs: int | None = None, seed: int | Sequence[int] = 0,
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int], None] | None = None, threads: int | None = 1,
) -> CommitteeRecord:
    r"""Online SGD of the student committee on the actual weights, R runs at once.

    Run r uses the streams of seed r: its initial weights (realising the problem's Q0, R0, T exactly, see
    :func:`weights_from_order_parameters`) and its inputs x_t ~ N(0, I_N), drawn by one
    :meth:`RunStreams.normal` call per block of ``max(1, 2**12 // N)`` steps, shape [R, block, N], so a batch
    of runs equals the single runs with the same seeds. The last block is drawn whole too, so a longer run
    starts with the same inputs as a shorter one.

    Args:
        problem: initial order parameters and learning rates.
        N: input dimension (>= K + M + 2).
        alphas: record times (alpha = steps / N, rounded to whole steps; 0 is always recorded).
        runs, seed: as in :func:`teachtheory.random.as_seeds`.
        dtype: dtype of the weights (order parameters are computed from them; eps in float64).
        progress: called as ``progress(steps_done, total_steps)`` after every block.
        threads: torch CPU threads during the run (default 1, fastest for these small per-step tensors; None
            leaves the setting alone). Restored afterwards.

    Returns:
        :class:`CommitteeRecord` with engine "weights".

    References: Goldt et al. 2019 (the SGD scaling); Saad & Solla 1995.
    """
    _check_common(problem, N, runs, seed)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    with intra_op_threads(None if torch.device(device).type == "cuda" else threads):
        return _simulate_sgd(problem, N, alphas, runs=runs, seed=seed, device=device, dtype=dtype, progress=progress)


def _simulate_sgd(problem, N, alphas, *, runs, seed, device, dtype, progress) -> CommitteeRecord:
    started = time.perf_counter()
    steps = record_steps(alphas, N)
    seeds = as_seeds(seed, runs)
    streams = RunStreams(seeds, device=device)
    R_ = streams.runs
    W, W_star = weights_from_order_parameters(problem.Q0, problem.R0, problem.T, N, seed=seeds, dtype=dtype,
                                              device=device)
    v = problem.v0.to(device=device, dtype=dtype).expand(R_, -1).clone()
    v_star = problem.v_star.to(device=device, dtype=dtype).expand(R_, -1).contiguous()
    lr, lr_v, sigma = float(problem.lr), problem.effective_lr_v, float(problem.noise_std)
    root = math.sqrt(N)
    block = max(1, BLOCK_NUMBERS // N)
    total = int(steps[-1])
    record_at = {int(s) for s in steps}
    Qs, Rs, vs = [], [], []

    def record():
        Q, R, _ = order_parameters(W.to(torch.float64), W_star.to(torch.float64))
        Qs.append(Q)
        Rs.append(R)
        vs.append(v.to(torch.float64).clone())

    record()
    T_run = order_parameters(W.to(torch.float64), W_star.to(torch.float64))[2]
    step = 0
    for b in range(-(-total // block)):
        n = min(block, total - b * block)
        # whole block even when the run ends inside it: the first n steps then do not depend on the run length
        xs = streams.normal("committee-x", b, (block, N), dtype)[:, :n]  # [R, n, N]
        zetas = block_normals(streams, "committee-label-noise", b, (n,), dtype) if sigma > 0 else None
        nus = torch.einsum("rmn,rbn->rbm", W_star, xs) / root  # teacher fields of the whole block
        g_nu = (g(nus) * v_star[:, None, :]).sum(-1)  # [R, n]
        if zetas is not None:
            g_nu = g_nu + sigma * zetas
        for i in range(n):
            x = xs[:, i]
            lam = torch.einsum("rkn,rn->rk", W, x) / root
            delta = g_nu[:, i] - (g(lam) * v).sum(-1)
            coef = (lr / root) * v * g_prime(lam) * delta[:, None]
            W.baddbmm_(coef[:, :, None], x[:, None, :])
            if problem.train_second_layer:
                v.add_((lr_v / N) * g(lam) * delta[:, None])
            step += 1
            if step in record_at:
                record()
        if progress is not None:
            progress(step, total)
    return _finish(steps, N, Qs, Rs, vs, T_run, v_star.to(torch.float64), "weights", started,
                   {"block_steps": block, "dtype": str(dtype).replace("torch.", "")})


# -- the exact order-parameter chain -------------------------------------------------------------


def sample_chi2(streams: RunStreams, tag: str, step: int, dof: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    r"""Exact :math:`\chi^2_k` draws (k = ``dof`` >= 2, broadcast to [R, *shape]) as :math:`2\,\Gamma(k/2)`,
    by Marsaglia & Tsang's squeeze-free rejection method on the run streams; runs that reject every candidate
    redraw from a retry stream, so the result is exact and per-run reproducible.

    References: G. Marsaglia and W. W. Tsang, ACM TOMS 26, 363 (2000).
    """
    a = (dof.to(torch.float64) / 2.0).expand(streams.runs, *shape)
    if (a < 1).any():
        raise ValueError("dof must be at least 2")
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.full_like(a, float("nan"))
    todo = torch.ones_like(a, dtype=torch.bool)
    for attempt in range(64):
        sub = f"{tag}/{attempt}" if attempt else tag
        z = block_normals(streams, sub + "/z", step, (*shape, _CANDIDATES))
        u = streams.uniform(sub + "/u", step, (*shape, _CANDIDATES))
        v = (1.0 + c[..., None] * z) ** 3
        ok = (v > 0) & (torch.log1p(-u) < 0.5 * z * z + d[..., None] - d[..., None] * v
                        + d[..., None] * torch.log(v.clamp_min(1e-300)))
        first = torch.argmax(ok.to(torch.int8), dim=-1, keepdim=True)
        value = (d[..., None] * v).gather(-1, first)[..., 0]
        accepted = ok.any(-1) & todo
        out = torch.where(accepted, value, out)
        todo = todo & ~accepted
        if not todo.any():
            return 2.0 * out
    raise RuntimeError("chi-square sampler: no acceptance after 64 rounds")  # pragma: no cover


def simulate_order_parameters(
    problem: CommitteeProblem, N: int, alphas, *, runs: int | None = None, seed: int | Sequence[int] = 0,
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64,
    progress: Callable[[int, int], None] | None = None, threads: int | None = 1,
) -> CommitteeRecord:
    r"""Online SGD at input size N run on the order parameters, exactly in law (module docstring).

    Each step: :math:`u = L z` with :math:`L L^\top = \Omega` (Cholesky; eigen-decomposition when singular),
    :math:`z\sim N(0, I)`; :math:`\|x\|^2 = \sum_{i\le r} z_i^2 + \chi^2_{N-r}`, r = rank of Omega;
    then :func:`order_parameter_step`. Random numbers come in blocks of 256 steps per run stream
    (:func:`block_normals`), so a batch equals the single runs with the same seeds. Cost per step is
    independent of N.

    Args and Returns: as :func:`simulate_sgd` (engine "order-parameters").

    References: Saad & Solla 1995; Goldt et al. 2019.
    """
    _check_common(problem, N, runs, seed)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    with intra_op_threads(None if torch.device(device).type == "cuda" else threads):
        return _simulate_order_parameters(problem, N, alphas, runs=runs, seed=seed, device=device, dtype=dtype,
                                          progress=progress)


def _simulate_order_parameters(problem, N, alphas, *, runs, seed, device, dtype, progress) -> CommitteeRecord:
    started = time.perf_counter()
    steps = record_steps(alphas, N)
    streams = RunStreams(as_seeds(seed, runs), device=device)
    R_ = streams.runs
    K, M = problem.K, problem.M
    P = K + M
    cast = {"device": device, "dtype": dtype}
    Q = problem.Q0.to(**cast).expand(R_, K, K).clone()
    R = problem.R0.to(**cast).expand(R_, K, M).clone()
    T = problem.T.to(**cast).expand(R_, M, M).contiguous()
    v = problem.v0.to(**cast).expand(R_, K).clone()
    v_star = problem.v_star.to(**cast).expand(R_, M).contiguous()
    lr, lr_v, sigma = float(problem.lr), problem.effective_lr_v, float(problem.noise_std)
    total = int(steps[-1])
    record_at = {int(s) for s in steps}
    Qs, Rs, vs = [Q.clone()], [R.clone()], [v.clone()]
    full_rank_dof = torch.full((R_, CHAIN_BLOCK), float(N - P), dtype=torch.float64, device=device)
    step = 0
    singular_steps = 0
    for b in range(-(-total // CHAIN_BLOCK)):
        n = min(CHAIN_BLOCK, total - b * CHAIN_BLOCK)
        z_all = block_normals(streams, "committee-chain-z", b, (n, P), dtype)
        chi_all = sample_chi2(streams, "committee-chain-chi2", b, full_rank_dof[:, :n], (n,)).to(dtype)
        zeta_all = block_normals(streams, "committee-label-noise", b, (n,), dtype) if sigma > 0 else None
        for i in range(n):
            z = z_all[:, i]
            omega = theory.field_covariance(Q, R, T)
            L, info = torch.linalg.cholesky_ex(omega)
            u = torch.einsum("rpq,rq->rp", L, z)
            xsq = (z * z).sum(-1) + chi_all[:, i]
            bad = info != 0
            if bool(bad.any()):  # singular Gram matrix in some runs (e.g. equal student vectors): exact PSD root
                singular_steps += 1
                evals, evecs = torch.linalg.eigh(omega)
                tol = 1e-10 * evals.abs().amax(-1, keepdim=True).clamp_min(1e-300)
                keep = evals > tol
                u_psd = torch.einsum("rpq,rq->rp", evecs * evals.clamp_min(0).sqrt().unsqueeze(-2), z)
                extra = sample_chi2(streams, "committee-chain-chi2-singular", step,
                                    (N - keep.sum(-1)).to(torch.float64), ()).to(dtype)
                u = torch.where(bad[:, None], u_psd, u)
                xsq = torch.where(bad, (z * z * keep).sum(-1) + extra, xsq)
            Q, R, v = order_parameter_step(Q, R, v, v_star, u[:, :K], u[:, K:], xsq, N, lr, lr_v,
                                           zeta=None if zeta_all is None else zeta_all[:, i], noise_std=sigma,
                                           train_second_layer=problem.train_second_layer)
            step += 1
            if step in record_at:
                Qs.append(Q.clone())
                Rs.append(R.clone())
                vs.append(v.clone())
        if progress is not None:
            progress(step, total)
    return _finish(steps, N, Qs, Rs, vs, T, v_star, "order-parameters", started,
                   {"block_steps": CHAIN_BLOCK, "singular_steps": singular_steps,
                    "dtype": str(dtype).replace("torch.", "")})


# -- reference problems ------------------------------------------------------------------------


def ode_check_problem(second_layer: bool = True) -> CommitteeProblem:
    """The problem of the ``scm.ode`` check: K = M = 2, T = I, v* = 1, eta = 1, clear overlaps (no long
    plateau, so the finite-N gap is dominated by the O(1/sqrt N) fluctuations). With ``second_layer=False``:
    K = 3 students, first layer only, output noise sigma = 0.1 (Saad-Solla with noise)."""
    if second_layer:
        return CommitteeProblem(Q0=[[0.5, 0.1], [0.1, 0.4]], R0=[[0.3, 0.05], [0.0, 0.2]], T=[[1.0, 0.0], [0.0, 1.0]],
                                v0=[0.5, 0.3], v_star=[1.0, 1.0], lr=1.0, train_second_layer=True)
    return CommitteeProblem(Q0=[[0.5, 0.1, 0.0], [0.1, 0.4, 0.05], [0.0, 0.05, 0.3]],
                            R0=[[0.3, 0.05], [0.0, 0.2], [0.1, 0.1]], T=[[1.0, 0.0], [0.0, 1.0]],
                            v0=[1.0, 1.0, 1.0], v_star=[1.0, 1.0], lr=0.8, train_second_layer=False, noise_std=0.1)


def plateau_problem(K: int = 2, M: int = 2, *, r0_scale: float = 0.05, q0: float = 0.2, lr: float = 1.0,
                    seed: int = 1, train_second_layer: bool = False) -> CommitteeProblem:
    r"""Saad & Solla's symmetric-plateau setting: T = I, v = v* = 1, Q0 = q0 I and small student-teacher
    overlaps R0 ~ r0_scale U(0, 1) (drawn from ``seed``). The students first align with the teacher's mean
    direction (all R_kn nearly equal: the symmetric plateau, eps nearly constant) and leave it only as the
    small asymmetry of R0 (and, at finite N, the SGD noise) grows.

    References: Saad & Solla 1995 (the symmetric phase and its plateau); Goldt et al. 2019.
    """
    if not (isinstance(r0_scale, (int, float)) and r0_scale > 0 and isinstance(q0, (int, float)) and q0 > 0):
        raise ValueError(f"r0_scale and q0 must be positive numbers, got {r0_scale!r}, {q0!r}")
    streams = RunStreams(as_seeds(seed, 1))
    R0 = r0_scale * streams.uniform("committee-plateau-R0", 0, (K, M))[0]
    return CommitteeProblem(Q0=q0 * torch.eye(K, dtype=torch.float64), R0=R0, T=torch.eye(M, dtype=torch.float64),
                            v0=torch.ones(K, dtype=torch.float64), v_star=torch.ones(M, dtype=torch.float64), lr=lr,
                            train_second_layer=train_second_layer)


# -- the finite-size gap -----------------------------------------------------------------------


def sup_gap(record: CommitteeRecord, ode_eps: torch.Tensor | np.ndarray) -> np.ndarray:
    r"""Per run, :math:`\sup_\alpha |\epsilon_{SGD}(\alpha) - \epsilon_{ODE}(\alpha)|` over the recorded grid; [R]."""
    ode_eps = torch.as_tensor(ode_eps, dtype=torch.float64).cpu()
    eps = record.eps.to(torch.float64).cpu()
    if ode_eps.shape[-1] != eps.shape[-1]:
        raise ValueError(f"ode_eps has {ode_eps.shape[-1]} times but the record has {eps.shape[-1]}")
    return (eps - ode_eps).abs().amax(-1).numpy()


def fit_power_law(Ns: Sequence[int], gaps: Sequence[np.ndarray], *, bootstrap: int = 2000,
                  seed: int = 0) -> dict[str, Any]:
    r"""Fit :math:`\log \bar G_N = a + \beta \log N` to the mean per-run gaps :math:`\bar G_N` (weighted least
    squares, weights :math:`(\bar G_N/SE_N)^2` from the per-run spread), with two standard errors of the slope:
    the WLS one and a bootstrap over runs (runs resampled within each N, ``bootstrap`` times).

    Returns:
        dict with slope, intercept, slope_se (bootstrap), slope_se_wls, chi2 (of the fit, N - 2 dof),
        local_slopes (between consecutive N), mean, se (per N).
    """
    Ns = np.asarray(Ns, dtype=float)
    if Ns.ndim != 1 or Ns.size < 2 or len(gaps) != Ns.size:
        raise ValueError("Ns must hold at least two sizes, one array of gaps per size")
    gaps = [np.asarray(gp, dtype=float) for gp in gaps]
    if any(gp.size < 2 for gp in gaps):
        raise ValueError("gaps: each size needs at least two runs for a standard error")
    mean = np.array([gp.mean() for gp in gaps])
    se = np.array([gp.std(ddof=1) / math.sqrt(gp.size) for gp in gaps])
    x = np.log(Ns)
    w = (mean / se) ** 2

    def wls(m: np.ndarray) -> tuple[float, float]:
        y = np.log(m)
        X = np.stack([np.ones_like(x), x], 1)
        A = X.T @ (w[:, None] * X)
        coef = np.linalg.solve(A, X.T @ (w * y))
        return float(coef[1]), float(coef[0])

    slope, intercept = wls(mean)
    X = np.stack([np.ones_like(x), x], 1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    resid = np.log(mean) - (intercept + slope * x)
    rng = np.random.default_rng(seed)
    boot = np.empty(bootstrap)
    for b in range(bootstrap):
        boot[b] = wls(np.array([gp[rng.integers(0, gp.size, gp.size)].mean() for gp in gaps]))[0]
    return {"slope": slope, "intercept": intercept, "slope_se": float(boot.std(ddof=1)),
            "slope_se_wls": float(math.sqrt(cov[1, 1])), "chi2": float((w * resid**2).sum()), "dof": int(Ns.size - 2),
            "local_slopes": (np.diff(np.log(mean)) / np.diff(x)).tolist(), "mean": mean, "se": se,
            "bootstrap": bootstrap}


@dataclass
class GapScaling:
    """The ODE-SGD gap at several input sizes: per-N records, per-run sup gaps and the power-law fit."""

    Ns: list[int]
    gaps: list[np.ndarray]
    fit: dict[str, Any]
    ode: theory.ODESolution
    records: dict[int, CommitteeRecord]
    engine: str
    seconds: float


def gap_scaling(
    problem: CommitteeProblem, Ns: Sequence[int], alphas, *, runs: int, seed: int = 0,
    engine: str = "order-parameters", device: str | torch.device = "cpu", bootstrap: int = 2000,
    ode_kwargs: dict | None = None, progress: Callable[[str, int, int], None] | None = None,
    ode_cache: dict | None = None,
) -> GapScaling:
    r"""SGD against the ODE at each N in ``Ns`` from the same initial order parameters: the per-run gap
    :math:`\sup_\alpha|\epsilon_{SGD} - \epsilon_{ODE}|` and its power-law fit in N (:func:`fit_power_law`).

    Size i uses seeds ``seed + 1_000_003 i + r`` (independent across sizes). ``engine``: "order-parameters"
    (:func:`simulate_order_parameters`, exact in law, cost independent of N) or "weights" (:func:`simulate_sgd`).
    The ODE is integrated once per distinct time grid (scipy DOP853 with an error estimate unless ``ode_kwargs``
    say otherwise);
    pass the same dict as ``ode_cache`` to several calls on the same problem to share those solutions.

    References: Goldt et al. 2019 (fluctuations of the order parameters are O(1/sqrt N)).
    """
    if engine not in ("order-parameters", "weights"):
        raise ValueError(f"engine must be 'order-parameters' or 'weights', got {engine!r}")
    if len(Ns) < 1:
        raise ValueError("Ns must name at least one input size")
    started = time.perf_counter()
    simulate = simulate_order_parameters if engine == "order-parameters" else simulate_sgd
    kwargs = {"estimate_error": True} | (ode_kwargs or {})
    odes: dict[tuple, theory.ODESolution] = {} if ode_cache is None else ode_cache
    gaps, records = [], {}
    ode = None
    for i, N in enumerate(Ns):
        report = None if progress is None else (lambda done, total, N=N: progress(f"{engine} N={N}", done, total))
        extra = {"dtype": torch.float64} if engine == "weights" else {}
        rec = simulate(problem, int(N), alphas, runs=runs, seed=seed + 1_000_003 * i, device=device,
                       progress=report, **extra)
        key = tuple(np.round(rec.alpha, 12))
        if key not in odes:
            odes[key] = problem.ode(rec.alpha, **kwargs)
        ode = odes[key]
        gaps.append(sup_gap(rec, ode.eps))
        records[int(N)] = rec
    if len(Ns) >= 2:
        fit = fit_power_law(list(Ns), gaps, bootstrap=bootstrap, seed=seed)
    else:  # one size: mean and SE only
        fit = {"mean": np.array([gp.mean() for gp in gaps]),
               "se": np.array([gp.std(ddof=1) / math.sqrt(gp.size) if gp.size > 1 else float("nan") for gp in gaps]),
               "slope": float("nan"), "slope_se": float("nan")}
    return GapScaling([int(n) for n in Ns], gaps, fit, ode, records, engine, time.perf_counter() - started)
