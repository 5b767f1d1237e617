r"""The coordinate-wise LSTM teacher :math:`T_\varphi` of L2T-DLN (Eq. 3, Sec. 3.4).

Every coordinate of the DLN gradient :math:`\nabla\phi` is fed independently (shared weights, one
state per coordinate; Andrychowicz et al. 2016) after the log/sign preprocessing

.. math:: \nabla \mapsto \begin{cases} (\log|\nabla|/p,\ \mathrm{sign}\,\nabla) & |\nabla| \ge e^{-p} \\
          (-1,\ e^{p}\nabla) & \text{otherwise} \end{cases},\qquad p = 10,

through a stack of LSTM layers (paper: four layers, 64, 64, 64 and 1 units); the last layer's
hidden state (one unit, in (-1, 1)) is the update :math:`g`, and :math:`\phi^{m+1} = \phi^m + \gamma g`.

Parameters (run-batched): per layer W_ih [R, in, 4h], W_hh [R, h, 4h], b [R, 4h] (gates i, f, g, o;
PyTorch's uniform(-1/sqrt(h), 1/sqrt(h)) initialisation, drawn per run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..random import RunStreams, as_seeds

__all__ = ["LSTMTeacher", "preprocess_gradient"]


def preprocess_gradient(grad: torch.Tensor, p: float = 10.0) -> torch.Tensor:
    """Andrychowicz et al. (2016) log/sign preprocessing: [..., P] -> [..., P, 2]."""
    big = grad.abs() >= math.exp(-p)
    first = torch.where(big, torch.log(grad.abs().clamp_min(math.exp(-p))) / p, torch.full_like(grad, -1.0))
    second = torch.where(big, torch.sign(grad), math.exp(p) * grad)
    return torch.stack([first, second], dim=-1)


@dataclass
class LSTMTeacher:
    """Stacked coordinate-wise LSTM; ``hidden`` are the layer widths, the last one the output size (1)."""

    hidden: Sequence[int] = field(default=(64, 64, 64, 1))
    preprocess_p: float = 10.0

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive integers, got {self.hidden!r}")
        if self.hidden[-1] != 1:
            raise ValueError(f"the last LSTM layer must have 1 unit (the update), got hidden={self.hidden!r}")
        if not self.preprocess_p > 0:
            raise ValueError(f"preprocess_p must be positive, got {self.preprocess_p!r}")

    def init(self, seed, runs: int | None = None, *, dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, ...]:
        """Initial LSTM parameters, one set per run (leading axis R), drawn from the runs' seeds."""
        streams = RunStreams(as_seeds(seed, runs))
        params: list[torch.Tensor] = []
        sizes = (2, *self.hidden)
        for layer, (n_in, h) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1.0 / math.sqrt(h)
            for name, shape in (("W_ih", (n_in, 4 * h)), ("W_hh", (h, 4 * h)), ("b", (4 * h,))):
                u = streams.uniform(f"teacher/{name}{layer}", 0, shape)
                params.append(((2 * u - 1) * bound).to(dtype=dtype, device=device))
        return tuple(params)

    def init_state(self, runs: int, coordinates: int, *, dtype=torch.float32, device="cpu"):
        """Zero (h, c) for every layer: a tuple of pairs of [R, P, h] tensors."""
        return tuple((torch.zeros(runs, coordinates, h, dtype=dtype, device=device),
                      torch.zeros(runs, coordinates, h, dtype=dtype, device=device)) for h in self.hidden)

    def step(self, params, grad: torch.Tensor, state):
        """One teacher step on the flat DLN gradient grad [R, P]: returns (g [R, P], new state)."""
        if grad.dim() != 2:
            raise ValueError(f"grad must be [R, P] (runs, coordinates), got shape {tuple(grad.shape)}")
        x = preprocess_gradient(grad, self.preprocess_p).to(params[0].dtype)
        new_state = []
        for layer, h_size in enumerate(self.hidden):
            W_ih, W_hh, b = params[3 * layer: 3 * layer + 3]
            h, c = state[layer]
            gates = torch.baddbmm(b[:, None, :], x, W_ih) + torch.bmm(h, W_hh)
            i, f, g, o = gates.split(h_size, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_state.append((h, c))
            x = h
        return x[..., 0], tuple(new_state)

    def to_spec(self) -> dict:
        """JSON-ready description of the teacher (layer widths, gradient preprocessing)."""
        return {"name": "lstm", "hidden": list(self.hidden), "preprocess_p": self.preprocess_p}
