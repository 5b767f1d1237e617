"""Untrusted input for teachtheory.data.loaders: pickles never run code, bad files give one error naming the file."""

from __future__ import annotations

import builtins
import gzip
import io
import os
import pickle
import pickletools
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from teachtheory.data import safe_unpickle as exported_safe_unpickle
from teachtheory.data.loaders import (
    load_cifar,
    load_mnist,
    read_idx,
    safe_unpickle,
    write_cifar_batch,
    write_idx,
)


# --------------------------------------------------------------------------- #
# pickle builders
# --------------------------------------------------------------------------- #
def _write_marker(path: str) -> None:
    """A 'payload' function: if a loader ever calls it, the marker file appears."""
    Path(path).write_text("ran")


class _Payload:
    """Pickles as ``func(*args)``: what a malicious file asks the unpickler to call."""

    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def _py2_str(b: bytes) -> bytes:
    """A Python 2 ``str`` as cPickle writes it (SHORT_BINSTRING / BINSTRING)."""
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    return b"T" + struct.pack("<i", len(b)) + b


def _py2_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _py2_uint8_array(a: np.ndarray) -> bytes:
    """A uint8 array as Python 2 cPickle + numpy 1.x wrote it (the real CIFAR files)."""
    assert a.dtype == np.uint8 and a.ndim in (1, 2)
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + _py2_int(0) + b"\x85" + _py2_str(b"b") + b"\x87R"
        + b"(" + _py2_int(1) + b"".join(_py2_int(d) for d in a.shape) + (b"\x86" if a.ndim == 2 else b"\x85")
        + b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"
        + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + b"J\xff\xff\xff\xffJ\xff\xff\xff\xff" + _py2_int(0) + b"tb"
        + b"\x89" + _py2_str(a.tobytes()) + b"tb"
    )  # fmt: skip


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A whole CIFAR-10 batch in the Python 2 protocol-2 form of the distributed files."""
    names = b"".join(_py2_str(f"img_{i}.png".encode()) for i in range(len(labels)))
    return (
        b"\x80\x02}("
        + _py2_str(b"data") + _py2_uint8_array(data)
        + _py2_str(b"labels") + b"](" + b"".join(_py2_int(v) for v in labels) + b"e"
        + _py2_str(b"batch_label") + _py2_str(b"training batch 1 of 5")
        + _py2_str(b"filenames") + b"](" + names + b"e"
        + b"u."
    )  # fmt: skip


def _as_numpy1(raw: bytes) -> bytes:
    """Rewrite a numpy-2 pickle to name numpy 1.x's ``numpy.core`` modules, as files written by numpy 1.x do."""
    for mod in (b"multiarray", b"numeric"):
        new, old = b"numpy.core." + mod, b"numpy._core." + mod
        raw = raw.replace(b"c" + old + b"\n", b"c" + new + b"\n")  # GLOBAL, protocols 0-3
        raw = raw.replace(b"\x8c" + bytes([len(old)]) + old, b"\x8c" + bytes([len(new)]) + new)  # protocols 4-5
    assert b"numpy._core" not in raw
    return pickletools.optimize(raw)  # re-frames protocol 4-5 pickles after the edit


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


# --------------------------------------------------------------------------- #
# genuine batches still load
# --------------------------------------------------------------------------- #
def test_safe_unpickle_is_exported() -> None:
    assert exported_safe_unpickle is safe_unpickle


@pytest.mark.parametrize("numpy1", [False, True], ids=["numpy2-names", "numpy1-names"])
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("labels_as", ["list", "ndarray", "numpy-scalars"])
def test_genuine_batches_load(tmp_path: Path, protocol: int, numpy1: bool, labels_as: str) -> None:
    data = _rows(3, seed=protocol)
    labels = np.array([0, 9, 4])
    label_obj = {
        "list": labels.tolist(),
        "ndarray": labels,
        "numpy-scalars": [np.int64(v) for v in labels],
    }[labels_as]
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"data": data,
        b"labels": label_obj,
        b"filenames": [b"a.png", b"b.png", b"c.png"],
        b"extra": ({1, 2}, frozenset({3}), bytearray(b"xy"), b"", (1.5, None, True)),
    }
    raw = pickle.dumps(batch, protocol=protocol)
    if numpy1:
        raw = _as_numpy1(raw)
    (tmp_path / "test_batch").write_bytes(raw)
    back = safe_unpickle(tmp_path / "test_batch", what="CIFAR batch")
    np.testing.assert_array_equal(back[b"data"], data)
    assert back[b"extra"] == batch[b"extra"]
    assert back[b"filenames"] == batch[b"filenames"]
    X, y = load_cifar(tmp_path, split="test", flatten=True, normalise=False)
    np.testing.assert_array_equal(X, data)
    np.testing.assert_array_equal(y, labels)


