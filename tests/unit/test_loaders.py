"""Tests for teachtheory.data.loaders on small files written in the real formats."""

from __future__ import annotations

import gzip
import pickle
import re
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teachtheory.data.loaders import (
    load_cifar,
    load_class_subset,
    load_mnist,
    read_idx,
    write_cifar_batch,
    write_idx,
)

IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.int16,
    0x0C: np.int32,
    0x0D: np.float32,
    0x0E: np.float64,
}


def _random_array(dtype: type, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
    arr = (rng.standard_normal(shape) * 10.0 ** rng.integers(-5, 6, size=shape)).astype(dt)
    flat = arr.reshape(-1)
    if flat.size >= 4:  # sprinkle special values; they must survive bit-exactly
        flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
    return arr


def _assert_same_bits(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------- #
# IDX
# --------------------------------------------------------------------------- #
@settings(max_examples=60, deadline=None)
@given(
    code=st.sampled_from(sorted(IDX_DTYPES)),
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    gz=st.booleans(),
)
def test_idx_round_trip(code: int, shape: tuple[int, ...], seed: int, gz: bool) -> None:
    arr = _random_array(IDX_DTYPES[code], shape, seed)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("a.idx.gz" if gz else "a.idx")
        write_idx(path, arr)
        raw = path.read_bytes()
        if gz:
            assert raw[:2] == b"\x1f\x8b"
            raw = gzip.decompress(raw)
        assert raw[:4] == bytes((0, 0, code, len(shape)))
        assert struct.unpack(f">{len(shape)}I", raw[4 : 4 + 4 * len(shape)]) == shape
        back = read_idx(path)
        _assert_same_bits(back, arr)
        assert back.dtype.isnative
        assert back.flags.writeable
        assert sorted(p.name for p in Path(d).iterdir()) == [path.name]  # no temp left


def test_idx_big_endian_layout_written_by_hand(tmp_path: Path) -> None:
    # int16 [2, 3] written byte by byte per the spec, independent of write_idx.
    values = np.array([[1, -2, 300], [-32768, 32767, 0]], dtype=np.int16)
    raw = b"\x00\x00\x0b\x02" + struct.pack(">II", 2, 3) + struct.pack(">6h", *values.ravel())
    (tmp_path / "h.idx").write_bytes(raw)
    (tmp_path / "h.idx.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "h.idx"), values)
    # gzip is recognised from content, so a misleading name still works
    (tmp_path / "h_noext").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "h.idx.gz"), values)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "h_noext")), values)
    write_idx(tmp_path / "w.idx", values)
    assert (tmp_path / "w.idx").read_bytes() == raw


