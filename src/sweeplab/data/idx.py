"""Read and write the IDX file format, the format MNIST and Fashion-MNIST ship in.

Format (LeCun, Cortes & Burges, "The MNIST database", http://yann.lecun.com/exdb/mnist/,
section "File formats"): a 4-byte magic number whose first two bytes are zero, the third
the element type and the fourth the number of dimensions; then one big-endian int32 per
dimension; then the elements in C order, big-endian. Type codes::

    0x08 unsigned byte   0x09 signed byte   0x0B short (2 bytes)
    0x0C int (4 bytes)   0x0D float (4)     0x0E double (8)

Files are read whole and checked strictly (magic, type code, a data size that matches the
header exactly), so a truncated download fails with a message naming the file rather than
as a reshape error later. Gzip-compressed files are recognised by their content, not only
by a ``.gz`` suffix.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from sweeplab.core.experiment import atomic_write_bytes
from sweeplab.errors import SweeplabError

__all__ = ["IdxFormatError", "read_idx", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"

_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> the big-endian numpy dtype of its elements."""

_KIND_TO_CODE: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()
}
"""(numpy kind, item size) -> IDX type code, for writing."""

_ALLOWED_DTYPES = "uint8, int8, int16, int32, float32, float64"


class IdxFormatError(SweeplabError, ValueError):
    """A file that is not a valid IDX file (bad magic, unknown type, truncated, ...).

    ``path`` is the offending file and ``reason`` what is wrong with it; the message
    names both so the user knows which download to redo.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: not a valid IDX file: {reason}")


def _read_bytes(path: Path) -> bytes:
    """Return the file's bytes, gunzipped when the content is gzip (whatever the suffix)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        # EOFError: gzip stream cut short; OSError/BadGzipFile, zlib.error: corrupt data.
        raise IdxFormatError(path, f"corrupt or truncated gzip data ({exc})") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a native-byte-order numpy array.

    The array has the shape the header declares and the dtype of its type code
    (``uint8`` for MNIST images and labels). It is a fresh writable copy.

    Raises :class:`IdxFormatError` (a ``ValueError``) naming the file when the magic
    number or type code is wrong, or the data is shorter or longer than the header says;
    ``FileNotFoundError`` when there is no such file.
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise IdxFormatError(path, f"file has {len(buf)} bytes, shorter than the 4-byte magic")
    if buf[0] != 0 or buf[1] != 0:
        raise IdxFormatError(
            path, f"bad magic number 0x{buf[:4].hex()}: the first two bytes must be zero"
        )
    code, ndim = buf[2], buf[3]
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"0x{c:02X}" for c in _CODE_TO_DTYPE)
        raise IdxFormatError(path, f"unknown type code 0x{code:02X} (known: {known})")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise IdxFormatError(
            path, f"truncated header: {ndim} dimensions need {header_len} bytes, got {len(buf)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(buf, dtype=">i4", count=ndim, offset=4))
    if any(d < 0 for d in shape):
        raise IdxFormatError(path, f"negative dimension in header {shape}")
    dtype = _CODE_TO_DTYPE[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(buf) - header_len
    if found != expected:
        what = "truncated" if found < expected else "trailing bytes"
        raise IdxFormatError(
            path,
            f"{what}: header declares shape {shape} of {dtype.name} "
            f"({expected} data bytes) but the file holds {found}",
        )
    data = np.frombuffer(buf, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends with ``.gz``.

    The element type follows the array's dtype (one of uint8, int8, int16, int32,
    float32, float64; anything else raises :class:`IdxFormatError` rather than silently
    casting). The file is written atomically (temporary file + ``os.replace``) so a
    reader never sees half a file. Gzip output has a zero timestamp, so the same array
    gives the same bytes. Returns the path written.
    """
    path = Path(path)
    arr = np.asarray(array)
    key = (arr.dtype.kind, arr.dtype.itemsize)
    if key not in _KIND_TO_CODE:
        raise IdxFormatError(path, f"cannot store dtype {arr.dtype}; IDX holds {_ALLOWED_DTYPES}")
    if arr.ndim > 255:
        raise IdxFormatError(path, f"{arr.ndim} dimensions; IDX holds at most 255")
    if any(d >= 2**31 for d in arr.shape):
        raise IdxFormatError(path, f"dimension in {arr.shape} does not fit a signed int32")
    code = _KIND_TO_CODE[key]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=_CODE_TO_DTYPE[code]).tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(path, payload)
    return path