def test_python2_style_batch_loads(tmp_path: Path) -> None:
    data = _rows(4, seed=5)
    raw = _py2_batch(data, [3, 0, 9, 1])
    # The plain unpickler agrees on what the hand-built bytes mean.
    reference = pickle.loads(raw, encoding="bytes")
    assert set(reference) == {b"data", b"labels", b"batch_label", b"filenames"}
    np.testing.assert_array_equal(reference[b"data"], data)

    back = safe_unpickle(io.BytesIO(raw))
    assert set(back) == set(reference)
    assert back[b"batch_label"] == b"training batch 1 of 5"
    assert back[b"filenames"][1] == b"img_1.png"
    (tmp_path / "data_batch_1").write_bytes(raw)
    X, y = load_cifar(tmp_path, flatten=True, normalise=False)
    np.testing.assert_array_equal(X, data)
    np.testing.assert_array_equal(y, [3, 0, 9, 1])


def test_write_cifar_batch_reads_back_through_safe_unpickle(tmp_path: Path) -> None:
    data = _rows(2, seed=1)
    write_cifar_batch(tmp_path / "train", data, [99, 0], label_key=b"fine_labels",
                      extra_labels={b"coarse_labels": [19, 0]})
    with open(tmp_path / "train", "rb") as f:  # a file object works as well as a path
        back = safe_unpickle(f, what="CIFAR batch")
    assert back[b"fine_labels"] == [99, 0] and back[b"coarse_labels"] == [19, 0]
    np.testing.assert_array_equal(back[b"data"], data)
    _, y = load_cifar(tmp_path, 100, label_mode="coarse")
    np.testing.assert_array_equal(y, [19, 0])


