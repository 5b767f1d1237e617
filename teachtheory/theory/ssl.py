r"""Closed forms of the covariance-operator theory of self-supervised learning, with sympy twins.

Setting (Tian, Yu, Chen, Ganguli 2020). A latent ``z0`` is drawn from ``p(z0)``; an augmentation
(a view) is a draw ``x ~ p(x | z0)``. For a bias-free ReLU network the output is linear in the
weights of any one layer through the *connection*

.. math:: f(x) = K_l(x)^\top \mathrm{vec}(W_l),\qquad K_l(x) = f_{l-1}(x) \otimes J_l(x)^\top,

with :math:`J_l(x) = \partial f / \partial g_l` the Jacobian of the output with respect to the
pre-activation :math:`g_l = W_l^\top f_{l-1}` (``vec`` is the row-major flattening of
:math:`W_l \in \mathbb{R}^{n_{l-1}\times n_l}`). With the augment-mean connection
:math:`\bar K_l(z_0) = E_{x|z_0} K_l(x)` and the loss
:math:`L = \tfrac12[(1+\beta)\|f(x_1) - f(x_+)\|^2 - \|f(x_1) - f(x_-)\|^2]`:

.. math:: E\,\nabla_{\mathrm{vec} W_l} L
          = -2\big(V_{z_0}[\bar K_l] - \beta\, E_{z_0} V_{x|z_0}[K_l]\big)\,\mathrm{vec}(W_l)

exactly, when (i) ``x1`` and ``x+`` are conditionally independent given ``z0``, each with law
``p(x | z0)``, and (ii) ``x-`` is independent of ``x1`` with the marginal law ``p(x)`` (its latent is
an independent draw, which may equal ``z0``). Derivation: the gradient of
:math:`\tfrac12\|f(a)-f(b)\|^2` is :math:`(K(a) - K(b))(K(a) - K(b))^\top w`, and
:math:`E[K(x_1)K(x_+)^\top] = E_{z_0}[\bar K \bar K^\top]`, :math:`E[K(x_1)K(x_-)^\top] = E\bar K\, E\bar K^\top`.
If instead the negative's latent is drawn *different* from ``z0`` the expectation changes
(:func:`pairing_gradient` with :func:`other_latent_pairing`); for ``Z`` equiprobable latents the constant becomes
:math:`-2Z/(Z-1)` (``-4`` for a binary root).

References:
    Tian, Yu, Chen, Ganguli, "Understanding Self-Supervised Learning with Dual Deep Networks",
    arXiv:2010.00578 (2020), Thm. 1 (covariance operator), Sec. 4 ('11'/'101' example), Thm. 4 (two layers);
    Tian's teacher-student talk, slides "The Covariance Operator", "One-layer one-neuron example",
    "A two-layer example".
"""

from __future__ import annotations

import torch

__all__ = [
    "BN_MODES",
    "COVARIANCE_CONSTANT",
    "bn_forward",
    "bn_input_gradient",
    "bn_weight_update",
    "commutator_misalignment",
    "directpred_predictor",
    "effective_rank",
    "infonce_distance",
    "ONE_NEURON_CONSTANT",
    "TWO_LAYER_RATE",
    "augment_mean",
    "conditional_covariance",
    "conditional_second_moment",
    "covariance_operator",
    "expected_gradient",
    "gated_augment_mean",
    "latent_covariance",
    "one_neuron_field",
    "one_neuron_inputs",
    "one_neuron_operator",
    "one_neuron_u",
    "other_latent_pairing",
    "pairing_gradient",
    "symbolic_covariance_operator",
    "symbolic_one_neuron",
    "symbolic_two_layer",
    "two_layer_vector_field",
    "uniform_other_latent_constant",
]

COVARIANCE_CONSTANT = -2.0  # E grad L = COVARIANCE_CONSTANT * V[Kbar] vec W
ONE_NEURON_CONSTANT = 0.25  # V[Kbar] = ONE_NEURON_CONSTANT / d^2 * u u^T (printed 1/(4 d^2))
TWO_LAYER_RATE = 2.0  # gradient flow of the loss of Tian et al. (2020): dw/dt = -E grad L = 2 V[Kbar] w


def _check_probs(p: torch.Tensor, name: str) -> None:
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    total = p.sum(-1)
    if not torch.allclose(total, torch.ones_like(total), atol=1e-8):
        raise ValueError(f"{name} must sum to 1 over its last axis, got sums {total.flatten()[:4].tolist()}")


