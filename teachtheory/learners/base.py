"""The learner interface: a model with per-example loss and gradient, batched over runs.

Shapes used everywhere:
    w  [R, p]          flat parameters, one row per run
    X  [R or 1, n, d]  inputs (a leading 1 broadcasts a pool shared by all runs)
    y  [R or 1, n]     scalar labels, or [R or 1, n, K] vector / soft labels

Every learner's per-example gradient factorises through its output z (K numbers):
grad_w l = J^T r with J = dz/dw and r = dl/dz, the residual. A learner exposes r, its derivative in
the label (for teachers that synthesise labels) and J in the factored form a teacher needs
(:class:`OutputJacobian`: J e along a direction e and the Gram J J^T, per parameter block). It never
sees the target w*; the teaching objectives built on these pieces live in
:mod:`teachtheory.theory.last` and :mod:`teachtheory.teachers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Learner", "OutputJacobian", "LABEL_KINDS", "SoftmaxClassifier", "binary_softmax_residual", "check_finite",
           "can_overwrite", "softmax_residual"]

# How the label enters the gradient, a capability teachers read instead of the learner's class:
#   "real"           r = z - y, affine in a real label (least squares);
#   "binary-logit"   r = -y sigmoid(-y z), a scalar label in {-1, +1} or any real (logistic);
#   "probabilities"  r = softmax(z) 1^T y - y, linear in a (soft) class-probability label.
LABEL_KINDS = ("real", "binary-logit", "probabilities")
# softmax_residual_: from this many runs sharing one label set, labels that sum to one skip their multiply
SHARED_LABEL_RUNS = 8


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise ValueError naming ``name`` if the tensor has a NaN or infinite entry."""
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def can_overwrite(z: torch.Tensor, *others: torch.Tensor) -> bool:
    """True when a result broadcast from z and ``others`` may be written into z: it has z's shape and
    autograd does not need z's value."""
    if torch.is_grad_enabled() and (z.requires_grad or any(t.requires_grad for t in others)):
        return False
    # Every other shape must broadcast into z's, compared by hand: torch.broadcast_shapes goes through its
    # symbolic-shape machinery, tens of microseconds a call, a fifth of a one-run IMT step.
    shape = z.shape
    for t in others:
        other = t.shape
        if len(other) > len(shape) or any(o != 1 and o != s for o, s in zip(reversed(other), reversed(shape))):
            return False
    return True


def _class_major(z: torch.Tensor) -> bool:
    """True when z [..., n, K] is the transposed view of a contiguous [..., K, n] tensor (and not contiguous
    itself): the layout of the shared-pool product, where every (run, class) row runs over the examples."""
    return z.dim() >= 2 and not z.is_contiguous() and z.transpose(-1, -2).is_contiguous()