# --------------------------------------------------------------------------- #
# payloads never run
# --------------------------------------------------------------------------- #
def _payloads(marker: Path) -> dict[str, tuple[Any, str]]:
    """Payload object -> the global its pickle names (as the refusal must report it)."""
    write = f"open({str(marker)!r}, 'w').write('ran')"
    return {
        "os.system": (_Payload(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        "builtins.exec": (_Payload(builtins.exec, write), "builtins.exec"),
        "builtins.eval": (_Payload(builtins.eval, write), "builtins.eval"),
        "marker-function": (_Payload(_write_marker, str(marker)), f"{_write_marker.__module__}._write_marker"),
    }


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "builtins.eval", "marker-function"])
def test_payload_is_refused_and_never_runs(tmp_path: Path, payload: str, protocol: int) -> None:
    marker = tmp_path / "marker"
    obj, global_name = _payloads(marker)[payload]
    if protocol < 3:  # protocols 0-2 write Python 2 module names
        global_name = global_name.replace("builtins.", "__builtin__.")
    # The payload hides in an otherwise valid batch.
    batch = {b"data": _rows(1), b"labels": [1], b"batch_label": obj}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol))

    with pytest.raises(ValueError) as info:
        load_cifar(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert f"refuses to load global {global_name!r}" in message
    assert "only numpy arrays and builtin containers are allowed" in message
    assert not marker.exists()

    with pytest.raises(ValueError, match="refuses to load global"), open(path, "rb") as f:
        safe_unpickle(f, what="CIFAR batch")
    assert not marker.exists()

    # Control: the same bytes through plain pickle do run the payload, so the
    # absence of the marker above means something.
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize(
    "global_line",
    [
        b"cos\nsystem\n",
        b"csubprocess\ncheck_call\n",
        b"cnumpy.testing._private.utils\nrunstring\n",  # numpy itself holds exec-like helpers
        b"cnumpy\nload\n",
        b"cbuiltins\ngetattr\n",
        b"c__builtin__\neval\n",
        b"ccopyreg\n_reconstructor\n",
    ],
)
def test_hand_written_globals_are_refused_by_name(tmp_path: Path, global_line: bytes) -> None:
    module, name = global_line[1:-1].decode().split("\n")
    path = tmp_path / "test_batch"
    path.write_bytes(b"\x80\x02" + global_line + b"X\x04\x00\x00\x00trueq\x00\x85R.")
    with pytest.raises(ValueError) as info:
        load_cifar(tmp_path, split="test")
    assert str(info.value) == (
        f"CIFAR batch {str(path)!r}: refuses to load global '{module}.{name}' "
        "(only numpy arrays and builtin containers are allowed)"
    )


@pytest.mark.parametrize(
    "raw",
    [
        # bytes(10**8): admitted builtins must not become a way to allocate memory
        pytest.param(b"\x80\x02c__builtin__\nbytes\nJ\x00\xe1\xf5\x05\x85R.", id="bytes-size"),
        pytest.param(b"\x80\x02c__builtin__\nbytearray\nJ\x00\xe1\xf5\x05\x85R.", id="bytearray-size"),
        # _reconstruct(ndarray, (10**8,), b'b'): numpy's placeholder always has size 0
        pytest.param(
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\xe1\xf5\x05\x85C\x01b\x87R.",
            id="reconstruct-size",
        ),
        # _reconstruct with something other than ndarray as the class
        pytest.param(b"\x80\x02cnumpy._core.multiarray\n_reconstruct\n]K\x00\x85C\x01b\x87R.", id="reconstruct-class"),
        # numpy.ndarray itself is not callable from a pickle
        pytest.param(b"\x80\x02cnumpy\nndarray\nJ\x00\xe1\xf5\x05\x85R.", id="ndarray-call"),
        # _codecs.encode only in the latin-1 form protocols 0-2 write
        pytest.param(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x04\x00\x00\x00zlib\x86R.", id="codec-zlib"),
        # NEWOBJ on an admitted callable that is not a type
        pytest.param(b"\x80\x02c__builtin__\nbytes\nJ\x00\xe1\xf5\x05\x85\x81.", id="newobj"),
        # persistent ids and out-of-band buffers have no handler
        pytest.param(b"\x80\x02X\x01\x00\x00\x00xQ.", id="persistent-id"),
        pytest.param(b"\x80\x05\x97.", id="next-buffer"),
    ],
)
def test_admitted_globals_are_guarded(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "guarded.pkl"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=r"pickle file '.*guarded\.pkl' is not a readable pickle"):
        safe_unpickle(path)


def test_pickle_cannot_retag_numpy_functions(tmp_path: Path) -> None:
    # BUILD (None, {'__module__': 'os'}) on an admitted global would, with the
    # raw numpy function, change it for the whole process.
    reconstruct = np.zeros(0).__reduce__()[0]
    before = reconstruct.__module__
    raw = b"\x80\x02cnumpy._core.multiarray\n_reconstruct\nN}X\n\x00\x00\x00__module__X\x02\x00\x00\x00oss\x86b."
    path = tmp_path / "retag.pkl"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=r"retag\.pkl"):
        safe_unpickle(path)
    assert reconstruct.__module__ == before
    assert pickle.loads(pickle.dumps(np.arange(3), protocol=2)).tolist() == [0, 1, 2]


def test_safe_unpickle_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"path_or_file must be a path .* got int"):
        safe_unpickle(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"what must be a str"):
        safe_unpickle(tmp_path / "x", what=b"x")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"nope\.pkl"):
        safe_unpickle(tmp_path / "nope.pkl")
    stream = io.BytesIO(b"\x80\x02cos\nsystem\n.")
    with pytest.raises(ValueError, match=r"my stream '<BytesIO>': refuses to load global 'os\.system'"):
        safe_unpickle(stream, what="my stream")


# --------------------------------------------------------------------------- #
# table of bad files: one error naming the file and the problem
# --------------------------------------------------------------------------- #
Case = Callable[[Path], tuple[Callable[[], Any], Path]]


def _idx(raw: bytes, name: str = "bad.idx", *, gz: bool = False) -> Case:
    def build(tmp: Path) -> tuple[Callable[[], Any], Path]:
        path = tmp / name
        path.write_bytes(gzip.compress(raw) if gz else raw)
        return (lambda: read_idx(path)), path

    return build


def _mnist(images: np.ndarray, labels: np.ndarray, broken: str, **kwargs: Any) -> Case:
    def build(tmp: Path) -> tuple[Callable[[], Any], Path]:
        write_idx(tmp / "train-images-idx3-ubyte", images)
        write_idx(tmp / "train-labels-idx1-ubyte.gz", labels)
        path = tmp / ("train-images-idx3-ubyte" if broken == "images" else "train-labels-idx1-ubyte.gz")
        return (lambda: load_mnist(tmp, **kwargs)), path

    return build


def _cifar_raw(raw: bytes, name: str = "test_batch", **kwargs: Any) -> Case:
    def build(tmp: Path) -> tuple[Callable[[], Any], Path]:
        path = tmp / name
        path.write_bytes(raw)
        split = "test" if name in ("test_batch", "test") else "train"
        variant = 100 if name in ("train", "test") else 10
        return (lambda: load_cifar(tmp, variant, split, **kwargs)), path

    return build