def augment_mean(K: torch.Tensor, p_input: torch.Tensor) -> torch.Tensor:
    r"""Augment-mean connection :math:`\bar K(z_0) = \sum_x p(x|z_0) K(x)`.

    Args:
        K: connections at every input of a finite model, [..., N, P, O] (P = n_{l-1} n_l, O = n_L).
        p_input: p(x | z0), [Z, N], rows summing to one.

    Returns:
        [..., Z, P, O].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1.
    """
    _check_probs(p_input, "p_input")
    return torch.einsum("zn,...npo->...zpo", p_input.to(K), K)


def covariance_operator(Kbar: torch.Tensor, p_latent: torch.Tensor) -> torch.Tensor:
    r"""Covariance operator :math:`V_{z_0}[\bar K] = \sum_z p(z)(\bar K(z) - m)(\bar K(z) - m)^\top`,
    :math:`m = \sum_z p(z) \bar K(z)` (a PSD [P, P] matrix; the output axis O is summed).

    Args:
        Kbar: [..., Z, P, O]; p_latent: [Z].

    Returns:
        [..., P, P].

    References: Tian et al. 2020, Thm. 1.
    """
    _check_probs(p_latent, "p_latent")
    p = p_latent.to(Kbar)
    centred = Kbar - torch.einsum("z,...zpo->...po", p, Kbar)[..., None, :, :]
    return torch.einsum("z,...zpo,...zqo->...pq", p, centred, centred)


def conditional_covariance(K: torch.Tensor, p_input: torch.Tensor, p_latent: torch.Tensor) -> torch.Tensor:
    r""":math:`E_{z_0} V_{x|z_0}[K] = \sum_z p(z) \sum_x p(x|z) (K(x) - \bar K(z))(K(x) - \bar K(z))^\top`.

    Args:
        K: [..., N, P, O]; p_input: [Z, N]; p_latent: [Z].

    Returns:
        [..., P, P].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1.
    """
    _check_probs(p_latent, "p_latent")
    Kbar = augment_mean(K, p_input)
    centred = K[..., None, :, :, :] - Kbar[..., :, None, :, :]  # [..., Z, N, P, O]
    weights = (p_latent.to(K)[:, None] * p_input.to(K))
    return torch.einsum("zn,...znpo,...znqo->...pq", weights, centred, centred)


def expected_gradient(
    V: torch.Tensor, w: torch.Tensor, *, beta: float = 0.0, EV: torch.Tensor | None = None,
    constant: float = COVARIANCE_CONSTANT,
) -> torch.Tensor:
    r"""Predicted population gradient :math:`c\,(V_{z_0}[\bar K] - \beta E_{z_0}V_{x|z_0}[K])\,\mathrm{vec} W`, c = -2.

    Args:
        V: [..., P, P]; w: vec(W_l), [..., P]; beta: weight of the positive term minus one;
        EV: the conditional covariance (needed when beta != 0); constant: c (the claim: -2).

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1.
    """
    M = V
    if beta != 0.0:
        if EV is None:
            raise ValueError("EV (the conditional covariance E_z V_{x|z}[K]) is needed when beta != 0")
        M = V - beta * EV
    return constant * torch.einsum("...pq,...q->...p", M, w)


def conditional_second_moment(K: torch.Tensor, p_input: torch.Tensor) -> torch.Tensor:
    r""":math:`S(z) = E_{x|z}[K(x) K(x)^\top]`: K [..., N, P, O], p_input [Z, N] -> [..., Z, P, P].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1 (derivation in the module docstring).
    """
    _check_probs(p_input, "p_input")
    return torch.einsum("zn,...npo,...nqo->...zpq", p_input.to(K), K, K)


def other_latent_pairing(p_latent: torch.Tensor) -> torch.Tensor:
    r"""Joint law of the (anchor, negative) latents when the negative's latent is drawn from p(z)
    restricted to :math:`z' \ne z` (the anchor keeps its law p): :math:`\pi(z, z') = p(z)p(z')/(1 - p(z))`, [Z, Z].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1 (its negative-pair assumption, which this law departs from).
    """
    _check_probs(p_latent, "p_latent")
    p = p_latent
    if (p >= 1.0 - 1e-12).any():
        raise ValueError("p_latent: other-latent negatives need at least two latents with positive probability")
    pi = p[:, None] * p[None, :] / (1.0 - p[:, None])
    return pi * (1.0 - torch.eye(p.shape[0], dtype=p.dtype, device=p.device))


