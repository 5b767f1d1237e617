"""Files that appear whole or not at all: atomic writes (temp file + rename), JSON, and result folders
written as transactions (built beside their destination, renamed into place when complete).

JSON encoding of numbers: JSON has no infinity or NaN, and writing them as ``null`` would hide a
diverged run. :func:`to_jsonable` therefore writes non-finite floats as the strings ``"inf"``,
``"-inf"`` and ``"nan"`` (``float("inf")`` etc. read them back); ``null`` only ever means "absent",
and wherever a result stores ``null`` a sibling key ``<key>_note`` says why.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .validation import check_writable_in, nearest_existing

__all__ = [
    "TEMP_MARK",
    "atomic_folder_update",
    "atomic_write",
    "check_writable_folder",
    "from_jsonable",
    "result_folder",
    "to_jsonable",
    "write_json",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file gets the user's usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


NON_FINITE = {math.inf: "inf", -math.inf: "-inf"}


def to_jsonable(value: Any) -> Any:
    """Numpy arrays and scalars, tensors, tuples and paths to plain JSON types.

    Non-finite floats become the strings "inf", "-inf" and "nan" (see the module docstring), never null.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if type(value).__module__ == "torch" and hasattr(value, "tolist"):  # a tensor, without importing torch here
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        return NON_FINITE.get(value, value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def from_jsonable(value: Any) -> Any:
    """The inverse of the non-finite encoding: the strings "inf", "-inf", "nan" back to floats, recursively."""
    if isinstance(value, dict):
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON at ``path``, atomically (numpy values converted by :func:`to_jsonable`)."""
    text = json.dumps(to_jsonable(data), indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode()))


TEMP_MARK = ".partial-"  # result folders under construction: .NAME.partial-PID-XXXX beside NAME


def check_writable_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse, before any work starts, a folder that cannot be created or written.

    Raises:
        ValueError: naming ``what`` and the reason (a file is in the way, no permission, read-only disk).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a folder path, got {type(path).__name__}")
    path = Path(path)
    if str(path) == "":
        raise ValueError(f"{what} must be a folder path, got ''")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} exists and is not a folder")
    # the folder is built beside its destination (in its parent) and, when it exists, written into
    for place in dict.fromkeys([nearest_existing(path.absolute().parent), *([path] if path.exists() else [])]):
        check_writable_in(place, what, path)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


ASIDE_MARK = ".replaced-"  # an old result folder moved aside while --force replaces it: .NAME.replaced-PID-NS


def _clean_stale(parent: Path, name: str) -> None:
    """Remove partial (and moved-aside) folders of ``name`` left by killed runs (their process no longer exists)."""
    for mark in (TEMP_MARK, ASIDE_MARK):
        for stale in parent.glob(f".{name}{mark}*"):
            try:
                pid = int(stale.name[len(f".{name}{mark}"):].split("-")[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block, so cleanup runs as for Ctrl-C (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signal handling alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def result_folder(out: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Build a result folder as a transaction; yields the temporary folder to write into.

    The folder is created beside ``out`` as ``.NAME.partial-PID-XXXX``; when the block ends normally it
    is renamed to ``out`` (with ``force``, an existing ``out`` is replaced whole: never a mix of old and
    new files). On any exception, Ctrl-C or SIGTERM the partial folder is removed and ``out`` is left as
    it was. A partial folder left by SIGKILL is removed by the next run into the same place.

    Raises:
        FileExistsError: ``out`` exists and is not empty, and ``force`` is False; or another run
            finished into ``out`` first.
        ValueError: ``out`` cannot be written (see :func:`check_writable_folder`).
    """
    out = check_writable_folder(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"--out {str(out)!r} exists and is not empty; pass --force to replace it")
    with _staging_folder(out) as partial:
        yield partial
        _commit(partial, out, force)


@contextlib.contextmanager
def _staging_folder(target: Path) -> Iterator[Path]:
    """A new temporary folder beside ``target``, removed at the end unless renamed; SIGTERM acts as Ctrl-C inside.

    Staging folders of killed runs for the same ``target`` are removed first.
    """
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(parent, target.name)
    stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}{TEMP_MARK}{os.getpid()}-"))
    os.chmod(stage, 0o777 & ~_umask())
    try:
        with _sigterm_as_interrupt():
            yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap_in(new: Path, target: Path, owner: Path) -> None:
    """Replace the folder ``target`` by ``new`` whole: ``target`` is moved aside (named after ``owner``, so that
    a killed run's leftover is cleaned like a staging folder), restored if the rename fails, then removed."""
    aside = owner.parent / f".{owner.name}{ASIDE_MARK}{os.getpid()}-{time.monotonic_ns()}"
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _commit(partial: Path, out: Path, force: bool) -> None:
    """Rename ``partial`` to ``out``; an existing ``out`` is moved aside first (force) and then removed."""
    if out.exists():
        if any(out.iterdir()) and not force:
            raise FileExistsError(f"--out {str(out)!r} was written by another run meanwhile; nothing replaced")
        _swap_in(partial, out, out)
    else:
        try:
            os.rename(partial, out)
        except OSError as exc:  # another run created it first
            raise FileExistsError(f"--out {str(out)!r} was written by another run meanwhile: {exc}") from exc


@contextlib.contextmanager
def atomic_folder_update(folder: str | os.PathLike, what: str = "--out") -> Iterator[Path]:
    """Write generated files into an existing (or new) folder as one step; yields a staging folder.

    Unlike :func:`result_folder`, ``folder`` may hold other files (a docs folder): only the entries
    written into the staging folder are put in place, each whole (files by an atomic rename, folders
    swapped whole), after the block ends normally. On an exception, Ctrl-C or SIGTERM nothing in
    ``folder`` changes and the staging folder is removed; one left by SIGKILL is removed by the next run.

    Raises:
        ValueError: ``folder`` cannot be written (see :func:`check_writable_folder`).
    """
    folder = check_writable_folder(folder, what)
    with _staging_folder(folder) as stage:
        yield stage
        folder.mkdir(parents=True, exist_ok=True)
        for entry in sorted(stage.iterdir()):
            target = folder / entry.name
            if entry.is_dir() and target.exists():
                _swap_in(entry, target, folder)
            else:
                os.replace(entry, target)
