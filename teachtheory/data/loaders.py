"""Readers and writers for MNIST (IDX) and CIFAR (python pickle) files on disk.

Nothing here downloads anything: users who have MNIST or CIFAR point the
loaders at a folder that already holds the files in their usual formats.

* :func:`read_idx` / :func:`write_idx` handle LeCun's IDX format (the format
  of the MNIST distribution files), plain or gzip-compressed.
* :func:`load_mnist` finds and reads the image and label files of one split.
* :func:`load_cifar` reads the "python version" of CIFAR-10 and CIFAR-100.
* :func:`write_cifar_batch` writes a pickle batch in the real CIFAR format.
* :func:`load_class_subset` keeps a few classes and relabels them ``0..k-1``.
* :func:`safe_unpickle` reads a pickle without running code from it; it is the
  only way this package reads pickles.

All functions take and return numpy arrays. Writers are atomic: they write a
temporary file in the destination folder and move it into place with
:func:`os.replace`, so a reader never sees a half-written file.

Files are treated as untrusted input. CIFAR batches are Python pickles, and a
plain :func:`pickle.load` would run whatever code the file names; they are read
with :func:`safe_unpickle`, which admits only the globals numpy needs to rebuild
arrays plus builtin containers and refuses everything else before it is
imported or called. Every malformed file (bad header, truncation, wrong shape,
labels out of range, ...) gives one ValueError whose message names the file.
"""

from __future__ import annotations

import gzip
import io
import math
import operator
import os
import pickle
import stat
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar, Union

import numpy as np

from ..io import atomic_write

__all__ = [
    "load_cifar",
    "load_class_subset",
    "load_mnist",
    "read_idx",
    "safe_unpickle",
    "write_cifar_batch",
    "write_idx",
]

PathLike = Union[str, "os.PathLike[str]"]

# IDX type code -> big-endian numpy dtype.
_IDX_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# (dtype kind, itemsize) -> IDX type code.
_KIND_SIZE_TO_IDX_CODE: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _IDX_CODE_TO_DTYPE.items()
}
_GZIP_MAGIC = b"\x1f\x8b"
# The header byte allows 255 dimensions; numpy itself stops at 64, and no real
# data set comes close, so anything above is treated as a corrupt header.
_IDX_MAX_DIMS = 64
# Streams of unknown length are read in chunks of this size, so a header that
# claims a huge array costs only as much memory as the stream really holds.
_READ_CHUNK = 1 << 24
_MNIST_CLASSES = 10

_SPLITS = ("train", "test")
_CIFAR_VARIANTS = (10, 100)
_LABEL_MODES = ("fine", "coarse")
_CIFAR_PIXELS = 3 * 32 * 32
_CIFAR_SUBFOLDER = {10: "cifar-10-batches-py", 100: "cifar-100-python"}
# Number of classes behind each label key (CIFAR-10 labels, CIFAR-100 fine/coarse).
_CIFAR_CLASSES = {b"labels": 10, b"fine_labels": 100, b"coarse_labels": 20}


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _check_choice(name: str, value: Any, accepted: tuple[Any, ...]) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is one of ``accepted``."""
    # bool and float are excluded explicitly: True == 1 and 10.0 == 10.
    valid_type = isinstance(value, (str, int, np.integer)) and not isinstance(value, bool)
    if not valid_type or value not in accepted:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(a) for a in accepted)}; got {value!r}"
        )


def _check_folder(folder: PathLike, what: str) -> Path:
    """Return ``folder`` as a Path, raising if it is missing or not a directory."""
    path = Path(folder)
    if not path.exists():
        raise FileNotFoundError(f"{what} folder does not exist: folder={str(path)!r}")
    if not path.is_dir():
        raise NotADirectoryError(f"{what} folder is not a directory: folder={str(path)!r}")
    return path


def _atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file atomically through :func:`teachtheory.io.atomic_write`, into a folder that must exist.

    Raises:
        FileNotFoundError: If the destination folder does not exist.
    """
    dest = Path(path)
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"cannot write {str(dest)!r}: folder {str(dest.parent)!r} does not exist")
    atomic_write(dest, write)


