"""Argument checks at the boundary of the toolkit, in one place.

Every public entry point (``teach``, :class:`~teachtheory.problems.Problem` and its generators,
``run_simulation``, the CLI) checks what it is given with these helpers before any work starts, so
a bad value is refused with one clear line naming the argument and what is accepted, never with a
traceback from deep inside torch. In the spirit of scikit-learn's ``check_scalar``: each helper
returns the value converted to its canonical type (a Python ``int`` or ``float``, a
``torch.device``, a ``torch.Tensor``), so numpy and torch scalars and numpy arrays are accepted.

Also here: the warning and error types for runs that diverge or fits that do not converge.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "MAX_SEED",
    "DivergenceWarning",
    "NonConvergenceError",
    "NonConvergenceWarning",
    "available_memory",
    "cannot_write_in",
    "check_bool",
    "check_choice",
    "check_device",
    "check_finite_scalar",
    "check_instance",
    "check_int",
    "check_memory",
    "check_names",
    "check_non_negative",
    "check_positive",
    "check_positive_int",
    "check_probability",
    "check_scalar",
    "check_seed",
    "check_seeds",
    "check_tensor",
    "check_writable_file",
    "check_writable_in",
    "format_bytes",
    "nearest_existing",
]

MAX_SEED = 2**63 - 1  # seeds are hashed as signed 64-bit integers


class DivergenceWarning(RuntimeWarning):
    """Some runs diverged (non-finite values, or a metric blew up); the message names the step."""


class NonConvergenceWarning(RuntimeWarning):
    """An iterative fit stopped above its tolerance where a local optimum is acceptable (recorded, not fatal)."""


class NonConvergenceError(RuntimeError):
    """An iterative fit stopped above its tolerance where the result must be a stationary point."""


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unwrap_scalar(value: Any, name: str) -> Any:
    """A Python number from a numpy scalar, a 0-d array or a one-element tensor; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        return value.item()
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.ndim > 1:
            raise TypeError(f"{name} must be a scalar, got an array of shape {value.shape}")
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _bounds_text(low, high, include_low=True, include_high=True) -> str:
    if low is not None and high is not None:
        return f" in {'[' if include_low else '('}{low}, {high}{']' if include_high else ')'}"
    if low is not None:
        return f" {'>=' if include_low else '>'} {low}"
    if high is not None:
        return f" {'<=' if include_high else '<'} {high}"
    return ""


