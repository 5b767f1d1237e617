r"""The dynamic loss network (DLN) :math:`L_\phi` of L2T-DLN (Sec. 3.3, 5.2, Fig. 3).

A fully connected network (five layers: four hidden layers of 40 units with LeakyReLU, one output
unit) that maps a *pair of class predictions* to a loss value. Following the 1-vs-1 reading of
Fig. 3 (axes: the prediction for the correct class, the prediction for one wrong class, the DLN
value), each example contributes the mean over the K - 1 wrong classes j of
:math:`L_\phi(p_y, p_j)`, with p the student's softmax probabilities (``inputs="logits"`` feeds the
raw logits instead). The supplementary material that fixes the exact input is not in the seed; this
is the reading used here. Kaiming-normal initialisation for LeakyReLU (Sec. 5.3), zero biases.

``inputs="authors"`` is the input of the authors' released code (code, not paper): per example and
class j a row :math:`[\sigma(z_y), \sigma(z_j), 1, 0]` of *sigmoid* (not softmax) outputs, the row of the
true class set to zeros, the loss the mean over all K rows; that code's DLN has no biases and draws its
weights Kaiming-normal with fan-out scaling (``bias=False, init="fan_out"``, see :meth:`authors_code`).

Parameters are a run-batched tuple (W1 [R, d, 40], b1 [R, 40], ..., W5 [R, 40, 1], b5 [R, 1]; d = 2, or 4
for the authors' input; no b's without biases).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..nets import ACTIVATIONS, Architecture, count
from ..random import RunStreams, as_seeds
from ..validation import check_bool, check_choice

__all__ = ["DLN_INITS", "DLN_INPUTS", "DynamicLossNetwork"]

DLN_INPUTS = ("probabilities", "logits", "authors")
DLN_INITS = ("fan_in", "fan_out")


@dataclass
class DynamicLossNetwork:
    """Configuration of the DLN: hidden widths (paper: four layers of 40), activation, input kind, biases, init.

    Attributes:
        hidden: hidden widths. act: activation between layers. inputs: one of DLN_INPUTS (see the module).
        bias: whether the layers have biases (the authors' code: none).
        init_mode: Kaiming-normal scaled by fan-in (default) or by fan-out (the authors' code).
    """

    hidden: Sequence[int] = field(default=(40, 40, 40, 40))
    act: str = "leaky_relu"
    inputs: str = "probabilities"
    bias: bool = True
    init_mode: str = "fan_in"

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be a non-empty sequence of positive integers, got {self.hidden!r}")
        for name, allowed in (("act", ACTIVATIONS), ("inputs", DLN_INPUTS), ("init_mode", DLN_INITS)):
            check_choice(getattr(self, name), name, allowed)
        check_bool(self.bias, "bias")

    @classmethod
    def authors_code(cls, hidden: Sequence[int] = (40, 40, 40, 40), act: str = "leaky_relu") -> DynamicLossNetwork:
        """The DLN of the authors' released code (code, not paper): sigmoid rows [s_y, s_j, 1, 0], no biases,
        fan-out Kaiming-normal weights."""
        return cls(hidden, act=act, inputs="authors", bias=False, init_mode="fan_out")

    @property
    def in_dim(self) -> int:
        """Width of one input row: 2 (a prediction pair), 4 for the authors' rows."""
        return 4 if self.inputs == "authors" else 2

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths (in_dim, *hidden, 1)."""
        return (self.in_dim, *self.hidden, 1)

    @property
    def architecture(self) -> Architecture:
        """The network (:class:`teachtheory.nets.Architecture`): ``act`` between layers, a linear output."""
        return Architecture(self.sizes, act=self.act, bias=self.bias)

    def init(self, seed, runs: int | None = None, *, dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, ...]:
        """Kaiming-normal weights for ``act`` (fan-in or fan-out scaling), zero biases, one set per run."""
        streams = RunStreams(as_seeds(seed, runs))
        params = self.architecture.init(streams, tag="dln", dtype=dtype, device=device)
        if self.init_mode == "fan_out":  # std gain/sqrt(fan_out) instead of gain/sqrt(fan_in): rescale the draw
            params = tuple(p * math.sqrt(p.shape[-2] / p.shape[-1]) if p.dim() == 3 else p for p in params)
        return params

    def value(self, phi, pairs: torch.Tensor) -> torch.Tensor:
        """L_phi on input rows [R, ..., in_dim] -> [R, ...]."""
        if pairs.shape[-1] != self.in_dim:
            raise ValueError(f"pairs must end in a dimension of size {self.in_dim}, got shape {tuple(pairs.shape)}")
        return self.architecture.outputs(phi, pairs)[..., 0]

    def rows(self, true: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
        """Input rows from the prediction for the true class and for a wrong class (same shapes) -> [..., in_dim]."""
        if self.inputs != "authors":
            return torch.stack([true, wrong], dim=-1)
        ones = torch.ones_like(true)
        return torch.stack([true, wrong, ones, torch.zeros_like(true)], dim=-1)

    def pairs(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """1-vs-1 input rows: [R, B, K-1, 2] (true class, each wrong class), or, for the authors' input,
        [R, B, K, 4] with the true class's row zero."""
        if self.inputs == "authors":
            s = torch.sigmoid(logits)
            wrong = (torch.arange(s.shape[-1], device=y.device) != y[..., None]).to(s.dtype)  # [R, B, K]
            true = s.gather(-1, y[..., None]).expand_as(s)
            return self.rows(true, s) * wrong[..., None]
        pred = torch.softmax(logits, -1) if self.inputs == "probabilities" else logits
        K = pred.shape[-1]
        true = pred.gather(-1, y[..., None])  # [R, B, 1]
        classes = torch.arange(K, device=y.device)
        wrong_index = classes.expand(*y.shape, K)[(classes != y[..., None])].reshape(*y.shape, K - 1)
        wrong = pred.gather(-1, wrong_index)
        return self.rows(true.expand_as(wrong), wrong)

    def loss(self, phi, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-run training loss [R]: mean over the batch and the rows of L_phi (the wrong classes; all K rows,
        the true class's zero row included, for the authors' input)."""
        return self.value(phi, self.pairs(logits, y)).mean((-1, -2))

    def num_parameters(self, phi) -> int:
        """Parameters per run."""
        return count(phi)

    def to_spec(self) -> dict:
        """JSON-ready configuration."""
        return {"name": "dln", "sizes": list(self.sizes), "act": self.act, "inputs": self.inputs, "bias": self.bias,
                "init": self.init_mode}
