"""Networks for distillation and evaluation, batched over R independent parameter sets.

R networks of one architecture are one computation: their parameters carry a leading run axis and
every layer runs once for all of them (grouped convolutions, batched matrix products), never a
Python loop over networks. The same code serves R = 1 (inside a distillation step) and R = 8..64
(the evaluation protocol), and its inputs may be shared by all runs (``[B, C, *spatial]``, e.g. the
test set) or per run (``[R, B, C, *spatial]``, each network's own mini-batch and augmentation).

* ``convnet``: the field's standard ConvNet (Zhao et al., ICLR 2021; Zhao & Bilen, ICML 2021 and
  WACV 2023; Cazenavette et al., CVPR 2022): ``depth`` blocks of [3x3 convolution of ``width``
  channels, instance norm, ReLU, 2x2 average pool], then a linear classifier. Width 128 is the
  field's; narrower widths are an option for CPU speed. Depth follows the image size (3 for
  28x28 and 32x32, 4 for 64x64, 1 for 8x8 digits; signals of length 40 get 3), see
  :func:`default_depth`. Signals (``[C, L]``) use 1-D convolutions of width 3.
* ``mlp``: flatten, ``depth`` hidden ReLU layers (2 by default) of ``width`` units (128 by default), linear
  classifier.

Parameters are plain dicts of tensors (``{"conv0.weight": [R, W, C, 3, 3], ...}``), so they can be
differentiated, stacked into expert trajectories (MTT) or replicated per class (DC), and are
initialised like PyTorch's default layers (uniform with bound ``1/sqrt(fan_in)``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..random import RunStreams

__all__ = ["NETS", "NetSpec", "Params", "default_depth", "make_net", "transfer_depth"]

Params = dict[str, torch.Tensor]
NETS = ("convnet", "mlp")
FIELD_WIDTH = 128


def default_depth(spatial: tuple[int, ...]) -> int:
    """ConvNet depth for an image size: the most 2x2 poolings that leave at least 3 pixels per side.

    28 and 32 -> 3, 64 -> 4 (the field's choices), 8 -> 1, signals of length 40 -> 3.
    """
    side = min(spatial)
    depth = 0
    while side // 2 >= 3:
        side //= 2
        depth += 1
    return max(1, depth)


def transfer_depth(spatial: tuple[int, ...]) -> int:
    """A second ConvNet depth for transfer: one block deeper when the size allows (>= 2 pixels left), else shallower."""
    depth = default_depth(spatial)
    if min(spatial) // (2 ** (depth + 1)) >= 2:
        return depth + 1
    return max(1, depth - 1) if depth > 1 else depth + 1


@dataclass(frozen=True)
class NetSpec:
    """An architecture: kind (``convnet`` or ``mlp``), the image shape ``(C, *spatial)``, classes, width, depth.

    ``depth`` counts ConvNet blocks (or MLP hidden layers). Instances are callables on batched
    parameters: ``spec(params, x) -> logits [R, B, K]``.
    """

    kind: str
    image_shape: tuple[int, ...]
    num_classes: int
    width: int = FIELD_WIDTH
    depth: int = 1

    def __post_init__(self) -> None:
        if self.kind not in NETS:
            raise ValueError(f"net must be one of {', '.join(NETS)}; got {self.kind!r}")
        if len(self.image_shape) not in (2, 3):
            raise ValueError(f"image_shape must be (C, L) or (C, H, W), got {self.image_shape}")
        for name in ("width", "depth", "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.kind == "convnet" and min(self.image_shape[1:]) // (2 ** self.depth) < 1:
            raise ValueError(f"depth {self.depth} pools an image of size {self.image_shape[1:]} below one pixel")

    @property
    def name(self) -> str:
        """Short label, e.g. ``convnet-w32-d3`` or ``mlp-w128``."""
        return f"{self.kind}-w{self.width}" + (f"-d{self.depth}" if self.kind == "convnet" else "")

    def to_dict(self) -> dict:
        """The spec as plain JSON types."""
        return asdict(self)

    @property
    def _dims(self) -> int:
        return len(self.image_shape) - 1

    @property
    def feature_dim(self) -> int:
        """Size of the embedding fed to the classifier."""
        if self.kind == "mlp":
            return self.width
        side = [s // (2 ** self.depth) for s in self.image_shape[1:]]
        return self.width * math.prod(side)

    def shapes(self) -> dict[str, tuple[tuple[int, ...], int]]:
        """Parameter name -> (shape without the run axis, fan-in; 0 for norm parameters)."""
        C, K, W = self.image_shape[0], self.num_classes, self.width
        out: dict[str, tuple[tuple[int, ...], int]] = {}
        if self.kind == "convnet":
            kernel = (3,) * self._dims
            for i in range(self.depth):
                cin = C if i == 0 else W
                fan = cin * 3 ** self._dims
                out[f"conv{i}.weight"] = ((W, cin, *kernel), fan)
                out[f"conv{i}.bias"] = ((W,), fan)
                out[f"norm{i}.weight"] = ((W,), 0)
                out[f"norm{i}.bias"] = ((W,), 0)
        else:
            dims = [math.prod(self.image_shape)] + [W] * self.depth
            for i in range(self.depth):
                out[f"fc{i}.weight"] = ((dims[i + 1], dims[i]), dims[i])
                out[f"fc{i}.bias"] = ((dims[i + 1],), dims[i])
        out["head.weight"] = ((K, self.feature_dim), self.feature_dim)
        out["head.bias"] = ((K,), self.feature_dim)
        return out

    def init(self, runs: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32, *, streams: RunStreams | None = None) -> Params:
        """Fresh parameters of ``runs`` networks.

        Drawn on the CPU with ``generator``, then moved: same draws on every device. With ``streams``
        (one counter-based stream per network, :class:`teachtheory.random.RunStreams` with ``runs`` runs)
        network r's parameters depend only on its own seed, so it is the same network alone or in a batch.
        """
        if streams is not None and streams.runs != runs:
            raise ValueError(f"streams has {streams.runs} runs but runs={runs}")
        params = {}
        for name, (shape, fan) in self.shapes().items():
            if fan == 0:  # norm: weight 1, bias 0
                value = torch.ones(runs, *shape) if name.endswith("weight") else torch.zeros(runs, *shape)
            else:
                bound = 1.0 / math.sqrt(fan)
                if streams is not None:
                    u = streams.uniform(f"distill-init:{name}", 0, shape, torch.float64)
                else:
                    u = torch.rand(runs, *shape, generator=generator, dtype=torch.float64)
                value = (u * 2 - 1) * bound
            params[name] = value.to(device=device, dtype=dtype)
        return params

    def activation_bytes(self, batch: int, dtype: torch.dtype = torch.float32) -> int:
        """Bytes of one network's largest activation for a mini-batch of ``batch`` inputs (the first block's output)."""
        size = self.width * (math.prod(self.image_shape[1:]) if self.kind == "convnet" else 1)
        return batch * size * torch.empty((), dtype=dtype).element_size()

    def embed(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Features before the classifier, ``[R, B, feature_dim]``.

        ``x`` is ``[B, C, *s]`` (shared) or ``[R, B, C, *s]``.
        """
        R = params["head.weight"].shape[0]
        shared = x.dim() == len(self.image_shape) + 1
        if not shared and x.shape[0] != R:
            raise ValueError(f"per-run inputs must have R={R} on their first axis, got {tuple(x.shape)}")
        if self.kind == "mlp":
            flat = x.flatten(-len(self.image_shape))
            h = flat
            for i in range(self.depth):
                w, b = params[f"fc{i}.weight"], params[f"fc{i}.bias"]
                if h.dim() == 2:  # shared input: one product for all runs
                    h = torch.einsum("bd,rhd->rbh", h, w)
                else:
                    h = torch.bmm(h, w.transpose(1, 2))
                h = F.relu(h + b[:, None, :])
            return h
        B = x.shape[-len(self.image_shape) - 1]
        if shared:
            h = x
        else:  # [R, B, C, *s] -> [B, R*C, *s]: run r's channels form group r
            h = x.transpose(0, 1).reshape(B, R * self.image_shape[0], *self.image_shape[1:])
        conv = F.conv2d if self._dims == 2 else F.conv1d
        pool = F.avg_pool2d if self._dims == 2 else F.avg_pool1d
        for i in range(self.depth):
            w = params[f"conv{i}.weight"]
            weight = w.reshape(R * w.shape[1], *w.shape[2:])
            groups = 1 if (i == 0 and shared) else R
            h = conv(h, weight, params[f"conv{i}.bias"].reshape(-1), padding=1, groups=groups)
            # instance norm = group norm with one group per channel
            h = F.group_norm(h, h.shape[1], params[f"norm{i}.weight"].reshape(-1), params[f"norm{i}.bias"].reshape(-1),
                             eps=1e-5)
            h = pool(F.relu(h), 2)
        return h.reshape(B, R, -1).transpose(0, 1)

    def __call__(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[R, B, K]`` of the R networks."""
        features = self.embed(params, x)
        return torch.baddbmm(params["head.bias"][:, None, :], features, params["head.weight"].transpose(1, 2))


def make_net(kind: str, image_shape: tuple[int, ...], num_classes: int, *, width: int | None = None,
             depth: int | None = None) -> NetSpec:
    """A :class:`NetSpec` with the field's defaults: width 128, ConvNet depth by image size (:func:`default_depth`).

    ``kind`` may also be ``convnet-dN`` (ConvNet of depth N).
    """
    if isinstance(kind, str) and kind.startswith("convnet-d") and kind[9:].isdigit():
        kind, depth = "convnet", int(kind[9:])
    if kind not in NETS:
        raise ValueError(f"net must be one of {', '.join(NETS)} or convnet-dN; got {kind!r}")
    image_shape = tuple(int(s) for s in image_shape)
    if depth is None:
        depth = default_depth(image_shape[1:]) if kind == "convnet" else 2
    return NetSpec(kind, image_shape, num_classes, width=FIELD_WIDTH if width is None else width, depth=depth)
