"""Linear learners: least squares, logistic regression, softmax regression.

All three are z = W^T x with W [d, K] stored flat (row-major) in w [R, d*K]; the per-example
gradient factorises as x (dl/dz)^T: the output Jacobian is J = I_K (x) x^T, with J J^T = ||x||^2 I_K
and J e = E^T x. So the quantities a teacher needs for a whole pool (outputs, J e) come from one
matrix product, and the mean gradient from another, with no [R, n, p] tensor.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Sec. 3.2.1 (losses).
"""

from __future__ import annotations

import torch

from .base import Learner, OutputJacobian, SoftmaxClassifier, can_overwrite, softmax_residual_

__all__ = ["SMALL_BATCH", "LinearLearner", "LeastSquares", "Logistic", "Softmax", "features_times",
           "features_t_times"]

SMALL_BATCH = 8  # output_jacobian: up to this many examples by elementwise products, more by matrix products
POOL_T_COPY = 1 << 24  # pool_constants: a shared pool up to this many values gets a contiguous X^T


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
    """Shared machinery of the linear models: z = W^T x, gradient x (dl/dz)^T, so J J^T = ||x||^2 I."""

    @property
    def num_params(self) -> int:
        """d * K."""
        return self.input_dim * self.output_dim

    def weights(self, w: torch.Tensor) -> torch.Tensor:
        """The flat parameters [R, d*K] as weight matrices [R, d, K] (a view)."""
        return w.reshape(w.shape[0], self.input_dim, self.output_dim)

    def logits(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """z = W^T x as [R, n, K] (also for scalar models, K = 1)."""
        return features_times(X, self.weights(w))

    def outputs(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """z = W^T x, [R, n] for scalar labels, else [R, n, K]."""
        z = self.logits(w, X)
        return z[..., 0] if self.scalar_labels else z

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example loss from logits z [..., K] and vector labels y [..., K]."""
        raise NotImplementedError

    def loss(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example loss [R, n]."""
        return self.loss_from_logits(self.logits(w, X), self.label_vector(y))

    def grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example gradients x r^T, flattened to [R, n, d*K]."""
        r = self.residual(self.logits(w, X), self.label_vector(y))
        g = X.unsqueeze(-1) * r.unsqueeze(-2)  # [R, n, d, K]
        return g.reshape(r.shape[0], r.shape[1], -1)

    def mean_grad(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *,
                  outputs: torch.Tensor | None = None) -> torch.Tensor:
        """Gradient of the mean loss, [R, d*K], without materialising per-example gradients.

        ``outputs``: optionally z = <w, x> [R, 1, 1] of a single scalar-output example per run as
        :meth:`output_jacobian` computes it (by elementwise products, the numbers this method would compute),
        when the caller has them; ignored otherwise.
        """
        if X.shape[1] == 1 and X.shape[0] == w.shape[0]:
            # One example per run (the usual teaching step): an outer product, not R tiny GEMMs.
            x = X.squeeze(1)
            if self.output_dim == 1 and self.scalar_labels:
                # K = 1: the same products and sum as below on [R, d] instead of [R, d, 1] views (fewer calls).
                z = (x * w).sum(-1, keepdim=True) if outputs is None else outputs[:, 0]
                return x * self.residual(z, y)
            z = (x.unsqueeze(-1) * self.weights(w)).sum(1)  # [R, K]
            r = self.residual(z, self.label_vector(y)[:, 0])
            return (x.unsqueeze(-1) * r.unsqueeze(1)).reshape(w.shape[0], -1)
        r = self.residual(self.logits(w, X), self.label_vector(y))
        return features_t_times(X, r).reshape(w.shape[0], -1) / X.shape[1]

    def pool_constants(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"sqnorm": ||x||^2 [R or 1, n]}, the Gram J J^T / I_K of every example; for a shared pool also
        "_pool_t", X^T [d, n] that :meth:`output_jacobian` multiplies by: a contiguous copy up to
        POOL_T_COPY values (the product with it runs faster than with the transposed view, e.g. about 1.5x
        for [2, 100] @ [100, 2000] on one CPU thread), else the view."""
        constants = {"sqnorm": (X * X).sum(-1)}
        if X.shape[0] == 1:
            constants["_pool_t"] = X[0].T.contiguous() if X[0].numel() <= POOL_T_COPY else X[0].T
        return constants

    def output_jacobian(
        self, w: torch.Tensor, X: torch.Tensor, e: torch.Tensor, constants: dict | None = None,
    ) -> OutputJacobian:
        """z = W^T x, J e = E^T x (E the direction as a matrix) and J J^T = ||x||^2 I_K, one block "all".

        For a shared pool both products come from one GEMM, [2RK, d] @ [d, n]: every (run, class) row
        then runs over contiguous examples, and z, E^T x are [R, n, K] views of that class-major layout
        (elementwise work over examples stays vectorised for any K).
        """
        sqnorm = constants.get("sqnorm") if constants else None
        if sqnorm is None:
            sqnorm = (X * X).sum(-1)
        R, d, K = w.shape[0], self.input_dim, self.output_dim
        if e.shape != w.shape:
            e = e.expand_as(w)
        if X.shape[1] <= SMALL_BATCH:
            # A few examples (a LAST step; a tiny pool): products over d, not tiny GEMMs. Chosen by the
            # number of examples alone, so a run computes the same numbers alone as inside a batch.
            if K == 1:  # on [R, m, d] directly (fewer calls than the [R, m, d, 1] views)
                z = (X * w[:, None]).sum(-1, keepdim=True)
                jvp = (X * e[:, None]).sum(-1, keepdim=True)
            else:
                x = X.unsqueeze(-1)  # [R, m, d, 1]
                z = (x * self.weights(w)[:, None]).sum(2)
                jvp = (x * self.weights(e)[:, None]).sum(2)
        elif X.shape[0] == 1:
            pool_t = constants.get("_pool_t") if constants else None
            pool_t = X[0].T if pool_t is None else pool_t
            if K == 1:  # [2R, n] viewed as [2, R, n, 1]: the same layout as the general case, fewer calls
                z, jvp = (torch.cat([w, e]) @ pool_t).view(2, R, X.shape[1], 1).unbind(0)
            else:
                both = torch.cat([self.weights(w), self.weights(e)]).transpose(1, 2).reshape(2 * R * K, d)
                z, jvp = (both @ pool_t).view(2, R, K, X.shape[1]).transpose(-1, -2).unbind(0)
        else:
            z, jvp = torch.matmul(X, self.weights(w)), torch.matmul(X, self.weights(e))
        return OutputJacobian(z=z, jvp={"all": jvp}, gram={"all": sqnorm})

    def grad_stats(
        self, w: torch.Tensor, e: torch.Tensor, X: torch.Tensor, y: torch.Tensor, constants: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(<e, g_i>, ||g_i||^2) = ((E^T x) . r, ||x||^2 ||r||^2), both [R, n], without the [R, n, p] gradients."""
        jac = self.output_jacobian(w, X, e, constants)
        r = self.residual(jac.z, self.label_vector(y))
        return jac.grad_inner(r), jac.grad_sqnorm(r)


class LeastSquares(LinearLearner):
    """Least-squares regression, l(w; x, y) = 1/2 ||W^T x - y||^2.

    Scalar labels when ``output_dim == 1`` (the LSR learner of LAST), vector labels otherwise.

    References: LAST Sec. 3.2.1; vector labels Sec. 3.4 (g(y) as a Hadamard ratio).
    """

    name = "lsr"
    label_kind = "real"

    def __init__(self, input_dim: int, output_dim: int = 1) -> None:
        super().__init__(input_dim, output_dim)
        self.scalar_labels = self.output_dim == 1

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz = z - y."""
        return z - y

    def residual_(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz = z - y, in z's memory (z is consumed)."""
        return z.sub_(y) if can_overwrite(z, y) else z - y

    def residual_label_jacobian(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """dr/dy = -I_K, [..., K, K]."""
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return (-eye).expand(*z.shape, z.shape[-1])

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """1/2 ||z - y||^2."""
        return 0.5 * ((z - y) ** 2).sum(-1)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """The regression output."""
        return self.outputs(w, X)


class Logistic(LinearLearner):
    """Logistic regression, l(w; x, y) = log(1 + exp(-y <w, x>)), y in {-1, +1}.

    Real-valued y (synthesised labels) are allowed; the loss is evaluated as softplus(-y m)
    so it is stable for large margins.

    References: LAST Sec. 3.2.1.
    """

    name = "logistic"
    classification = True
    label_kind = "binary-logit"

    def __init__(self, input_dim: int) -> None:
        super().__init__(input_dim, 1)

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz = -y sigmoid(-y z)."""
        return -y * torch.sigmoid(-y * z)

    def residual_(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz = -y sigmoid(-y z), in z's memory (z is consumed); the same operations as :meth:`residual`."""
        if not can_overwrite(z, y):
            return self.residual(z, y)
        neg_y = -y
        return z.mul_(neg_y).sigmoid_().mul_(neg_y)

    def residual_label_jacobian(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """dr/dy = -sigmoid(-y z) + y z sigmoid(-y z) sigmoid(y z), [..., 1, 1] (depends on y: r is not affine in y)."""
        if y is None:
            raise ValueError("y: the logistic residual is not affine in the label; its derivative needs the label y")
        s = torch.sigmoid(-y * z)
        return (-s + y * z * s * (1.0 - s))[..., None]

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log(1 + exp(-y z)), exact at every margin."""
        # logaddexp(0, -y z) is exact at every margin (softplus switches to linear past 20,
        # which is off by up to e^-20 and breaks autograd Hessians there).
        return torch.logaddexp(torch.zeros_like(z), -y * z).sum(-1)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """sign(<w, x>) in {-1, +1} (+1 at a zero margin)."""
        m = self.outputs(w, X)
        return torch.where(m >= 0, 1.0, -1.0).to(m.dtype)

    def accuracy(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fraction of examples with sign(<w, x>) = sign(y), per run."""
        return (self.predict_labels(w, X) == torch.sign(y)).to(w.dtype).mean(-1)


class Softmax(SoftmaxClassifier, LinearLearner):
    """Softmax regression with cross-entropy, l(W; x, y) = -sum_k y_k log softmax(W^T x)_k.

    Labels are vectors (one-hot or soft). dl/dz = softmax(z) sum_k y_k - y, which is the
    familiar softmax(z) - y when the label sums to one.

    References: LAST Sec. 3.1 (soft labels), Sec. 3.2 (one-hot / simplex constraints).
    """

    name = "softmax"

    def __init__(self, input_dim: int, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        super().__init__(input_dim, num_classes)

    def residual_(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz = softmax(z) sum_k y_k - y, in z's memory (z is consumed)."""
        return softmax_residual_(z, y)