def pairing_gradient(
    S: torch.Tensor, Kbar: torch.Tensor, p_latent: torch.Tensor, pi_negative: torch.Tensor, w: torch.Tensor,
    *, beta: float = 0.0,
) -> torch.Tensor:
    r"""Population gradient of :math:`\tfrac12[(1+\beta)d_+^2 - d_-^2]` for any law of the negative pair.

    Positive pairs: z ~ p, x1, x+ i.i.d. p(x|z). Negative pair (x1, x-): latents (z, z') ~ pi, then
    independent augmentations. With :math:`S(z) = E[KK^\top|z]`:

    .. math:: \Big[2(1+\beta)\sum_z p(z)\big(S(z) - \bar K(z)\bar K(z)^\top\big)
              - \sum_{z,z'} \pi(z,z')\big(S(z) + S(z')
              - \bar K(z)\bar K(z')^\top - \bar K(z')\bar K(z)^\top\big)\Big] w.

    With :math:`\pi = p \otimes p` this is :math:`-2(V - \beta E V_{x|z}) w`; with :func:`other_latent_pairing` and
    Z equiprobable latents it is :math:`-\tfrac{2Z}{Z-1} V w + 2\beta E V_{x|z} w`.

    Args:
        S: [..., Z, P, P]; Kbar: [..., Z, P, O]; p_latent: [Z]; pi_negative: [Z, Z]; w: [..., P].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1 (derivation in the module docstring).
    """
    _check_probs(p_latent, "p_latent")
    p, pi = p_latent.to(Kbar), pi_negative.to(Kbar)
    if pi.shape != (p.shape[0], p.shape[0]) or (pi < 0).any() or abs(float(pi.sum()) - 1.0) > 1e-8:
        raise ValueError(f"pi_negative must be a joint law on latents x latents of shape {(p.shape[0],) * 2}")
    KK = torch.einsum("...zpo,...zqo->...zpq", Kbar, Kbar)
    positive = 2.0 * (1.0 + beta) * torch.einsum("z,...zpq->...pq", p, S - KK)
    cross = torch.einsum("zy,...zpo,...yqo->...pq", pi, Kbar, Kbar)
    negative = (torch.einsum("z,...zpq->...pq", pi.sum(1), S) + torch.einsum("y,...ypq->...pq", pi.sum(0), S)
                - cross - cross.transpose(-1, -2))
    return torch.einsum("...pq,...q->...p", positive - negative, w)


def uniform_other_latent_constant(num_latents: int) -> float:
    """The constant c in E grad = c V w for Z equiprobable latents and different-latent negatives: -2Z/(Z-1).

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1 (the constant -2 it replaces).
    """
    if num_latents < 2:
        raise ValueError(f"num_latents must be at least 2, got {num_latents}")
    return -2.0 * num_latents / (num_latents - 1)


# -- the '11' / '101' one-neuron example -----------------------------------------------------


