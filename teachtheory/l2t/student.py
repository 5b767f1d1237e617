"""The student: a run-batched MLP classifier S_theta (L2T-DLN Sec. 3.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..random import RunStreams, as_seeds
from .nets import ACTIVATIONS, count, init_linear_stack, mlp_forward

__all__ = ["MLPStudent"]


@dataclass
class MLPStudent:
    """Fully connected classifier ``in_dim -> hidden... -> classes`` with ``act`` between layers.

    Parameters are a tuple (W1 [R, in, h1], b1 [R, h1], ...). ``forward`` returns logits [R, B, K];
    ``features`` the penultimate activations (used by the large-margin softmax baseline).
    """

    in_dim: int
    classes: int
    hidden: Sequence[int] = field(default=(32,))
    act: str = "relu"

    def __post_init__(self) -> None:
        for name, value in (("in_dim", self.in_dim), ("classes", self.classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.classes < 2:
            raise ValueError(f"classes must be at least 2, got {self.classes}")
        self.hidden = tuple(self.hidden)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must be positive integers, got {self.hidden!r}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}")

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.in_dim, *self.hidden, self.classes)

    def init(self, seed, runs: int | None = None, *, dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, ...]:
        """Kaiming-normal initial parameters, one set per run (seed: int with ``runs``, or per-run seeds)."""
        streams = RunStreams(as_seeds(seed, runs))
        return init_linear_stack(self.sizes, streams, "student", self.act, dtype=dtype, device=device, last_gain=1.0)

    def forward(self, theta, x: torch.Tensor) -> torch.Tensor:
        return mlp_forward(theta, x, self.act)

    def forward_features(self, theta, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, penultimate features)."""
        return mlp_forward(theta, x, self.act, return_features=True)

    def accuracy(self, theta, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-run accuracy [R] on x [R|1, n, d], y [R|1, n]."""
        R = theta[0].shape[0]
        with torch.no_grad():
            logits = self.forward(theta, x.expand(R, *x.shape[1:]))
            return (logits.argmax(-1) == y.expand(R, *y.shape[1:])).to(logits.dtype).mean(-1)

    def num_parameters(self, theta) -> int:
        return count(theta)

    def to_spec(self) -> dict:
        return {"name": "mlp", "sizes": list(self.sizes), "act": self.act}
