"""Readers and writers for MNIST (IDX) and CIFAR (python pickle) files on disk.

Nothing here downloads anything: users who have MNIST or CIFAR point the
loaders at a folder that already holds the files in their usual formats.

* :func:`read_idx` / :func:`write_idx` handle LeCun's IDX format (the format
  of the MNIST distribution files), plain or gzip-compressed.
* :func:`load_mnist` finds and reads the image and label files of one split.
* :func:`load_cifar` reads the "python version" of CIFAR-10 and CIFAR-100.
* :func:`write_cifar_batch` writes a pickle batch in the real CIFAR format.
* :func:`load_class_subset` keeps a few classes and relabels them ``0..k-1``.

All functions take and return numpy arrays. Writers are atomic: they write a
temporary file in the destination folder and move it into place with
:func:`os.replace`, so a reader never sees a half-written file.

Warning:
    CIFAR batches are Python pickles. Unpickling runs arbitrary code from the
    file, so only load CIFAR folders from sources you trust.
"""

from __future__ import annotations

import gzip
import operator
import os
import pickle
import struct
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union

import numpy as np

__all__ = [
    "load_cifar",
    "load_class_subset",
    "load_mnist",
    "read_idx",
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

_SPLITS = ("train", "test")
_CIFAR_VARIANTS = (10, 100)
_LABEL_MODES = ("fine", "coarse")
_CIFAR_PIXELS = 3 * 32 * 32
_CIFAR_SUBFOLDER = {10: "cifar-10-batches-py", 100: "cifar-100-python"}


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
    """Write a file atomically: temp file in the same folder, then os.replace.

    Args:
        path: Destination file.
        write: Called with a binary file object open for writing.

    Raises:
        FileNotFoundError: If the destination folder does not exist.
    """
    dest = Path(path)
    parent = dest.parent
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(dest)!r}: folder {str(parent)!r} does not exist"
        )
    # Keep the mode of a file we replace; new files get rw-r--r--.
    try:
        mode = dest.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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

    Args:
        path: The file to read.

    Returns:
        A writable array in native byte order with the shape and dtype given
        by the header.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file (named in the message) has a bad magic number,
            an unknown type code, is truncated, has trailing bytes, or is a
            corrupt gzip stream.
    """
    name = str(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"corrupt gzip data in IDX file {name!r}: {exc}") from exc

    if len(raw) < 4:
        raise ValueError(
            f"truncated IDX file {name!r}: {len(raw)} bytes, header needs at least 4"
        )
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or code not in _IDX_CODE_TO_DTYPE:
        raise ValueError(
            f"bad IDX magic number in {name!r}: got 0x{raw[:4].hex()}, expected "
            "0x0000TTNN with type code TT in "
            f"{{{', '.join(f'0x{c:02X}' for c in _IDX_CODE_TO_DTYPE)}}}"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(
            f"truncated IDX file {name!r}: header declares {ndim} dimensions "
            f"({header_len} header bytes) but the file has {len(raw)} bytes"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = _IDX_CODE_TO_DTYPE[code]
    count = int(np.prod(shape, dtype=np.int64)) if ndim else 1
    expected = header_len + count * dtype.itemsize
    if len(raw) < expected:
        raise ValueError(
            f"truncated IDX file {name!r}: shape {shape} of {dtype.name} needs "
            f"{expected} bytes, the file has {len(raw)}"
        )
    if len(raw) > expected:
        raise ValueError(
            f"IDX file {name!r} has {len(raw) - expected} unexpected trailing bytes "
            f"after shape {shape} of {dtype.name}"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header_len)
    # astype copies into a writable array in native byte order.
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


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

    Returns:
        ``(X, y)``: ``X`` float32, ``[n, rows*cols]`` or ``[n, rows, cols]``
        (rows and cols taken from the file: 28 x 28 for MNIST), in [0, 1] when
        ``normalise`` else in [0, 255]; ``y`` int64 ``[n]``.

    Raises:
        ValueError: If ``split`` is not ``"train"`` or ``"test"``; if a file is
            not valid IDX, the images are not a 3-D uint8 array or the labels
            not a 1-D integer array; or if the image and label counts differ.
        FileNotFoundError: If ``folder`` does not exist, or a file is missing
            (the message lists the names that were looked for).
    """
    _check_choice("split", split, _SPLITS)
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
    """Read one CIFAR pickle batch: ``(uint8 [n, 3072], int64 [n])``."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
    ) as exc:
        raise ValueError(f"CIFAR file {name!r} is not a readable pickle batch: {exc}") from exc
    if not isinstance(batch, Mapping):
        raise ValueError(
            f"CIFAR file {name!r} must hold a dict, got {type(batch).__name__}"
        )
    try:
        data_obj = _get_key(batch, b"data")
    except KeyError:
        raise ValueError(f"CIFAR file {name!r} has no b'data' entry") from None
    try:
        label_obj = _get_key(batch, label_key)
    except KeyError:
        keys = ", ".join(repr(k) for k in batch)
        raise ValueError(
            f"CIFAR file {name!r} has no {label_key!r} entry (keys: {keys})"
        ) from None

    data = np.asarray(data_obj)
    if data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS or data.dtype != np.uint8:
        raise ValueError(
            f"CIFAR file {name!r}: b'data' must be uint8 [n, {_CIFAR_PIXELS}], "
            f"got shape {data.shape} of {data.dtype}"
        )
    labels = np.asarray(label_obj)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "ui"):
        raise ValueError(
            f"CIFAR file {name!r}: {label_key!r} must be a 1-D sequence of integers, "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    if labels.shape[0] != data.shape[0]:
        raise ValueError(
            f"image/label count mismatch in CIFAR file {name!r}: {data.shape[0]} "
            f"images but {labels.shape[0]} labels under {label_key!r}"
        )
    return data, labels.astype(np.int64)


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
            accepted value (the message lists them), a batch is malformed, or
            its image and label counts differ.
        FileNotFoundError: If ``folder`` does not exist or holds none of the
            files of the split (the message lists the names looked for).

    Warning:
        Batches are unpickled; only load files from sources you trust.
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
    and reads back with ``pickle.load(f, encoding="bytes")`` and
    :func:`load_cifar`.

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
