r"""Exact Euclidean projections onto the basic label sets and their separable intersections.

Pure tensor functions, batched over every leading dimension (labels ``[..., K]``,
bounds and centres broadcasting against them); they know nothing of
:class:`~teachtheory.constraints.LabelSet`. Each computes
:math:`\Pi_C(y) = \arg\min_{z \in C} \lVert z - y \rVert_2^2` exactly (closed form,
sort, or a monotone one-dimensional search on a Lagrange multiplier resolved to
the dtype's precision).

References:
    Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections onto the
    l1-ball for learning in high dimensions", ICML 2008 (simplex and l1 ball).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["EmptySetError", "project_ball", "project_box", "project_box_l1_ball", "project_capped_simplex",
           "project_simplex", "project_simplex_l1_ball"]

_BISECT = 64  # halvings that resolve a float64 bracket to its precision

Bound = Tensor | float


class EmptySetError(ValueError):
    """Some batch elements have an empty feasible set.

    Attributes:
        n_empty: how many batch elements have no feasible point.
        n_total: how many batch elements there are.
        why: which constraints leave no point.
    """

    def __init__(self, n_empty: int, n_total: int, why: str) -> None:
        super().__init__(f"the feasible set is empty for {n_empty} of {n_total} batch elements: {why}")
        self.n_empty, self.n_total, self.why = n_empty, n_total, why


def by_dtype(dtype: torch.dtype, float64: float, float32: float, other: float) -> float:
    """The value for ``dtype``'s precision: ``float64``, ``float32``, or ``other`` for lower precisions."""
    return {torch.float64: float64, torch.float32: float32}.get(dtype, other)


def feasibility_atol(dtype: torch.dtype) -> float:
    """Slack allowed when checking that an iterative projection landed in a set, by dtype."""
    return by_dtype(dtype, 1e-6, 1e-4, 1e-2)


def bisection_steps(dtype: torch.dtype) -> int:
    """Halvings of a bracket needed to resolve it to the dtype's precision."""
    return int(by_dtype(dtype, _BISECT, 32, 16))


def bisect_threshold(inside: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor, steps: int) -> Tensor:
    """Smallest ``t`` in ``[lo, hi]`` with ``inside(t)`` true, for ``inside`` monotone (false, then true).

    Args:
        inside: maps a batch of ``t`` (shape of ``lo``) to a bool of the same shape.
        lo: lower end of the bracket.
        hi: upper end of the bracket, where ``inside`` must hold.
        steps: number of halvings.

    Returns:
        The upper end of the final bracket, so ``inside`` holds there.
    """
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        ok = inside(mid)
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    return hi


def check_box(lo: Tensor, hi: Tensor, shape: torch.Size) -> None:
    """Raise :class:`EmptySetError` where some lower bound exceeds its upper bound."""
    empty = torch.broadcast_to(lo > hi, shape).any(dim=-1)
    if bool(empty.any()):
        raise EmptySetError(int(empty.sum()), empty.numel(), "some lower bound exceeds an upper bound")


def project_box(y: Tensor, low: Bound, high: Bound) -> Tensor:
    r"""Projection onto the box :math:`\{z : \ell \le z \le h\}`: :math:`\Pi(y)_k = \min(\max(y_k, \ell_k), h_k)`.

    Args:
        y: labels ``[..., K]``.
        low: lower bounds (a number or a tensor broadcasting against ``y``; may be ``-inf``).
        high: upper bounds (may be ``inf``).

    Returns:
        The clamped labels, a new tensor.
    """
    if isinstance(low, Tensor) or isinstance(high, Tensor):
        # torch.clamp takes two numbers or two tensors, not one of each.
        low = torch.as_tensor(low, dtype=y.dtype, device=y.device)
        high = torch.as_tensor(high, dtype=y.dtype, device=y.device)
    return torch.clamp(y, low, high)