def one_neuron_inputs(foreground: float = 1.0, background: float = 0.0, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """The four window contents x11, x10, x01, x00 of a receptive field of 2 (pixel values
    ``foreground`` where the pattern is, ``background`` elsewhere).

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Sec. 4 ('11'/'101' example).
    """
    a, c = float(foreground), float(background)
    return {"11": torch.tensor([a, a], dtype=dtype), "10": torch.tensor([a, c], dtype=dtype),
            "01": torch.tensor([c, a], dtype=dtype), "00": torch.tensor([c, c], dtype=dtype)}


def one_neuron_u(w: torch.Tensor, *, relu: bool = True, foreground: float = 1.0,
                 background: float = 0.0) -> torch.Tensor:
    r""":math:`u = \tilde x_{11} + \tilde x_{00} - \tilde x_{01} - \tilde x_{10}`,
    :math:`\tilde x = x\,\mathbb{1}[w^\top x > 0]`
    (through the gates; a linear node has every gate open).

    Args:
        w: the node's weights, [..., 2].

    Returns:
        u, [..., 2].

    References: Tian et al. 2020, Sec. 4; Tian's talk, slide "One-layer one-neuron example".
    """
    if w.shape[-1] != 2:
        raise ValueError(f"w must have last dimension 2 (receptive field of 2), got shape {tuple(w.shape)}")
    xs = one_neuron_inputs(foreground, background, w.dtype)
    out = torch.zeros_like(w)
    for key, sign in (("11", 1.0), ("00", 1.0), ("01", -1.0), ("10", -1.0)):
        x = xs[key].to(w.device)
        gate = ((w * x).sum(-1, keepdim=True) > 0).to(w.dtype) if relu else torch.ones_like(w[..., :1])
        out = out + sign * gate * x
    return out


def one_neuron_operator(
    w: torch.Tensor, length: int, *, relu: bool = True, foreground: float = 1.0, background: float = 0.0,
    constant: float = ONE_NEURON_CONSTANT,
) -> torch.Tensor:
    r""":math:`V_{z_0}[\bar K] = \frac{1}{4 d^2} u u^\top` for the '11'/'101' model on a circle of length d.

    Args:
        w: [..., 2]; length: d >= 4 (for d = 3, '101' is '11' wrapped around the circle).
        constant: the printed 1/4 (a power check passes another value).

    Returns:
        [..., 2, 2].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Sec. 4 ('11'/'101' example).
    """
    if int(length) < 4:
        raise ValueError(f"length must be at least 4 (for d = 3 the pattern '101' is '11' on the circle), got {length}")
    u = one_neuron_u(w, relu=relu, foreground=foreground, background=background)
    return constant / float(length) ** 2 * u[..., :, None] * u[..., None, :]


def one_neuron_field(w: torch.Tensor, length: int, *, relu: bool = True, background: float = 0.0) -> torch.Tensor:
    r"""Gradient-flow velocity :math:`\dot w = -E\nabla L = 2 V_{z_0}[\bar K(w)]\, w` of the single node, [..., 2].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Sec. 4 ('11'/'101' example).
    """
    V = one_neuron_operator(w, length, relu=relu, background=background)
    return -COVARIANCE_CONSTANT * torch.einsum("...pq,...q->...p", V, w)


# -- the two-layer example (Thm. 4) -------------------------------------------------------


def gated_augment_mean(w1: torch.Tensor, X: torch.Tensor, p_input: torch.Tensor) -> torch.Tensor:
    r""":math:`u_j(z) = E_{x|z}[x_j\,\mathbb{1}(w_{1j}^\top x_j > 0)]` for hidden nodes with their own receptive fields.

    Args:
        w1: [..., J, d] first-layer weights (node j sees the block x_j of size d).
        X: the inputs of a finite model per block, [J, N, d] (block j's possible contents).
        p_input: p(x_j | z_j) for every block, [J, Z, N].

    Returns:
        u, [..., J, Z, d].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 4 (two layers).
    """
    gates = (torch.einsum("...jd,jnd->...jn", w1, X.to(w1)) > 0).to(w1.dtype)
    return torch.einsum("jzn,...jn,jnd->...jzd", p_input.to(w1), gates, X.to(w1))


def latent_covariance(u: torch.Tensor, p_latent: torch.Tensor) -> torch.Tensor:
    r""":math:`A_j = V_{z}[u_j(z)]`: u [..., J, Z, d], p_latent [J, Z] -> [..., J, d, d].

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 4 (two layers).
    """
    p = p_latent.to(u)
    centred = u - torch.einsum("jz,...jzd->...jd", p, u)[..., None, :]
    return torch.einsum("jz,...jzd,...jze->...jde", p, centred, centred)


def two_layer_vector_field(
    w1: torch.Tensor, w2: torch.Tensor, A: torch.Tensor, rate: float = TWO_LAYER_RATE,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Thm. 4: :math:`\dot w_{2j} = c\, w_{2j}\, w_{1j}^\top A_j w_{1j}`,
    :math:`\dot{\mathbf w}_{1j} = c\, w_{2j}^2 A_j w_{1j}`.

    The printed theorem has c = 1 (time in units of the paper's positive constant); gradient flow of
    the loss of Tian et al. (2020) :math:`\tfrac12 d_+^2 - \tfrac12 d_-^2` has c = 2 (the -2 of the covariance
    operator).

    Args:
        w1: [..., J, d]; w2: [..., J]; A: [..., J, d, d].

    Returns:
        (dw1 [..., J, d], dw2 [..., J]).

    References: Tian et al. 2020, Thm. 4; Tian's talk, slide "A two-layer example".
    """
    Aw = torch.einsum("...jde,...je->...jd", A, w1)
    quad = (w1 * Aw).sum(-1)
    return rate * (w2 * w2)[..., None] * Aw, rate * w2 * quad


# -- sympy twins ----------------------------------------------------------------------------


def symbolic_covariance_operator():
    """Expected gradient of the weighted contrastive loss by an explicit sum over every triple of a
    finite model (2 latents with probability p, 1 - p; 2 augmentations each with their own
    probabilities; symbolic 2 x 1 connections K(x) and weights w).

    Returns:
        dict of sympy 2-vectors: ``independent`` = E grad - (-2)(V - beta E V_{x|z}) w (zero: the identity),
        ``other_latent`` = E grad with different-latent negatives minus the closed form of
        :func:`pairing_gradient` (zero), and ``other_latent_vs_printed`` (non-zero: with
        that pairing the printed -2 V w is wrong).

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 1.
    """
    import sympy as sp

    p, beta = sp.symbols("p beta", positive=True)
    q = sp.symbols("q0:2", positive=True)  # p(augmentation 0 | z)
    w = sp.Matrix(sp.symbols("w0:2", real=True))
    K = {(z, a): sp.Matrix(sp.symbols(f"k_{z}{a}_0:2", real=True)) for z in range(2) for a in range(2)}
    pz = {0: p, 1: 1 - p}
    pa = {(z, 0): q[z] for z in range(2)} | {(z, 1): 1 - q[z] for z in range(2)}

    def pair_grad(Ka, Kb, weight):
        D = Ka - Kb
        return weight * D * (D.T * w)[0]

    grad_ind = sp.zeros(2, 1)
    grad_oth = sp.zeros(2, 1)
    for z in range(2):
        for a in range(2):
            for b in range(2):
                pos = pz[z] * pa[(z, a)] * pa[(z, b)]
                grad_ind += (1 + beta) * pair_grad(K[(z, a)], K[(z, b)], pos)
                grad_oth += (1 + beta) * pair_grad(K[(z, a)], K[(z, b)], pos)
            for z2 in range(2):
                for c in range(2):
                    neg = pz[z] * pa[(z, a)] * pz[z2] * pa[(z2, c)]
                    grad_ind -= pair_grad(K[(z, a)], K[(z2, c)], neg)
                    if z2 != z:
                        grad_oth -= pair_grad(K[(z, a)], K[(z2, c)], neg / (1 - pz[z]))
    Kbar = {z: pa[(z, 0)] * K[(z, 0)] + pa[(z, 1)] * K[(z, 1)] for z in range(2)}
    m = pz[0] * Kbar[0] + pz[1] * Kbar[1]
    V = sum((pz[z] * (Kbar[z] - m) * (Kbar[z] - m).T for z in range(2)), sp.zeros(2, 2))
    EV = sum((pz[z] * pa[(z, a)] * (K[(z, a)] - Kbar[z]) * (K[(z, a)] - Kbar[z]).T
              for z in range(2) for a in range(2)), sp.zeros(2, 2))
    predicted = -2 * (V - beta * EV) * w
    S = {z: pa[(z, 0)] * K[(z, 0)] * K[(z, 0)].T + pa[(z, 1)] * K[(z, 1)] * K[(z, 1)].T for z in range(2)}
    pi = {(z, y): (pz[z] * pz[y] / (1 - pz[z]) if z != y else 0) for z in range(2) for y in range(2)}
    pos = 2 * (1 + beta) * sum((pz[z] * (S[z] - Kbar[z] * Kbar[z].T) for z in range(2)), sp.zeros(2, 2))
    neg = sum((pi[(z, y)] * (S[z] + S[y] - Kbar[z] * Kbar[y].T - Kbar[y] * Kbar[z].T)
               for z in range(2) for y in range(2)), sp.zeros(2, 2))
    other = (pos - neg) * w
    point = {p: sp.Rational(1, 3), beta: sp.Rational(1, 2), q[0]: sp.Rational(1, 4), q[1]: sp.Rational(2, 3),
             w[0]: 1, w[1]: -2} | {sym: sp.Rational(i % 5 - 2, 3) + i for i, sym in
                                    enumerate(sorted(set().union(*(k.free_symbols for k in K.values())), key=str))}
    return {
        "independent": sp.expand(grad_ind - predicted),
        "other_latent": sp.expand(grad_oth - other),
        # non-zero: evaluated at a rational point rather than simplified (the expression is long)
        "other_latent_vs_printed": (grad_oth - predicted).subs(point),
    }


def symbolic_one_neuron():
    """The '11'/'101' example with symbolic circle length d, pixel values a (pattern) and c
    (background) and symbolic gates g11, g10, g01, g00 in {0, 1}.

    A receptive field of 2 at positions (0, 1) sees, over the d circular shifts:
    '11' -> x11 once, x10 once, x01 once, x00 (d - 3) times; '101' -> x10 twice, x01 twice, x00 (d - 4)
    times (d >= 4). Returns (V - u u^T/(4 d^2), u_linear): both zero when the printed form is right.

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Sec. 4 ('11'/'101' example).
    """
    import sympy as sp

    d = sp.symbols("d", positive=True, integer=True)
    a, c = sp.symbols("a c", real=True)
    g = dict(zip(("11", "10", "01", "00"), sp.symbols("g11 g10 g01 g00", real=True)))
    x = {"11": sp.Matrix([a, a]), "10": sp.Matrix([a, c]), "01": sp.Matrix([c, a]), "00": sp.Matrix([c, c])}
    counts = {"11": {"11": 1, "10": 1, "01": 1, "00": d - 3}, "101": {"11": 0, "10": 2, "01": 2, "00": d - 4}}
    Kbar = {pat: sum((cnt * g[k] * x[k] for k, cnt in counts[pat].items()), sp.zeros(2, 1)) / d for pat in counts}
    m = (Kbar["11"] + Kbar["101"]) / 2
    V = sum(((Kbar[k] - m) * (Kbar[k] - m).T / 2 for k in Kbar), sp.zeros(2, 2))
    u = g["11"] * x["11"] + g["00"] * x["00"] - g["01"] * x["01"] - g["10"] * x["10"]
    gap = sp.simplify(V - u * u.T / (4 * d**2))
    u_linear = sp.simplify(u.subs({gi: 1 for gi in g.values()}))
    return gap, u_linear


def symbolic_two_layer():
    """Thm. 4 from the covariance operator for two hidden nodes with receptive fields of 2, each
    fed by its own latent (z1, z2 independent and uniform over two values, so Cov[u1, u2] = 0),
    with symbolic u_j(z_j) and weights. Returns the sympy differences (dw2, dw1) between
    2 V[Kbar] w (both layers) and the theorem's right-hand sides with rate 2 — zero vectors.

    References:
        Tian, Yu, Chen & Ganguli, arXiv 2020, Thm. 4.
    """
    import sympy as sp

    w2 = sp.symbols("v1:3", real=True)
    w1 = [sp.Matrix(sp.symbols(f"w{j}_1:3", real=True)) for j in (1, 2)]
    u = {(j, z): sp.Matrix(sp.symbols(f"u{j}{z}_1:3", real=True)) for j in (1, 2) for z in (0, 1)}
    latents = [(z1, z2) for z1 in (0, 1) for z2 in (0, 1)]
    # Kbar_1 = [w2_j u_j] stacked by node; Kbar_2 = [w1_j^T u_j]
    K1 = {z: sp.Matrix.vstack(w2[0] * u[(1, z[0])], w2[1] * u[(2, z[1])]) for z in latents}
    K2 = {z: sp.Matrix([(w1[0].T * u[(1, z[0])])[0], (w1[1].T * u[(2, z[1])])[0]]) for z in latents}

    def cov(Kz):
        m = sum((Kz[z] for z in latents), sp.zeros(Kz[latents[0]].rows, 1)) / 4
        return sum(((Kz[z] - m) * (Kz[z] - m).T for z in latents), sp.zeros(m.rows, m.rows)) / 4

    vec_w1 = sp.Matrix.vstack(*w1)
    dw1 = 2 * cov(K1) * vec_w1
    dw2 = 2 * cov(K2) * sp.Matrix(w2)
    A = {j: sum(((u[(j, z)] - (u[(j, 0)] + u[(j, 1)]) / 2) * (u[(j, z)] - (u[(j, 0)] + u[(j, 1)]) / 2).T
                 for z in (0, 1)), sp.zeros(2, 2)) / 2 for j in (1, 2)}
    thm_w2 = sp.Matrix([2 * w2[j - 1] * (w1[j - 1].T * A[j] * w1[j - 1])[0] for j in (1, 2)])
    thm_w1 = sp.Matrix.vstack(*[2 * w2[j - 1] ** 2 * A[j] * w1[j - 1] for j in (1, 2)])
    return sp.simplify(sp.expand(dw2 - thm_w2)), sp.simplify(sp.expand(dw1 - thm_w1))


# -- the InfoNCE <-> L2 identity and BatchNorm's zero-mean gradient (talk slides "SimCLR", "Is BatchNorm ...") --


def infonce_distance(r_pos: torch.Tensor, r_neg: torch.Tensor, tau: float) -> torch.Tensor:
    r"""The talk's InfoNCE on squared distances,
    :math:`L = -\log\frac{e^{-r_+/\tau}}{e^{-r_+/\tau} + \sum_{k=1}^H e^{-r_{k-}/\tau}}`, for r_pos [...] and
    r_neg [..., H] (log-sum-exp, so large distances do not underflow).

    With unit vectors :math:`r = \|u - v\|^2 = 2 - 2\,\mathrm{sim}(u, v)`, so this equals SimCLR's loss on
    similarities at temperature :math:`\tau/2` (the common factor :math:`e^{-2/\tau}` cancels).

    References:
        Tian, Yu, Chen, Ganguli (2020), Sec. 3 (talk slide "SimCLR"); Chen et al., ICML 2020 (SimCLR).
    """
    if not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    if r_neg.shape[:-1] != r_pos.shape:
        raise ValueError(f"r_neg must be [..., H] with leading shape {tuple(r_pos.shape)}, got {tuple(r_neg.shape)}")
    logits = -torch.cat([r_pos[..., None], r_neg], -1) / tau
    return -(logits[..., 0] - torch.logsumexp(logits, -1))


BN_MODES = ("mu", "sigma", "mu,sigma", "mu#", "sigma#", "mu#,sigma", "mu,sigma#", "mu#,sigma#", "none")


def bn_forward(h: torch.Tensor, mode: str = "mu,sigma", eps: float = 1e-5) -> torch.Tensor:
    r"""Batch normalisation without affine part over the batch axis -2, per the talk's ablation: ``mu``
    (x - x.mean(0)), ``sigma`` (x / x.std(0), the std taken about the batch mean), ``mu,sigma`` (both); a ``#``
    marks a detached statistic (x.mean(0).detach(), x.std(0).detach()); ``none`` is the identity.

    References:
        Tian, Yu, Chen, Ganguli (2020), Sec. 5 (talk slide "Zero-mean Gradient matters").
    """
    if mode not in BN_MODES:
        raise ValueError(f"mode must be one of {', '.join(BN_MODES)}, got {mode!r}")
    parts = set(mode.split(","))
    out = h
    if parts & {"mu", "mu#"}:
        mean = h.mean(-2, keepdim=True)
        out = out - (mean.detach() if "mu#" in parts else mean)
    if parts & {"sigma", "sigma#"}:
        s = torch.sqrt(h.var(-2, unbiased=False, keepdim=True) + eps)
        out = out / (s.detach() if "sigma#" in parts else s)
    return out


def bn_input_gradient(h: torch.Tensor, g: torch.Tensor, mode: str = "mu,sigma", eps: float = 1e-5) -> torch.Tensor:
    r"""Closed-form gradient at the input h [..., B, n] of :func:`bn_forward` given the gradient g at its output.

    Derivation: :math:`z_i = (h_i - m)/s`, m the batch mean (or 0), :math:`s = \sqrt{\mathrm{var}_B(h) + \epsilon}`
    (or 1). A live mean (:math:`\partial m/\partial h_j = 1/B`) contributes :math:`-\bar g/s`; a live scale
    (:math:`\partial s/\partial h_j = (h_j - \mu)/(Bs)`) contributes
    :math:`-\overline{g\,(h - m)/s}\;(h_j - \mu)/s^2`. So

    .. math:: \tilde g_j = \frac1s\Big[g_j - [\mu]\,\bar g - [\sigma]\,\overline{g\,(h-m)/s}\;\frac{h_j - \mu}{s}\Big],

    whose batch mean is 0 exactly when the mean is live (both subtracted terms then sum to zero with the first):
    the zero-mean property; with ``mu#`` or without centring it is not.

    References:
        Tian, Yu, Chen, Ganguli (2020), Sec. 5 (zero-mean gradient under BatchNorm; talk slides "Is BatchNorm the
        Secret Weapon?" and "Zero-mean Gradient matters").
    """
    if mode not in BN_MODES:
        raise ValueError(f"mode must be one of {', '.join(BN_MODES)}, got {mode!r}")
    parts = set(mode.split(","))
    mu = h.mean(-2, keepdim=True)
    m = mu if parts & {"mu", "mu#"} else torch.zeros_like(mu)
    if parts & {"sigma", "sigma#"}:
        s = torch.sqrt(h.var(-2, unbiased=False, keepdim=True) + eps)
    else:
        s = torch.ones_like(mu)
    out = g.clone()
    if "mu" in parts:
        out = out - g.mean(-2, keepdim=True)
    if "sigma" in parts:
        out = out - (g * (h - m) / s).mean(-2, keepdim=True) * (h - mu) / s
    return out / s


def bn_weight_update(f: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""The weight update of a layer h = W^T f followed by mean-centring, from the gradient g = -dL/dz at the centred
    output (per sample, batch axis -2): :math:`\widetilde{\Delta W} = \Delta W + \delta W^{BN}` with
    :math:`\Delta W = E_B[f g^\top]` (the update without BN) and :math:`\delta W^{BN} = -\bar f\,\bar g^\top`,
    so :math:`\widetilde{\Delta W} = E_B[f(g - \bar g)^\top] = \mathrm{Cov}_B[f, g]`.

    Returns:
        dict with ``plain`` (E_B f g^T), ``correction`` (-f_bar g_bar^T), ``modified`` (their sum), ``covariance``
        (the batch covariance of f and g), each [..., n_in, n_out].

    References:
        Tian, Yu, Chen, Ganguli (2020), Sec. 5 (talk slide "Is BatchNorm the Secret Weapon?": the zero-mean
        property and vec(~Delta W) = vec(Delta W) + vec(delta W^BN)).
    """
    B = f.shape[-2]
    plain = f.transpose(-1, -2) @ g / B
    correction = -f.mean(-2)[..., :, None] * g.mean(-2)[..., None, :]
    fc, gc = f - f.mean(-2, keepdim=True), g - g.mean(-2, keepdim=True)
    return {"plain": plain, "correction": correction, "modified": plain + correction,
            "covariance": fc.transpose(-1, -2) @ gc / B}


# -- BYOL's linear predictor (Tian, Chen, Ganguli 2021) ---------------------------------------------------------


def commutator_misalignment(Wp: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    r""":math:`\|W_p F - F W_p\|_F / (\|W_p\|_F \|F\|_F)` over the last two axes, [...]: 0 exactly when a symmetric
    :math:`W_p` and the symmetric :math:`F` share an eigenbasis (they commute), at most 2 in general.

    References:
        Tian, Chen, Ganguli, "Understanding self-supervised learning dynamics without contrastive pairs",
        ICML 2021, Sec. 4 (eigenspace alignment of the linear predictor W_p with F = E[f f^T]).
    """
    if Wp.shape[-2:] != F.shape[-2:] or Wp.shape[-1] != Wp.shape[-2]:
        raise ValueError(f"Wp and F must be square matrices of one size, got {tuple(Wp.shape)} and {tuple(F.shape)}")
    num = (Wp @ F - F @ Wp).flatten(-2).norm(dim=-1)
    return num / (Wp.flatten(-2).norm(dim=-1) * F.flatten(-2).norm(dim=-1)).clamp_min(1e-300)


def directpred_predictor(F: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    r"""DirectPred's predictor from the output correlation :math:`F = U \mathrm{diag}(s) U^\top`:
    :math:`W_p = U \mathrm{diag}(\sqrt{s_j / \max_k s_k} + \epsilon) U^\top`, which commutes with F by construction.

    References:
        Tian, Chen, Ganguli (ICML 2021), Sec. 5 (DirectPred, Eq. for p_j = sqrt(s_j) / max sqrt(s)).
    """
    s, U = torch.linalg.eigh(F)
    s = s.clamp_min(0.0)
    p = torch.sqrt(s / s.amax(-1, keepdim=True).clamp_min(1e-300)) + eps
    return U @ torch.diag_embed(p) @ U.transpose(-1, -2)


def effective_rank(F: torch.Tensor) -> torch.Tensor:
    r"""exp of the entropy of the normalised eigenvalues of a PSD matrix F (last two axes), [...]: 1 for rank one
    (a collapsed representation), n for a multiple of the identity."""
    s = torch.linalg.eigvalsh(F).clamp_min(0.0)
    p = s / s.sum(-1, keepdim=True).clamp_min(1e-300)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum(-1))
