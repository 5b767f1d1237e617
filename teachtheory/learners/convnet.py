"""A small ConvNet classifier as a :class:`Learner` on flat parameters, batched over runs.

The network is the run-batched ConvNet of :class:`teachtheory.distill.nets.NetSpec` ([3x3 convolution, instance
norm, ReLU, 2x2 average pool] x depth, then a linear head) with softmax cross-entropy on (soft) probability labels.
Its parameters are stored as one flat vector per run, so ``teach()``, the Mixup teachers and the policy trainers
of :mod:`teachtheory.teachers.training` use it like any other learner. Inputs are flattened images ``[R, n, C*H*W]``.

Per-example gradients replicate each run's parameters once per example (grouped convolutions, one group per copy)
and differentiate the summed loss with ``torch.func.grad``: copy i only sees example i, so its gradient is example
i's. This composes with forward-mode (label sensitivities of the policies' state) and with outer autograd
(unrolled policy training).

References:
    Qiu, Liu et al., "Iterative Teaching by Data Hallucination", AISTATS 2023, Sec. 4.1 (small CNN learner).
"""

from __future__ import annotations

import math

import torch

from ..distill.nets import NetSpec
from ..random import RunStreams, as_seeds
from .base import SoftmaxClassifier

__all__ = ["ConvNet"]


class ConvNet(SoftmaxClassifier):
    """Run-batched ConvNet classifier (width ``width``, ``depth`` blocks) on flattened ``image_shape`` inputs."""

    name = "convnet"

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10, width: int = 16,
                 depth: int = 1) -> None:
        if not isinstance(image_shape, (tuple, list)) or len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.spec = NetSpec("convnet", tuple(int(s) for s in image_shape), num_classes, width=width, depth=depth)
        super().__init__(math.prod(self.spec.image_shape), num_classes)
        self._shapes = {k: s for k, (s, _) in self.spec.shapes().items()}

    @property
    def num_params(self) -> int:
        """Total number of flat parameters (convolutions, norms and head)."""
        return sum(math.prod(s) for s in self._shapes.values())

    def param_blocks(self) -> dict[str, slice]:
        """Slices of the flat vector: the convolutional encoder and the linear head."""
        head = math.prod(self._shapes["head.weight"]) + math.prod(self._shapes["head.bias"])
        return {"encoder": slice(0, self.num_params - head), "head": slice(self.num_params - head, self.num_params)}

    def unflatten(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """The NetSpec parameter dict (views, each ``[R, *shape]``) of flat parameters w [R, p]."""
        out, start = {}, 0
        for name, shape in self._shapes.items():
            size = math.prod(shape)
            out[name] = w[:, start:start + size].reshape(w.shape[0], *shape)
            start += size
        return out

    def init(self, runs: int, seed=0, *, dtype=torch.float64, device="cpu") -> torch.Tensor:
        """PyTorch-default initial parameters [runs, p]; run r's depend only on its seed (``seed + r`` for an int)."""
        params = self.spec.init(runs, streams=RunStreams(as_seeds(seed, runs)), dtype=dtype, device=device)
        return torch.cat([params[k].reshape(runs, -1) for k in self._shapes], 1)

    def _images(self, X: torch.Tensor) -> torch.Tensor:
        if X.shape[-1] != self.input_dim:
            raise ValueError(f"inputs must have {self.input_dim} = prod{self.spec.image_shape} features, "
                             f"got {tuple(X.shape)}")
        return X.reshape(*X.shape[:-1], *self.spec.image_shape)

    def outputs(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Logits [R, n, K] at inputs X [R or 1, n, d] (a one-row X is shared by all runs)."""
        images = self._images(X)
        if images.shape[0] == 1 and w.shape[0] != 1:
            images = images[0]
        return self.spec(self.unflatten(w), images)

    def grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example gradients [R, n, p]: one parameter copy per example, differentiated together."""
        R, n = w.shape[0], X.shape[-2]
        Xr = X.expand(R, *X.shape[1:]).reshape(R * n, 1, X.shape[-1])
        yr = y.expand(R, *y.shape[1:]).reshape(R * n, 1, y.shape[-1])
        copies = w.repeat_interleave(n, 0)
        g = torch.func.grad(lambda v: self.loss(v, Xr, yr).sum())(copies)
        return g.reshape(R, n, -1)

    def mean_grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gradient [R, p] of the mean cross-entropy over the examples (differentiable in w, X and y)."""
        return torch.func.grad(lambda v: self.loss(v, X, y).mean(-1).sum())(w)

    def to_spec(self) -> dict:
        """Specification dictionary: the image shape, width and depth besides the sizes."""
        return {**super().to_spec(), "image_shape": list(self.spec.image_shape), "width": self.spec.width,
                "depth": self.spec.depth}