def check_int(value: Any, name: str, *, min: int | None = None, max: int | None = None) -> int:
    """An integer (Python, numpy or a one-element integer tensor; not bool, not float) within [min, max].

    Raises:
        TypeError: not an integer. ValueError: out of range.
    """
    raw = value
    value = _unwrap_scalar(value, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer{_bounds_text(min, max)}, got {_describe(raw)}")
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        what = "a positive integer" if (min == 1 and max is None) else f"an integer{_bounds_text(min, max)}"
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def check_positive_int(value: Any, name: str, *, max: int | None = None) -> int:
    """An integer >= 1 (see :func:`check_int`)."""
    return check_int(value, name, min=1, max=max)


def check_scalar(
    value: Any, name: str, *, min: float | None = None, max: float | None = None, include_min: bool = True,
    include_max: bool = True, finite: bool = True,
) -> float:
    """A real number (Python, numpy or a one-element tensor; not bool, not str) within the bounds, as a float.

    Raises:
        TypeError: not a real number. ValueError: NaN, infinite (when ``finite``) or out of range.
    """
    raw = value
    value = _unwrap_scalar(value, name)
    bounds = _bounds_text(min, max, include_min, include_max)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{bounds}, got {_describe(raw)}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number{bounds}, got {value}")
    too_low = min is not None and (value < min if include_min else value <= min)
    too_high = max is not None and (value > max if include_max else value >= max)
    if too_low or too_high:
        raise ValueError(f"{name} must be a number{bounds}, got {value:g}")
    return value


def check_finite_scalar(value: Any, name: str) -> float:
    """Any finite real number, as a float."""
    return check_scalar(value, name)


def check_positive(value: Any, name: str) -> float:
    """A finite real number > 0, as a float."""
    return check_scalar(value, name, min=0.0, include_min=False)


def check_non_negative(value: Any, name: str) -> float:
    """A finite real number >= 0, as a float."""
    return check_scalar(value, name, min=0.0)


def check_probability(value: Any, name: str, *, include_one: bool = True) -> float:
    """A number in [0, 1] (or [0, 1) when ``include_one`` is False)."""
    return check_scalar(value, name, min=0.0, max=1.0, include_max=include_one)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """One of ``choices`` (exact, case-sensitive string match).

    Raises:
        TypeError: not a string. ValueError: not one of the choices (the message lists them).
    """
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(map(repr, choices))}; got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """True or False itself (not 0 or 1, nor a string).

    Raises:
        TypeError: anything else.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return value


def check_names(value: Any, name: str, choices: Iterable[str]) -> tuple[str, ...]:
    """A sequence of names, each one of ``choices`` (a bare string is refused: it is not a sequence of names)."""
    choices = tuple(choices)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of names such as {choices[:2]!r}, not the string {value!r}")
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of names from {', '.join(choices)}; got {_describe(value)}")
    names = tuple(value)
    bad = [v for v in names if not isinstance(v, str) or v not in choices]
    if bad:
        raise ValueError(f"{name}: unknown name(s) {bad!r}; accepted: {', '.join(choices)}")
    return names


_DEVICE = re.compile(r"^(cpu|cuda|mps)(:(\d+))?$")


def check_device(device: Any, name: str = "device") -> torch.device:
    """A device this machine has: "cpu", "cuda", "cuda:N" (N below the GPU count), "mps", or a torch.device.

    Raises:
        TypeError: not a string or torch.device. ValueError: unknown, unavailable or out-of-range device.
    """
    if isinstance(device, torch.device):
        text = str(device)
    elif isinstance(device, str):
        text = device
    else:
        raise TypeError(f"{name} must be a string such as 'cpu' or 'cuda:0', got {_describe(device)}")
    match = _DEVICE.match(text)
    if match is None:
        raise ValueError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or 'mps' (lower case), got {text!r}")
    kind, index = match.group(1), match.group(3)
    if kind == "cpu" and index not in (None, "0"):
        raise ValueError(f"{name} {text!r}: there is one CPU device; use 'cpu'")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {text!r} requested but CUDA is not available on this machine; use 'cpu'")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise ValueError(f"{name} {text!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"{name} {text!r} requested but MPS is not available on this machine; use 'cpu'")
    return torch.device(text)


def check_seed(seed: Any, name: str = "seed", *, runs: int = 1) -> int:
    """A seed: an integer in [0, 2^63 - 1]; with ``runs`` > 1, run r uses seed + r, so seed + runs - 1 must fit too."""
    value = check_int(seed, name, min=0, max=MAX_SEED)
    if value + runs - 1 > MAX_SEED:
        raise ValueError(f"{name} + runs - 1 = {value + runs - 1} exceeds the largest seed 2^63 - 1 "
                         "(run r uses seed + r)")
    return value


def check_seeds(seed: Any, runs: int | None = None, name: str = "seed") -> torch.Tensor:
    """Per-run seeds as int64 [R] from one int (run r gets seed + r) or one seed per run (sequence, array, tensor).

    Raises:
        TypeError: not an integer or a sequence of integers. ValueError: negative, beyond 2^63 - 1, empty, or a
            count that does not match ``runs``.
    """
    if isinstance(seed, (torch.Tensor, np.ndarray)) and getattr(seed, "ndim", 1) == 0:
        seed = seed.item()
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        if runs is None:
            raise ValueError(f"runs must be given when {name} is a single integer")
        base = check_seed(seed, name, runs=runs)
        return torch.arange(runs, dtype=torch.int64) + base
    if isinstance(seed, torch.Tensor):
        if seed.is_floating_point() or seed.is_complex() or seed.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, got a tensor of dtype {seed.dtype}")
        values = [int(s) for s in seed.reshape(-1).tolist()]
    elif isinstance(seed, (str, bytes)) or not isinstance(seed, Iterable):
        raise TypeError(f"{name} must be an integer or a sequence of integers, got {_describe(seed)}")
    else:
        values = [check_seed(s, f"{name}[{i}]") for i, s in enumerate(seed)]
    if not values:
        raise ValueError(f"{name}: at least one run is needed, got an empty sequence")
    for i, s in enumerate(values):
        check_seed(s, f"{name}[{i}]")
    if runs is not None and len(values) != runs:
        raise ValueError(f"{name} has {len(values)} entries but runs={runs}")
    return torch.tensor(values, dtype=torch.int64)


def check_tensor(
    value: Any, name: str, *, ndim: int | Sequence[int] | None = None, dtype: torch.dtype | None = None,
    finite: bool = True, allow_empty: bool = True,
) -> torch.Tensor:
    """A tensor (numpy arrays and nested lists are converted), optionally of a given number of dims and dtype.

    ``dtype`` converts integer or boolean input to it (labels given as ints); floating input of a different
    floating dtype is refused (mixing precisions silently is how bugs hide).

    Raises:
        TypeError: not array-like, or a floating dtype that differs from ``dtype``. ValueError: wrong number of
            dimensions, empty (when not ``allow_empty``), or NaN/inf (when ``finite``).
    """
    if isinstance(value, np.ndarray):
        if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
            raise TypeError(f"{name} must be a numeric array, got a numpy array of dtype {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, (list, tuple)):
        try:
            value = torch.as_tensor(np.asarray(value, dtype=float))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a numeric (rectangular) array, "
                            f"got a {type(value).__name__}: {exc}") from None
    elif not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(value).__name__}")
    if value.is_complex():
        raise TypeError(f"{name} must be real, got dtype {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        if value.is_floating_point() and dtype.is_floating_point:
            raise TypeError(f"{name} has dtype {value.dtype} but the problem's dtype is {dtype}; convert it first "
                            f"(e.g. .to({dtype}))")
        value = value.to(dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            dims = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {dims} dimensions, got shape {tuple(value.shape)}")
    if not allow_empty and value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)})")
    if finite and value.is_floating_point() and value.numel() and not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def check_instance(value: Any, name: str, cls: type | tuple[type, ...], what: str | None = None) -> Any:
    """``value`` if it is an instance of ``cls``; else TypeError naming the argument (None is named as such)."""
    if not isinstance(value, cls):
        expected = what or (cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls))
        got = "None" if value is None else type(value).__name__
        raise TypeError(f"{name} must be a {expected}, got {got}")
    return value


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: MemAvailable from /proc/meminfo, else free physical pages."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """Bytes as a short human-readable string (KiB, MiB, GiB, ...)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def check_memory(estimate: float, what: str, *, fraction: float = 0.8) -> None:
    """Refuse work whose memory estimate exceeds ``fraction`` of the memory available now.

    Raises:
        ValueError: naming ``what``, the estimate and what is available.
    """
    available = available_memory()
    if available is None:
        return
    if estimate > fraction * available:
        raise ValueError(f"{what} needs about {format_bytes(estimate)} of memory but {format_bytes(available)} is "
                         f"available; use fewer runs or steps")


