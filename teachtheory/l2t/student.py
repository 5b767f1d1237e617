"""The student: a run-batched MLP classifier S_theta (L2T-DLN Sec. 3.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..nets import ACTIVATIONS, Architecture, count
from ..random import RunStreams, as_seeds

__all__ = ["MLPStudent"]


@dataclass
class MLPStudent:
    """Fully connected classifier ``in_dim -> hidden -> classes`` with ``act`` between layers.

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
        """Layer widths (in_dim, *hidden, classes)."""
        return (self.in_dim, *self.hidden, self.classes)

    @property
    def architecture(self) -> Architecture:
        """The network (:class:`teachtheory.nets.Architecture`): ``act`` between layers, linear logits."""
        return Architecture(self.sizes, act=self.act, bias=True)

    def init(self, seed, runs: int | None = None, *, dtype=torch.float32, device="cpu") -> tuple[torch.Tensor, ...]:
        """Kaiming-normal initial parameters (gain 1 on the logit layer), zero biases, one set per run
        (seed: int with ``runs``, or per-run seeds)."""
        streams = RunStreams(as_seeds(seed, runs))
        return self.architecture.init(streams, tag="student", last_gain=1.0, dtype=dtype, device=device)

    def forward(self, theta, x: torch.Tensor) -> torch.Tensor:
        """Logits [R, B, K] for x [R, B, in_dim]."""
        return self.architecture.outputs(theta, x)

    def forward_features(self, theta, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, penultimate features)."""
        fwd = self.architecture.forward(theta, x)
        return fwd.output, fwd.post[-2]

    def accuracy(self, theta, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-run accuracy [R] on x [R|1, n, d], y [R|1, n]."""
        R = theta[0].shape[0]
        with torch.no_grad():
            logits = self.forward(theta, x.expand(R, *x.shape[1:]))
            return (logits.argmax(-1) == y.expand(R, *y.shape[1:])).to(logits.dtype).mean(-1)

    def num_parameters(self, theta) -> int:
        """Parameters per run."""
        return count(theta)

    def to_spec(self) -> dict:
        """JSON-ready configuration."""
        return {"name": "mlp", "sizes": list(self.sizes), "act": self.act}
