r"""Generative models for self-supervised learning: a discrete latent z0 and augmentations x | z0.

Two families:

* :class:`CircularTranslation` — binary patterns (e.g. '11' and '101') translated on a circle of
  length d; z0 is the pattern, the augmentation is a uniform circular shift. The input is the whole
  circle or a window of its first positions (a receptive field).
* :class:`HLTM` — a hierarchical latent tree model: a binary tree of the given depth whose nodes are
  +-1 variables; the root is z0 and each child equals its parent with probability (1 + delta)/2
  (so E[child * parent] = delta). The leaves (optionally plus Gaussian noise) are the input. A
  positive pair keeps the root and resamples everything below it.

Both give exact population expectations by enumeration (:meth:`enumerate`) where the model is finite,
and samples (:meth:`sample_views`) drawn from :class:`~teachtheory.random.RunStreams`, so run r of a
batch sees the same numbers as a single run with the same seed. :class:`Blocks` puts independent
copies side by side (one latent per block).

References:
    Tian, Yu, Chen, Ganguli, "Understanding Self-Supervised Learning with Dual Deep Networks", 2020,
    Sec. 4 (the '11'/'101' example) and Sec. 5 (HLTM); Tian's teacher-student talk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..random import RunStreams

__all__ = ["HLTM", "MAX_ENUMERATION", "Blocks", "CircularTranslation", "Enumeration"]

MAX_ENUMERATION = 1 << 16  # inputs a finite model may enumerate


@dataclass(frozen=True)
class Enumeration:
    """A finite model written out: p(z0) [Z], the inputs [N, n0] and p(x | z0) [Z, N].

    Inputs may repeat (one row per latent and augmentation); only the weights matter.
    """

    p_latent: torch.Tensor
    inputs: torch.Tensor
    p_input: torch.Tensor
    latent_values: torch.Tensor

    @property
    def marginal(self) -> torch.Tensor:
        """p(x) = sum_z p(z) p(x | z), [N]."""
        return self.p_latent @ self.p_input

    def positive_pair_weights(self) -> torch.Tensor:
        """Joint law of (x1, x+) for two independent augmentations of one latent, [N, N]."""
        return torch.einsum("z,za,zb->ab", self.p_latent, self.p_input, self.p_input)

    def negative_pair_weights(self, pi: torch.Tensor | None = None) -> torch.Tensor:
        """Joint law of (x1, x-) whose latents have joint law ``pi`` [Z, Z] (default: independent), [N, N]."""
        if pi is None:
            return torch.outer(self.marginal, self.marginal)
        return torch.einsum("zy,za,yb->ab", pi.to(self.p_input), self.p_input, self.p_input)


def _check_seedlike(streams: RunStreams) -> None:
    if not isinstance(streams, RunStreams):
        raise TypeError(f"streams must be a teachtheory.random.RunStreams, got {type(streams).__name__}")


def _check_count(n: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return n


class CircularTranslation:
    """Binary patterns translated on a circle.

    Args:
        patterns: strings of '0'/'1' (the latent z0 picks one), e.g. ``("11", "101")``.
        length: circle length d (each pattern must fit: len(pattern) <= d).
        window: observe only positions 0 .. window-1 (a receptive field); None observes all d.
        foreground, background: pixel values where a pattern is 1 / elsewhere.
        pattern_probs: p(z0); uniform when None.
    """

    def __init__(self, patterns=("11", "101"), length: int = 8, window: int | None = None, foreground: float = 1.0,
                 background: float = 0.0, pattern_probs=None) -> None:
        if isinstance(patterns, str) or len(patterns) < 1:
            raise ValueError(f"patterns must be a non-empty sequence of '0'/'1' strings, got {patterns!r}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 2:
            raise ValueError(f"length must be an integer >= 2, got {length!r}")
        for pat in patterns:
            if not isinstance(pat, str) or not pat or set(pat) - {"0", "1"}:
                raise ValueError(f"patterns: each pattern is a non-empty string of '0'/'1', got {pat!r}")
            if len(pat) > length:
                raise ValueError(f"patterns: {pat!r} is longer than the circle (length={length})")
        bad_window = isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= length
        if window is not None and bad_window:
            raise ValueError(f"window must be an integer in [1, length={length}] or None, got {window!r}")
        for name, value in (("foreground", foreground), ("background", background)):
            if not math.isfinite(float(value)):
                raise ValueError(f"{name} must be finite, got {value!r}")
        self.patterns = tuple(patterns)
        self.length = length
        self.window = window
        self.foreground, self.background = float(foreground), float(background)
        if pattern_probs is None:
            probs = torch.full((len(self.patterns),), 1.0 / len(self.patterns), dtype=torch.float64)
        else:
            probs = torch.as_tensor(pattern_probs, dtype=torch.float64)
            if probs.shape != (len(self.patterns),) or (probs < 0).any() or abs(float(probs.sum()) - 1) > 1e-9:
                raise ValueError(f"pattern_probs must be {len(self.patterns)} non-negative numbers summing to 1, "
                                 f"got {pattern_probs!r}")
        self.pattern_probs = probs

    @property
    def input_dim(self) -> int:
        """Input dimension d (the window, or the whole signal)."""
        return self.window or self.length

    @property
    def num_latents(self) -> int:
        """Number of latent classes (patterns)."""
        return len(self.patterns)

    def images(self, dtype=torch.float64) -> torch.Tensor:
        """Every (pattern, shift) image, [Z, d, n0]: pattern placed with its first pixel at the shift."""
        Z, d = len(self.patterns), self.length
        out = torch.full((Z, d, d), self.background, dtype=dtype)
        for z, pat in enumerate(self.patterns):
            ones = torch.tensor([k for k, ch in enumerate(pat) if ch == "1"], dtype=torch.long)
            for s in range(d):
                out[z, s, (ones + s) % d] = self.foreground
        return out[..., : self.input_dim]

    def enumerate(self, dtype=torch.float64) -> Enumeration:
        """Exact: one input per (pattern, shift), p(x | z0) = 1/d on the pattern's own shifts."""
        Z, d = self.num_latents, self.length
        inputs = self.images(dtype).reshape(Z * d, self.input_dim)
        p_input = torch.zeros(Z, Z * d, dtype=dtype)
        for z in range(Z):
            p_input[z, z * d:(z + 1) * d] = 1.0 / d
        return Enumeration(self.pattern_probs.to(dtype), inputs, p_input, torch.arange(Z))

    def sample_latents(self, streams: RunStreams, step: int, n: int, tag: str = "circ-z") -> torch.Tensor:
        """z0 [R, n] (pattern indices)."""
        _check_seedlike(streams)
        u = streams.uniform(tag, step, (_check_count(n, "n"),))
        cdf = torch.cumsum(self.pattern_probs, 0)
        return torch.clamp(torch.searchsorted(cdf, u.contiguous(), right=True), max=self.num_latents - 1)

    def sample_views(self, streams: RunStreams, step: int, n: int, views: int = 2, dtype=torch.float64,
                     tag: str = "circ") -> tuple[torch.Tensor, torch.Tensor]:
        """(z0 [R, n], x [R, n, views, n0]): each view an independent uniform shift of the same pattern."""
        _check_count(views, "views")
        z = self.sample_latents(streams, step, n, tag + "-z")
        shifts = streams.integers(tag + "-shift", step, self.length, (n, views))
        images = self.images(dtype)  # [Z, d, n0]
        return z, images[z[..., None], shifts]