def _residual_from_probabilities(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """s sum_k y_k - y written into the probabilities s [..., n, K] (in class-major layout when s is)."""
    if _class_major(s) and y.dim() >= 2:
        # The whole computation in s's class-major layout: an elementwise op between tensors of different
        # layouts iterates with the classes innermost and runs several times slower.
        s_t, y_t = s.transpose(-1, -2), y.transpose(-1, -2)
        total = y.sum(-1, keepdim=True)
        if y.shape[:-2].numel() == 1:  # one label set for every run (the pool's): a small copy
            y_t = y_t.contiguous()
            if s.shape[:-2].numel() >= SHARED_LABEL_RUNS and s.device.type == "cpu" and bool((total == 1).all()):
                # Labels that sum to one (one-hot): s * 1 is s exactly, so the pass over all runs is skipped;
                # the check reads the labels once (on CPU: no device synchronisation).
                return s_t.sub_(y_t).transpose(-1, -2)
        return s_t.mul_(total.transpose(-1, -2)).sub_(y_t).transpose(-1, -2)
    return s.mul_(y.sum(-1, keepdim=True)).sub_(y)


def softmax_residual(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dl/dz = softmax(z) sum_k y_k - y of the cross-entropy -sum_k y_k log softmax(z)_k, over the last dim.

    A class-major z (the transposed view of a contiguous [..., K, n] tensor, e.g. the shared-pool product)
    is normalised over its class axis in that layout, vectorised over the examples: ``torch.softmax`` over
    the last dim would copy it to a contiguous tensor and then run over many tiny rows, several times slower
    for a few classes. Other strided layouts use reductions and elementwise operations, which keep them.
    """
    if z.is_contiguous():
        s = torch.softmax(z, -1)
        return s * y.sum(-1, keepdim=True) - y
    if _class_major(z) and not torch.is_grad_enabled():
        return _residual_from_probabilities(torch.softmax(z.transpose(-1, -2), -2).transpose(-1, -2), y)
    s = (z - z.amax(-1, keepdim=True)).exp()
    s = s / s.sum(-1, keepdim=True)
    return s * y.sum(-1, keepdim=True) - y


def binary_softmax_residual(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """r_1 of the two-class softmax residual from logits z [..., 2] and labels y [..., 2], as [...]; r_0 = -r_1.

    With K = 2, softmax(z)_1 = sigmoid(z_1 - z_0), so r_1 = sigmoid(z_1 - z_0) (y_0 + y_1) - y_1 and
    r_0 = (1 - sigmoid(z_1 - z_0)) (y_0 + y_1) - y_0 = -r_1 for any labels: a teacher's per-output sums
    over the two classes reduce to one output (see :func:`teachtheory.teachers.imt.scores_along`).
    """
    r = torch.sub(z[..., 1], z[..., 0]).sigmoid_()
    total = y[..., 0] + y[..., 1]
    if total.device.type != "cpu" or not bool((total == 1).all()):  # labels that sum to one skip the multiply
        r.mul_(total)
    return r.sub_(y[..., 1])


def softmax_residual_(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`softmax_residual` written into z (consumed) when :func:`can_overwrite` allows it."""
    if not can_overwrite(z, y):
        return softmax_residual(z, y)
    if _class_major(z):  # a fresh softmax in the class-major layout, then in place
        return _residual_from_probabilities(torch.softmax(z.transpose(-1, -2), -2).transpose(-1, -2), y)
    z.sub_(z.amax(-1, keepdim=True)).exp_()
    z.div_(z.sum(-1, keepdim=True))
    return z.mul_(y.sum(-1, keepdim=True)).sub_(y)


@dataclass(frozen=True)
class OutputJacobian:
    """The per-example output Jacobians J_i = dz_i/dw of a batch, in the factored form teachers use.

    For every example g_i = J_i^T r_i (r_i = dl/dz_i), so with a direction e the inner product is
    <e, g_i> = (J_i e) . r_i and the squared norm is r_i^T (J_i J_i^T) r_i, per parameter block.

    Attributes:
        z: the outputs [R, n, K] (possibly a strided view).
        jvp: block name -> J_k e_k [R, n, K], the outputs' derivative along e restricted to block k.
        gram: block name -> J_k J_k^T, either [R or 1, n] (that number times I_K) or [R, n, K, K].
    """

    z: torch.Tensor
    jvp: dict[str, torch.Tensor]
    gram: dict[str, torch.Tensor]

    def grad_inner(self, r: torch.Tensor) -> torch.Tensor:
        """<e, g_i> = sum_k (J_k e_k) . r_i for residuals r [R, n, K]; [R, n]."""
        return sum((v * r).sum(-1) for v in self.jvp.values())

    def grad_sqnorm(self, r: torch.Tensor) -> torch.Tensor:
        """||g_i||^2 = sum_k r_i^T J_k J_k^T r_i for residuals r [R, n, K]; [R, n]."""
        total = 0
        for G in self.gram.values():
            if G.dim() < r.dim():
                total = total + G * (r * r).sum(-1)
            else:
                total = total + (r.unsqueeze(-2) @ G @ r.unsqueeze(-1))[..., 0, 0]
        return total


class Learner:
    """Base class. Subclasses hold configuration only (no hidden state).

    A learner defines ``output_dim`` (K, the length of the model output), whether labels
    are scalars (``scalar_labels``), how the label enters the gradient (``label_kind``, one of
    :data:`LABEL_KINDS`), and per-example loss and gradient.
    """

    name: str = "learner"
    scalar_labels: bool = True
    classification: bool = False
    label_kind: str = "real"

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
        """p, the length of the flat parameter vector."""
        raise NotImplementedError

    def label_shape(self) -> tuple[int, ...]:
        """The shape of one label: () for scalar labels, (K,) for vector labels."""
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
        self, w: torch.Tensor, e: torch.Tensor, X: torch.Tensor, y: torch.Tensor, constants: dict | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(<e, g_i>, ||g_i||^2) for every example i, both [R, n], for a direction e [R, p].

        This base version materialises the [R, n, p] gradients; learners with an
        :meth:`output_jacobian` compute both from it instead. ``constants`` are the
        :meth:`pool_constants` of X, when the caller has them.
        """
        g = self.grad(w, X, y)
        return torch.einsum("rp,rnp->rn", e, g), (g * g).sum(-1)

    def label_prediction(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """The model's prediction in label space: the centre of a magnitude constraint "around the
        prediction" (the regression output or margin <w, x>; class probabilities for softmax models)."""
        return self.outputs(w, X)

    def label_vector(self, y: torch.Tensor) -> torch.Tensor:
        """Labels in vector form [..., K]: scalar labels get a trailing axis of length 1."""
        return y[..., None] if self.scalar_labels else y

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz [..., K] from outputs z [..., K] and labels in vector form y [..., K] (:meth:`label_vector`)."""
        raise NotImplementedError(f"{self.name}: no output residual")

    def residual_(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """:meth:`residual`, written into z's memory where the learner can (z is consumed). For a whole
        pool this saves allocating (and first touching) a tensor as large as the outputs at every step."""
        return self.residual(z, y)

    def residual_label_jacobian(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """dr/dy [..., K, K], the residual's derivative in the label at outputs z (and label y, when r is
        not affine in y)."""
        raise NotImplementedError(f"{self.name}: no residual label Jacobian")

    def pool_constants(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        """Quantities of the inputs alone that :meth:`output_jacobian` reuses (e.g. squared norms): a
        teacher computes them once per pool instead of at every step. Per-example constants are shaped
        [R or 1, n, ...]; the names of any others start with an underscore."""
        return {}

    def output_jacobian(
        self, w: torch.Tensor, X: torch.Tensor, e: torch.Tensor, constants: dict | None = None,
    ) -> OutputJacobian:
        """The outputs z, J e along a direction e [R, p] and the Gram J J^T, per parameter block.

        ``constants`` are :meth:`pool_constants` of X (computed here when None).
        """
        raise NotImplementedError(f"{self.name}: no factored output Jacobian")

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Hard predictions in the label format ({-1,+1}, class index, or real value)."""
        raise NotImplementedError

    def accuracy(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fraction of correct hard predictions per run, [R] (classification only)."""
        raise TypeError(f"{self.name} is not a classifier: accuracy is undefined")

    def to_spec(self) -> dict:
        """The learner's configuration as a JSON-able dict."""
        return {"name": self.name, "input_dim": self.input_dim, "output_dim": self.output_dim}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_spec().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SoftmaxClassifier(Learner):
    """A classifier with softmax cross-entropy on its logits z = :meth:`outputs` [R, n, K] and (soft) probability
    labels: the loss, residual and read-outs that depend on the logits only, whatever computes them (softmax
    regression, the MLP, the ConvNet)."""

    scalar_labels = False
    classification = True
    label_kind = "probabilities"

    def loss_from_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """-sum_k y_k log softmax(z)_k, per example."""
        return -(y * torch.log_softmax(z, -1)).sum(-1)

    def loss(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example cross-entropy [R, n] of the logits against the (soft) labels y [R, n, K]."""
        return self.loss_from_logits(self.outputs(w, X), y)

    def residual(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dl/dz = softmax(z) sum_k y_k - y at the logits z [..., K]."""
        return softmax_residual(z, y)

    def residual_label_jacobian(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """dr/dy = softmax(z) 1^T - I, [..., K, K] (r is linear in y)."""
        eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        return torch.softmax(z, -1)[..., :, None] - eye

    def label_prediction(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax of the logits) [R, n, K]."""
        return torch.softmax(self.outputs(w, X), -1)

    def predict_labels(self, w: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Predicted class indices [R, n] (argmax of the logits)."""
        return self.outputs(w, X).argmax(-1)

    def accuracy(self, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fraction [R] of examples whose predicted class is the argmax of the label."""
        return (self.predict_labels(w, X) == y.argmax(-1)).to(w.dtype).mean(-1)
