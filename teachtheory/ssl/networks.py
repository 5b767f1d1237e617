r"""Deep bias-free ReLU networks batched over runs, with the connection K_l of every layer.

Weights of layer l are ``W_l`` [R, n_{l-1}, n_l] (a leading run axis R), the pre-activation is
:math:`g_l = W_l^\top f_{l-1}` and :math:`f_l = \mathrm{relu}(g_l)` for hidden layers; the last layer
is linear (``output="linear"``) or ReLU (``output="relu"``, e.g. a single ReLU node). Optional masks
restrict connectivity (local receptive fields): the effective weights are ``W_l * M_l``. Optional
L2 normalisation of the output (``normalize=True``).

Connection (Tian et al. 2020, Eq. 3): with :math:`J_l(x) = \partial f_L/\partial g_l` [n_L, n_l],

.. math:: K_l(x) = f_{l-1}(x) \otimes J_l(x)^\top \in \mathbb{R}^{n_{l-1} n_l \times n_L},\qquad
          f_L(x) = K_l(x)^\top \mathrm{vec}(W_l),

``vec`` being the row-major flattening ``W_l.reshape(R, -1)`` (the column-major vec of W_l^T). The
identity holds because the network above g_l is positively homogeneous and piecewise linear. K_l is
always the Jacobian :math:`\partial f/\partial \mathrm{vec}(W_l)` transposed; with a normalised output
f/||f|| (homogeneous of degree 0) the identity becomes :math:`K_l^\top \mathrm{vec}(W_l) = 0`.
Gates are :math:`\mathbb{1}[g > 0]` (the derivative torch uses for relu at 0). The forward pass, the
initialisation and the back-propagation of J are those of :mod:`teachtheory.nets`.

References:
    Tian, Yu, Chen, Ganguli 2020, Sec. 3 (Eq. 3-4); Tian's talk, slide "The Covariance Operator".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .. import nets
from ..random import RunStreams, as_seeds

__all__ = ["ReLUNet", "population_operators"]


class ReLUNet:
    """A bias-free ReLU network (configuration only; the weights are passed to every method).

    Args:
        widths: [n_0, n_1, ..., n_L] (at least one layer).
        output: "linear" (default) or "relu" for the last layer.
        normalize: return f / ||f|| from :meth:`outputs` and use its Jacobian in :meth:`jacobians`.
        masks: optional per-layer 0/1 masks [n_{l-1}, n_l] (None entries: dense).
    """

    def __init__(self, widths: Sequence[int], *, output: str = "linear", normalize: bool = False,
                 masks: Sequence[torch.Tensor | None] | None = None) -> None:
        widths = list(widths)
        if len(widths) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in widths):
            raise ValueError(f"widths must list at least two positive integers [n_0, ..., n_L], got {widths!r}")
        if output not in ("linear", "relu"):
            raise ValueError(f"output must be 'linear' or 'relu', got {output!r}")
        self.widths, self.output, self.normalize = widths, output, bool(normalize)
        self.architecture = nets.Architecture(tuple(widths), act="relu", output="identity" if output == "linear"
                                              else "relu", bias=False)
        if masks is None:
            masks = [None] * self.depth
        if len(masks) != self.depth:
            raise ValueError(f"masks must have one entry per layer ({self.depth}), got {len(masks)}")
        self.masks = []
        for l, m in enumerate(masks, start=1):
            if m is not None:
                m = torch.as_tensor(m)
                if m.shape != (widths[l - 1], widths[l]):
                    raise ValueError(f"masks[{l - 1}] must have shape {(widths[l - 1], widths[l])}, "
                                     f"got {tuple(m.shape)}")
            self.masks.append(m)

    @property
    def depth(self) -> int:
        """Number of layers L."""
        return len(self.widths) - 1

    def shapes(self) -> list[tuple[int, int]]:
        """[(n_{l-1}, n_l)] for l = 1..L."""
        return [(self.widths[l - 1], self.widths[l]) for l in range(1, self.depth + 1)]

    def num_params(self, layer: int) -> int:
        """Entries of W_l."""
        a, b = self.shapes()[self._layer_index(layer)]
        return a * b

    def _layer_index(self, layer: int) -> int:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= self.depth:
            raise ValueError(f"layer must be an integer in [1, {self.depth}], got {layer!r}")
        return layer - 1

    # -- weights -------------------------------------------------------------------------

    def init(self, seed: int | Sequence[int] | torch.Tensor | RunStreams, runs: int | None = None, *,
             scale: float | None = None, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
             tag: str = "init") -> list[torch.Tensor]:
        """Gaussian weights, one set per run: N(0, scale^2 / n_{l-1}), scale = sqrt(2) (He) by default.

        ``seed`` is one int (runs get seed, seed + 1, ...; then ``runs`` is required), one seed per run,
        or a :class:`RunStreams`.
        """
        streams = seed if isinstance(seed, RunStreams) else RunStreams(as_seeds(seed, runs))
        gain = math.sqrt(2.0) if scale is None else float(scale)
        if not (math.isfinite(gain) and gain > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        weights = self.architecture.init(streams, gain=gain, names=lambda kind, l: (f"{tag}-W{l + 1}", 0),
                                         dtype=dtype, device=device)
        return [w if m is None else w * m.to(w) for w, m in zip(weights, self.masks)]

    def check_weights(self, weights: Sequence[torch.Tensor]) -> int:
        """Validate shapes; returns R."""
        if len(weights) != self.depth:
            raise ValueError(f"weights must have {self.depth} layers, got {len(weights)}")
        R = weights[0].shape[0] if weights[0].dim() == 3 else None
        for l, (w, shape) in enumerate(zip(weights, self.shapes()), start=1):
            if w.dim() != 3 or tuple(w.shape[1:]) != shape or w.shape[0] != R:
                raise ValueError(f"weights[{l - 1}] must have shape [R, {shape[0]}, {shape[1]}] (R = {R}), "
                                 f"got {tuple(w.shape)}")
        return int(R)

    def effective(self, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The weights times their masks (what the forward pass uses)."""
        return [w if m is None else w * m.to(w) for w, m in zip(weights, self.masks)]

    # -- forward ---------------------------------------------------------------------------

    def _inputs(self, weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        R = self.check_weights(weights)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.shape[-1] != self.widths[0]:
            raise ValueError(f"x must have last dimension n_0 = {self.widths[0]}, got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        if x.dim() == 2:  # shared inputs [M, n0]
            x = x.to(weights[0]).expand(R, *x.shape)
        if x.dim() != 3 or x.shape[0] != R:
            raise ValueError(f"x must be [M, n_0] (shared by all runs) or [R={R}, M, n_0], got {tuple(x.shape)}")
        return x.to(weights[0])

    def forward(self, weights: Sequence[torch.Tensor],
                x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(activations f_0 .. f_L, pre-activations g_1 .. g_L), each [R, M, n_l]; f_L is *not* normalised."""
        fwd = self._forward(weights, x)
        return fwd.post, fwd.pre

    def _forward(self, weights: Sequence[torch.Tensor], x: torch.Tensor) -> nets.Forward:
        f = self._inputs(weights, x)
        return self.architecture.forward(self.effective(weights), f)

    def outputs(self, weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """f(x) [R, M, n_L] (normalised when ``normalize``)."""
        f = self._forward(weights, x).output
        return torch.nn.functional.normalize(f, dim=-1) if self.normalize else f

    def jacobians(self, weights: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        """J_l = d f / d g_l for l = 1..L, each [R, M, n_L, n_l] (of the normalised output when ``normalize``)."""
        fwd = self._forward(weights, x)
        last = fwd.pre[-1]
        n_L = self.widths[-1]
        R, M = last.shape[:2]
        eye = torch.eye(n_L, dtype=last.dtype, device=last.device)
        J = eye.expand(R, M, n_L, n_L) * nets.activation_derivative(self.architecture.output, last)[..., None, :]
        if self.normalize:
            f = fwd.output
            norm = f.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(f.dtype).tiny)
            fhat = f / norm
            P = (eye - fhat[..., :, None] * fhat[..., None, :]) / norm[..., None]
            J = P @ J
        # one cotangent per output unit o: J_l = J_{l+1} W_{l+1}^T diag(gate_l)
        return nets.backward(self.architecture.layers(self.effective(weights)), fwd, J, act="relu")

    def connection(self, weights: Sequence[torch.Tensor], x: torch.Tensor, layer: int) -> torch.Tensor:
        r"""K_l(x) = f_{l-1}(x) \otimes J_l(x)^T, [R, M, n_{l-1} n_l, n_L] (rows in row-major order of W_l).

        With masks, rows of masked-out weights are zero (those weights do not exist).
        """
        i = self._layer_index(layer)
        acts, _ = self.forward(weights, x)
        J = self.jacobians(weights, x)[i]
        K = torch.einsum("rmi,rmoj->rmijo", acts[i], J)
        if self.masks[i] is not None:
            K = K * self.masks[i].to(K)[..., None]
        R, M = K.shape[:2]
        return K.reshape(R, M, -1, self.widths[-1])

    def connections(self, weights: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        """K_l for every layer (one forward and one backward pass)."""
        acts, _ = self.forward(weights, x)
        out = []
        for i, J in enumerate(self.jacobians(weights, x)):
            K = torch.einsum("rmi,rmoj->rmijo", acts[i], J)
            if self.masks[i] is not None:
                K = K * self.masks[i].to(K)[..., None]
            out.append(K.reshape(K.shape[0], K.shape[1], -1, self.widths[-1]))
        return out


def population_operators(net: ReLUNet, weights: Sequence[torch.Tensor], enumeration,
                         layer: int) -> dict[str, torch.Tensor]:
    r"""Exact population quantities of layer ``layer`` on a finite model (by enumeration).

    Returns:
        dict with ``K`` [R, N, P, O], ``Kbar`` [R, Z, P, O], ``V`` = V_{z0}[Kbar] [R, P, P],
        ``EV`` = E_{z0} V_{x|z0}[K] [R, P, P], ``S`` = E[K K^T | z0] [R, Z, P, P] and ``w`` = vec(W_l) [R, P].
    """
    from ..theory import ssl as theory

    K = net.connection(weights, enumeration.inputs, layer)
    p_input = enumeration.p_input.to(K)
    p_latent = enumeration.p_latent.to(K)
    Kbar = theory.augment_mean(K, p_input)
    return {
        "K": K, "Kbar": Kbar, "V": theory.covariance_operator(Kbar, p_latent),
        "EV": theory.conditional_covariance(K, p_input, p_latent), "S": theory.conditional_second_moment(K, p_input),
        "w": net.effective(weights)[layer - 1].reshape(K.shape[0], -1),
    }
