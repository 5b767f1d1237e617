"""The learner interface: a model with per-example loss and gradient, batched over runs.

Shapes used everywhere:
    w  [R, p]          flat parameters, one row per run
    X  [R or 1, n, d]  inputs (a leading 1 broadcasts a pool shared by all runs)
    y  [R or 1, n]     scalar labels, or [R or 1, n, K] vector / soft labels
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Learner", "LabelQuadratic", "check_finite"]


def check_finite(name: str, tensor: torch.Tensor) -> None:
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")


@dataclass(frozen=True)
class LabelQuadratic:
    """The greedy teaching objective as a quadratic in the label.

    G(y) = y^T H y - 2 q^T y + const, with H [R, n, K, K] (positive semi-definite) and
    q [R, n, K]. ``isotropic`` is True when H is a multiple of the identity (then the
    constrained minimiser is the Euclidean projection of H^-1 q).
    """

    H: torch.Tensor
    q: torch.Tensor
    isotropic: bool


class Learner:
    """Base class. Subclasses hold configuration only (no hidden state).

    A learner defines ``output_dim`` (K, the length of the model output), whether labels
    are scalars (``scalar_labels``), and per-example loss and gradient.
    """

    name: str = "learner"
    scalar_labels: bool = True
    classification: bool = False

    def __init__(self, input_dim: int, output_dim: int = 1) -> None:
        if input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {input_dim}")
        if output_dim < 1:
            raise ValueError(f"output_dim must be a positive integer, got {output_dim}")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)

    # -- sizes -------------------------------------------------------------------
    @property
    def num_params(self) -> int:
        raise NotImplementedError

    def label_shape(self) -> tuple[int, ...]:
        return () if self.scalar_labels else (self.output_dim,)

    def param_blocks(self) -> dict[str, slice]:
        """Named slices of the flat parameter vector (used by block-weighted teachers)."""
        return {"all": slice(0, self.num_params)}

    # -- model -------------------------------------------------------------------
    def outputs(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Model outputs [R, n] (scalar) or [R, n, K]."""
        raise NotImplementedError

    def loss(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example loss [R, n]."""
        raise NotImplementedError

    def grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example gradient of the loss in w, [R, n, p]."""
        raise NotImplementedError

    def mean_grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gradient of the mean loss over the n examples, [R, p]."""
        return self.grad(w, X, y).mean(dim=1)

    def grad_stats(
        self, w: torch.Tensor, e: torch.Tensor, X: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(<e, g_i>, ||g_i||^2) for every example i, both [R, n].

        The IMT score needs only these two numbers; linear learners compute them without
        materialising the [R, n, p] gradients.
        """
        g = self.grad(w, X, y)
        return torch.einsum("rp,rnp->rn", e, g), (g * g).sum(-1)

    def label_prediction(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """The model's prediction in label space: the centre of a magnitude constraint "around the
        prediction" (the regression output or margin <w, x>; class probabilities for softmax models)."""
        return self.outputs(w, X)

    def greedy_scores(
        self, w: torch.Tensor, w_star: torch.Tensor, X: torch.Tensor, y: torch.Tensor, lr: float
    ) -> torch.Tensor:
        """IMT's score eta^2 ||g_i||^2 - 2 eta <w - w*, g_i> for every example, [R, n]."""
        from ..theory.last import greedy_score

        inner, sqnorm = self.grad_stats(w, w - w_star, X, y)
        return greedy_score(inner, sqnorm, lr)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Hard predictions in the label format ({-1,+1}, class index, or real value)."""
        raise NotImplementedError

    def accuracy(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fraction of correct hard predictions per run, [R] (classification only)."""
        raise TypeError(f"{self.name} is not a classifier: accuracy is undefined")

    def label_quadratic(
        self, w: torch.Tensor, w_star: torch.Tensor, X: torch.Tensor, lr: float, beta: float = 1.0
    ) -> LabelQuadratic:
        """The greedy LAST objective ||w - lr grad l(w; x, y) - w*||^2 as a quadratic in y.

        Only for learners whose gradient is affine in the label.
        """
        raise NotImplementedError(f"{self.name}: the gradient is not affine in the label")

    def to_spec(self) -> dict:
        return {"name": self.name, "input_dim": self.input_dim, "output_dim": self.output_dim}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_spec().items() if k != "name")
        return f"{type(self).__name__}({args})"