class HLTM:
    """Hierarchical latent tree model with +-1 nodes.

    Args:
        depth: levels below the root (leaves: 2**depth). depth >= 1.
        delta: child-parent agreement, P(child = parent) = (1 + delta)/2, in [-1, 1].
        noise: standard deviation of Gaussian noise added to the leaves (> 0 makes the model infinite:
            sampling only).
        root_prob: P(z0 = +1).
    """

    def __init__(self, depth: int = 3, delta: float = 0.8, noise: float = 0.0, root_prob: float = 0.5) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 12:
            raise ValueError(f"depth must be an integer in [1, 12], got {depth!r}")
        if not (math.isfinite(float(delta)) and -1.0 <= float(delta) <= 1.0):
            raise ValueError(f"delta must be in [-1, 1], got {delta!r}")
        if not (math.isfinite(float(noise)) and float(noise) >= 0.0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        if not (0.0 < float(root_prob) < 1.0):
            raise ValueError(f"root_prob must be in (0, 1), got {root_prob!r}")
        self.depth, self.delta, self.noise, self.root_prob = depth, float(delta), float(noise), float(root_prob)

    @property
    def input_dim(self) -> int:
        """Input dimension d = 2**depth (the leaves)."""
        return 2**self.depth

    @property
    def num_latents(self) -> int:
        """Number of values of the root latent z0 (two: -1 and +1)."""
        return 2

    @property
    def finite(self) -> bool:
        """Whether the inputs take finitely many values (no leaf noise)."""
        return self.noise == 0.0

    def enumerate(self, dtype=torch.float64) -> Enumeration:
        """Exact p(x | z0) for every leaf configuration (latent order: z0 = -1, +1), by an upward pass.

        Raises:
            ValueError: when noise > 0 (not finite) or 2**(2**depth) > MAX_ENUMERATION.
        """
        if not self.finite:
            raise ValueError(f"noise={self.noise} > 0: the model is not finite; sample it instead")
        leaves = self.input_dim
        if leaves > math.log2(MAX_ENUMERATION):
            raise ValueError(f"depth={self.depth} gives 2**{leaves} leaf configurations; enumeration is limited to "
                             f"depth <= {int(math.log2(math.log2(MAX_ENUMERATION)))}")
        N = 2**leaves
        bits = (torch.arange(N)[:, None] >> torch.arange(leaves - 1, -1, -1)[None, :]) & 1
        x = (2 * bits - 1).to(dtype)  # [N, leaves]
        values = torch.tensor([-1.0, 1.0], dtype=dtype)
        # lik[n, i, v]: p(leaves under node i | node i = values[v]) for configuration n
        lik = (x[:, :, None] == values[None, None, :]).to(dtype)
        trans = (1.0 + self.delta * values[:, None] * values[None, :]) / 2.0  # P(child = u | parent = v) [v, u]
        for _ in range(self.depth):
            msg = torch.einsum("vu,niu->niv", trans, lik)  # sum over the child's value
            lik = msg[:, 0::2] * msg[:, 1::2]
        p_input = lik[:, 0, :].T.contiguous()  # [2, N]
        p_latent = torch.tensor([1.0 - self.root_prob, self.root_prob], dtype=dtype)
        return Enumeration(p_latent, x, p_input, values)

    def root_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """P(z0 = +1 | x) by the exact upward pass (belief propagation on the tree), any depth and noise.

        Args:
            x: leaves (plus noise), [..., 2**depth].

        Returns:
            [...]: the posterior; sign(posterior - 1/2) is the Bayes-optimal guess of z0.
        """
        if x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have last dimension 2**depth = {self.input_dim}, got shape {tuple(x.shape)}")
        x = x.to(torch.float64)
        values = torch.tensor([-1.0, 1.0], dtype=torch.float64, device=x.device)
        if self.noise > 0:  # log N(x; v, noise^2) up to a constant
            loglik = -((x[..., None] - values) ** 2) / (2.0 * self.noise**2)
        else:
            loglik = torch.where(x[..., None] == values, 0.0, -math.inf)
        keep = (1.0 + self.delta) / 2.0
        trans = torch.tensor([[keep, 1 - keep], [1 - keep, keep]], dtype=torch.float64, device=x.device)  # [v, u]
        log_trans = torch.log(trans.clamp_min(1e-300))
        for _ in range(self.depth):  # message to the parent: logsumexp_u (log P(u|v) + loglik_u)
            msg = torch.logsumexp(log_trans + loglik[..., None, :], -1)
            loglik = msg[..., 0::2, :] + msg[..., 1::2, :]
        logpost = loglik[..., 0, :] + torch.log(torch.tensor([1 - self.root_prob, self.root_prob], dtype=torch.float64))
        return torch.softmax(logpost, -1)[..., 1]

    def sample_tree(self, streams: RunStreams, step: int, n: int, views: int = 1, dtype=torch.float64,
                    tag: str = "hltm", root: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Sample the whole tree; the root is shared by the views, everything below is drawn per view.

        Args:
            root: optional given root values [R, n] in {-1, +1} (e.g. stratified by class).

        Returns:
            (levels, x): levels[k] is [R, n, views, 2**k] (levels[0] the root, repeated over views),
            x the leaves plus noise, [R, n, views, 2**depth].
        """
        _check_seedlike(streams)
        _check_count(n, "n")
        _check_count(views, "views")
        if root is None:
            root = torch.where(streams.uniform(tag + "-root", step, (n,)) < self.root_prob, 1.0, -1.0)
        elif root.shape != (streams.runs, n):
            raise ValueError(f"root must have shape {(streams.runs, n)}, got {tuple(root.shape)}")
        node = root.to(dtype)[:, :, None, None].expand(-1, -1, views, 1)
        levels = [node]
        keep = (1.0 + self.delta) / 2.0
        for k in range(1, self.depth + 1):
            parent = node.repeat_interleave(2, dim=-1)
            flips = torch.where(streams.uniform(f"{tag}-level{k}", step, (n, views, 2**k)) < keep, 1.0, -1.0)
            node = parent * flips.to(dtype)
            levels.append(node)
        x = node
        if self.noise > 0:
            x = x + self.noise * streams.normal(tag + "-noise", step, (n, views, self.input_dim), dtype)
        return levels, x

    def sample_views(self, streams: RunStreams, step: int, n: int, views: int = 2, dtype=torch.float64,
                     tag: str = "hltm") -> tuple[torch.Tensor, torch.Tensor]:
        """(z0 [R, n] in {-1, +1}, x [R, n, views, 2**depth])."""
        levels, x = self.sample_tree(streams, step, n, views, dtype, tag)
        return levels[0][:, :, 0, 0], x


class Blocks:
    """Independent copies of a finite model side by side: latent (z_1, ..., z_B), input [x_1, ..., x_B].

    Used where Thm. 4 needs Cov_z[u_j, u_k] = 0: hidden node j sees only block j, whose latent is
    independent of the others.
    """

    def __init__(self, model, blocks: int) -> None:
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
        if not hasattr(model, "sample_views"):
            raise TypeError(f"model must be a generative model with sample_views, got {type(model).__name__}")
        self.model, self.blocks = model, blocks

    @property
    def block_dim(self) -> int:
        """Input dimension of one block."""
        return self.model.input_dim

    @property
    def input_dim(self) -> int:
        """Input dimension d of all blocks together."""
        return self.blocks * self.model.input_dim

    def block_enumeration(self, dtype=torch.float64) -> Enumeration:
        """Exact enumeration of one block (the underlying model's)."""
        return self.model.enumerate(dtype)

    def enumerate(self, dtype=torch.float64) -> Enumeration:
        """The product model: Z**B latents, N**B inputs (limited to MAX_ENUMERATION inputs)."""
        e = self.model.enumerate(dtype)
        N = e.p_input.shape[1]
        if N**self.blocks > MAX_ENUMERATION:
            raise ValueError(f"blocks={self.blocks}: {N}**{self.blocks} inputs exceed the enumeration limit "
                             f"{MAX_ENUMERATION}")
        p_latent, inputs, p_input = e.p_latent, e.inputs, e.p_input
        for _ in range(self.blocks - 1):
            p_latent = torch.einsum("a,b->ab", p_latent, e.p_latent).reshape(-1)
            n_prev = inputs.shape[0]
            inputs = torch.cat([inputs.repeat_interleave(N, 0), e.inputs.repeat(n_prev, 1)], 1)
            p_input = torch.einsum("an,bm->abnm", p_input, e.p_input).reshape(p_latent.shape[0], -1)
        return Enumeration(p_latent, inputs, p_input, torch.arange(p_latent.shape[0]))

    def sample_views(self, streams: RunStreams, step: int, n: int, views: int = 2, dtype=torch.float64,
                     tag: str = "blocks") -> tuple[torch.Tensor, torch.Tensor]:
        """(z [R, n, B], x [R, n, views, B * n0]), each block with its own latent and augmentations."""
        zs, xs = [], []
        for b in range(self.blocks):
            z, x = self.model.sample_views(streams, step, n, views, dtype, tag=f"{tag}{b}")
            zs.append(z)
            xs.append(x)
        return torch.stack(zs, -1), torch.cat(xs, -1)
