r"""One run-batched, functional fully connected network: the single home of every MLP in teachtheory.

Every parameter carries a leading run axis R, so R independent networks are evaluated in one batched
matmul per layer and run r's numbers depend only on its own parameters (and, at initialisation, only on
its own seed through :class:`~teachtheory.random.RunStreams`).

Representation:

* a *layer* is a pair ``(W [R, in, out], b [R, out] or None)``; a network is a list of layers, applied as
  :math:`g_l = f_{l-1} W_l + b_l`, :math:`f_l = \sigma_l(g_l)` with the hidden activation for
  :math:`l < L` and the output activation for :math:`l = L` (``W`` stored input-major, so
  ``W.reshape(R, -1)`` is the row-major ``vec`` used by the connection :math:`K_l` of the SSL code);
* the *parameters* of an :class:`Architecture` are a flat tuple ``(W1, b1, W2, b2, ...)`` (biases left out
  when ``bias=False``): what autograd, :mod:`teachtheory.unroll` and ``torch.optim`` take;
* :func:`flatten` / :func:`unflatten` convert between such tuples and one ``[R, P]`` vector (the form the
  linear-algebra learners and the L2T teacher use).

:func:`forward` returns every pre-activation and activation; :func:`backward` carries a cotangent of the
last pre-activation down to every layer (with optional extra cotangent axes, e.g. a whole Jacobian), and
:func:`weight_grads` turns those into per-example or mean weight gradients.

References:
    He, Zhang, Ren & Sun, "Delving deep into rectifiers", ICCV 2015 (the normal initialisation with
    std = gain / sqrt(fan_in)); PyTorch's ``nn.Linear`` default U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .random import RunStreams
from .validation import check_bool

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "LEAKY_SLOPE",
    "Architecture",
    "Forward",
    "Layer",
    "activation",
    "activation_derivative",
    "backward",
    "count",
    "flatten",
    "forward",
    "kaiming_gain",
    "linear",
    "unflatten",
    "weight_grads",
]

ACTIVATIONS = ("relu", "identity", "tanh", "sigmoid", "leaky_relu", "smooth_leaky_relu", "softplus")
INITS = ("kaiming_normal", "uniform", "zero")
LEAKY_SLOPE = 0.01

Layer = tuple[torch.Tensor, "torch.Tensor | None"]
StreamNames = Callable[[str, int], tuple[str, int]]


def _check_activation(name, arg: str = "act") -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"{arg} must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return name


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """Apply an activation: relu, identity, tanh, sigmoid, leaky_relu (slope 0.01), softplus, or
    smooth_leaky_relu, a x + (1 - a) softplus(10 x)/10 (a C-infinity stand-in for LeakyReLU, for checks whose
    finite differences must see a smooth function)."""
    if name == "relu":
        return torch.relu(x)
    if name == "identity":
        return x
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "leaky_relu":
        return F.leaky_relu(x, LEAKY_SLOPE)
    if name == "softplus":
        return F.softplus(x)
    if name == "smooth_leaky_relu":
        return LEAKY_SLOPE * x + (1.0 - LEAKY_SLOPE) * F.softplus(10.0 * x) / 10.0
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")


def activation_derivative(name: str, pre: torch.Tensor) -> torch.Tensor:
    """Elementwise derivative of the activation at the pre-activation ``pre`` (the gate 1[g > 0] for relu,
    0 at g = 0 as in torch's autograd)."""
    if name == "relu":
        return (pre > 0).to(pre.dtype)
    if name == "identity":
        return torch.ones_like(pre)
    if name == "tanh":
        t = torch.tanh(pre)
        return 1.0 - t * t
    if name == "sigmoid":
        s = torch.sigmoid(pre)
        return s * (1.0 - s)
    if name == "leaky_relu":
        return torch.where(pre > 0, torch.ones_like(pre), torch.full_like(pre, LEAKY_SLOPE))
    if name == "softplus":
        return _softplus_derivative(pre)
    if name == "smooth_leaky_relu":
        return LEAKY_SLOPE + (1.0 - LEAKY_SLOPE) * _softplus_derivative(10.0 * pre)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")


def _softplus_derivative(x: torch.Tensor) -> torch.Tensor:
    # torch's softplus is the identity above x = 20 (its default threshold), so its slope there is exactly 1
    return torch.where(x > 20.0, torch.ones_like(x), torch.sigmoid(x))


def kaiming_gain(name: str) -> float:
    """Gain of the normal initialisation for an activation: sqrt(2) for relu and softplus,
    sqrt(2/(1 + a^2)) for the leaky ones, 1 otherwise (LeCun normal for tanh, sigmoid and identity)."""
    _check_activation(name)
    if name in ("relu", "softplus"):
        return math.sqrt(2.0)
    if name in ("leaky_relu", "smooth_leaky_relu"):
        return math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2))
    return 1.0


