"""Counter-based random streams, one per run.

Every stochastic computation in teachtheory draws its numbers from a hash of
``(seed of the run, stream tag, step, position)``. Run ``r`` therefore sees the
same numbers whether it is simulated alone or inside a batch of ``R`` runs, and
there is no global or sequential generator state: a batch of runs is exactly
the concatenation of the single runs with the same seeds.

The hash. All arithmetic is on unsigned 64-bit words, modulo 2^64. Let ``mix`` be
the 64-bit finalizer of SplitMix64 (G. L. Steele Jr., D. Lea & C. H. Flood, "Fast
splittable pseudorandom number generators", OOPSLA 2014; it is D. Stafford's
"Mix13" variant of the MurmurHash3 ``fmix64`` finalizer, from his 2011 note "Better
bit mixing: improving on MurmurHash3's 64-bit finalizer": ``z ^= z >> 30;
z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31``),
a bijection with near-full avalanche, and ``splitmix(x) = mix(x + G)`` with
``G = 0x9E3779B97F4A7C15``. Then

* run key ``K_r = splitmix(splitmix(seed_r))``, computed once per :class:`RunStreams`;
* tag key ``T = splitmix(tag)``, cached per tag (a string tag is first turned into an
  integer by :func:`stream_tag`);
* step key ``S = mix(T + (step + 1) G)``, the ``step``-th output of a SplitMix64
  generator seeded with ``T``;
* position key ``P_p = splitmix(p)``, the same for every stream, so it is cached;
* the word at position ``p`` is ``mix(K_r + S + P_p)``.

That is one keyed round of the mixer per word: a draw of ``R x n`` words costs two
adds and one ``mix`` over ``R x n`` words, everything else being cached or scalar.
The three keys are pseudo-random 64-bit words, so the inputs of ``mix`` for
different (run, step, position) differ by pseudo-random offsets; SplitMix64 itself
feeds ``mix`` the far more regular arithmetic progression ``seed + i G``. A draw of a
single word (one run, one position) is hashed with Python integers; larger draws with
numpy ``uint64`` arrays on the CPU (far cheaper per call than torch) and with torch
``int64`` tensors on other devices (same wrap-around; logical right shifts are
emulated by masking). All three give the same bits, and the uniform and integer
transforms below are exact, so those numbers do not depend on the device or the
batch; normals agree up to the device's ``log``/``cos``/``sin``.

Numbers from words:

* uniform in [0, 1): the top ``m`` bits of the word times 2^-m, where ``m`` is the
  significand width of the dtype (53 for float64, 24 for float32), so every value is
  exact and 1.0 is never returned;
* integers in [0, high): Lemire's multiply-shift, ``floor(word * high / 2^64)``, computed
  exactly from 32-bit halves (D. Lemire, "Fast random integer generation in an
  interval", ACM Transactions on Modeling and Computer Simulation 29(1), 2019). No rejection step: each
  value's probability is
  ``floor(2^64 / high) / 2^64`` or ``ceil(2^64 / high) / 2^64``, a relative bias below
  ``high / 2^64 <= 2^-32`` for the allowed ``high <= 2^32``;
* normal: Box-Muller (Box & Muller, "A note on the generation of random normal
  deviates", Ann. Math. Statist. 29, 1958) on the words at positions ``2k`` and
  ``2k + 1``, which give the normals at those two positions (``r cos t`` and ``r sin t``)
  with 53-bit uniforms, so the tail reaches ``sqrt(2 * 53 ln 2) = 8.57`` standard
  deviations.

A uniform or an integer depends only on its own position's word, and a normal only
on its pair's two words, so drawing a prefix of the first axis gives the prefix of a
longer draw. The ``*_block`` methods draw several consecutive steps in one call and
equal the step-by-step draws.
"""

from __future__ import annotations