def project_simplex(v: Tensor, z: float = 1.0) -> Tensor:
    r"""Projection of the rows of ``v`` onto the scaled simplex :math:`\{x \ge 0, \sum_k x_k = z\}`.

    Sort-based and exact: with :math:`u` the entries sorted in decreasing order,
    :math:`\rho = \max\{j : u_j - (\sum_{i \le j} u_i - z)/j > 0\}` and
    :math:`\theta = (\sum_{i \le \rho} u_i - z)/\rho`, the projection is
    :math:`\max(v - \theta, 0)`.

    Args:
        v: points ``[..., K]``.
        z: the simplex's total, at least 0.

    Returns:
        The projection, same shape as ``v``.

    References:
        Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections onto the
        l1-ball for learning in high dimensions", ICML 2008, Fig. 1.
    """
    if not z >= 0:
        raise ValueError(f"z must be a non-negative number, got {z!r}")
    u, _ = torch.sort(v, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - z
    ind = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
    cond = u - css / ind > 0
    # Largest j with the condition true; clamp to 1 so z = 0 (or rounding) cannot index -1.
    rho = torch.where(cond, ind, torch.zeros_like(ind)).amax(dim=-1, keepdim=True).clamp_min(1)
    theta = css.gather(-1, rho.long() - 1) / rho
    return (v - theta).clamp_min(0)


def project_ball(y: Tensor, center: Tensor, radius: float, p: float) -> Tensor:
    r"""Projection onto the norm ball :math:`\{z : \lVert z - c \rVert_p \le r\}` for :math:`p \in \{1, 2, \infty\}`.

    With :math:`d = y - c`: for :math:`p = 2`, :math:`c + d \min(1, r / \lVert d \rVert_2)`;
    for :math:`p = \infty`, :math:`c + \mathrm{clamp}(d, -r, r)`; for :math:`p = 1`,
    :math:`c + \mathrm{sign}(d) \odot \Pi_{\Delta_r}(|d|)` when :math:`\lVert d \rVert_1 > r`,
    with :math:`\Pi_{\Delta_r}` the projection onto the simplex of total :math:`r`.

    Args:
        y: labels ``[..., K]``.
        center: the centre ``c``, broadcasting against ``y`` (a zero tensor for the origin).
        radius: ``r >= 0`` (``inf`` allowed).
        p: 1, 2 or ``inf``.

    Returns:
        The projection, of the broadcast shape of ``y`` and ``center``.

    References:
        Duchi, Shalev-Shwartz, Singer & Chandra, ICML 2008 (the l1 ball via the simplex).
    """
    d = y - center
    r = radius
    if p == math.inf:
        return center + d.clamp(-r, r)
    if p == 2.0:
        n = torch.linalg.vector_norm(d, ord=2, dim=-1, keepdim=True)
        scale = torch.where(n > r, r / n.clamp_min(torch.finfo(d.dtype).tiny), torch.ones_like(n))
        return center + d * scale
    if p != 1.0:
        raise ValueError(f"p must be one of 1, 2, inf; got {p!r}")
    inside = torch.linalg.vector_norm(d, ord=1, dim=-1, keepdim=True) <= r
    w = torch.sign(d) * project_simplex(d.abs(), r)
    return center + torch.where(inside, d, w)


def _solve_unit_sum(
    z_of: Callable[[Tensor], tuple[Tensor, Tensor]], t_lo: Tensor, t_hi: Tensor, max_steps: int = 200
) -> Tensor:
    """Find ``theta`` in ``[t_lo, t_hi]`` with ``sum(z_of(theta)[0]) = 1``, batched.

    ``z_of(theta)`` returns the point and a mask of the coordinates that move with
    slope -1 in ``theta`` (the others are flat), so the sum is non-increasing and
    piecewise linear. Safeguarded Newton: a Newton step is exact once it is on the
    right linear piece, and a bisection step is taken whenever Newton would leave
    the bracket, so the bracket keeps shrinking.
    """
    theta = 0.5 * (t_lo + t_hi)
    eps = torch.finfo(t_lo.dtype).eps
    g_tol: Tensor | None = None
    g_prev = torch.full_like(theta, math.inf)
    for step in range(max_steps):
        z, moving = z_of(theta)
        if g_tol is None:
            # Rounding in the sum grows with K and with the magnitudes, which the bracket bounds.
            g_tol = 8 * eps * z.shape[-1] * (1 + t_lo.abs() + t_hi.abs())
        g = z.sum(dim=-1, keepdim=True) - 1
        t_lo = torch.where(g >= 0, theta, t_lo)
        t_hi = torch.where(g <= 0, theta, t_hi)
        newton = theta + g / moving.sum(dim=-1, keepdim=True).clamp_min(1)
        # Newton only while it stays in the bracket and at least halves |g|; otherwise bisect.
        inside = moving.any(dim=-1, keepdim=True) & (newton > t_lo) & (newton < t_hi) & (2 * g.abs() <= g_prev)
        g_prev = g.abs()
        # Freeze an element once its sum is 1 to rounding: stepping on would only wander off.
        done = g.abs() <= g_tol
        theta = torch.where(done, theta, torch.where(inside, newton, 0.5 * (t_lo + t_hi)))
        # A host sync every few steps: stop once every sum is 1 or every bracket is exhausted.
        if step % 4 == 3:
            width = (t_hi - t_lo).abs() <= 4 * eps * (1 + t_lo.abs() + t_hi.abs())
            if bool((done | width).all()):
                break
    return theta


def _capped_simplex_bounds(y: Tensor, *tensors: Tensor, low: Bound, high: Bound) -> tuple[Tensor, ...]:
    """Broadcast ``y``, ``tensors`` and the box, capping the box to [0, 1] and checking that it meets the simplex."""
    lo = torch.as_tensor(low, dtype=y.dtype, device=y.device)
    hi = torch.as_tensor(high, dtype=y.dtype, device=y.device)
    shape = torch.broadcast_shapes(y.shape, lo.shape, hi.shape, *(t.shape for t in tensors))
    # Every coordinate of a point in the simplex is in [0, 1], so these caps change nothing.
    lo, hi = lo.clamp_min(0).expand(shape), hi.clamp_max(1).expand(shape)
    check_box(lo, hi, shape)
    atol = feasibility_atol(y.dtype)
    empty = (lo.sum(dim=-1) > 1 + atol) | (hi.sum(dim=-1) < 1 - atol)
    if bool(empty.any()):
        raise EmptySetError(int(empty.sum()), empty.numel(), "the box bounds leave no point with sum 1")
    return (y.expand(shape), lo, hi, *(t.expand(shape) for t in tensors))


def project_capped_simplex(y: Tensor, low: Bound, high: Bound) -> Tensor:
    r"""Projection onto the simplex intersected with a box, :math:`\{\sum_k z_k = 1, \ell \le z \le h\}`.

    The solution is :math:`\mathrm{clamp}(y - \theta, \ell, h)` with the scalar
    :math:`\theta` making the sum 1, found by safeguarded Newton (the sum is
    non-increasing and piecewise linear in :math:`\theta`).

    Args:
        y: labels ``[..., K]``.
        low: lower bounds broadcasting against ``y``.
        high: upper bounds broadcasting against ``y``.

    Returns:
        The projection, of the broadcast shape.

    Raises:
        EmptySetError: (a ``ValueError``) where the box leaves no point with sum 1.
    """
    y, lo, hi = _capped_simplex_bounds(y, low=low, high=high)

    def z_of(theta: Tensor) -> tuple[Tensor, Tensor]:
        v = y - theta
        return torch.clamp(v, lo, hi), (v > lo) & (v < hi)

    t_lo = (y - hi).amin(dim=-1, keepdim=True)  # sum(clamp(y - t_lo)) = sum(hi) >= 1
    t_hi = (y - lo).amax(dim=-1, keepdim=True)  # sum(clamp(y - t_hi)) = sum(lo) <= 1
    return z_of(_solve_unit_sum(z_of, t_lo, t_hi))[0]


def _l1_distance(z: Tensor, c: Tensor) -> Tensor:
    """``||z - c||_1`` over the last axis, kept as a size-1 axis."""
    return (z - c).abs().sum(dim=-1, keepdim=True)


def project_box_l1_ball(y: Tensor, low: Bound, high: Bound, center: Tensor, radius: float) -> Tensor:
    r"""Projection onto a box intersected with an l1 ball, :math:`\{\ell \le z \le h, \lVert z - c \rVert_1 \le r\}`.

    With multiplier :math:`\lambda` for the ball the problem separates by coordinate:
    :math:`z_k = \mathrm{clamp}(c_k + \mathrm{sign}(d_k)\max(|d_k| - \lambda, 0), \ell_k, h_k)`,
    :math:`d = y - c`; :math:`\lVert z - c \rVert_1` is non-increasing in :math:`\lambda`, so
    bisection on :math:`\lambda \in [0, \max_k |d_k|]` finds it.

    Args:
        y: labels ``[..., K]``.
        low: lower bounds broadcasting against ``y``.
        high: upper bounds broadcasting against ``y``.
        center: the ball's centre ``c``.
        radius: ``r >= 0``.

    Returns:
        The projection, of the broadcast shape.

    Raises:
        EmptySetError: (a ``ValueError``) where the box misses the ball.
    """
    lo = torch.as_tensor(low, dtype=y.dtype, device=y.device)
    hi = torch.as_tensor(high, dtype=y.dtype, device=y.device)
    shape = torch.broadcast_shapes(y.shape, center.shape, lo.shape, hi.shape)
    y, c, lo, hi = y.expand(shape), center.expand(shape), lo.expand(shape), hi.expand(shape)
    check_box(lo, hi, shape)
    d = y - c

    def at(lam: Tensor) -> Tensor:
        return torch.clamp(c + torch.sign(d) * (d.abs() - lam).clamp_min(0), lo, hi)

    # lam = max|y - c| gives clamp(c): the box point nearest c; if it is outside the ball, nothing is feasible.
    lam_hi = d.abs().amax(dim=-1, keepdim=True)
    far = _l1_distance(at(lam_hi), c) > radius + feasibility_atol(y.dtype)
    if bool(far.any()):
        raise EmptySetError(
            int(far.sum()), far.numel(), f"the box lies farther than {radius:g} from the l1 ball's centre"
        )
    lam = bisect_threshold(
        lambda t: _l1_distance(at(t), c) <= radius, torch.zeros_like(lam_hi), lam_hi, bisection_steps(y.dtype)
    )
    z0 = at(torch.zeros_like(lam))
    return torch.where(_l1_distance(z0, c) <= radius, z0, at(lam))


def project_simplex_l1_ball(y: Tensor, low: Bound, high: Bound, center: Tensor, radius: float) -> Tensor:
    r"""Projection onto the simplex, a box and an l1 ball.

    The set is :math:`\{z : \sum_k z_k = 1, \ell \le z \le h, \lVert z - c \rVert_1 \le r\}`.

    With multipliers :math:`\theta` (sum) and :math:`\lambda` (ball) the problem separates:
    :math:`z_k = \mathrm{clamp}(c_k + \mathrm{sign}(e_k)\max(|e_k| - \lambda, 0), \ell_k, h_k)`,
    :math:`e = y - \theta - c`. For each :math:`\lambda` the sum is monotone in :math:`\theta`
    (inner safeguarded Newton); :math:`\lVert z - c \rVert_1` is non-increasing in
    :math:`\lambda` (outer bisection).

    Args:
        y: labels ``[..., K]``.
        low: lower bounds broadcasting against ``y`` (``0`` for the plain simplex).
        high: upper bounds broadcasting against ``y`` (``1`` for the plain simplex).
        center: the ball's centre ``c``.
        radius: ``r >= 0``.

    Returns:
        The projection, of the broadcast shape.

    Raises:
        EmptySetError: (a ``ValueError``) where the capped simplex misses the ball.
    """
    y, lo, hi, c = _capped_simplex_bounds(y, center, low=low, high=high)
    z0 = project_capped_simplex(y, lo, hi)
    # Smallest l1 distance from c to the capped simplex: clamp c into the box, then fix the sum.
    w = torch.clamp(c, lo, hi)
    atol = feasibility_atol(y.dtype)
    far = _l1_distance(w, c) + (1 - w.sum(dim=-1, keepdim=True)).abs() > radius + atol
    if bool(far.any()):
        raise EmptySetError(
            int(far.sum()), far.numel(), f"the simplex lies farther than {radius:g} from the l1 ball's centre"
        )
    d = y - c

    def at(lam: Tensor) -> Tensor:
        def z_of(theta: Tensor) -> tuple[Tensor, Tensor]:
            e = d - theta
            u = c + torch.sign(e) * (e.abs() - lam).clamp_min(0)
            return torch.clamp(u, lo, hi), (e.abs() > lam) & (u > lo) & (u < hi)

        # Below min(y - hi) - lam every z_k is at hi (sum >= 1); above max(y - lo) + lam, at lo.
        t_lo = (y - hi).amin(dim=-1, keepdim=True) - lam
        t_hi = (y - lo).amax(dim=-1, keepdim=True) + lam
        return z_of(_solve_unit_sum(z_of, t_lo, t_hi))[0]

    # Once lam exceeds about 2 max|y - z| (z in [0, 1]), the l1 distance is at its minimum (the
    # reduced costs of the l1 LP are integers); grow the bracket in the rare case that is not enough.
    lam_hi = 2 * (y.abs().amax(dim=-1, keepdim=True) + 1) + 1
    for _ in range(8):
        short = _l1_distance(at(lam_hi), c) > radius + atol
        if not bool(short.any()):
            break
        lam_hi = torch.where(short, 16 * lam_hi, lam_hi)
    lam = bisect_threshold(
        lambda t: _l1_distance(at(t), c) <= radius, torch.zeros_like(lam_hi), lam_hi, bisection_steps(y.dtype)
    )
    return torch.where(_l1_distance(z0, c) <= radius, z0, at(lam))
