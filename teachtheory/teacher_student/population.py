r"""Simulations on the closed forms of :mod:`teachtheory.theory.relu`: gradient descent on the population
loss of two-layer ReLU networks with Gaussian input, and Monte Carlo estimates (with standard errors) of
the population gradients and of the initialisation probability they are checked against.

Randomness comes from :class:`~teachtheory.random.RunStreams` (case r uses its own stream, so a case's
estimate does not depend on the other cases); the descent loop runs under
:func:`teachtheory.threads.intra_op_threads`.

References:
    Y. Tian, "An Analytical Formula of Population Gradient for two-layered ReLU network and its
    Applications in Convergence and Critical Point Analysis", ICML 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..random import RunStreams, as_seeds
from ..theory.relu import INV_2PI, _k_inputs, _vectors, pair_sums  # _k_inputs, _vectors: shared input checks
from ..threads import intra_op_threads

__all__ = [
    "monte_carlo_init_in_omega",
    "monte_carlo_population_gradient",
    "monte_carlo_population_gradient_k",
    "population_gradient_descent",
]


def population_gradient_descent(
    W0, W_star, *, a0=None, a_star=None, lr: float = 0.1, steps: int = 1000, train_top: bool = False,
    record_every: int = 1, threads: int | None = 1,
) -> dict[str, torch.Tensor]:
    r"""Gradient descent on the population loss, W <- W - lr E grad_W J (and a when ``train_top``).

    Batched over leading dims of W0 [..., K, d]. Loops over time only.

    ``threads``: torch intra-op threads during the loop (1 by default: the tensors are tiny, and an
    OpenMP team stalls on a busy machine; None keeps torch's setting).

    Returns:
        dict with ``W`` [..., T', K, d], ``a`` [..., T', K], ``loss`` [..., T'] and ``step`` [T']: the states
        at steps 0, record_every, 2 record_every, ... and at ``steps`` (the loss from the closed form).

    Raises:
        ValueError for a bad lr, steps or record_every; FloatingPointError when the iterates stop being finite
        (lr too large for the curvature, about K/2 for K unit-norm nodes, or a node reaching 0).
    """
    with intra_op_threads(threads):
        return _descent(W0, W_star, a0, a_star, lr, steps, train_top, record_every)


def _descent(W0, W_star, a0, a_star, lr, steps, train_top, record_every) -> dict[str, torch.Tensor]:
    """The loop of :func:`population_gradient_descent` (the caller holds the thread setting)."""
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    W, a, W_star, a_star = _k_inputs(W0, a0, W_star, a_star)
    # one batch shape for W and a, so that every recorded state stacks (a [K] with W [R, K, d] included)
    batch = torch.broadcast_shapes(W.shape[:-1], a.shape)
    W, a = W.expand(*batch, W.shape[-1]), a.expand(batch)
    teacher_term = (a_star * pair_sums(W_star, W_star, a_star, INV_2PI)[1]).sum(-1)
    Ws, As, losses, ts = [], [], [], []
    for t in range(steps + 1):
        hs, ks = pair_sums(W, W, a, INV_2PI)
        ht, kt = pair_sums(W, W_star, a_star, INV_2PI)
        if t % record_every == 0 or t == steps:
            Ws.append(W)
            As.append(a)
            losses.append(0.5 * ((a * ks).sum(-1) - 2 * (a * kt).sum(-1) + teacher_term))
            ts.append(t)
        if t == steps:
            break
        W, a = W - lr * a[..., None] * (hs - ht), (a - lr * (ks - kt)) if train_top else a
        if not torch.isfinite(W).all():
            raise FloatingPointError(f"population gradient descent diverged at step {t}; lower lr (got {lr})")
    return {"W": torch.stack(Ws, -3), "a": torch.stack(As, -2), "loss": torch.stack(losses, -1),
            "step": torch.tensor(ts)}


def _batch2(name: str, t: torch.Tensor) -> torch.Tensor:
    """[d] -> [1, d]; [R, d] unchanged."""
    if t.ndim == 1:
        return t[None]
    if t.ndim != 2:
        raise ValueError(f"{name} must be [d] or [R, d] for Monte Carlo, got shape {tuple(t.shape)}")
    return t


def monte_carlo_population_gradient(
    w, w_star, *, samples: int = 10000, seed: int | Sequence[int] = 0, chunk: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Monte Carlo estimate of E grad_w J with per-component standard errors.

    Case r (row r of w [R, d]) draws its own inputs x ~ N(0, I_d) from run stream ``seed + r``,
    so case r's estimate does not depend on the other cases.

    Returns:
        (mean [R, d], se [R, d]) with se = sample std / sqrt(samples).
    """
    if not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    w, w_star = _vectors(w=w, w_star=w_star)
    w, w_star = torch.broadcast_tensors(_batch2("w", w), _batch2("w_star", w_star))
    R, d = w.shape
    streams = RunStreams(as_seeds(seed, R) if isinstance(seed, int) else as_seeds(seed), device=w.device)
    total = torch.zeros(R, d, dtype=w.dtype, device=w.device)
    total_sq = torch.zeros_like(total)
    done, index = 0, 0
    while done < samples:
        n = min(chunk, samples - done)
        x = streams.normal("relu-mc", index, (n, d), dtype=w.dtype)
        a = (x * w[:, None, :]).sum(-1)  # not einsum: its reduction order depends on the batch size
        b = (x * w_star[:, None, :]).sum(-1)
        g = ((torch.relu(a) - torch.relu(b)) * (a > 0).to(w.dtype))[..., None] * x
        total += g.sum(1)
        total_sq += (g * g).sum(1)
        done += n
        index += 1
    mean = total / samples
    var = (total_sq - samples * mean * mean).clamp_min(0) / (samples - 1)
    return mean, (var / samples).sqrt()


def monte_carlo_population_gradient_k(
    W, a, W_star, a_star, *, samples: int = 10000, seed: int | Sequence[int] = 0, chunk: int = 4096,
) -> dict[str, torch.Tensor]:
    r"""Monte Carlo E grad of the K-node loss with standard errors, batched over cases R.

    Per sample, with r(x) = f(x) - f*(x): dl/dw_j = r a_j 1(w_j.x > 0) x, dl/da_j = r relu(w_j.x).

    Args:
        W [R, K, d], a [R, K] or None, W_star [R, M, d], a_star [R, M] or None.

    Returns:
        dict with ``W`` (mean [R, K, d]), ``W_se``, ``a`` (mean [R, K]), ``a_se``.
    """
    if not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    W, a, W_star, a_star = _k_inputs(W, a, W_star, a_star)
    if W.ndim != 3:
        raise ValueError(f"W must be [R, K, d] for Monte Carlo, got shape {tuple(W.shape)}")
    R, K, d = W.shape
    W_star = W_star.expand(R, *W_star.shape[-2:])
    a, a_star = a.expand(R, K), a_star.expand(R, W_star.shape[-2])
    streams = RunStreams(as_seeds(seed, R) if isinstance(seed, int) else as_seeds(seed), device=W.device)
    sums = {k: 0.0 for k in ("W", "W2", "a", "a2")}
    done, index = 0, 0
    while done < samples:
        n = min(chunk, samples - done)
        x = streams.normal("relu-mc-k", index, (n, d), dtype=W.dtype)
        pre = torch.einsum("rnd,rkd->rnk", x, W)
        act = torch.relu(pre)
        teacher_out = (torch.relu(torch.einsum("rnd,rkd->rnk", x, W_star)) * a_star[:, None]).sum(-1)
        resid = (act * a[:, None]).sum(-1) - teacher_out
        gw = (resid[..., None] * a[:, None] * (pre > 0).to(W.dtype))[..., None] * x[:, :, None, :]  # [R, n, K, d]
        ga = resid[..., None] * act
        sums["W"] = sums["W"] + gw.sum(1)
        sums["W2"] = sums["W2"] + (gw * gw).sum(1)
        sums["a"] = sums["a"] + ga.sum(1)
        sums["a2"] = sums["a2"] + (ga * ga).sum(1)
        done += n
        index += 1
    out = {}
    for key in ("W", "a"):
        mean = sums[key] / samples
        var = (sums[key + "2"] - samples * mean * mean).clamp_min(0) / (samples - 1)
        out[key], out[key + "_se"] = mean, (var / samples).sqrt()
    return out


def monte_carlo_init_in_omega(
    d: int, radius: float, *, samples: int = 100000, seed: int = 0, cases: int = 1
) -> tuple[float, float]:
    r"""Monte Carlo P(w in Omega) for w uniform in B(0, radius ||w*||): (estimate, standard error).

    Draws ``cases`` x ``samples`` points from run streams (w* = e_1, ||w*|| = 1).
    """
    if not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2, got {samples!r}")
    streams = RunStreams(as_seeds(seed, cases))
    g = streams.normal("init-dir", d, (samples, d))
    u = streams.uniform("init-radius", d, (samples,))
    w = g / g.norm(dim=-1, keepdim=True) * (float(radius) * u ** (1.0 / d))[..., None]
    w_star = torch.zeros(d, dtype=torch.float64)
    w_star[0] = 1.0
    inside = ((w - w_star).norm(dim=-1) < 1.0).to(torch.float64).reshape(-1)
    p = float(inside.mean())
    return p, math.sqrt(max(p * (1 - p), 1.0 / inside.numel()) / inside.numel())
