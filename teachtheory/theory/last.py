r"""Closed forms of label synthesis teaching (LAST) and of the IMT greedy score: the one home of the
one-step teaching objective.

The objective of both greedy teachers is the one-step change of the squared distance to the target,

.. math:: G = \|w - \eta\nabla_w l(w; x, y) - w^*\|^2 - \|w - w^*\|^2
            = \eta^2\|\nabla_w l\|^2 - 2\eta\langle w - w^*, \nabla_w l\rangle

(LAST Eq. 1; IMT's score; DHT Eq. 4). Every learner here has a gradient of the form
:math:`\nabla_w l = J^\top r` with J = dz/dw the Jacobian of the model output z and r = dl/dz the
residual, so G is a function of r only:

.. math:: G = r^\top A r - 2 b^\top r,\quad A = \eta^2 \textstyle\sum_k c_k J_k J_k^\top,
          \quad b = \eta \textstyle\sum_k c_k J_k (w - w^*)_k

over parameter blocks k with weights c_k (LAST Eq. 4 weighs the first layer of an MLP by beta). When
the residual is affine in the label, r(y) = r_0 + M y, G is a quadratic in y (:func:`label_quadratic`).
The functions below are pure tensor functions of these pieces; the learners supply J (as J e and
J J^T, :class:`teachtheory.learners.OutputJacobian`), r and dr/dy, never w*.

References:
    Liu et al., "Iterative Teaching by Label Synthesis", NeurIPS 2021, Eq. (1)-(4).
    Liu et al., "Iterative Machine Teaching", ICML 2017 (the greedy score).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .convergence import sgd_expected_sq_error

__all__ = [
    "LabelQuadratic", "one_step_change", "greedy_score", "greedy_score_linear", "residual_quadratic",
    "residual_objective", "label_quadratic", "greedy_label_lsr", "greedy_lsr_change", "kaczmarz_projection",
    "kaczmarz_expected_sq_error", "mlp_label_objective", "LOGISTIC_CRITICAL_MARGIN",
    "symbolic_greedy_label_lsr", "symbolic_kaczmarz_identity",
    "rescaling_lsr", "rescaling_lr", "rescaling_vector_lsr", "softmax_plane_centre",
    "symbolic_rescaling", "symbolic_softmax_label_isotropy",
]

# u0 with u0 * sigmoid(u0) = 1: the margin at which the logistic residual -y sigmoid(-y m),
# seen as a function of the label y, has its only turning point.
LOGISTIC_CRITICAL_MARGIN = 1.2784645427610738


@dataclass(frozen=True)
class LabelQuadratic:
    """The greedy teaching objective as a quadratic in the label.

    G(y) = y^T H y - 2 q^T y + const, with H [..., K, K] (positive semi-definite) and q [..., K].
    ``isotropic`` is True when H is a multiple of the identity (then the constrained minimiser is
    the Euclidean projection of H^-1 q).
    """

    H: torch.Tensor
    q: torch.Tensor
    isotropic: bool


def one_step_change(w: torch.Tensor, w_star: torch.Tensor, grad: torch.Tensor, lr: float) -> torch.Tensor:
    r"""The one-step objective from its definition: \|w - \eta\nabla - w^*\|^2 - \|w - w^*\|^2.

    Computed as the difference of the two squared distances (not through the expanded form of
    :func:`greedy_score`), so it is an independent reference for the teachers' scores. Broadcasts
    over leading dims (w, w_star, grad: [..., p]).

    References: LAST Eq. (1); IMT (Liu et al. 2017); DHT (Qiu, Liu et al., AISTATS 2023) Eq. (4).
    """
    e = w - w_star
    return ((e - lr * grad) ** 2).sum(-1) - (e * e).sum(-1)


def greedy_score(inner: torch.Tensor, sqnorm: torch.Tensor, lr: float | torch.Tensor) -> torch.Tensor:
    r"""One-step change of the squared distance to the target, per candidate example.

    .. math:: \|w - \eta g - w^*\|^2 - \|w - w^*\|^2 = \eta^2 \|g\|^2 - 2\eta \langle w - w^*, g\rangle

    Args:
        inner: <w - w*, g> for each candidate, any shape.
        sqnorm: ||g||^2, same shape.
        lr: step size eta.

    References: LAST Eq. (1); IMT (Liu et al. 2017) greedy objective.
    """
    return lr * lr * sqnorm - 2.0 * lr * inner


def greedy_score_linear(
    residual: torch.Tensor, inner_x: torch.Tensor, sqnorm_x: torch.Tensor, lr: float
) -> torch.Tensor:
    r""":func:`greedy_score` for a linear learner, whose gradient is g = x r^T (r = dl/dz), per output:

    .. math:: \eta^2 \|x\|^2 r_k^2 - 2\eta r_k (E^\top x)_k = r_k\,(\eta^2 \|x\|^2 r_k - 2\eta (E^\top x)_k)

    summed over the outputs k by the caller (for one output it is the score itself). Written as three
    fused passes because IMT evaluates it for every pool example of every run at every step.
    ``inner_x`` is overwritten unless autograd needs its value.

    Args:
        residual: r [..., K]; inner_x: E^T x, E = W - W* [..., K]; sqnorm_x: ||x||^2, broadcastable
            to both; lr: eta.

    References: LAST Eq. (1)-(2); IMT (Liu et al. 2017).
    """
    a = sqnorm_x * (lr * lr)
    if torch.is_grad_enabled() and (residual.requires_grad or inner_x.requires_grad or a.requires_grad):
        return residual * (a * residual - (2.0 * lr) * inner_x)
    score = inner_x.mul_(-2.0 * lr)
    score.addcmul_(residual, a)
    return score.mul_(residual)


def residual_quadratic(
    jvp: Sequence[torch.Tensor], gram: Sequence[torch.Tensor], lr: float, weights: Sequence[float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The one-step objective as a function of the output residual r = dl/dz: G = r^T A r - 2 b^T r.

    With g = sum_k J_k^T r over parameter blocks k (J_k = dz/dw_k) and the weighted distance
    \|v\|_c^2 = sum_k c_k \|v_k\|^2,

    .. math:: \|e - \eta g\|_c^2 - \|e\|_c^2 = r^\top A r - 2 b^\top r,\quad
              A = \eta^2 \textstyle\sum_k c_k J_k J_k^\top,\quad b = \eta \textstyle\sum_k c_k J_k e_k.

    Args:
        jvp: per block, J_k e_k [..., K].
        gram: per block, J_k J_k^T: either [...] (a multiple of I_K) or [..., K, K].
        lr: eta.
        weights: per block c_k (default all 1).

    Returns:
        (A, b): A is [...] (A times I_K) when every block's Gram is a multiple of the identity, else
        [..., K, K]; b is [..., K]; the leading dims are those of the inputs broadcast together.

    References: LAST Eq. (1), Eq. (4) (the weighted MLP objective).
    """
    if len(jvp) != len(gram) or not jvp:
        raise ValueError(f"jvp and gram must list the same blocks, got {len(jvp)} and {len(gram)}")
    weights = [1.0] * len(jvp) if weights is None else [float(c) for c in weights]
    if len(weights) != len(jvp):
        raise ValueError(f"weights must have one entry per block ({len(jvp)}), got {len(weights)}")
    b = _weighted_sum(jvp, weights) * lr
    scalar = [(G, c) for G, c in zip(gram, weights) if G.dim() < jvp[0].dim()]
    full = [(G, c) for G, c in zip(gram, weights) if G.dim() >= jvp[0].dim()]
    if not full:
        A = (lr * lr) * _weighted_sum(*zip(*scalar))
        if A.shape != b.shape[:-1]:  # e.g. the norms of a pool shared by all runs
            A = A.expand(torch.broadcast_shapes(A.shape, b.shape[:-1]))
        return A, b
    A = _weighted_sum(*zip(*full))
    if scalar:
        eye = torch.eye(b.shape[-1], dtype=A.dtype, device=A.device)
        A = A + _weighted_sum(*zip(*scalar))[..., None, None] * eye
    return (lr * lr) * A, b