def _cifar(obj: Any, name: str = "test_batch", **kwargs: Any) -> Case:
    return _cifar_raw(pickle.dumps(obj, protocol=2), name, **kwargs)


def _with_wrong_array_shape(raw: bytes) -> bytes:
    """Declare shape (4, 3328) in the array state while keeping 4 * 3072 data bytes."""
    shape = b"K\x04M\x00\x0c\x86"  # BININT1 4, BININT2 3072, TUPLE2 in a protocol-2 pickle
    assert raw.count(shape) == 1
    return raw.replace(shape, b"K\x04M\x00\x0d\x86")


_U8_IMAGES = np.zeros((3, 4, 4), np.uint8)
_MAX = 2**32 - 1
_GOOD = pickle.dumps({b"data": _rows(4), b"labels": [1, 2, 3, 4]}, protocol=2)

BAD_FILES: list[tuple[str, Case, type[Exception], str]] = [
    # IDX headers
    ("idx-empty", _idx(b""), ValueError, "truncated IDX file"),
    ("idx-nonzero-magic", _idx(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00"), ValueError, "bad IDX magic"),
    ("idx-unknown-type", _idx(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00"), ValueError,
     "unknown type code 0x07"),
    ("idx-65-dims", _idx(b"\x00\x00\x08\x41" + struct.pack(">65I", *[1] * 65) + b"\x00"), ValueError,
     "65 dimensions declared, at most 64"),
    ("idx-255-dims", _idx(b"\x00\x00\x08\xff"), ValueError, "255 dimensions declared"),
    ("idx-dims-cut", _idx(b"\x00\x00\x08\x03" + struct.pack(">I", 2)), ValueError, "declares 3 dimensions"),
    ("idx-size-overflow", _idx(b"\x00\x00\x0e\x03" + struct.pack(">3I", _MAX, _MAX, _MAX)), ValueError, "overflow"),
    ("idx-overflow-behind-zero", _idx(b"\x00\x00\x08\x03" + struct.pack(">3I", 0, _MAX, _MAX)), ValueError,
     "overflow"),
    # The int64 product of four sizes 2**16 wraps to 0, which the header-only file would "match".
    ("idx-int64-wrap", _idx(b"\x00\x00\x08\x04" + struct.pack(">4I", *[2**16] * 4)), ValueError, "overflow"),
    ("idx-size-mismatch", _idx(b"\x00\x00\x0c\x02" + struct.pack(">2I", 1000, 1000) + bytes(16)), ValueError,
     "needs 4000012 bytes, the file has 28"),
    ("idx-trailing", _idx(b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x01\x02\x03"), ValueError,
     "1 unexpected trailing bytes"),
    ("idx-gz-data-cut", _idx(b"\x00\x00\x0c\x02" + struct.pack(">2I", 2, 2) + bytes(15), "cut.idx.gz", gz=True),
     ValueError, "truncated IDX file"),
    ("idx-gz-trailing", _idx(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x01\x02", "long.idx.gz", gz=True),
     ValueError, "unexpected trailing bytes"),
    ("idx-gz-corrupt", _idx(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 64) + bytes(64))[:-12], "c.gz"),
     ValueError, "corrupt gzip data"),
    # MNIST content
    ("mnist-label-10", _mnist(_U8_IMAGES, np.array([0, 10, 9], np.uint8), "labels"), ValueError,
     "labels must lie in 0..9, found 1 outside (first: 10 at index 1)"),
    ("mnist-label-negative", _mnist(_U8_IMAGES, np.array([-1, 2, -3], np.int8), "labels"), ValueError,
     "labels must lie in 0..9, found 2 outside (first: -1 at index 0)"),
    ("mnist-label-beyond-num-classes", _mnist(_U8_IMAGES, np.array([0, 1, 5], np.uint8), "labels", num_classes=5),
     ValueError, "labels must lie in 0..4"),
    ("mnist-float-labels", _mnist(_U8_IMAGES, np.zeros(3, np.float32), "labels"), ValueError, "1-D integer array"),
    ("mnist-2d-images", _mnist(np.zeros((3, 16), np.uint8), np.zeros(3, np.uint8), "images"), ValueError,
     "must hold a 3-D uint8 array"),
    ("mnist-int16-images", _mnist(np.zeros((3, 4, 4), np.int16), np.zeros(3, np.uint8), "images"), ValueError,
     "must hold a 3-D uint8 array"),
    ("mnist-count-mismatch", _mnist(_U8_IMAGES, np.zeros(2, np.uint8), "labels"), ValueError,
     "3 images"),
    # CIFAR pickles
    ("cifar-refused-global", _cifar_raw(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R."), ValueError,
     "refuses to load global 'os.system'"),
    ("cifar-not-pickle", _cifar_raw(b"definitely not a pickle"), ValueError, "is not a readable pickle"),
    ("cifar-empty", _cifar_raw(b""), ValueError, "is not a readable pickle"),
    ("cifar-truncated", _cifar_raw(_GOOD[: len(_GOOD) // 2]), ValueError, "is not a readable pickle"),
    ("cifar-shape-vs-bytes", _cifar_raw(_with_wrong_array_shape(_GOOD)), ValueError, "is not a readable pickle"),
    ("cifar-list", _cifar([_rows(1), [1]]), ValueError, "must hold a dict, got list"),
    ("cifar-no-data", _cifar({b"labels": [1]}), ValueError, "has no b'data' entry"),
    ("cifar-no-labels", _cifar({b"data": _rows(1), b"fine": [1]}), ValueError,
     "has no b'labels' entry (keys: b'data', b'fine')"),
    ("cifar100-no-coarse", _cifar({b"data": _rows(1), b"fine_labels": [1]}, "train", label_mode="coarse"),
     ValueError, "has no b'coarse_labels' entry"),
    ("cifar-3000-per-row", _cifar({b"data": np.zeros((2, 3000), np.uint8), b"labels": [1, 2]}), ValueError,
     "b'data' must be uint8 [n, 3072], got shape (2, 3000) of uint8"),
    ("cifar-float-data", _cifar({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}), ValueError,
     "got shape (2, 3072) of float32"),
    ("cifar-1d-data", _cifar({b"data": np.zeros(3072, np.uint8), b"labels": [1]}), ValueError,
     "got shape (3072,) of uint8"),
    ("cifar-ragged-data", _cifar({b"data": [[0] * 3072, [0]], b"labels": [1, 2]}), ValueError,
     "got an object numpy cannot read as an array"),
    ("cifar-label-count", _cifar({b"data": _rows(3), b"labels": [1, 2]}), ValueError,
     "3 images but 2 labels under b'labels'"),
    ("cifar-ragged-labels", _cifar({b"data": _rows(2), b"labels": [[1, 2], [3]]}), ValueError,
     "b'labels' must be a 1-D sequence of integers, got a ragged sequence"),
    ("cifar-2d-labels", _cifar({b"data": _rows(2), b"labels": [[1], [3]]}), ValueError, "got shape (2, 1)"),
    ("cifar-float-labels", _cifar({b"data": _rows(2), b"labels": [1.0, 2.5]}), ValueError,
     "1-D sequence of integers"),
    ("cifar-bool-labels", _cifar({b"data": _rows(2), b"labels": [True, False]}), ValueError,
     "1-D sequence of integers"),
    ("cifar10-label-10", _cifar({b"data": _rows(3), b"labels": [0, 9, 10]}), ValueError,
     "b'labels': labels must lie in 0..9, found 1 outside (first: 10 at index 2)"),
    ("cifar10-label-negative", _cifar({b"data": _rows(2), b"labels": [-1, 0]}), ValueError,
     "labels must lie in 0..9"),
    ("cifar100-fine-100", _cifar({b"data": _rows(2), b"fine_labels": [99, 100]}, "train"), ValueError,
     "b'fine_labels': labels must lie in 0..99"),
    ("cifar100-coarse-20", _cifar({b"data": _rows(2), b"fine_labels": [0, 0], b"coarse_labels": [19, 20]}, "test",
                                  label_mode="coarse"), ValueError, "b'coarse_labels': labels must lie in 0..19"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "exc_type", "fragment"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_file_gives_one_clear_error(
    tmp_path: Path, build: Case, exc_type: type[Exception], fragment: str
) -> None:
    call, path = build(tmp_path)
    with pytest.raises(Exception) as info:  # the exact type is asserted below
        call()
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert str(path) in message, message
    assert fragment in message, message


def test_bad_file_table_is_large_enough() -> None:
    assert len(BAD_FILES) >= 15
    assert len({name for name, *_ in BAD_FILES}) == len(BAD_FILES)


def test_int64_wrap_case_is_what_it_claims() -> None:
    # The premise of the "idx-int64-wrap" case: an int64 product of its sizes is 0.
    assert int(np.prod(np.array([2**16] * 4, dtype=np.int64))) == 0