def cannot_write_in(folder: Path) -> str | None:
    """Why no file can be created in the existing ``folder`` (found by creating and removing a probe), or None.

    A real probe, not ``os.access``: it also catches read-only file systems, pseudo file systems such as
    /proc, and a superuser's writes that permissions would not stop but the file system does.
    """
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".teachtheory-probe-")
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(probe)
    return None


def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest existing ancestor (the current folder at worst)."""
    return path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))


def check_writable_file(path: Any, name: str) -> Path:
    """A file path that can be written: not a folder, and its folder exists (or can be created) and is writable.

    Nothing is created; the check runs before any work so a run never ends in an unwritable output.

    Raises:
        TypeError: not a path. ValueError: a folder is in the way, or no permission to write there.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path, got {_describe(path)}")
    path = Path(path)
    if str(path) in ("", "."):
        raise ValueError(f"{name} must be a file path, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder; give a file path")
    check_writable_in(nearest_existing(path.parent), name, path)
    return path


def check_writable_in(place: Path, name: str, path: Path) -> None:
    """ValueError naming ``name`` and ``path`` unless ``place`` (where ``path`` is written) is a writable folder."""
    if not place.is_dir():
        raise ValueError(f"{name} {str(path)!r}: {str(place)!r} is not a folder")
    reason = cannot_write_in(place)
    if reason:
        raise ValueError(f"{name} {str(path)!r}: cannot write in {str(place)!r} ({reason})")
