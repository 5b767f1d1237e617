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
from .base import LabelQuadratic, Learner

__all__ = ["MLP"]


class MLP(Learner):
    """Two-layer ReLU MLP classifier (no biases, as in LAST Sec. 3.2.2)."""

    name = "mlp"
    scalar_labels = False
    classification = True

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
        return self.architecture.num_params

    def param_blocks(self) -> dict[str, slice]:
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
        return self._forward(w, X)[1].output

    def loss(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -(y * torch.log_softmax(self.outputs(w, X), -1)).sum(-1)

    def _backprop(self, w, X, y):
        """(layers, forward pass, cotangents [dl/dU, dl/dz]) of the per-example cross-entropy."""
        layers, fwd = self._forward(w, X)
        delta = torch.softmax(fwd.output, -1) * y.sum(-1, keepdim=True) - y  # dl/dz [R, n, K]
        return layers, fwd, nets.backward(layers, fwd, delta, act="relu")

    def grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        layers, fwd, deltas = self._backprop(w, X, y)
        grads = nets.weight_grads(layers, fwd, deltas, reduce="none")
        return nets.flatten([g for g, _ in grads], start_dim=2)

    def mean_grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        layers, fwd, deltas = self._backprop(w, X, y)
        grads = nets.weight_grads(layers, fwd, deltas, reduce="mean")
        return nets.flatten([g for g, _ in grads])

    def label_prediction(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.outputs(w, X), -1)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return self.outputs(w, X).argmax(-1)

    def accuracy(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.predict_labels(w, X) == y.argmax(-1)).to(w.dtype).mean(-1)

    def label_quadratic(self, w, w_star, X, lr, beta=1.0) -> LabelQuadratic:
        """||W' - W*||^2 + beta ||V' - V*||^2 after one SGD step, as a quadratic in y.

        With delta = M y (M = s 1^T - I) and D = diag(1[U > 0]):
        G = delta^T A delta - 2 c^T delta + const,
        A = lr^2 (||P||^2 I + beta ||x||^2 (D W)^T (D W)), c = lr (E_W^T P + beta (D W)^T E_V^T x).

        References: LAST Eq. (4).
        """
        V, W = self.split(w)
        EV, EW = self.split(w - w_star)
        U, P, z = self.forward(w, X)
        mask = (U > 0).to(U.dtype)  # [R, n, h]
        K = self.output_dim
        eye = torch.eye(K, dtype=z.dtype, device=z.device)
        DW = mask.unsqueeze(-1) * W.unsqueeze(1)  # [R, n, h, K]
        sq_p = (P * P).sum(-1)
        sq_x = (X * X).sum(-1).expand(sq_p.shape)
        A = (lr * lr) * (sq_p[..., None, None] * eye + beta * sq_x[..., None, None] * DW.transpose(-1, -2) @ DW)
        u = torch.matmul(X, EV)  # E_V^T x, [R, n, h]
        c = lr * (torch.matmul(P, EW) + beta * (DW.transpose(-1, -2) @ u.unsqueeze(-1))[..., 0])
        s = torch.softmax(z, -1)
        M = s[..., :, None] - eye
        H = M.transpose(-1, -2) @ A @ M
        q = (M.transpose(-1, -2) @ c.unsqueeze(-1))[..., 0]
        return LabelQuadratic(H=H, q=q, isotropic=False)

    def to_spec(self) -> dict:
        return {**super().to_spec(), "hidden": self.hidden}