def test_write_idx_overwrites_atomically_and_keeps_gz_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "x.idx.gz"
    write_idx(path, np.arange(6, dtype=np.uint8))
    first = path.read_bytes()
    write_idx(path, np.arange(6, dtype=np.uint8))
    assert path.read_bytes() == first
    write_idx(path, np.ones((2, 2), dtype=np.float64))
    np.testing.assert_array_equal(read_idx(path), np.ones((2, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["x.idx.gz"]


def test_write_idx_rejects_unsupported_dtype_and_leaves_file(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    write_idx(path, np.arange(3, dtype=np.int32))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"int64.*x\.idx.*supported dtypes"):
        write_idx(path, np.arange(3, dtype=np.int64))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.idx"]


def test_write_idx_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        write_idx(tmp_path / "nope" / "x.idx", np.zeros(2, dtype=np.uint8))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00",  # nonzero first byte
        b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00",  # unknown type code
        b"P5\n28 28\n",  # not IDX at all
    ],
)
def test_read_idx_bad_magic(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "bad-magic.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=r"bad IDX magic.*bad-magic\.idx"):
        read_idx(path)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x00",  # header cut
        b"\x00\x00\x08\x03" + struct.pack(">I", 2),  # dims cut
        b"\x00\x00\x0c\x02" + struct.pack(">II", 2, 2) + b"\x00" * 15,  # data cut
    ],
)
def test_read_idx_truncated(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "short.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=r"truncated IDX file.*short\.idx"):
        read_idx(path)
    gz = tmp_path / "short.idx.gz"
    gz.write_bytes(gzip.compress(raw))
    with pytest.raises(ValueError, match=r"truncated IDX file.*short\.idx\.gz"):
        read_idx(gz)


def test_read_idx_trailing_bytes_and_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "long.idx"
    path.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x01\x02\x03")
    with pytest.raises(ValueError, match=r"long\.idx.*trailing"):
        read_idx(path)
    gz = tmp_path / "cut.idx.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 50) + bytes(50))[:-12])
    with pytest.raises(ValueError, match=r"cut\.idx\.gz"):
        read_idx(gz)


# --------------------------------------------------------------------------- #
# MNIST
# --------------------------------------------------------------------------- #
def _write_fake_mnist(
    folder: Path,
    prefix: str = "train",
    n: int = 7,
    rows: int = 28,
    cols: int = 28,
    *,
    suffix: str = "",
    dotted: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    images[0, 0, 0] = 255
    images[0, 0, 1] = 0
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    sep = "." if dotted else "-"
    write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dotted", [False, True])
def test_load_mnist_train(tmp_path: Path, suffix: str, dotted: bool) -> None:
    images, labels = _write_fake_mnist(tmp_path, suffix=suffix, dotted=dotted)
    X, y = load_mnist(tmp_path)
    assert X.dtype == np.float32 and X.shape == (7, 784)
    assert y.dtype == np.int64 and y.shape == (7,)
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert X[0, 0] == 1.0 and X[0, 1] == 0.0
    np.testing.assert_array_equal(X, images.reshape(7, 784).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_test_split_shapes_and_options(tmp_path: Path) -> None:
    train_images, _ = _write_fake_mnist(tmp_path, "train", n=7, seed=1)
    test_images, test_labels = _write_fake_mnist(tmp_path, "t10k", n=3, suffix=".gz", seed=2)
    X, y = load_mnist(str(tmp_path), "test", flatten=False)
    assert X.shape == (3, 28, 28) and X.dtype == np.float32
    np.testing.assert_allclose(X * 255, test_images, atol=1e-4)
    np.testing.assert_array_equal(y, test_labels)
    X_raw, _ = load_mnist(tmp_path, "train", flatten=False, normalise=False)
    assert X_raw.dtype == np.float32
    np.testing.assert_array_equal(X_raw, train_images.astype(np.float32))


def test_load_mnist_shape_comes_from_file(tmp_path: Path) -> None:
    images, _ = _write_fake_mnist(tmp_path, n=4, rows=5, cols=3)
    X, _ = load_mnist(tmp_path, flatten=False)
    assert X.shape == (4, 5, 3)
    assert load_mnist(tmp_path)[0].shape == (4, 15)
    np.testing.assert_array_equal(np.rint(X * 255).astype(np.uint8), images)


def test_load_mnist_prefers_plain_file(tmp_path: Path) -> None:
    plain, _ = _write_fake_mnist(tmp_path, seed=3)
    _write_fake_mnist(tmp_path, suffix=".gz", seed=4)
    X, _ = load_mnist(tmp_path, normalise=False)
    np.testing.assert_array_equal(X, plain.reshape(7, -1))


def test_load_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test'.*'val'"):
        load_mnist(tmp_path, "val")
    missing = tmp_path / "no_such_mnist"
    with pytest.raises(FileNotFoundError, match=r"folder.*no_such_mnist"):
        load_mnist(missing)
    # no files at all: the image names looked for are listed
    with pytest.raises(
        FileNotFoundError,
        match=r"looked for: train-images-idx3-ubyte, train-images-idx3-ubyte\.gz, "
        r"train-images\.idx3-ubyte, train-images\.idx3-ubyte\.gz",
    ):
        load_mnist(tmp_path)
    # images but no labels
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path, "test")
    # count mismatch
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"count mismatch.*2 images.*3 labels"):
        load_mnist(tmp_path, "test")
    # wrong kind of array in the images file
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 784), np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*3-D uint8"):
        load_mnist(tmp_path, "test")
    # corrupt magic in an MNIST file names the file
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + bytes(12))
    with pytest.raises(ValueError, match=r"bad IDX magic.*t10k-images-idx3-ubyte"):
        load_mnist(tmp_path, "test")