import functools
import math
import operator
import zlib
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["RunStreams", "as_seeds", "stream_tag"]

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_MAX_HIGH = 1 << 32  # integers(): the exact 32-bit-limb multiply-shift needs high <= 2^32
_POSITION_CACHE = 1 << 20  # position keys cached up to this count (8 MiB per device)

_U64 = np.uint64
_NP_MIX1, _NP_MIX2, _NP_GOLDEN = _U64(_MIX1), _U64(_MIX2), _U64(_GOLDEN)
_LOW32 = _U64(0xFFFF_FFFF)
_S11, _S27, _S30, _S31, _S32, _S40 = (_U64(k) for k in (11, 27, 30, 31, 32, 40))
_IN_PLACE = 4096  # arrays at least this large are mixed in place
_TWO53 = _U64(1 << 53)


def _signed(value: int) -> int:
    """The int64 with the same 64 bits as the unsigned ``value``."""
    value &= _M64
    return value - (1 << 64) if value >> 63 else value


# -- the mixing function on Python ints, numpy uint64 and torch int64 ------------------------------


def _mix_int(z: int) -> int:
    """SplitMix64's finalizer on one Python int (modulo 2^64)."""
    z &= _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return z ^ (z >> 31)


def _mix_np(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on a uint64 array; large arrays are overwritten (the caller owns ``z``)."""
    if z.size < _IN_PLACE:  # numpy's in-place calls cost more per call than a fresh small array
        z = z ^ (z >> _S30)
        z = z * _NP_MIX1
        z = z ^ (z >> _S27)
        z = z * _NP_MIX2
        return z ^ (z >> _S31)
    z ^= z >> _S30
    z *= _NP_MIX1
    z ^= z >> _S27
    z *= _NP_MIX2
    z ^= z >> _S31
    return z


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 by k bits (torch's ``>>`` is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


_T_MIX1, _T_MIX2 = _signed(_MIX1), _signed(_MIX2)


def _mix_torch(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finalizer on an int64 tensor, in place (the caller owns ``z``)."""
    z ^= _srl(z, 30)
    z *= _T_MIX1
    z ^= _srl(z, 27)
    z *= _T_MIX2
    z ^= _srl(z, 31)
    return z


# -- cached keys ------------------------------------------------------------------------------------

_positions_np = np.empty(0, dtype=np.uint64)
_positions_torch: dict[torch.device, torch.Tensor] = {}


def _position_keys_np(count: int) -> np.ndarray:
    """``splitmix(p)`` for p < count, uint64; a read-only view of a shared cache when small."""
    global _positions_np
    if count <= _positions_np.size:
        return _positions_np[:count]
    # Grow geometrically up to the cap; past it, compute exactly what is asked and keep nothing.
    size = count if count > _POSITION_CACHE else min(max(count, 2 * _positions_np.size, 256), _POSITION_CACHE)
    keys = _mix_np(np.arange(size, dtype=np.uint64) + _NP_GOLDEN)
    keys.flags.writeable = False  # shared by every stream: nobody may write into it
    if size <= _POSITION_CACHE:
        _positions_np = keys
    return keys[:count]


def _position_keys_torch(count: int, device: torch.device) -> torch.Tensor:
    """``splitmix(p)`` for p < count as int64 on ``device``, cached per device when small."""
    cached = _positions_torch.get(device)
    if cached is not None and count <= cached.numel():
        return cached[:count]
    size = count if count > _POSITION_CACHE else min(max(count, 256, 2 * (0 if cached is None else cached.numel())),
                                                        _POSITION_CACHE)
    keys = torch.from_numpy(_position_keys_np(size).view(np.int64).copy()).to(device)
    if size <= _POSITION_CACHE:
        _positions_torch[device] = keys
    return keys[:count]


_position_keys_int0 = _mix_int(_GOLDEN)  # P_0, for one-word draws


def stream_tag(name: str) -> int:
    """A stable integer for a stream name (so streams never collide by accident)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@functools.lru_cache(maxsize=4096)
def _tag_key(tag: str | int) -> int:
    """``T = splitmix(tag)`` for a tag name or integer (cached: tags repeat at every step)."""
    if isinstance(tag, str):
        value = stream_tag(tag)
    elif isinstance(tag, (int, np.integer)) and not isinstance(tag, bool):
        value = int(tag)
    else:
        raise TypeError(f"tag must be a str or an int, got {type(tag).__name__}")
    return _mix_int(value + _GOLDEN)


def _step_keys(tag: str | int, step0: int, n_steps: int | None) -> int | np.ndarray:
    """``S = mix(T + (step + 1) G)``: one int for a single step, a uint64 array [n_steps] for a block."""
    tag_key = _tag_key(tag)
    if n_steps is None:
        return _mix_int(tag_key + (step0 + 1) * _GOLDEN)
    counters = np.arange(n_steps, dtype=np.uint64)
    counters += _U64((step0 + 1) & _M64)
    counters *= _NP_GOLDEN
    counters += _U64(tag_key)
    return _mix_np(counters)


def _check_shape(shape: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """The shape as a tuple of ints and its number of elements."""
    try:
        dims = tuple(operator.index(s) for s in shape)
    except TypeError as exc:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from exc
    if any(s < 0 for s in dims):
        raise ValueError(f"shape must have non-negative sizes, got {dims}")
    return dims, math.prod(dims)


def _check_step(step: int, name: str = "step") -> int:
    try:
        return operator.index(step)
    except TypeError as exc:
        raise TypeError(f"{name} must be an int, got {type(step).__name__}") from exc


def _check_steps(n_steps: int) -> int:
    n = _check_step(n_steps, "n_steps")
    if n < 0:
        raise ValueError(f"n_steps must be non-negative, got {n}")
    return n


_SIGNIFICAND: dict[torch.dtype, int] = {}


def _significand_bits(dtype: torch.dtype) -> int:
    """Bits of a uniform in [0, 1) that ``dtype`` holds exactly (53 for float64, 24 for float32)."""
    bits = _SIGNIFICAND.get(dtype)
    if bits is None:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a torch floating-point dtype, got {dtype!r}")
        bits = _SIGNIFICAND[dtype] = round(-math.log2(torch.finfo(dtype).eps)) + 1  # eps = 2^(1 - m)
    return bits


def as_seeds(seed: int | Sequence[int] | torch.Tensor, runs: int | None = None) -> torch.Tensor:
    """Per-run seeds as an int64 tensor of shape [R].

    Args:
        seed: one integer (then run r gets ``seed + r``), or one seed per run.
        runs: number of runs R when ``seed`` is a single integer.
    """
    if isinstance(seed, torch.Tensor):
        seeds = seed.to(torch.int64).reshape(-1).cpu()
    elif isinstance(seed, (int,)) and not isinstance(seed, bool):
        if runs is None or runs < 1:
            raise ValueError(f"runs must be a positive integer when seed is an int, got {runs!r}")
        seeds = torch.arange(runs, dtype=torch.int64) + int(seed)
    else:
        try:
            seeds = torch.tensor([int(s) for s in seed], dtype=torch.int64)
        except TypeError as exc:
            raise TypeError(f"seed must be an int or a sequence of ints, got {type(seed).__name__}") from exc
    if seeds.numel() == 0:
        raise ValueError("seed: at least one run is needed, got an empty sequence")
    if runs is not None and seeds.numel() != runs:
        raise ValueError(f"seed has {seeds.numel()} entries but runs={runs}")
    return seeds


class RunStreams:
    """Independent random streams for R runs, addressed by (tag, step).

    ``streams.uniform("imt", step, (n,))`` returns a tensor of shape ``[R, n]`` whose
    row r depends only on ``seeds[r]``, the tag, the step and the position. The
    ``*_block`` methods return ``[R, n_steps, *shape]``, whose slice ``[:, i]`` is the
    single-step draw at step ``step0 + i``.

    Example:
        A run draws the same numbers alone or inside a batch:

        >>> batch = RunStreams(torch.tensor([3, 4])).normal("x", 0, (2,))
        >>> alone = RunStreams(torch.tensor([4])).normal("x", 0, (2,))
        >>> batch.shape, bool(torch.equal(batch[1], alone[0]))
        (torch.Size([2, 2]), True)

    Args:
        seeds: int64 tensor [R] of per-run seeds (see :func:`as_seeds`).
        device: where the returned tensors live.
    """

    def __init__(self, seeds: torch.Tensor, device: torch.device | str = "cpu") -> None:
        self.seeds = as_seeds(seeds)
        self.device = torch.device(device)
        self._runs = int(self.seeds.numel())
        # Hash the seed twice so that nearby seeds give unrelated keys.
        self._keys_np = _mix_np(_mix_np(self.seeds.numpy().view(np.uint64) + _NP_GOLDEN) + _NP_GOLDEN)
        self._keys_np.flags.writeable = False
        # numpy on the CPU (cheaper per call); torch int64 on the device elsewhere. Same bits either way.
        self._use_numpy = self.device.type == "cpu"
        self._keys_torch: torch.Tensor | None = None

    @property
    def runs(self) -> int:
        """The number of runs R."""
        return self._runs

    def subset(self, index: slice | Sequence[int]) -> RunStreams:
        """The streams of the runs ``seeds[index]`` (each run keeps its numbers)."""
        return RunStreams(self.seeds[index], self.device)

    # -- words ----------------------------------------------------------------------------------

    def _words(self, tag: str | int, step0: int, n_steps: int | None, count: int):
        """Raw words [R, count] (n_steps None) or [R, n_steps, count]: numpy uint64 or a torch int64 tensor."""
        step_keys = _step_keys(tag, step0, n_steps)
        if self._use_numpy:
            if n_steps is None and count == 1:  # one word per run: S + P_0 is a scalar
                return _mix_np(self._keys_np + _U64((step_keys + _position_keys_int0) & _M64))[:, None]
            positions = _position_keys_np(count)
            if n_steps is None:
                return _mix_np(self._keys_np[:, None] + (positions + _U64(step_keys)))
            return _mix_np(self._keys_np[:, None, None] + (step_keys[:, None] + positions))
        if self._keys_torch is None:
            self._keys_torch = torch.from_numpy(self._keys_np.view(np.int64).copy()).to(self.device)
        positions = _position_keys_torch(count, self.device)
        if n_steps is None:
            return _mix_torch(self._keys_torch[:, None] + (positions + _signed(step_keys)))
        step_t = torch.from_numpy(step_keys.view(np.int64)).to(self.device)
        return _mix_torch(self._keys_torch[:, None, None] + (step_t[:, None] + positions))

    def _single_word(self, tag: str | int, step: int, count: int) -> int | None:
        """The one word of a one-run, one-position draw as a Python int (numpy's per-call overhead would
        dominate a single word), or None when the draw has more than one word or lives off the CPU."""
        if count != 1 or self._keys_np.size != 1 or not self._use_numpy:
            return None
        return _mix_int(int(self._keys_np[0]) + _step_keys(tag, step, None) + _position_keys_int0)

    @staticmethod
    def _tensor(values, shape: tuple[int, ...], dtype: torch.dtype | None = None) -> torch.Tensor:
        """A numpy result (uint64 words are read as int64) or a torch result as a tensor of ``shape``."""
        if isinstance(values, np.ndarray):
            if values.dtype == np.uint64:
                values = values.view(np.int64)
            values = torch.from_numpy(values.reshape(shape))  # reshaping in numpy is the cheaper call
            return values if dtype is None or values.dtype == dtype else values.to(dtype)
        return values.reshape(shape)

    def _full(self, dims: tuple[int, ...], value: float, dtype: torch.dtype) -> torch.Tensor:
        """A [1, *dims] tensor (one element) holding ``value``."""
        return torch.full((1, *dims), value, dtype=dtype)

    @staticmethod
    def _uniform_from(words, dtype: torch.dtype):
        """Exact uniforms in [0, 1): the top m bits of each word times 2^-m (numpy in, numpy out)."""
        m = _significand_bits(dtype)
        if isinstance(words, np.ndarray):
            if dtype == torch.float32:
                u = (words >> _S40).astype(np.float32)
                u *= np.float32(2.0**-24)
                return u
            u = (words >> _U64(64 - m)).astype(np.float64)
            u *= 2.0**-m
            return u  # float64; exact in any narrower dtype, cast by _tensor
        u = _srl(words, 64 - m).to(torch.float32 if dtype == torch.float32 else torch.float64)
        return (u * 2.0**-m).to(dtype)

    @staticmethod
    def _normal_from(words, count: int, dtype: torch.dtype) -> torch.Tensor:
        """Box-Muller: words 2k, 2k + 1 of the last axis (even length) give normals 2k, 2k + 1; cut to ``count``."""
        lead, width = tuple(words.shape[:-1]), words.shape[-1]
        if isinstance(words, np.ndarray):
            pairs = (words >> _S11).reshape(*lead, width // 2, 2)  # 53-bit integers k
            k1 = torch.from_numpy((_TWO53 - pairs[..., 0]).astype(np.float64))  # 2^53 - k, in [1, 2^53]
            k2 = torch.from_numpy(pairs[..., 1].astype(np.float64))
        else:
            pairs = _srl(words, 11).reshape(*lead, width // 2, 2)
            k1 = ((1 << 53) - pairs[..., 0]).to(torch.float64)
            k2 = pairs[..., 1].to(torch.float64)
        # u1 = k1 2^-53 is in (0, 1], so the log is finite; the scaling by a power of two is exact.
        radius = k1.mul_(2.0**-53).log_().mul_(-2.0).sqrt_()
        angle = k2.mul_(2.0 * math.pi * 2.0**-53)
        z = torch.empty(*lead, width // 2, 2, dtype=torch.float64, device=radius.device)
        torch.mul(radius, torch.cos(angle), out=z[..., 0])
        torch.mul(radius, angle.sin_(), out=z[..., 1])
        z = z.reshape(*lead, width)
        if count < width:
            z = z[..., :count]
        return z if dtype == torch.float64 else z.to(dtype)

    @staticmethod
    def _integers_from(words, high: int):
        """``floor(word * high / 2^64)`` from 32-bit halves (exact for high <= 2^32; numpy in, numpy out)."""
        if isinstance(words, np.ndarray):
            h = _U64(high)
            low = ((words & _LOW32) * h) >> _S32
            return (((words >> _S32) * h + low) >> _S32).view(np.int64)
        low = _srl((words & 0xFFFF_FFFF) * high, 32)
        return _srl(_srl(words, 32) * high + low, 32)

    # -- single steps ---------------------------------------------------------------------------

    def bits(self, tag: str | int, step: int, shape: Sequence[int]) -> torch.Tensor:
        """Raw 64-bit words, int64 tensor of shape [R, *shape]."""
        dims, count = _check_shape(shape)
        step = _check_step(step)
        word = self._single_word(tag, step, count)
        if word is not None:
            return self._full(dims, _signed(word), torch.int64)
        return self._tensor(self._words(tag, step, None, count), (self._runs, *dims))

    def uniform(
        self, tag: str | int, step: int, shape: Sequence[int], dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Uniform numbers in [0, 1) of the given floating dtype, shape [R, *shape]."""
        dims, count = _check_shape(shape)
        step = _check_step(step)
        m = _significand_bits(dtype)
        word = self._single_word(tag, step, count)
        if word is not None:
            return self._full(dims, (word >> (64 - m)) * 2.0**-m, dtype)  # exact in double and in dtype
        return self._tensor(self._uniform_from(self._words(tag, step, None, count), dtype), (self._runs, *dims), dtype)

    def normal(
        self, tag: str | int, step: int, shape: Sequence[int], dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Standard normal numbers (Box-Muller on pairs of positions), shape [R, *shape]."""
        dims, count = _check_shape(shape)
        _significand_bits(dtype)
        words = self._words(tag, _check_step(step), None, count + (count & 1))
        return self._normal_from(words, count, dtype).reshape(self._runs, *dims)

    def integers(self, tag: str | int, step: int, high: int, shape: Sequence[int]) -> torch.Tensor:
        """Uniform integers in [0, high), int64 tensor of shape [R, *shape]; ``1 <= high <= 2**32``."""
        high = _check_high(high)
        dims, count = _check_shape(shape)
        step = _check_step(step)
        word = self._single_word(tag, step, count)
        if word is not None:
            return self._full(dims, (word * high) >> 64, torch.int64)
        return self._tensor(self._integers_from(self._words(tag, step, None, count), high), (self._runs, *dims))

    # -- blocks of consecutive steps ------------------------------------------------------------

    def bits_block(self, tag: str | int, step0: int, n_steps: int, shape: Sequence[int]) -> torch.Tensor:
        """Raw words for steps ``step0 ... step0 + n_steps - 1``, int64 [R, n_steps, *shape]."""
        dims, count = _check_shape(shape)
        n = _check_steps(n_steps)
        return self._tensor(self._words(tag, _check_step(step0, "step0"), n, count), (self._runs, n, *dims))

    def uniform_block(self, tag: str | int, step0: int, n_steps: int, shape: Sequence[int],
                      dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """:meth:`uniform` for ``n_steps`` consecutive steps at once, [R, n_steps, *shape]."""
        dims, count = _check_shape(shape)
        n = _check_steps(n_steps)
        _significand_bits(dtype)
        u = self._uniform_from(self._words(tag, _check_step(step0, "step0"), n, count), dtype)
        return self._tensor(u, (self._runs, n, *dims), dtype)

    def normal_block(self, tag: str | int, step0: int, n_steps: int, shape: Sequence[int],
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """:meth:`normal` for ``n_steps`` consecutive steps at once, [R, n_steps, *shape]."""
        dims, count = _check_shape(shape)
        n = _check_steps(n_steps)
        _significand_bits(dtype)
        words = self._words(tag, _check_step(step0, "step0"), n, count + (count & 1))
        return self._normal_from(words, count, dtype).reshape(self._runs, n, *dims)

    def integers_block(self, tag: str | int, step0: int, n_steps: int, high: int,
                       shape: Sequence[int]) -> torch.Tensor:
        """:meth:`integers` for ``n_steps`` consecutive steps at once, int64 [R, n_steps, *shape]."""
        high = _check_high(high)
        dims, count = _check_shape(shape)
        n = _check_steps(n_steps)
        k = self._integers_from(self._words(tag, _check_step(step0, "step0"), n, count), high)
        return self._tensor(k, (self._runs, n, *dims))

    def generator(self, tag: str | int, run: int) -> torch.Generator:
        """A torch.Generator for one run, for code that needs torch's samplers."""
        word = int(self.bits(tag, 0, (1,))[run, 0])
        return torch.Generator().manual_seed(word & 0x7FFF_FFFF_FFFF_FFFF)


def _check_high(high: int) -> int:
    """``high`` as an int in [1, 2^32]."""
    try:
        value = operator.index(high)
    except TypeError as exc:
        raise TypeError(f"high must be an int, got {type(high).__name__}") from exc
    if not 1 <= value <= _MAX_HIGH:
        raise ValueError(f"high must be in [1, 2**32], got {value}")
    return value
