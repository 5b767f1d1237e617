"""Files that appear whole or not at all: atomic writes (temp file + rename), JSON, and result folders
written as transactions (built beside their destination, renamed into place when complete)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["atomic_write", "write_json", "to_jsonable", "result_folder", "check_writable_folder", "TEMP_MARK"]


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


def to_jsonable(value: Any) -> Any:
    """Numpy arrays and scalars, tuples and paths to plain JSON types; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON at ``path``, atomically (numpy values converted by :func:`to_jsonable`)."""
    text = json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode()))


TEMP_MARK = ".partial-"  # result folders under construction: .NAME.partial-PID-XXXX beside NAME


def check_writable_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse, before any work starts, a folder that cannot be created or written.

    Raises:
        ValueError: naming ``what`` and the reason (a file is in the way, no permission, read-only disk).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {str(path)!r} exists and is not a folder")
    parent = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise ValueError(f"{what} {str(path)!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(path)!r}: no permission to write in {str(parent)!r}")
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(parent: Path, name: str) -> None:
    """Remove partial folders of ``name`` left by killed runs (their process no longer exists)."""
    for stale in parent.glob(f".{name}{TEMP_MARK}*"):
        try:
            pid = int(stale.name[len(f".{name}{TEMP_MARK}"):].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
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
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(parent, out.name)
    partial = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}{TEMP_MARK}{os.getpid()}-"))
    os.chmod(partial, 0o777 & ~_umask())
    try:
        with _sigterm_as_interrupt():
            yield partial
            _commit(partial, out, force)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _commit(partial: Path, out: Path, force: bool) -> None:
    """Rename ``partial`` to ``out``; an existing ``out`` is moved aside first (force) and then removed."""
    if out.exists():
        if any(out.iterdir()) and not force:
            raise FileExistsError(f"--out {str(out)!r} was written by another run meanwhile; nothing replaced")
        aside = parent_aside = out.parent / f".{out.name}.replaced-{os.getpid()}-{time.monotonic_ns()}"
        os.rename(out, aside)
        try:
            os.rename(partial, out)
        except BaseException:
            os.rename(parent_aside, out)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        try:
            os.rename(partial, out)
        except OSError as exc:  # another run created it first
            raise FileExistsError(f"--out {str(out)!r} was written by another run meanwhile: {exc}") from exc