# --------------------------------------------------------------------------- #
# CIFAR
# --------------------------------------------------------------------------- #
def _cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write_fake_cifar10(
    folder: Path, sizes: dict[str, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, n) in enumerate(sizes.items()):
        data = _cifar_rows(n, seed=10 + i)
        labels = np.random.default_rng(20 + i).integers(0, 10, size=n)
        write_cifar_batch(folder / name, data, labels)
        out[name] = (data, labels)
    return out


def test_write_cifar_batch_real_format(tmp_path: Path) -> None:
    data = _cifar_rows(3, seed=0)
    write_cifar_batch(tmp_path / "data_batch_1", data, np.array([1, 2, 3]))
    with open(tmp_path / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    assert all(isinstance(k, bytes) for k in batch)
    assert batch[b"labels"] == [1, 2, 3] and all(type(v) is int for v in batch[b"labels"])
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (3, 3072)
    np.testing.assert_array_equal(batch[b"data"], data)
    assert len(batch[b"filenames"]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["data_batch_1"]


def test_load_cifar10_train_test_and_pixel_layout(tmp_path: Path) -> None:
    written = _write_fake_cifar10(tmp_path, {"data_batch_1": 3, "data_batch_2": 2, "test_batch": 4})
    # known pixel: batch 2, row 1, channel c=2 (blue), image row i=5, col j=17
    c, i, j = 2, 5, 17
    data2, labels2 = written["data_batch_2"]
    data2[1, c * 1024 + i * 32 + j] = 201
    write_cifar_batch(tmp_path / "data_batch_2", data2, labels2)

    X, y = load_cifar(tmp_path)
    assert X.shape == (5, 3, 32, 32) and X.dtype == np.float32
    assert y.shape == (5,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert X[3 + 1, c, i, j] == np.float32(201) / np.float32(255)
    expected = np.concatenate([written["data_batch_1"][0], data2]).reshape(5, 3, 32, 32)
    np.testing.assert_array_equal(X, expected.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, np.concatenate([written["data_batch_1"][1], labels2]))

    Xf, _ = load_cifar(tmp_path, flatten=True, normalise=False)
    assert Xf.shape == (5, 3072)
    assert Xf[4, c * 1024 + i * 32 + j] == 201.0

    Xt, yt = load_cifar(tmp_path, 10, "test", normalise=False)
    np.testing.assert_array_equal(Xt, written["test_batch"][0].reshape(4, 3, 32, 32))
    np.testing.assert_array_equal(yt, written["test_batch"][1])


def test_load_cifar10_independent_pickle_and_channel_planes(tmp_path: Path) -> None:
    # Built by hand (not via write_cifar_batch): red plane 10, green 20, blue 30.
    data = np.repeat(np.array([10, 20, 30], dtype=np.uint8), 1024)[None, :].repeat(2, axis=0)
    data[1, 1024 + 31 * 32 + 0] = 99  # green, last row, first column
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": [7, 3], b"batch_label": b"x"}, f, protocol=2)
    X, y = load_cifar(tmp_path, split="test", normalise=False)
    assert X[0, 0].min() == X[0, 0].max() == 10
    assert X[0, 1].min() == X[0, 1].max() == 20
    assert X[0, 2].min() == X[0, 2].max() == 30
    assert X[1, 1, 31, 0] == 99 and X[1, 1, 0, 31] == 20
    np.testing.assert_array_equal(y, [7, 3])


def test_load_cifar10_gaps_and_subfolder(tmp_path: Path) -> None:
    sub = tmp_path / "cifar-10-batches-py"
    written = _write_fake_cifar10(sub, {"data_batch_3": 2, "data_batch_1": 1, "data_batch_5": 3})
    X, y = load_cifar(tmp_path, normalise=False, flatten=True)
    order = ["data_batch_1", "data_batch_3", "data_batch_5"]
    np.testing.assert_array_equal(X, np.concatenate([written[k][0] for k in order]))
    np.testing.assert_array_equal(y, np.concatenate([written[k][1] for k in order]))
    X2, _ = load_cifar(sub, normalise=False, flatten=True)
    np.testing.assert_array_equal(X2, X)


def test_load_cifar100_fine_and_coarse(tmp_path: Path) -> None:
    sub = tmp_path / "cifar-100-python"
    sub.mkdir()
    for k, (split, n) in enumerate([("train", 5), ("test", 3)]):
        data = _cifar_rows(n, seed=30 + k)
        fine = np.arange(n) * 7 % 100
        coarse = fine // 5
        write_cifar_batch(
            sub / split,
            data,
            fine,
            label_key=b"fine_labels",
            extra_labels={b"coarse_labels": coarse},
        )
        X, y = load_cifar(tmp_path, 100, split)
        assert X.shape == (n, 3, 32, 32) and y.dtype == np.int64
        expected = data.reshape(n, 3, 32, 32).astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(X, expected)
        np.testing.assert_array_equal(y, fine)
        _, yc = load_cifar(sub, variant=100, split=split, label_mode="coarse")
        np.testing.assert_array_equal(yc, coarse)


def test_load_cifar_argument_errors(tmp_path: Path) -> None:
    _write_fake_cifar10(tmp_path, {"data_batch_1": 1})
    with pytest.raises(ValueError, match=r"variant must be one of 10, 100; got 7"):
        load_cifar(tmp_path, variant=7)
    with pytest.raises(ValueError, match=r"variant must be one of 10, 100"):
        load_cifar(tmp_path, variant="10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"split must be one of 'train', 'test'; got 'valid'"):
        load_cifar(tmp_path, split="valid")
    with pytest.raises(ValueError, match=r"label_mode must be one of 'fine', 'coarse'; got 'mid'"):
        load_cifar(tmp_path, label_mode="mid")
    with pytest.raises(FileNotFoundError, match=r"folder.*missing_cifar"):
        load_cifar(tmp_path / "missing_cifar")


def test_load_cifar_missing_files(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"cifar-10-batches-py.*looked for: data_batch_1, data_batch_2, data_batch_3, "
        r"data_batch_4, data_batch_5",
    ):
        load_cifar(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"looked for: test_batch"):
        load_cifar(tmp_path, split="test")
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python.*looked for: test"):
        load_cifar(tmp_path, 100, "test")


def test_load_cifar_malformed_batches(tmp_path: Path) -> None:
    path = tmp_path / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": _cifar_rows(3, 0), b"labels": [1, 2]}, f)
    with pytest.raises(ValueError, match=r"count mismatch.*test_batch.*3 images.*2 labels"):
        load_cifar(tmp_path, split="test")
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, f)
    with pytest.raises(ValueError, match=r"test_batch.*uint8 \[n, 3072\]"):
        load_cifar(tmp_path, split="test")
    # CIFAR-100 file without coarse labels
    write_cifar_batch(tmp_path / "train", _cifar_rows(2, 1), [0, 1], label_key=b"fine_labels")
    with pytest.raises(ValueError, match=r"train.*coarse_labels"):
        load_cifar(tmp_path, 100, label_mode="coarse")
    path.write_bytes(b"definitely not a pickle")
    with pytest.raises(ValueError, match=r"test_batch"):
        load_cifar(tmp_path, split="test")


def test_write_cifar_batch_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data_uint8.*uint8"):
        write_cifar_batch(tmp_path / "b", np.zeros((2, 3072), np.float32), [0, 1])
    with pytest.raises(ValueError, match=r"data_uint8.*shape"):
        write_cifar_batch(tmp_path / "b", np.zeros((2, 3000), np.uint8), [0, 1])
    with pytest.raises(ValueError, match=r"count mismatch.*2 rows.*3 labels"):
        write_cifar_batch(tmp_path / "b", np.zeros((2, 3072), np.uint8), [0, 1, 2])
    assert list(tmp_path.iterdir()) == []
    # [n, 3, 32, 32] input is accepted and flattened row-major
    img = np.zeros((1, 3, 32, 32), np.uint8)
    img[0, 1, 2, 3] = 77
    write_cifar_batch(tmp_path / "test_batch", img, [4])
    X, _ = load_cifar(tmp_path, split="test", normalise=False)
    assert X[0, 1, 2, 3] == 77 and X.sum() == 77


# --------------------------------------------------------------------------- #
# class subsets
# --------------------------------------------------------------------------- #
def test_load_class_subset_relabels_in_given_order() -> None:
    X = np.arange(16, dtype=np.float32).reshape(8, 2)
    y = np.array([3, 5, 1, 3, 0, 5, 9, 1])
    Xs, ys = load_class_subset(X, y, (3, 5))
    np.testing.assert_array_equal(Xs, X[[0, 1, 3, 5]])
    np.testing.assert_array_equal(ys, [0, 1, 0, 1])
    assert ys.dtype == np.int64 and Xs.dtype == np.float32
    Xs, ys = load_class_subset(X, y, [5, 3, 9])
    np.testing.assert_array_equal(Xs, X[[0, 1, 3, 5, 6]])
    np.testing.assert_array_equal(ys, [1, 0, 1, 0, 2])
    # works on images too and with numpy integer classes
    imgs = np.arange(8 * 4).reshape(8, 1, 2, 2)
    Xs, ys = load_class_subset(imgs, y, np.array([1]))
    np.testing.assert_array_equal(Xs, imgs[[2, 7]])
    np.testing.assert_array_equal(ys, [0, 0])


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), k=st.integers(1, 5))
def test_load_class_subset_property(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(-3, 6, size=n)
    present = np.unique(y)
    classes = list(rng.permutation(present)[: min(k, present.size)])
    X = rng.standard_normal((n, 3))
    Xs, ys = load_class_subset(X, y, classes)
    keep = np.isin(y, classes)
    np.testing.assert_array_equal(Xs, X[keep])
    np.testing.assert_array_equal(np.asarray(classes)[ys], y[keep])
    assert set(ys.tolist()) == set(range(len(classes)))


def test_load_class_subset_errors() -> None:
    X = np.zeros((4, 2))
    y = np.array([0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"classes.*empty"):
        load_class_subset(X, y, [])
    with pytest.raises(ValueError, match=re.escape("classes [7] do not occur in y")):
        load_class_subset(X, y, [1, 7])
    with pytest.raises(ValueError, match=r"classes must be distinct"):
        load_class_subset(X, y, [1, 1])
    with pytest.raises(ValueError, match=r"classes must be integers"):
        load_class_subset(X, y, [1.5])
    with pytest.raises(ValueError, match=r"X and y.*same number of rows"):
        load_class_subset(X[:3], y, [1])
    with pytest.raises(ValueError, match=r"y must be a 1-D integer array"):
        load_class_subset(X, y.astype(float), [1])
