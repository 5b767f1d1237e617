r"""The dynamic loss network (DLN) :math:`L_\phi` of L2T-DLN (Sec. 3.3, 5.2, Fig. 3).

A fully connected network (five layers: four hidden layers of 40 units with LeakyReLU, one output
unit) that maps a *pair of class predictions* to a loss value. Following the 1-vs-1 reading of
Fig. 3 (axes: the prediction for the correct class, the prediction for one wrong class, the DLN
value), each example contributes the mean over the K - 1 wrong classes j of
:math:`L_\phi(p_y, p_j)`, with p the student's softmax probabilities (``inputs="logits"`` feeds the
raw logits instead). The supplementary material that fixes the exact input is not in the seed; this
is the reading used here. Kaiming-normal initialisation for LeakyReLU (Sec. 5.3), zero biases.

Parameters are a run-batched tuple (W1 [R, 2, 40], b1 [R, 40], ..., W5 [R, 40, 1], b5 [R, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..nets import ACTIVATIONS, Architecture, count
from ..random import RunStreams, as_seeds

__all__ = ["DynamicLossNetwork"]


@dataclass
class DynamicLossNetwork:
    """Configuration of the DLN: hidden widths (paper: four layers of 40), activation, input kind."""

    hidden: Sequence[int] = field(default=(40, 40, 40, 40))
    act: str = "leaky_relu"
    inputs: str = "probabilities"

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive integers, got {self.hidden!r}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}")
        if self.inputs not in ("probabilities", "logits"):
            raise ValueError(f"inputs must be 'probabilities' or 'logits', got {self.inputs!r}")

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths (2, *hidden, 1)."""
        return (2, *self.hidden, 1)

    @property
    def architecture(self) -> Architecture:
        """The network (:class:`teachtheory.nets.Architecture`): ``act`` between layers, a linear output."""
        return Architecture(self.sizes, act=self.act, bias=True)

    def init(self, seed, runs: int | None = None, *, dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, ...]:
        """Kaiming-normal weights for ``act``, zero biases, one set per run."""
        streams = RunStreams(as_seeds(seed, runs))
        return self.architecture.init(streams, tag="dln", dtype=dtype, device=device)

    def value(self, phi, pairs: torch.Tensor) -> torch.Tensor:
        """L_phi on pairs [R, ..., 2] -> [R, ...]."""
        if pairs.shape[-1] != 2:
            raise ValueError(f"pairs must end in a dimension of size 2, got shape {tuple(pairs.shape)}")
        return self.architecture.outputs(phi, pairs)[..., 0]

    def pairs(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """1-vs-1 pairs (prediction for the true class, prediction for each wrong class): [R, B, K-1, 2]."""
        pred = torch.softmax(logits, -1) if self.inputs == "probabilities" else logits
        K = pred.shape[-1]
        true = pred.gather(-1, y[..., None])  # [R, B, 1]
        classes = torch.arange(K, device=y.device)
        wrong_index = classes.expand(*y.shape, K)[(classes != y[..., None])].reshape(*y.shape, K - 1)
        wrong = pred.gather(-1, wrong_index)
        return torch.stack([true.expand_as(wrong), wrong], dim=-1)

    def loss(self, phi, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-run training loss [R]: mean over the batch and the wrong classes of L_phi(p_y, p_j)."""
        return self.value(phi, self.pairs(logits, y)).mean((-1, -2))

    def num_parameters(self, phi) -> int:
        """Parameters per run."""
        return count(phi)

    def to_spec(self) -> dict:
        """JSON-ready configuration."""
        return {"name": "dln", "sizes": list(self.sizes), "act": self.act, "inputs": self.inputs}