# -- the network -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forward:
    """Everything a forward pass computed.

    Attributes:
        pre: g_1 .. g_L, the input of each layer's activation, each [R, ..., n_l].
        post: f_0 .. f_L with f_0 the input and f_l = activation(g_l), each [R (or 1 for f_0), ..., n_l].
    """

    pre: list[torch.Tensor]
    post: list[torch.Tensor]

    @property
    def output(self) -> torch.Tensor:
        """The network output f_L."""
        return self.post[-1]

    @property
    def hidden(self) -> list[torch.Tensor]:
        """The hidden activations f_1 .. f_{L-1}."""
        return self.post[1:-1]


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x [R or 1, ..., in] times W [R, in, out] plus b [R, out] -> [R, ..., out], one batched matmul.

    A leading 1 on x (inputs shared by all runs) broadcasts against the R weight matrices.
    """
    if W.dim() != 3:
        raise ValueError(f"W must be [R, in, out], got shape {tuple(W.shape)}")
    R = W.shape[0]
    if x.dim() < 2 or x.shape[0] not in (1, R) or x.shape[-1] != W.shape[1]:
        raise ValueError(f"input of shape {tuple(x.shape)} does not fit weights {tuple(W.shape)} (runs first)")
    middle = x.shape[1:-1]
    if b is None:
        out = torch.matmul(x.reshape(x.shape[0], -1, x.shape[-1]), W)
    else:
        if b.shape != (R, W.shape[2]):
            raise ValueError(f"b must have shape {(R, W.shape[2])} to fit W {tuple(W.shape)}, got {tuple(b.shape)}")
        x3 = x.reshape(x.shape[0], -1, x.shape[-1]).expand(R, -1, -1)
        out = torch.baddbmm(b[:, None, :], x3, W)
    return out.reshape(R, *middle, W.shape[-1])


def forward(layers: Sequence[Layer], x: torch.Tensor, *, act: str = "relu", output: str = "identity",
            hidden_norm: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Forward:
    """Run the network: hidden layers use ``act``, the last layer ``output``.

    Args:
        layers: [(W_l [R, n_{l-1}, n_l], b_l [R, n_l] or None), ...].
        x: [R or 1, ..., n_0].
        act, output: activation names (see :data:`ACTIVATIONS`).
        hidden_norm: applied to every hidden pre-activation before its activation (e.g. batch norm).

    Returns:
        :class:`Forward` with all pre-activations and activations.
    """
    _check_activation(act, "act")
    _check_activation(output, "output")
    if not layers:
        raise ValueError("layers must hold at least one (W, b) pair")
    pre, post = [], [x]
    h = x
    last = len(layers) - 1
    for l, (W, b) in enumerate(layers):
        g = linear(h, W, b)
        if l < last and hidden_norm is not None:
            g = hidden_norm(g)
        h = activation(output if l == last else act, g)
        pre.append(g)
        post.append(h)
    return Forward(pre, post)


def _back_through(grad: torch.Tensor, W: torch.Tensor, extra: int) -> torch.Tensor:
    if extra == 0:
        return torch.matmul(grad, W.transpose(-1, -2))
    return torch.einsum("r...j,rij->r...i", grad, W)


def backward(layers: Sequence[Layer], fwd: Forward, grad: torch.Tensor, *, act: str = "relu") -> list[torch.Tensor]:
    r"""Back-propagate a cotangent of the last pre-activation g_L to every layer.

    :math:`\delta_L` = ``grad``, :math:`\delta_l = (\delta_{l+1} W_{l+1}^\top) \odot \sigma'(g_l)`.

    Args:
        layers, fwd: the network and its forward pass (``act`` as in :func:`forward`).
        grad: d(something)/d g_L, [R, n, *extra, n_L]; ``extra`` cotangent axes (e.g. one per output, to
            get a whole Jacobian d f / d g_l) sit between the sample axis and the unit axis.

    Returns:
        [delta_1, ..., delta_L], delta_l [R, n, *extra, n_l].
    """
    extra = grad.dim() - fwd.pre[-1].dim()
    if extra < 0 or grad.shape[-1] != fwd.pre[-1].shape[-1]:
        raise ValueError(f"grad of shape {tuple(grad.shape)} does not fit the last pre-activation "
                         f"{tuple(fwd.pre[-1].shape)}")
    grads = [grad]
    for l in range(len(layers) - 1, 0, -1):
        gate = activation_derivative(act, fwd.pre[l - 1])
        gate = gate.reshape(*gate.shape[:-1], *([1] * extra), gate.shape[-1])
        grad = _back_through(grad, layers[l][0], extra) * gate
        grads.append(grad)
    return grads[::-1]


def weight_grads(layers: Sequence[Layer], fwd: Forward, grads: Sequence[torch.Tensor], *,
                 reduce: str = "mean") -> list[Layer]:
    """Weight (and bias) gradients from the layer cotangents of :func:`backward` (no extra axes).

    Args:
        grads: delta_l [R, n, n_l] for every layer.
        reduce: ``"mean"`` or ``"sum"`` over the n examples ([R, in, out], [R, out]), or ``"none"``
            (per example, [R, n, in, out], [R, n, out]).

    Returns:
        [(dW_l, db_l or None), ...]; db_l is None where the layer has no bias.
    """
    if reduce not in ("mean", "sum", "none"):
        raise ValueError(f"reduce must be 'mean', 'sum' or 'none', got {reduce!r}")
    out = []
    for (_, b), f, delta in zip(layers, fwd.post[:-1], grads):
        if delta.dim() != 3:
            raise ValueError(f"weight_grads needs cotangents [R, n, units], got shape {tuple(delta.shape)}")
        n = delta.shape[1]
        if reduce == "none":
            gW, gb = f.unsqueeze(-1) * delta.unsqueeze(-2), delta
        else:
            gW, gb = torch.matmul(f.transpose(-1, -2), delta), delta.sum(1)
            if reduce == "mean":
                gW, gb = gW / n, gb / n
        out.append((gW, gb if b is not None else None))
    return out


# -- flat vectors ------------------------------------------------------------------------------------


def flatten(params: Sequence[torch.Tensor], start_dim: int = 1) -> torch.Tensor:
    """Concatenate tensors along their flattened trailing dims, keeping the first ``start_dim`` dims:
    run-batched parameters -> [R, P] (``start_dim=1``); ``start_dim=0`` flattens everything."""
    if not params:
        raise ValueError("params must hold at least one tensor")
    return torch.cat([p.reshape(*p.shape[:start_dim], -1) for p in params], dim=-1)


def unflatten(flat: torch.Tensor, like: Sequence[torch.Tensor | Sequence[int]]) -> tuple[torch.Tensor, ...]:
    """Inverse of :func:`flatten`: [..., P] -> tuple of views [..., *shape].

    Args:
        flat: [..., P]; its leading dims are kept.
        like: per entry a shape (without the leading dims) or a tensor whose first ``flat.dim() - 1`` dims
            are those leading dims.
    """
    lead = flat.shape[:-1]
    shapes = [tuple(item.shape[len(lead):]) if isinstance(item, torch.Tensor) else tuple(item) for item in like]
    needed = sum(math.prod(shape) for shape in shapes)
    if needed != flat.shape[-1]:
        raise ValueError(f"flat has {flat.shape[-1]} entries per run, the parameters need {needed}")
    out, offset = [], 0
    for shape in shapes:
        n = math.prod(shape)
        out.append(flat[..., offset:offset + n].reshape(*lead, *shape))
        offset += n
    return tuple(out)


def count(params: Sequence[torch.Tensor]) -> int:
    """Parameters per run (the leading axis of every tensor is the run axis)."""
    return sum(p[0].numel() for p in params)


# -- architecture ------------------------------------------------------------------------------------


def _default_names(tag: str) -> StreamNames:
    return lambda kind, layer: (f"{tag}/{kind}{layer}", 0)


@dataclass(frozen=True)
class Architecture:
    """A fully connected network with layer widths ``sizes`` (configuration only).

    Attributes:
        sizes: widths [n_0, n_1, ..., n_L] (at least two).
        act: hidden activation. output: activation of the last layer ("identity": a linear read-out).
        bias: whether the layers have biases.
    """

    sizes: tuple[int, ...]
    act: str = "relu"
    output: str = "identity"
    bias: bool = True

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes) if isinstance(self.sizes, (list, tuple)) else self.sizes
        if (not isinstance(sizes, tuple) or len(sizes) < 2
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)):
            raise ValueError(f"sizes must be at least two positive integers, got {self.sizes!r}")
        object.__setattr__(self, "sizes", sizes)
        _check_activation(self.act, "act")
        _check_activation(self.output, "output")
        check_bool(self.bias, "bias")

    @property
    def depth(self) -> int:
        """Number of layers L."""
        return len(self.sizes) - 1

    def shapes(self) -> list[tuple[int, ...]]:
        """Per-run shapes of the parameter tuple, in order (W1, [b1], W2, [b2], ...)."""
        out: list[tuple[int, ...]] = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            out.append((fan_in, fan_out))
            if self.bias:
                out.append((fan_out,))
        return out

    @property
    def num_params(self) -> int:
        """Parameters per run."""
        return sum(math.prod(s) for s in self.shapes())

    def blocks(self) -> dict[str, slice]:
        """Slices of the flat [R, P] vector: ``"W1"``, ``"b1"``, ``"W2"``, ... (layers counted from 1)."""
        out, offset = {}, 0
        names = [f"{kind}{l}" for l in range(1, self.depth + 1) for kind in (("W", "b") if self.bias else ("W",))]
        for name, shape in zip(names, self.shapes()):
            n = math.prod(shape)
            out[name] = slice(offset, offset + n)
            offset += n
        return out

    def layers(self, params: Sequence[torch.Tensor]) -> list[Layer]:
        """The parameter tuple as [(W_l, b_l or None), ...] (checks the count and the per-run shapes)."""
        shapes = self.shapes()
        if len(params) != len(shapes):
            raise ValueError(f"params must hold {len(shapes)} tensors for sizes {list(self.sizes)} "
                             f"(bias={self.bias}), got {len(params)}")
        for i, (p, shape) in enumerate(zip(params, shapes)):
            if tuple(p.shape[1:]) != shape:
                raise ValueError(f"params[{i}] must have shape [R, {', '.join(map(str, shape))}], got {tuple(p.shape)}")
        if self.bias:
            return list(zip(params[0::2], params[1::2]))
        return [(W, None) for W in params]

    def flatten(self, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """Parameter tuple -> [R, P]."""
        self.layers(params)
        return flatten(params)

    def unflatten(self, flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """[R, P] -> parameter tuple (views of ``flat``)."""
        return unflatten(flat, self.shapes())

    def init(self, streams: RunStreams, *, scheme: str = "kaiming_normal", gain: float | None = None,
             last_gain: float | None = None, tag: str = "init", names: StreamNames | None = None,
             dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        """Initial parameters, one set per run, drawn in float64 from ``streams`` and then cast.

        Schemes (fan_in = n_{l-1}):

        * ``"kaiming_normal"``: W ~ N(0, (gain/sqrt(fan_in))^2), gain = :func:`kaiming_gain` of ``act`` by
          default; zero biases.
        * ``"uniform"``: W, b ~ U(-bound, bound), bound = gain/sqrt(fan_in), gain 1 by default (PyTorch's
          ``nn.Linear`` default; a gain scales it).
        * ``"zero"``: all zeros.

        Args:
            gain: the gain of every layer; ``last_gain`` overrides it for the last layer.
            names: ``names(kind, layer) -> (stream tag, step)`` for kind "W" or "b" and 0-based layer;
                default ``(f"{tag}/{kind}{layer}", 0)``.
        """
        if scheme not in INITS:
            raise ValueError(f"scheme must be one of {', '.join(INITS)}, got {scheme!r}")
        for arg, value in (("gain", gain), ("last_gain", last_gain)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{arg} must be a positive number or None, got {value!r}")
        names = names or _default_names(tag)
        default = kaiming_gain(self.act) if scheme == "kaiming_normal" else 1.0
        params: list[torch.Tensor] = []
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            g = default if gain is None else gain
            if layer == self.depth - 1 and last_gain is not None:
                g = last_gain
            scale = g / math.sqrt(fan_in)
            if scheme == "kaiming_normal":
                W = streams.normal(*names("W", layer), (fan_in, fan_out)) * scale
                b = torch.zeros(streams.runs, fan_out, dtype=torch.float64)
            elif scheme == "uniform":
                W = (2 * streams.uniform(*names("W", layer), (fan_in, fan_out)) - 1) * scale
                b = (2 * streams.uniform(*names("b", layer), (fan_out,)) - 1) * scale if self.bias else None
            else:
                W = torch.zeros(streams.runs, fan_in, fan_out, dtype=torch.float64)
                b = torch.zeros(streams.runs, fan_out, dtype=torch.float64)
            params.append(W.to(dtype=dtype, device=device))
            if self.bias:
                params.append(b.to(dtype=dtype, device=device))
        return tuple(params)

    def forward(self, params: Sequence[torch.Tensor], x: torch.Tensor, *,
                hidden_norm: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Forward:
        """:func:`forward` with this architecture's activations."""
        return forward(self.layers(params), x, act=self.act, output=self.output, hidden_norm=hidden_norm)

    def outputs(self, params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The network output f_L(x) [R, ..., n_L]."""
        return self.forward(params, x).output