def _weighted_sum(tensors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """sum_k c_k t_k without multiplying by unit weights (these run on every teaching step)."""
    total = None
    for t, c in zip(tensors, weights):
        term = t if c == 1.0 else c * t
        total = term if total is None else total + term
    return total


def residual_objective(residual: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""G = r^T A r - 2 b^T r for residuals r [..., K] (A [...] meaning A I_K, or [..., K, K]); [...].

    With (A, b) from :func:`residual_quadratic` this is IMT's score of each candidate example.

    References: LAST Eq. (1); IMT (Liu et al. 2017).
    """
    if A.dim() < residual.dim():
        quad = A * (residual * residual).sum(-1)
    else:
        quad = (residual.unsqueeze(-2) @ A @ residual.unsqueeze(-1))[..., 0, 0]
    return quad - 2.0 * (b * residual).sum(-1)


def label_quadratic(
    A: torch.Tensor, b: torch.Tensor, offset: torch.Tensor | None, label_jacobian: torch.Tensor | None = None,
) -> LabelQuadratic:
    r"""G(y) = r^T A r - 2 b^T r for a residual affine in the label, r(y) = r_0 + M y, as a quadratic in y.

    .. math:: H = M^\top A M,\quad q = M^\top (b - A r_0)

    Args:
        A, b: from :func:`residual_quadratic` (A [...] is A I_K).
        offset: r_0 = r(0) [..., K], or None for 0.
        label_jacobian: M = dr/dy [..., K, K], or None for the regression residual r = z - y (M = -I),
            for which H = A and q = A z - b (isotropic when A is).

    References: LAST Eq. (1)-(2) (least squares), Sec. 3.2 (softmax), Eq. (4) (MLP).
    """
    iso = A.dim() < b.dim()
    if label_jacobian is None:
        K = b.shape[-1]
        if iso:
            H = A[..., None, None] * torch.eye(K, dtype=b.dtype, device=b.device)
            q = b.neg() if offset is None else A[..., None] * offset - b
        else:
            H = A
            q = b.neg() if offset is None else (A @ offset.unsqueeze(-1))[..., 0] - b
        return LabelQuadratic(H=H, q=q, isotropic=iso)
    M, Mt = label_jacobian, label_jacobian.transpose(-1, -2)
    H = (A[..., None, None] * Mt) @ M if iso else Mt @ A @ M
    c = b
    if offset is not None:
        c = b - (A[..., None] * offset if iso else (A @ offset.unsqueeze(-1))[..., 0])
    q = (Mt @ c.unsqueeze(-1))[..., 0]
    return LabelQuadratic(H=H, q=q, isotropic=False)


def greedy_label_lsr(
    w: torch.Tensor, w_star: torch.Tensor, x: torch.Tensor, lr: float | torch.Tensor
) -> torch.Tensor:
    r"""The greedy LAST label for the least-squares learner, broadcasting over leading dims.

    .. math:: y^* = (1 - \lambda) \langle w, x\rangle + \lambda \langle w^*, x\rangle,
              \quad \lambda = \frac{1}{\eta \langle x, x\rangle}

    Args:
        w, w_star, x: tensors [..., d] (broadcast against each other).
        lr: step size eta > 0.

    Returns:
        y* [...]. With this label the update is the Kaczmarz projection
        e' = (I - x x^T / ||x||^2) e, for every eta.

    References: LAST Eq. (3).
    """
    lam = 1.0 / (lr * (x * x).sum(-1))
    return (1.0 - lam) * (w * x).sum(-1) + lam * (w_star * x).sum(-1)


def greedy_lsr_change(inner_x: torch.Tensor, sqnorm_x: torch.Tensor) -> torch.Tensor:
    r"""The one-step change of \|w - w^*\|^2 when x is taught with its greedy LAST label (LSR, any eta):

    .. math:: \|(I - x x^\top/\|x\|^2) e\|^2 - \|e\|^2 = -\langle e, x\rangle^2 / \|x\|^2

    Args:
        inner_x: <w - w*, x>; sqnorm_x: ||x||^2 (broadcast together).

    References: LAST Eq. (3) (the label makes the step the Kaczmarz projection).
    """
    return -(inner_x * inner_x) / sqnorm_x


def kaczmarz_projection(e: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""(I - x x^T / ||x||^2) e, broadcasting over leading dims: the error after a greedy LAST step on LSR."""
    return e - ((e * x).sum(-1, keepdim=True) / (x * x).sum(-1, keepdim=True)) * x


def kaczmarz_expected_sq_error(sigma0: torch.Tensor, pool: torch.Tensor, steps: int, scale: float = 1.0
                               ) -> torch.Tensor:
    r"""Exact E||e_t||^2, t = 0..steps, for unconstrained greedy LAST on LSR with x uniform on a pool.

    With unit vectors q_i = x_i / ||x_i||, P = mean_i q_i q_i^T and Sigma_t = E[e_t e_t^T]:

    .. math:: \Sigma_{t+1} = \Sigma_t - P\Sigma_t - \Sigma_t P + \mathrm{mean}_i (q_i^T \Sigma_t q_i)\, q_i q_i^T

    (constant-step SGD on the normalised pool with step 1,
    :func:`~teachtheory.theory.convergence.sgd_expected_sq_error`).

    Args:
        sigma0: E[e_0 e_0^T], [..., d, d] (e_0 e_0^T for a fixed start).
        pool: the pool inputs [..., n, d].
        steps: number of steps T.
        scale: c, the one-step change scaled by it:
            Sigma' = Sigma + c [mean_i (q_i^T Sigma q_i) q_i q_i^T - P Sigma - Sigma P], so that
            E[||e'||^2 | e] = ||e||^2 - c e^T P e (1: the greedy step itself; other values: a perturbed decrease).

    Returns:
        [..., T + 1] expected squared distances (the trace of Sigma_t).

    References: LAST Eq. (3); randomized Kaczmarz (Strohmer & Vershynin 2009).
    """
    return sgd_expected_sq_error(sigma0, pool / pool.norm(dim=-1, keepdim=True), scale, steps, quad_weight=scale)


def mlp_label_objective(
    e_first: torch.Tensor, e_output: torch.Tensor, g_first: torch.Tensor, g_output: torch.Tensor, lr: float,
    beta: float | torch.Tensor,
) -> torch.Tensor:
    r"""LAST Eq. (4) from its definition: the MLP label objective after one step,

    .. math:: \|W - \eta\,\partial_W\ell - W^*\|_F^2 + \beta\,\|V - \eta\,\partial_V\ell - V^*\|_F^2

    with e = w - w* and g = the gradient, each split into the first layer (V) and the output layer (W),
    flattened over their last dimension ([..., p_V] and [..., p_W]). With beta = 1 it is the squared
    distance of the concatenated weights [W; V] to [W*; V*].

    References: LAST Sec. 3.2.2, Eq. (4).
    """
    out = ((e_output - lr * g_output) ** 2).sum(-1)
    return out + beta * ((e_first - lr * g_first) ** 2).sum(-1)


# -- sympy twins -----------------------------------------------------------------------


def symbolic_greedy_label_lsr():
    """Solve LAST Eq. (1) for LSR symbolically.

    In terms of m = <w, x>, m* = <w*, x>, s = <x, x> the objective is
    G(y) = eta^2 s (m - y)^2 - 2 eta (m - y)(m - m*) (Eq. 2 up to constants).

    Returns:
        (solution, printed) sympy expressions: the minimiser from dG/dy = 0 and the printed Eq. (3)
        form (1 - lambda) m + lambda m*, lambda = 1/(eta s); their difference simplifies to 0 when
        the paper's form is right. Also G''(y) = 2 eta^2 s > 0 makes it the minimum.
    """
    import sympy as sp

    y, m, m_star, s, eta = sp.symbols("y m m_star s eta", real=True)
    G = eta**2 * s * (m - y) ** 2 - 2 * eta * (m - y) * (m - m_star)
    (solution,) = sp.solve(sp.diff(G, y), y)
    lam = 1 / (eta * s)
    printed = (1 - lam) * m + lam * m_star
    return solution, printed, sp.diff(G, y, 2)


def symbolic_kaczmarz_identity():
    """e' = e - eta (<w,x> - y*) x with the greedy y* equals (I - x x^T/||x||^2) e, for d = 3, any eta.

    Returns the sympy 3-vector of differences (zero when the identity holds).
    """
    import sympy as sp

    eta = sp.symbols("eta", positive=True)
    x = sp.Matrix(sp.symbols("x1:4", real=True))
    w = sp.Matrix(sp.symbols("w1:4", real=True))
    w_star = sp.Matrix(sp.symbols("v1:4", real=True))
    s = (x.T * x)[0]
    m, m_star = (w.T * x)[0], (w_star.T * x)[0]
    lam = 1 / (eta * s)
    y_star = (1 - lam) * m + lam * m_star
    e_next = (w - eta * (m - y_star) * x) - w_star
    e = w - w_star
    projected = e - x * (x.T * e)[0] / s
    return sp.simplify(e_next - projected)


# -- gradient rescaling by the label (LAST Sec. 3.4) -------------------------------------------


def rescaling_lsr(m: torch.Tensor, y: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    r"""g(y) with grad l(w; x, y) = g(y) grad l(w; x, y_true) for least squares (scalar label).

    .. math:: g(y) = \frac{\langle w,x\rangle - y}{\langle w,x\rangle - \tilde y}

    Args:
        m: the prediction <w, x>; y: the new label; y_true: the original label (all broadcast).

    References: LAST Sec. 3.4.
    """
    return (m - y) / (m - y_true)


def rescaling_lr(m: torch.Tensor, y: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    r"""g(y) for logistic regression, l = log(1 + exp(-y <w, x>)).

    .. math:: g(y) = \frac{y\,(1 + e^{\tilde y \langle w,x\rangle})}{\tilde y\,(1 + e^{y \langle w,x\rangle})}

    Evaluated as (y sigmoid(-y m)) / (y_true sigmoid(-y_true m)), the same quantity without overflow.

    References: LAST Sec. 3.4.
    """
    return (y * torch.sigmoid(-y * m)) / (y_true * torch.sigmoid(-y_true * m))


def rescaling_vector_lsr(z: torch.Tensor, y: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    r"""Per-output g(y) for least squares with vector labels: grad' = grad diag(g(y)).

    .. math:: g(y) = (y - W^\top x) \oslash (\tilde y - W^\top x)

    The gradient x (W^T x - y)^T is a d x K matrix; the label rescales each of its K columns by
    its own factor, so for K > 1 the direction of the flattened gradient does change.

    Args:
        z: the prediction W^T x [..., K]; y, y_true: labels [..., K].

    References: LAST Sec. 3.4 (Hadamard division).
    """
    return (y - z) / (y_true - z)


def softmax_plane_centre(probs: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    r"""The centre c of the greedy objective of a softmax learner restricted to labels summing to one.

    For l = -sum_k y_k log softmax(z)_k the output gradient is softmax(z) 1^T y - y, so on
    {1^T y = 1} it is s - y and G(y) = a ||y - c||^2 + const with

    .. math:: c = s - b / a,\quad a = \eta^2 \|x\|^2,\quad b = \eta (W - W^*)^\top x.

    The greedy label over any subset of that plane (simplex, one-hot, simplex intersected with a
    ball) is the Euclidean projection of c. Off the plane G is not isotropic.

    Args:
        probs: softmax(z) [..., K]; b: [..., K]; a: [...] (positive).

    References: LAST Eq. (1), Sec. 3.2 (soft constraint).
    """
    return probs - b / a.unsqueeze(-1)


def symbolic_rescaling():
    """Derive g(y) = grad'(y) / grad(y_true) from the losses (sympy) and compare with Sec. 3.4.

    For each of LSR, LR (d = 2, scalar label) and vector LSR (d = 2, K = 2) the gradient of the
    loss in the weights is taken symbolically, the ratio of the gradient at label y to the one at
    y_true is formed componentwise, and checked to be the same for every weight coordinate
    (LSR, LR) or every row of the weight matrix (vector LSR: one factor per output column).

    Returns:
        dict name -> dict(derived=..., printed=..., difference=simplified derived - printed,
        uniform=bool: the ratio does not depend on the coordinate).
    """
    import sympy as sp

    x1, x2, w1, w2 = sp.symbols("x1 x2 w1 w2", real=True)
    y, yt = sp.symbols("y ytilde", real=True, nonzero=True)
    w, x = sp.Matrix([w1, w2]), sp.Matrix([x1, x2])
    m = (w.T * x)[0]
    out = {}

    def scalar_case(loss, printed):
        grad_y = [sp.diff(loss(y), wi) for wi in w]
        grad_t = [sp.diff(loss(yt), wi) for wi in w]
        ratios = [sp.simplify(a / b) for a, b in zip(grad_y, grad_t)]
        uniform = sp.simplify(ratios[0] - ratios[1]) == 0
        derived = ratios[0]
        return {"derived": derived, "printed": printed, "difference": sp.simplify(derived - printed),
                "uniform": bool(uniform)}

    mm = sp.Symbol("m", real=True)
    out["lsr"] = scalar_case(lambda lab: sp.Rational(1, 2) * (m - lab) ** 2, ((mm - y) / (mm - yt)).subs(mm, m))
    out["lr"] = scalar_case(lambda lab: sp.log(1 + sp.exp(-lab * m)),
                            (y * (1 + sp.exp(yt * mm)) / (yt * (1 + sp.exp(y * mm)))).subs(mm, m))
    # vector labels: W is 2 x 2, z = W^T x, loss 1/2 ||z - y||^2
    W = sp.Matrix(2, 2, sp.symbols("W11 W12 W21 W22", real=True))
    Y = sp.Matrix(sp.symbols("y1 y2", real=True))
    Yt = sp.Matrix(sp.symbols("yt1 yt2", real=True))
    z = W.T * x

    def vloss(lab):
        return sp.Rational(1, 2) * ((z - lab).T * (z - lab))[0]

    grad_y = sp.Matrix(2, 2, lambda i, k: sp.diff(vloss(Y), W[i, k]))
    grad_t = sp.Matrix(2, 2, lambda i, k: sp.diff(vloss(Yt), W[i, k]))
    ratio = sp.Matrix(2, 2, lambda i, k: sp.simplify(grad_y[i, k] / grad_t[i, k]))
    uniform = all(sp.simplify(ratio[0, k] - ratio[1, k]) == 0 for k in range(2))
    derived = sp.Matrix([ratio[0, 0], ratio[0, 1]])
    printed = sp.Matrix([(Y[k] - z[k]) / (Yt[k] - z[k]) for k in range(2)])
    out["vector-lsr"] = {"derived": derived, "printed": printed,
                         "difference": sp.simplify(derived - printed), "uniform": bool(uniform)}
    return out


def symbolic_softmax_label_isotropy(K: int = 3):
    """The greedy objective of a softmax learner as a function of the label (sympy, K classes).

    G(y) = a ||s 1^T y - y||^2 - 2 b^T (s 1^T y - y) with s on the simplex. Returns
    (hessian, plane_difference): the Hessian of G in y (2 a M^T M, not a multiple of the identity
    off the plane) and G restricted to {1^T y = 1} minus a ||y - (s - b/a)||^2, which is
    independent of y (isotropic on the plane).
    """
    import sympy as sp

    a = sp.Symbol("a", positive=True)
    s = sp.Matrix(sp.symbols(f"s1:{K + 1}", positive=True))
    b = sp.Matrix(sp.symbols(f"b1:{K + 1}", real=True))
    y = sp.Matrix(sp.symbols(f"y1:{K + 1}", real=True))
    ones = sp.ones(K, 1)
    r = s * (ones.T * y)[0] - y
    G = a * (r.T * r)[0] - 2 * (b.T * r)[0]
    hessian = sp.hessian(G, list(y))
    # restrict to the plane: y_K = 1 - sum of the others, and use sum(s) = 1
    sub = {y[K - 1]: 1 - sum(y[:K - 1]), s[K - 1]: 1 - sum(s[:K - 1])}
    centre = s - b / a
    iso = a * ((y - centre).T * (y - centre))[0]
    diff = sp.expand((G - iso).subs(sub))
    y_dependence = [sp.simplify(sp.diff(diff, yi)) for yi in y[:K - 1]]
    return hessian.subs(s[K - 1], 1 - sum(s[:K - 1])), y_dependence
