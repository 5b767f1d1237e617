"""Linear learners: least squares, logistic regression, softmax regression.

All three are z = W^T x with W [d, K] stored flat (row-major) in w [R, d*K]; the per-example
gradient factorises as x (dl/dz)^T, which lets the IMT score and the mean gradient be
computed with two matrix products and no [R, n, p] tensor.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 3.2.1 (losses).
"""

from __future__ import annotations

import torch

from ..theory.last import greedy_score_linear
from .base import LabelQuadratic, Learner

__all__ = ["LinearLearner", "LeastSquares", "Logistic", "Softmax", "features_times", "features_t_times"]


def features_times(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """X [R|1, n, d] times W [R, d, K] -> [R, n, K]; one GEMM when the pool is shared."""
    if X.shape[0] == 1 and W.shape[0] > 1:
        R, d, K = W.shape
        out = X[0] @ W.permute(1, 0, 2).reshape(d, R * K)
        return out.reshape(X.shape[1], R, K).permute(1, 0, 2)
    return torch.matmul(X, W)


def features_t_times(X: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """X^T r: X [R|1, n, d], r [R, n, K] -> [R, d, K]; one GEMM when the pool is shared."""
    if X.shape[0] == 1 and r.shape[0] > 1:
        R, n, K = r.shape
        out = X[0].T @ r.permute(1, 0, 2).reshape(n, R * K)
        return out.reshape(X.shape[2], R, K).permute(1, 0, 2)
    return torch.matmul(X.transpose(1, 2), r)


class LinearLearner(Learner):
    """Shared machinery of the linear models: z = W^T x, gradient x (dl/dz)^T."""

    @property
    def num_params(self) -> int:
        return self.input_dim * self.output_dim

    def weights(self, w: torch.Tensor) -> torch.Tensor:
        return w.reshape(w.shape[0], self.input_dim, self.output_dim)

    def logits(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """z = W^T x as [R, n, K] (also for scalar models, K = 1)."""
        return features_times(X, self.weights(w))

    def outputs(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        z = self.logits(w, X)
        return z[..., 0] if self.scalar_labels else z

    def _vector(self, y: torch.Tensor) -> torch.Tensor:
        return y[..., None] if self.scalar_labels else y

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz [R, n, K] from logits z [R, n, K] and labels y (vector form [.., K])."""
        raise NotImplementedError

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_from_logits(self.logits(w, X), self._vector(y))

    def grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r = self.residual(self.logits(w, X), self._vector(y))
        g = X.unsqueeze(-1) * r.unsqueeze(-2)  # [R, n, d, K]
        return g.reshape(r.shape[0], r.shape[1], -1)

    def mean_grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if X.shape[1] == 1 and X.shape[0] == w.shape[0]:
            # One example per run (the usual teaching step): an outer product, not R tiny GEMMs.
            x = X[:, 0]
            z = (x.unsqueeze(-1) * self.weights(w)).sum(1)  # [R, K]
            r = self.residual(z, self._vector(y)[:, 0])
            return (x.unsqueeze(-1) * r.unsqueeze(1)).reshape(w.shape[0], -1)
        r = self.residual(self.logits(w, X), self._vector(y))
        return features_t_times(X, r).reshape(w.shape[0], -1) / X.shape[1]

    def grad_stats(
        self, w: torch.Tensor, e: torch.Tensor, X: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if X.shape[0] == 1 and self.output_dim == 1:
            r, xe, xx = self._shared_scalar_terms(w, e, X, y)
            return xe * r, xx * (r * r)
        r = self.residual(self.logits(w, X), self._vector(y))
        xe = features_times(X, self.weights(e))  # [R, n, K] = E^T x
        inner = (xe * r).sum(-1)
        sqnorm = (X * X).sum(-1) * (r * r).sum(-1)
        return inner, sqnorm

    def _shared_scalar_terms(self, w, e, X, y):
        """Shared pool, scalar output: (r [R, n], <e, x> [R, n], ||x||^2 [n]). One GEMM gives <w, x>
        and <e, x> for every run, laid out [runs, n] so no transposed size-1 reductions follow."""
        R = w.shape[0]
        both = torch.cat([w, e.expand_as(w)]) @ X[0].T  # [2R, n]
        z, xe = both[:R], both[R:]
        r = self.residual(z.unsqueeze(-1), self._vector(y.expand(R, *y.shape[1:])))[..., 0]
        return r, xe, (X[0] * X[0]).sum(-1)

    def greedy_scores(self, w, w_star, X, y, lr):
        if X.shape[0] == 1 and self.output_dim == 1:
            r, xe, xx = self._shared_scalar_terms(w, w - w_star, X, y)
            return greedy_score_linear(r, xe, xx, lr)
        return super().greedy_scores(w, w_star, X, y, lr)

    def greedy_terms(
        self, w: torch.Tensor, w_star: torch.Tensor, X: torch.Tensor, lr: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, b, z) with ||w - lr x r^T - w*||^2 = a ||r||^2 - 2 b.r + ||e||^2.

        a = lr^2 ||x||^2 [R, n], b = lr E^T x [R, n, K], z the logits [R, n, K].
        References: LAST Eq. (1)-(2).
        """
        z = self.logits(w, X)
        b = lr * features_times(X, self.weights(w - w_star))
        a = (lr * lr) * (X * X).sum(-1).expand(z.shape[:2])
        return a, b, z


class LeastSquares(LinearLearner):
    """Least-squares regression, l(w; x, y) = 1/2 ||W^T x - y||^2.

    Scalar labels when ``output_dim == 1`` (the LSR learner of LAST), vector labels otherwise.

    References: LAST Sec. 3.2.1; vector labels Sec. 3.4 (g(y) as a Hadamard ratio).
    """

    name = "lsr"

    def __init__(self, input_dim: int, output_dim: int = 1) -> None:
        super().__init__(input_dim, output_dim)
        self.scalar_labels = self.output_dim == 1

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return z - y

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((z - y) ** 2).sum(-1)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return self.outputs(w, X)

    def label_quadratic(self, w, w_star, X, lr, beta=1.0) -> LabelQuadratic:
        # r = z - y, so G = a||y||^2 - 2 y.(a z - b) + const: H = a I, q = a z - b.
        a, b, z = self.greedy_terms(w, w_star, X, lr)
        K = z.shape[-1]
        H = a[..., None, None] * torch.eye(K, dtype=z.dtype, device=z.device)
        return LabelQuadratic(H=H, q=a[..., None] * z - b, isotropic=True)


class Logistic(LinearLearner):
    """Logistic regression, l(w; x, y) = log(1 + exp(-y <w, x>)), y in {-1, +1}.

    Real-valued y (synthesised labels) are allowed; the loss is evaluated as softplus(-y m)
    so it is stable for large margins.

    References: LAST Sec. 3.2.1.
    """

    name = "logistic"
    classification = True

    def __init__(self, input_dim: int) -> None:
        super().__init__(input_dim, 1)

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -y * torch.sigmoid(-y * z)

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # logaddexp(0, -y z) is exact at every margin (softplus switches to linear past 20,
        # which is off by up to e^-20 and breaks autograd Hessians there).
        return torch.logaddexp(torch.zeros_like(z), -y * z).sum(-1)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        m = self.outputs(w, X)
        return torch.where(m >= 0, 1.0, -1.0).to(m.dtype)

    def accuracy(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.predict_labels(w, X) == torch.sign(y)).to(w.dtype).mean(-1)


class Softmax(LinearLearner):
    """Softmax regression with cross-entropy, l(W; x, y) = -sum_k y_k log softmax(W^T x)_k.

    Labels are vectors (one-hot or soft). dl/dz = softmax(z) sum_k y_k - y, which is the
    familiar softmax(z) - y when the label sums to one.

    References: LAST Sec. 3.1 (soft labels), Sec. 3.2 (one-hot / simplex constraints).
    """

    name = "softmax"
    scalar_labels = False
    classification = True

    def __init__(self, input_dim: int, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        super().__init__(input_dim, num_classes)

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.softmax(z, -1) * y.sum(-1, keepdim=True) - y

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -(y * torch.log_softmax(z, -1)).sum(-1)

    def label_prediction(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.outputs(w, X), -1)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        return self.outputs(w, X).argmax(-1)

    def accuracy(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.predict_labels(w, X) == y.argmax(-1)).to(w.dtype).mean(-1)

    def label_quadratic(self, w, w_star, X, lr, beta=1.0) -> LabelQuadratic:
        # r = M y with M = s 1^T - I, so G = a||M y||^2 - 2 b.M y: H = a M^T M, q = M^T b.
        a, b, z = self.greedy_terms(w, w_star, X, lr)
        s = torch.softmax(z, -1)
        K = z.shape[-1]
        M = s[..., :, None] - torch.eye(K, dtype=z.dtype, device=z.device)
        H = a[..., None, None] * M.transpose(-1, -2) @ M
        q = (M.transpose(-1, -2) @ b[..., None])[..., 0]
        return LabelQuadratic(H=H, q=q, isotropic=False)
