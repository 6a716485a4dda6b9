"""IDX reader/writer: the real Fashion-MNIST files, round trips, and broken files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from sweeplab.data import IdxFormatError, read_idx, write_idx


def test_real_fashion_mnist_files_have_the_published_shapes_and_balance(fashion_arrays):
    """Fashion-MNIST: 60000 + 10000 28x28 uint8 images, 10 classes, perfectly balanced."""
    train, test = fashion_arrays["train_images"], fashion_arrays["test_images"]
    assert train.shape == (60000, 28, 28) and train.dtype == np.uint8
    assert test.shape == (10000, 28, 28) and test.dtype == np.uint8
    assert train.max() == 255 and train.min() == 0
    for labels, per_class in (
        (fashion_arrays["train_labels"], 6000),
        (fashion_arrays["test_labels"], 1000),
    ):
        assert labels.dtype == np.uint8
        assert set(np.unique(labels)) == set(range(10))
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip_keeps_values_shape_and_dtype(tmp_path: Path, dtype, name):
    """write_idx then read_idx gives back the array exactly, for every IDX type."""
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        arr = rng.integers(info.min, info.max, size=(3, 4, 5), endpoint=True).astype(dtype)
    else:
        arr = rng.standard_normal((3, 4, 5)).astype(dtype)
    path = write_idx(arr, tmp_path / name)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    back[0, 0, 0] = 0  # a writable copy, not a view on the file buffer


def test_written_file_is_big_endian_idx_with_the_documented_header(tmp_path: Path):
    """Bytes on disk follow the spec: 0 0 type ndim, int32 dims, big-endian data."""
    path = write_idx(np.array([[1, 2, 3], [256, -1, 7]], dtype=np.int32), tmp_path / "x.idx")
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0C, 2])
    assert raw[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert raw[12:16] == (1).to_bytes(4, "big")
    assert raw[24:28] == (256).to_bytes(4, "big")
    assert raw[28:32] == (-1).to_bytes(4, "big", signed=True)
    assert len(raw) == 12 + 6 * 4


def test_gzip_output_is_compressed_and_deterministic(tmp_path: Path):
    """A .gz name gives gzip data; the same array gives the same bytes (mtime 0)."""
    arr = np.zeros((100, 100), dtype=np.uint8)
    a = write_idx(arr, tmp_path / "a.gz").read_bytes()
    b = write_idx(arr, tmp_path / "b.gz").read_bytes()
    assert a[:2] == b"\x1f\x8b" and a == b
    assert len(a) < arr.size


def test_gzip_is_recognised_by_content_not_suffix(tmp_path: Path):
    """A gzip-compressed file without the .gz suffix still reads."""
    arr = np.arange(10, dtype=np.uint8)
    plain = write_idx(arr, tmp_path / "plain.idx")
    hidden = tmp_path / "no-suffix"
    hidden.write_bytes(gzip.compress(plain.read_bytes()))
    np.testing.assert_array_equal(read_idx(hidden), arr)


def _idx_bytes(arr: np.ndarray, tmp_path: Path) -> bytes:
    return write_idx(arr, tmp_path / "src.idx").read_bytes()


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_names_the_file_and_says_truncated(tmp_path: Path, gz: bool):
    """A download cut short fails with a ValueError naming the file, not a reshape error."""
    raw = _idx_bytes(np.ones((10, 28, 28), dtype=np.uint8), tmp_path)[:-100]
    bad = tmp_path / ("cut.idx.gz" if gz else "cut.idx")
    bad.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(IdxFormatError, match="truncated") as info:
        read_idx(bad)
    assert isinstance(info.value, ValueError)
    assert str(bad) in str(info.value)


def test_truncated_gzip_stream_is_reported_for_the_file(tmp_path: Path):
    """A .gz file cut mid-stream gives the same typed error, naming the file."""
    whole = gzip.compress(_idx_bytes(np.arange(5000, dtype=np.int32), tmp_path))
    bad = tmp_path / "cut.gz"
    bad.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(IdxFormatError, match="gzip") as info:
        read_idx(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x1f\x00\x08\x01" + bytes(8), "bad magic"),
        (b"PK\x03\x04" + bytes(8), "bad magic"),
        (bytes([0, 0, 0x0A, 1]) + bytes(8), "unknown type code 0x0A"),
        (bytes([0, 0, 0x08, 3, 0, 0]), "truncated header"),
        (b"\x00\x00", "shorter than the 4-byte magic"),
    ],
)
def test_bad_header_gives_clear_error(tmp_path: Path, payload: bytes, match: str):
    """Wrong magic, unknown type, or a cut header: a ValueError naming the file."""
    bad = tmp_path / "bad.idx"
    bad.write_bytes(payload)
    with pytest.raises(IdxFormatError, match=match) as info:
        read_idx(bad)
    assert str(bad) in str(info.value)


def test_trailing_bytes_are_rejected(tmp_path: Path):
    """More data than the header declares means the header is wrong: refuse it."""
    bad = tmp_path / "long.idx"
    bad.write_bytes(_idx_bytes(np.arange(4, dtype=np.uint8), tmp_path) + b"\x00")
    with pytest.raises(IdxFormatError, match="trailing bytes"):
        read_idx(bad)


def test_missing_file_is_file_not_found(tmp_path: Path):
    """No file at all stays a FileNotFoundError (a different fix than a corrupt file)."""
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


@pytest.mark.parametrize("dtype", [np.int64, np.float16, np.bool_, np.uint16])
def test_write_refuses_types_idx_cannot_hold(tmp_path: Path, dtype):
    """No silent cast: an unsupported dtype is an error and nothing is written."""
    target = tmp_path / "x.idx"
    with pytest.raises(IdxFormatError, match="cannot store dtype"):
        write_idx(np.zeros(3, dtype=dtype), target)
    assert list(tmp_path.iterdir()) == []
