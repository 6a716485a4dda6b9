"""Arrays that cross the sandbox boundary: what the agent writes reads back exactly
(0-d counters, integers, booleans included), and an archive the sandboxed code crafted
is refused before NumPy allocates or unpickles anything."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sweeplab.agent.arrays import ArrayFileError, read_arrays, write_arrays


def test_what_is_written_reads_back_exactly(tmp_path: Path) -> None:
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4),
              "num_batches_tracked": np.array(7, dtype=np.int64),
              "mask": np.array([True, False]), "empty": np.zeros((0, 5), np.float64)}
    back = read_arrays(write_arrays(tmp_path / "a.npz", arrays), 2**20)
    assert sorted(back) == sorted(arrays)
    for key, value in arrays.items():
        assert back[key].shape == value.shape and back[key].dtype == value.dtype
        np.testing.assert_array_equal(back[key], value)


def _npz(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _npy(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def _lying_npy() -> bytes:
    """A .npy header announcing 10^12 float64 numbers, followed by three."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(3))
    header["shape"] = (10**12,)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(np.zeros(3).tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize(("members", "compress", "words"), [
    ({"x.npy": _npy(np.array([object()], dtype=object), allow_pickle=True)},
     zipfile.ZIP_STORED, "not a plain number type"),
    ({"x.npy": _npy(np.zeros(1000))}, zipfile.ZIP_DEFLATED, "is not a stored .npy array"),
    ({"x.npy": _npy(np.zeros(10))[:-40]}, zipfile.ZIP_STORED, "the member holds"),
    # a header announcing 10^12 numbers over a few bytes: refused, never allocated
    ({"x.npy": _lying_npy()}, zipfile.ZIP_STORED, "announces (1000000000000,)"),
    ({"../x.npy": _npy(np.zeros(3))}, zipfile.ZIP_STORED, "is not a stored .npy array"),
    ({"x.txt": b"hello"}, zipfile.ZIP_STORED, "is not a stored .npy array"),
])
def test_a_crafted_archive_is_refused(tmp_path: Path, members: dict, compress: int,
                                      words: str) -> None:
    path = _npz(tmp_path / "bad.npz", members, compress)
    with pytest.raises(ArrayFileError) as info:
        read_arrays(path, 2**20)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_file_over_the_size_limit_or_missing_is_refused(tmp_path: Path) -> None:
    path = write_arrays(tmp_path / "big.npz", {"x": np.zeros(1000)})
    with pytest.raises(ArrayFileError, match="more than 100"):
        read_arrays(path, 100)
    with pytest.raises(ArrayFileError, match="missing"):
        read_arrays(tmp_path / "absent.npz", 100)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ArrayFileError, match="not a readable .npz archive"):
        read_arrays(tmp_path / "junk.npz", 100)