# --------------------------------------------------------------------------- #
# restricted unpickling
# --------------------------------------------------------------------------- #
# Each global a pickle may name is mapped to an object of ours; nothing is ever
# imported by name. The callables are instances of classes with empty
# __slots__: a pickle can BUILD (setattr) on any object it holds, and this way
# it cannot retag numpy's own functions (e.g. their __module__) for the rest of
# the process.
_NUMPY_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_NUMPY_SCALAR = np.int64(0).__reduce__()[0]
_NUMPY_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_LATIN1_NAMES = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` in a pickle; only ``_reconstruct`` accepts it, nothing can call it."""

    __slots__ = ()


class _Admitted:
    """Base of the callables handed to a pickle; they check their arguments before numpy sees them."""

    __slots__ = ()
    label: ClassVar[str] = ""

    def __repr__(self) -> str:
        """Name the admitted global, for error messages."""
        return f"<admitted {self.label}>"


class _Reconstruct(_Admitted):
    """``numpy ... multiarray._reconstruct``: the empty placeholder array numpy pickles before its state."""

    __slots__ = ()
    label = "_reconstruct"

    def __call__(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        """Build the size-0 placeholder; its contents come from ``__setstate__`` and so from the file."""
        if not isinstance(subtype, _NdarrayToken):
            raise pickle.UnpicklingError("_reconstruct may only build numpy.ndarray")
        # numpy always writes shape (0,); refusing any other size keeps a
        # 30-byte pickle from allocating an arbitrarily large array.
        if not isinstance(shape, tuple) or math.prod(operator.index(d) for d in shape) != 0:
            raise pickle.UnpicklingError(f"_reconstruct placeholder must have size 0, got shape {shape!r}")
        return _NUMPY_RECONSTRUCT(np.ndarray, shape, dtype)


class _Scalar(_Admitted):
    """``numpy ... multiarray.scalar``: a numpy scalar rebuilt from its dtype and raw bytes."""

    __slots__ = ()
    label = "scalar"

    def __call__(self, *args: Any) -> Any:
        """Rebuild the scalar (its size is fixed by the dtype)."""
        return _NUMPY_SCALAR(*args)


class _FromBuffer(_Admitted):
    """``numpy ... numeric._frombuffer``: protocol-5 arrays, a view of bytes held in the file."""

    __slots__ = ()
    label = "_frombuffer"

    def __call__(self, *args: Any) -> np.ndarray:
        """Rebuild the array; its size is bounded by the bytes in the file."""
        return _NUMPY_FROMBUFFER(*args)


class _Latin1Encode(_Admitted):
    """``_codecs.encode``: how protocols 0-2 store ``bytes``; only the latin-1 form pickle writes is accepted."""

    __slots__ = ()
    label = "_codecs.encode"

    def __call__(self, text: Any, encoding: Any = "utf-8") -> bytes:
        """Encode ``text`` as latin-1; any other codec is refused."""
        if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in _LATIN1_NAMES:
            raise pickle.UnpicklingError(f"_codecs.encode is admitted only for str in latin-1, got {encoding!r}")
        return text.encode("latin-1")


class _BytesLike(_Admitted):
    """``bytes`` / ``bytearray`` as written by protocols 0-2: from nothing, from bytes, or from latin-1 text."""

    __slots__ = ()
    make: ClassVar[type] = bytes

    def __call__(self, *args: Any) -> Any:
        """Build the object; an integer size (a way to allocate memory) is refused."""
        if not args:
            return self.make()
        if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
            return self.make(args[0])
        if len(args) == 2:
            return self.make(_Latin1Encode()(*args))
        raise pickle.UnpicklingError(f"{self.make.__name__}() is admitted only from bytes or latin-1 text")


class _Bytes(_BytesLike):
    """``builtins.bytes`` in a pickle."""

    __slots__ = ()
    label = "bytes"
    make = bytes


class _Bytearray(_BytesLike):
    """``builtins.bytearray`` in a pickle."""

    __slots__ = ()
    label = "bytearray"
    make = bytearray


def _admitted_globals() -> dict[tuple[str, str], Any]:
    """The (module, name) pairs a pickle may reference, for numpy 1.x and 2.x and Python 2 and 3 writers."""
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NdarrayToken(),
        # A type that cannot be modified and only describes memory layouts.
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _Latin1Encode(),
    }
    # numpy 1.x writes numpy.core.*, numpy 2.x numpy._core.*.
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _Reconstruct()
        table[(f"{core}.multiarray", "scalar")] = _Scalar()
        table[(f"{core}.numeric", "_frombuffer")] = _FromBuffer()
    # Python 3 writes __builtin__ for protocols 0-2 (fix_imports), builtins above.
    for builtins_name in ("builtins", "__builtin__"):
        for container in (list, tuple, dict, set, frozenset):
            table[(builtins_name, container.__name__)] = container
        table[(builtins_name, "bytes")] = _Bytes()
        table[(builtins_name, "bytearray")] = _Bytearray()
    return table


_ADMITTED_GLOBALS = _admitted_globals()


class _RefusedGlobalError(ValueError):
    """A pickle named a global outside the admitted set; the message already names the file.

    Raised inside the unpickler only, so that it is told apart from the errors
    of a malformed pickle; :func:`safe_unpickle` re-raises it as ValueError.
    """


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves globals only from :data:`_ADMITTED_GLOBALS` and never imports."""

    def __init__(self, file: IO[bytes], *, name: str, what: str) -> None:
        """Read from ``file``; ``name`` and ``what`` label the file in error messages."""
        # encoding="bytes": Python 2 str (the CIFAR keys and pixel data) stays bytes.
        super().__init__(file, encoding="bytes")
        self._name = name
        self._what = what

    def find_class(self, module: str, name: str) -> Any:
        """Return the admitted object for ``module.name`` or refuse it, naming the file."""
        found = _ADMITTED_GLOBALS.get((module, name))
        if found is None:
            qualified = f"{module}.{name}"
            if len(qualified) > 200:
                qualified = qualified[:200] + "..."
            raise _RefusedGlobalError(
                f"{self._what} {self._name!r}: refuses to load global {qualified!r} "
                "(only numpy arrays and builtin containers are allowed)"
            )
        return found


# What a malformed pickle can raise while loading (pickle itself, numpy's
# __setstate__, our admitted callables). Anything else is a bug and propagates.
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    OverflowError,
    RecursionError,
    struct.error,
)


def safe_unpickle(path_or_file: PathLike | IO[bytes], what: str = "pickle file") -> Any:
    """Load a pickle from an untrusted source without running any code from it.

    Only the globals numpy uses to rebuild arrays, dtypes and scalars (under
    their numpy 1.x ``numpy.core`` and 2.x ``numpy._core`` names), ``bytes``
    as pickle protocols 0-2 store it, and the builtin containers (list, tuple,
    dict, set, frozenset, bytes, bytearray) are admitted; any other global
    (``os.system``, ``builtins.eval``, a function of some module, ...) is
    refused before it is imported or called. Python 2 strings load as bytes
    (``encoding="bytes"``), as the CIFAR "python version" files need.

    Args:
        path_or_file: A path, or a binary file object open for reading.
        what: How to call the file in error messages, e.g. ``"CIFAR batch"``.

    Returns:
        The unpickled object.

    Raises:
        ValueError: If the pickle names a global outside the admitted set (the
            message names the file and the global), or is not a readable
            pickle (truncated, corrupt, malformed arrays).
        TypeError: If ``path_or_file`` is neither a path nor a readable binary
            file object, or ``what`` is not a string.
        FileNotFoundError: If the path does not exist.
    """
    if not isinstance(what, str):
        raise TypeError(f"what must be a str naming the kind of file, got {type(what).__name__}")
    if isinstance(path_or_file, (str, bytes, os.PathLike)):
        name = os.fsdecode(path_or_file)
        with open(path_or_file, "rb") as f:
            return _unpickle_stream(f, name, what)
    if not (callable(getattr(path_or_file, "read", None)) and callable(getattr(path_or_file, "readline", None))):
        raise TypeError(
            "path_or_file must be a path (str or os.PathLike) or a binary file object with read() and "
            f"readline(); got {type(path_or_file).__name__}"
        )
    name = str(getattr(path_or_file, "name", f"<{type(path_or_file).__name__}>"))
    return _unpickle_stream(path_or_file, name, what)


def _unpickle_stream(f: IO[bytes], name: str, what: str) -> Any:
    """Run the restricted unpickler on an open stream, turning failures into one ValueError naming the file."""
    try:
        return _RestrictedUnpickler(f, name=name, what=what).load()
    except _RefusedGlobalError as exc:
        # A plain ValueError, without the unpickler's internals in the traceback.
        raise ValueError(str(exc)) from None
    except _UNPICKLE_ERRORS as exc:
        raise ValueError(f"{what} {name!r} is not a readable pickle: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- #
# IDX
# --------------------------------------------------------------------------- #
def read_idx(path: PathLike) -> np.ndarray:
    """Read an array from a file in LeCun's IDX format.

    The header is the magic number ``0x00 0x00 TT NN`` (``TT`` the type code:
    0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64;
    ``NN`` the number of dimensions), followed by ``NN`` big-endian uint32
    sizes, then the data in big-endian, C (row-major) order. Gzip-compressed
    files (e.g. ``train-images-idx3-ubyte.gz``) are recognised by their magic
    bytes and decompressed transparently, whatever their name.

    The header is checked before the data are read: a plain file must have
    exactly the size the header implies, and a compressed one is read in
    chunks, so a corrupt header never makes the reader allocate more memory
    than the file really holds.

    Args:
        path: The file to read.

    Returns:
        A writable array in native byte order with the shape and dtype given
        by the header.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file (named in the message) has a bad magic number,
            an unknown type code, more than 64 dimensions, dimension sizes
            whose product overflows, is truncated, has trailing bytes, or is
            a corrupt gzip stream.
    """
    name = str(path)
    with open(path, "rb") as f:
        regular = stat.S_ISREG(os.fstat(f.fileno()).st_mode)
        stream: IO[bytes] = f if regular else io.BytesIO(f.read())  # pipes etc. cannot seek
        if stream.read(2) == _GZIP_MAGIC:
            stream.seek(0)
            with gzip.GzipFile(fileobj=stream, mode="rb") as gz:
                return _read_idx_stream(gz, name, size=None)
        stream.seek(0)
        return _read_idx_stream(stream, name, size=os.fstat(f.fileno()).st_size if regular else None)


def _read_idx_stream(stream: IO[bytes], name: str, size: int | None) -> np.ndarray:
    """Parse and check an IDX header, then read the data; ``size`` is the byte count when known."""
    head = _read_at_most(stream, 4, name)
    if len(head) < 4:
        raise ValueError(f"truncated IDX file {name!r}: {len(head)} bytes, header needs at least 4")
    zero0, zero1, code, ndim = head
    accepted = ", ".join(f"0x{c:02X}" for c in _IDX_CODE_TO_DTYPE)
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"bad IDX magic number in {name!r}: got 0x{head.hex()}, expected 0x0000TTNN with type code TT in "
            f"{{{accepted}}}"
        )
    if code not in _IDX_CODE_TO_DTYPE:
        raise ValueError(
            f"bad IDX magic number in {name!r}: unknown type code 0x{code:02X}; accepted type codes: {accepted}"
        )
    if ndim > _IDX_MAX_DIMS:
        raise ValueError(
            f"bad IDX header in {name!r}: {ndim} dimensions declared, at most {_IDX_MAX_DIMS} are accepted"
        )
    header_len = 4 + 4 * ndim
    dims = _read_at_most(stream, 4 * ndim, name)
    if len(dims) < 4 * ndim:
        raise ValueError(
            f"truncated IDX file {name!r}: header declares {ndim} dimensions ({header_len} header bytes) "
            f"but the file ends after {4 + len(dims)} bytes"
        )
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = _IDX_CODE_TO_DTYPE[code]
    # Python ints: the product cannot wrap around as an int64 product would.
    count = math.prod(shape)
    if math.prod(d for d in shape if d) * dtype.itemsize > np.iinfo(np.intp).max:
        raise ValueError(
            f"bad IDX header in {name!r}: dimension sizes {shape} of {dtype.name} overflow "
            "the largest array size this platform can hold"
        )
    nbytes = count * dtype.itemsize
    expected = header_len + nbytes
    if size is not None and size != expected:
        if size < expected:
            raise ValueError(
                f"truncated IDX file {name!r}: shape {shape} of {dtype.name} needs {expected} bytes, "
                f"the file has {size}"
            )
        raise ValueError(
            f"IDX file {name!r} has {size - expected} unexpected trailing bytes after shape {shape} of {dtype.name}"
        )
    if size is not None:
        # Plain file whose size matches the header: one read of known, bounded size.
        raw = stream.read(nbytes)
    else:
        # One byte more than needed tells a compressed stream with trailing data.
        raw = _read_at_most(stream, nbytes + 1, name)
    if len(raw) < nbytes:
        raise ValueError(
            f"truncated IDX file {name!r}: shape {shape} of {dtype.name} needs {expected} bytes, "
            f"the data end after {header_len + len(raw)}"
        )
    if len(raw) > nbytes:
        raise ValueError(
            f"IDX file {name!r} has unexpected trailing bytes after shape {shape} of {dtype.name}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count)
    try:
        # astype copies into a writable array in native byte order.
        return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
    except ValueError as exc:  # e.g. more dimensions than this numpy supports (32 before numpy 2)
        raise ValueError(f"bad IDX header in {name!r}: numpy cannot hold shape {shape}: {exc}") from exc


def _read_at_most(stream: IO[bytes], n: int, name: str) -> bytearray:
    """Read up to ``n`` bytes in bounded chunks; corrupt gzip data become a ValueError naming the file."""
    buf = bytearray()
    try:
        while len(buf) < n:
            chunk = stream.read(min(n - len(buf), _READ_CHUNK))
            if not chunk:
                break
            buf += chunk
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        # EOFError: the compressed stream ends before its end-of-stream marker.
        raise ValueError(f"corrupt gzip data in IDX file {name!r}: {exc}") from exc
    return buf


def write_idx(path: PathLike, array: np.ndarray | Sequence[Any]) -> None:
    """Write an array to a file in IDX format, atomically.

    The IDX type code is chosen from the dtype: uint8 -> 0x08, int8 -> 0x09,
    int16 -> 0x0B, int32 -> 0x0C, float32 -> 0x0D, float64 -> 0x0E. The file is
    gzip-compressed when ``path`` ends with ``.gz``. The data go to a temporary
    file in the same folder that then replaces ``path`` (:func:`os.replace`).

    Args:
        path: Destination file; ``.gz`` suffix selects gzip compression.
        array: Array to write (anything :func:`numpy.asarray` accepts).

    Raises:
        ValueError: If the dtype has no IDX type code, or the array has more
            than 255 dimensions or a dimension of 2**32 or more.
        FileNotFoundError: If the destination folder does not exist.
    """
    arr = np.asarray(array)
    code = _KIND_SIZE_TO_IDX_CODE.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"array dtype {arr.dtype} cannot be stored in IDX file {str(path)!r}; "
            "supported dtypes: uint8, int8, int16, int32, float32, float64"
        )
    if arr.ndim > 255:
        raise ValueError(f"IDX supports at most 255 dimensions, array has {arr.ndim}")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got shape {arr.shape}")
    header = bytes((0, 0, code, arr.ndim)) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = np.ascontiguousarray(arr, dtype=_IDX_CODE_TO_DTYPE[code]).tobytes()

    def _write(f: IO[bytes]) -> None:
        if str(path).lower().endswith(".gz"):
            # mtime=0 and no file name: identical inputs give identical bytes.
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            f.write(header)
            f.write(payload)

    _atomic_write(path, _write)


# --------------------------------------------------------------------------- #
# MNIST
# --------------------------------------------------------------------------- #
def _mnist_candidates(prefix: str, kind: str, idx_ndim: int) -> list[str]:
    """File names tried for one MNIST file, in order of preference."""
    names = [f"{prefix}-{kind}-idx{idx_ndim}-ubyte", f"{prefix}-{kind}.idx{idx_ndim}-ubyte"]
    return [n + ext for n in names for ext in ("", ".gz")]


def _find_first(folder: Path, names: Sequence[str], what: str) -> Path:
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no {what} file in folder {str(folder)!r}; looked for: {', '.join(names)}"
    )


def load_mnist(
    folder: PathLike,
    split: str = "train",
    *,
    flatten: bool = True,
    normalise: bool = True,
    num_classes: int = _MNIST_CLASSES,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST (or any data set in the MNIST file layout) from a folder.

    For ``split="train"`` the folder must hold ``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte``; for ``split="test"`` the ``t10k-`` files.
    Each may be gzip-compressed with a ``.gz`` suffix, and the dotted variant
    ``train-images.idx3-ubyte`` is accepted too. When several candidates
    exist the plain canonical name wins, then its ``.gz``, then the dotted
    name, then its ``.gz``. Nothing is downloaded.

    Args:
        folder: Folder holding the IDX files.
        split: ``"train"`` or ``"test"``.
        flatten: Return images as ``[n, rows * cols]`` instead of ``[n, rows, cols]``.
        normalise: Scale pixel values from 0..255 to [0, 1].
        num_classes: Labels must lie in ``0..num_classes-1``; 10 for MNIST,
            Fashion-MNIST and KMNIST, more for data sets such as EMNIST.

    Returns:
        ``(X, y)``: ``X`` float32, ``[n, rows*cols]`` or ``[n, rows, cols]``
        (rows and cols taken from the file: 28 x 28 for MNIST), in [0, 1] when
        ``normalise`` else in [0, 255]; ``y`` int64 ``[n]``.

    Raises:
        ValueError: If ``split`` is not ``"train"`` or ``"test"`` or
            ``num_classes`` is not a positive integer; if a file (named in the
            message) is not valid IDX, the images are not a 3-D uint8 array or
            the labels not a 1-D integer array in ``0..num_classes-1``; or if
            the image and label counts differ.
        FileNotFoundError: If ``folder`` does not exist, or a file is missing
            (the message lists the names that were looked for).
    """
    _check_choice("split", split, _SPLITS)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    root = _check_folder(folder, "MNIST")
    prefix = "train" if split == "train" else "t10k"
    image_path = _find_first(root, _mnist_candidates(prefix, "images", 3), f"MNIST {split} images")
    label_path = _find_first(root, _mnist_candidates(prefix, "labels", 1), f"MNIST {split} labels")

    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"MNIST images file {str(image_path)!r} must hold a 3-D uint8 array "
            f"[n, rows, cols]; got shape {images.shape} of {images.dtype}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "ui":
        raise ValueError(
            f"MNIST labels file {str(label_path)!r} must hold a 1-D integer array; "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"image/label count mismatch: {images.shape[0]} images in "
            f"{str(image_path)!r} but {labels.shape[0]} labels in {str(label_path)!r}"
        )
    _check_label_range(labels, int(num_classes), f"MNIST labels file {str(label_path)!r}")

    X = images.astype(np.float32)
    if normalise:
        X /= np.float32(255.0)
    if flatten:
        X = X.reshape(X.shape[0], -1)
    return X, labels.astype(np.int64)


# --------------------------------------------------------------------------- #
# CIFAR
# --------------------------------------------------------------------------- #
def _cifar_file_names(variant: int, split: str) -> list[str]:
    if variant == 10:
        if split == "train":
            return [f"data_batch_{i}" for i in range(1, 6)]
        return ["test_batch"]
    return [split]


def _resolve_cifar_files(root: Path, variant: int, split: str) -> list[Path]:
    """Files of one CIFAR split, looked for in ``root`` then its usual subfolder."""
    names = _cifar_file_names(variant, split)
    subfolder = _CIFAR_SUBFOLDER[variant]
    locations = [root, root / subfolder]
    for location in locations:
        found = [location / n for n in names if (location / n).is_file()]
        if found:
            return found
    raise FileNotFoundError(
        f"no CIFAR-{variant} {split} file in folder {str(root)!r} or its subfolder "
        f"{subfolder!r}; looked for: {', '.join(names)}"
    )


def _get_key(batch: Mapping[Any, Any], key: bytes) -> Any:
    """Look up a bytes key, falling back to its str form."""
    if key in batch:
        return batch[key]
    text = key.decode("ascii")
    if text in batch:
        return batch[text]
    raise KeyError(key)


def _read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read and check one CIFAR pickle batch: ``(uint8 [n, 3072], int64 [n])`` with labels in range."""
    name = str(path)
    batch = safe_unpickle(path, what="CIFAR batch")
    if not isinstance(batch, Mapping):
        # A bad file, not a bad argument: ValueError like every other malformed batch.
        raise ValueError(f"CIFAR batch {name!r} must hold a dict, got {type(batch).__name__}")  # noqa: TRY004
    try:
        data_obj = _get_key(batch, b"data")
    except KeyError:
        raise ValueError(f"CIFAR batch {name!r} has no b'data' entry") from None
    try:
        label_obj = _get_key(batch, label_key)
    except KeyError:
        keys = ", ".join(repr(k) for k in batch)
        if len(keys) > 300:
            keys = keys[:300] + "..."
        raise ValueError(f"CIFAR batch {name!r} has no {label_key!r} entry (keys: {keys})") from None

    data = _as_array(data_obj)
    if data is None or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS or data.dtype != np.uint8:
        got = "an object numpy cannot read as an array" if data is None else f"shape {data.shape} of {data.dtype}"
        raise ValueError(f"CIFAR batch {name!r}: b'data' must be uint8 [n, {_CIFAR_PIXELS}], got {got}")
    labels = _as_array(label_obj)
    if labels is None or labels.ndim != 1 or (labels.size and labels.dtype.kind not in "ui"):
        got = "a ragged sequence" if labels is None else f"shape {labels.shape} of {labels.dtype}"
        raise ValueError(f"CIFAR batch {name!r}: {label_key!r} must be a 1-D sequence of integers, got {got}")
    if labels.shape[0] != data.shape[0]:
        raise ValueError(
            f"image/label count mismatch in CIFAR batch {name!r}: {data.shape[0]} "
            f"images but {labels.shape[0]} labels under {label_key!r}"
        )
    _check_label_range(labels, _CIFAR_CLASSES[label_key], f"CIFAR batch {name!r}: {label_key!r}")
    return data, labels.astype(np.int64)


def _as_array(obj: Any) -> np.ndarray | None:
    """``np.asarray(obj)``, or None when numpy refuses it (ragged nesting, mixed types)."""
    try:
        return np.asarray(obj)
    except (ValueError, TypeError, OverflowError):
        return None


def _check_label_range(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Raise ValueError (prefixed by ``where``) unless every label lies in ``0..num_classes-1``."""
    if labels.size == 0:
        return
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        first = int(bad[0])
        raise ValueError(
            f"{where}: labels must lie in 0..{num_classes - 1}, found {bad.size} outside "
            f"(first: {labels[first].item()} at index {first})"
        )


def load_cifar(
    folder: PathLike,
    variant: int = 10,
    split: str = "train",
    *,
    label_mode: str = "fine",
    flatten: bool = False,
    normalise: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load the "python version" of CIFAR-10 or CIFAR-100 from a folder.

    CIFAR-10: the training set is the concatenation, in order, of whichever
    of ``data_batch_1`` .. ``data_batch_5`` exist (at least one must), the
    test set is ``test_batch``; labels are under ``b"labels"``. CIFAR-100:
    files ``train`` and ``test``, labels under ``b"fine_labels"`` (100
    classes) or ``b"coarse_labels"`` (20 superclasses). ``folder`` may be the
    folder holding the files or its parent holding the usual subfolder
    (``cifar-10-batches-py`` / ``cifar-100-python``). Nothing is downloaded.

    Each batch is a pickled dict with bytes keys whose ``b"data"`` is uint8
    ``[n, 3072]``: per row, the 1024 red, then green, then blue values of a
    32 x 32 image in row-major order, so that ``data[n, c*1024 + i*32 + j]``
    becomes ``X[n, c, i, j]``.

    Args:
        folder: Folder holding the batches, or its parent.
        variant: ``10`` or ``100``.
        split: ``"train"`` or ``"test"``.
        label_mode: ``"fine"`` or ``"coarse"``; used by CIFAR-100 only.
        flatten: Return ``[n, 3072]`` instead of ``[n, 3, 32, 32]``.
        normalise: Scale pixel values from 0..255 to [0, 1].

    Returns:
        ``(X, y)``: ``X`` float32 ``[n, 3, 32, 32]`` (or ``[n, 3072]``), in
        [0, 1] when ``normalise`` else in [0, 255]; ``y`` int64 ``[n]``.

    Raises:
        ValueError: If ``variant``, ``split`` or ``label_mode`` is not an
            accepted value (the message lists them); or if a batch (named in
            the message) is not a readable pickle, names a global other than
            numpy's array machinery and builtin containers (see
            :func:`safe_unpickle`; nothing from the file is run), is not a
            dict, lacks ``b"data"`` or the label key, has data that are not
            uint8 ``[n, 3072]``, labels that are not 1-D integers, a label
            count different from its row count, or labels outside
            ``0..K-1`` (K = 10, 100 fine or 20 coarse).
        FileNotFoundError: If ``folder`` does not exist or holds none of the
            files of the split (the message lists the names looked for).
    """
    _check_choice("variant", variant, _CIFAR_VARIANTS)
    _check_choice("split", split, _SPLITS)
    _check_choice("label_mode", label_mode, _LABEL_MODES)
    variant = int(variant)
    root = _check_folder(folder, f"CIFAR-{variant}")
    if variant == 10:
        label_key = b"labels"
    else:
        label_key = b"fine_labels" if label_mode == "fine" else b"coarse_labels"

    parts = [_read_cifar_batch(p, label_key) for p in _resolve_cifar_files(root, variant, split)]
    if len(parts) == 1:
        data, labels = parts[0]
    else:
        data = np.concatenate([d for d, _ in parts], axis=0)
        labels = np.concatenate([lab for _, lab in parts], axis=0)

    X = data.astype(np.float32)
    if normalise:
        X /= np.float32(255.0)
    if not flatten:
        X = X.reshape(X.shape[0], 3, 32, 32)
    return X, labels


def write_cifar_batch(
    path: PathLike,
    data_uint8: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    *,
    label_key: bytes | str = b"labels",
    extra_labels: Mapping[bytes | str, Sequence[int] | np.ndarray] | None = None,
) -> None:
    """Write a CIFAR pickle batch in the real format, atomically.

    The file holds a dict with bytes keys: ``b"data"`` (uint8 ``[n, 3072]``
    array, R, G, B planes of 32 x 32 in row-major order), ``label_key`` (a
    list of ``n`` Python ints), any ``extra_labels``, ``b"batch_label"`` and
    ``b"filenames"``. It is pickled with protocol 2, like the distributed files,
    and reads back with ``pickle.load(f, encoding="bytes")``,
    :func:`safe_unpickle` and :func:`load_cifar`.

    Args:
        path: Destination file (e.g. ``data_batch_1``, ``test_batch``,
            ``train``).
        data_uint8: uint8 ``[n, 3072]`` (or ``[n, 3, 32, 32]``, flattened
            row-major).
        labels: ``n`` integer labels.
        label_key: Key for ``labels``: ``b"labels"`` (CIFAR-10),
            ``b"fine_labels"`` or ``b"coarse_labels"`` (CIFAR-100).
        extra_labels: Further label lists by key, e.g.
            ``{b"coarse_labels": coarse}`` to write a CIFAR-100 batch holding
            both label sets.

    Raises:
        ValueError: If ``data_uint8`` is not uint8 with 3072 values per row,
            or a label list is not 1-D integer of length ``n``.
        FileNotFoundError: If the destination folder does not exist.
    """
    data = np.asarray(data_uint8)
    if data.dtype != np.uint8:
        raise ValueError(f"data_uint8 must have dtype uint8, got {data.dtype}")
    if data.ndim == 4 and data.shape[1:] == (3, 32, 32):
        data = data.reshape(data.shape[0], _CIFAR_PIXELS)
    if data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        raise ValueError(
            f"data_uint8 must have shape [n, {_CIFAR_PIXELS}] or [n, 3, 32, 32], "
            f"got {data.shape}"
        )
    n = data.shape[0]

    def as_key(key: bytes | str) -> bytes:
        return key.encode("ascii") if isinstance(key, str) else bytes(key)

    def as_label_list(values: Sequence[int] | np.ndarray, key: bytes) -> list[int]:
        arr = np.asarray(values)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "ui"):
            raise ValueError(
                f"labels under {key!r} must be a 1-D sequence of integers, "
                f"got shape {arr.shape} of {arr.dtype}"
            )
        if arr.shape[0] != n:
            raise ValueError(
                f"image/label count mismatch: {n} rows in data_uint8 but "
                f"{arr.shape[0]} labels under {key!r}"
            )
        return [int(v) for v in arr.tolist()]

    batch: dict[bytes, Any] = {
        b"batch_label": Path(path).name.encode("utf-8"),
        b"data": np.ascontiguousarray(data),
    }
    main_key = as_key(label_key)
    batch[main_key] = as_label_list(labels, main_key)
    for key, values in (extra_labels or {}).items():
        k = as_key(key)
        batch[k] = as_label_list(values, k)
    batch[b"filenames"] = [f"image_{i:06d}.png".encode("ascii") for i in range(n)]

    _atomic_write(path, lambda f: pickle.dump(batch, f, protocol=2))


# --------------------------------------------------------------------------- #
# class subsets
# --------------------------------------------------------------------------- #
def load_class_subset(
    X: np.ndarray, y: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the rows of a few classes and relabel them ``0..len(classes)-1``.

    Labels are mapped in the order given: ``classes=(3, 5)`` maps 3 -> 0 and
    5 -> 1, ``classes=(5, 3)`` maps 5 -> 0 and 3 -> 1. Rows keep their order.

    Args:
        X: Examples, first axis indexed like ``y``.
        y: 1-D integer labels.
        classes: Distinct labels to keep, each present in ``y``.

    Returns:
        ``(X_sub, y_sub)``: the selected rows of ``X`` (same dtype) and their
        new int64 labels.

    Raises:
        ValueError: If ``classes`` is empty, has duplicates or non-integers,
            or names a class absent from ``y``; if ``y`` is not 1-D integer;
            or if ``X`` and ``y`` have different lengths.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and y.dtype.kind not in "ui"):
        raise ValueError(f"y must be a 1-D integer array, got shape {y.shape} of {y.dtype}")
    if X.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X and y must have the same number of rows, got X {X.shape} and y {y.shape}"
        )
    try:
        wanted = [operator.index(c) for c in classes]
    except TypeError as exc:
        raise ValueError(f"classes must be integers, got {list(classes)!r}") from exc
    if not wanted:
        raise ValueError("classes must name at least one class, got an empty sequence")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"classes must be distinct, got {wanted!r}")
    present = set(np.unique(y).tolist())
    absent = [c for c in wanted if c not in present]
    if absent:
        raise ValueError(f"classes {absent!r} do not occur in y (classes={wanted!r})")

    wanted_arr = np.asarray(wanted, dtype=np.int64)
    order = np.argsort(wanted_arr, kind="stable")
    sorted_classes = wanted_arr[order]
    y64 = y.astype(np.int64)
    pos = np.searchsorted(sorted_classes, y64)
    pos_clipped = np.minimum(pos, len(sorted_classes) - 1)
    mask = sorted_classes[pos_clipped] == y64
    new_labels = order[pos_clipped[mask]].astype(np.int64)
    return X[mask], new_labels
