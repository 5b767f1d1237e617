"""Two-layer ReLU perceptron with softmax cross-entropy, batched over runs.

l(V, W; x, y) = CrossEntropy(SoftMax(W^T relu(V^T x)), y), V [d, h], W [h, K], stored flat as
[vec V, vec W]. Gradients are the closed-form backpropagation (checked against torch.func in
the tests).

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 3.2.2, Eq. (4).
"""

from __future__ import annotations

import torch

from .. import nets
from .base import OutputJacobian, SoftmaxClassifier

__all__ = ["MLP"]


class MLP(SoftmaxClassifier):
    """Two-layer ReLU MLP classifier (no biases, as in LAST Sec. 3.2.2)."""

    name = "mlp"

    def __init__(self, input_dim: int, hidden: int, num_classes: int) -> None:
        if hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {hidden}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        super().__init__(input_dim, num_classes)
        self.hidden = int(hidden)
        self.architecture = nets.Architecture((self.input_dim, self.hidden, self.output_dim), act="relu", bias=False)

    @property
    def num_params(self) -> int:
        """Total number of flat parameters (both layers)."""
        return self.architecture.num_params

    def param_blocks(self) -> dict[str, slice]:
        """Slices of the flat parameter vector: the first layer and the output layer."""
        blocks = self.architecture.blocks()
        return {"first": blocks["W1"], "output": blocks["W2"]}

    def split(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V [R, d, h], W [R, h, K]) views of the flat parameters."""
        return self.architecture.unflatten(w)

    def _forward(self, w: torch.Tensor, X: torch.Tensor):
        layers = self.architecture.layers(self.split(w))
        return layers, nets.forward(layers, X, act="relu")

    def forward(self, w: torch.Tensor, X: torch.Tensor):
        """(U = V^T x, P = relu(U), z = W^T P), each [R, n, .]."""
        fwd = self._forward(w, X)[1]
        return fwd.pre[0], fwd.post[1], fwd.output

    def outputs(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Logits [R, n, K] of the network at the inputs X [R, n, d]."""
        return self._forward(w, X)[1].output

    def _backprop(self, w, X, y):
        """(layers, forward pass, cotangents [dl/dU, dl/dz]) of the per-example cross-entropy."""
        layers, fwd = self._forward(w, X)
        delta = torch.softmax(fwd.output, -1) * y.sum(-1, keepdim=True) - y  # dl/dz [R, n, K]
        return layers, fwd, nets.backward(layers, fwd, delta, act="relu")

    def grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example gradients [R, n, p] of the cross-entropy, by backpropagation."""
        layers, fwd, deltas = self._backprop(w, X, y)
        grads = nets.weight_grads(layers, fwd, deltas, reduce="none")
        return nets.flatten([g for g, _ in grads], start_dim=2)

    def mean_grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gradient [R, p] of the mean cross-entropy over the examples."""
        layers, fwd, deltas = self._backprop(w, X, y)
        grads = nets.weight_grads(layers, fwd, deltas, reduce="mean")
        return nets.flatten([g for g, _ in grads])

    def pool_constants(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"sqnorm": ||x||^2 [R or 1, n]} (the first layer's Jacobian Gram is ||x||^2 (D W)^T (D W))."""
        return {"sqnorm": (X * X).sum(-1)}

    def output_jacobian(
        self, w: torch.Tensor, X: torch.Tensor, e: torch.Tensor, constants: dict | None = None,
    ) -> OutputJacobian:
        """Per layer, J e and J J^T of the logits z = W^T relu(V^T x), with D = diag(1[V^T x > 0]):

        first layer:  J_V e_V = (D W)^T E_V^T x,  J_V J_V^T = ||x||^2 (D W)^T (D W)  [R, n, K, K];
        output layer: J_W e_W = E_W^T P,          J_W J_W^T = ||P||^2 I_K           [R, n].

        References: LAST Eq. (4).
        """
        sq_x = constants.get("sqnorm") if constants else None
        if sq_x is None:
            sq_x = (X * X).sum(-1)
        W = self.split(w)[1]
        EV, EW = self.split(e.expand_as(w))
        U, P, z = self.forward(w, X)
        mask = (U > 0).to(U.dtype)  # [R, n, h]
        DW = mask.unsqueeze(-1) * W.unsqueeze(1)  # [R, n, h, K]
        u = torch.matmul(X, EV)  # E_V^T x, [R, n, h]
        return OutputJacobian(
            z=z,
            jvp={"first": torch.matmul(mask * u, W), "output": torch.matmul(P, EW)},
            gram={"first": sq_x[..., None, None] * (DW.transpose(-1, -2) @ DW), "output": (P * P).sum(-1)},
        )

    def grad_stats(
        self, w: torch.Tensor, e: torch.Tensor, X: torch.Tensor, y: torch.Tensor, constants: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(<e, g_i>, ||g_i||^2), both [R, n], from :meth:`output_jacobian` (no [R, n, p] gradients)."""
        jac = self.output_jacobian(w, X, e, constants)
        r = self.residual(jac.z, y)
        return jac.grad_inner(r), jac.grad_sqnorm(r)

    def to_spec(self) -> dict:
        """Specification dictionary of the learner, with the hidden width."""
        return {**super().to_spec(), "hidden": self.hidden}
