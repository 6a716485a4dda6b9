"""Arrays that cross the sandbox's boundary: NumPy ``.npz`` files, read without trusting them.

The agent hands the sandbox its data and receives weights and predictions as ``.npz``
archives (NumPy's own format: a zip of ``.npy`` files, each a small header and the raw
numbers). Nothing in them can run: :func:`read_arrays` refuses pickled (object) arrays,
and before NumPy reads a number it checks the archive itself, since the sandboxed code
wrote it: only stored (uncompressed) members named ``<key>.npy``, each holding exactly
the bytes its header announces, of a plain numeric or boolean dtype, the whole within
``max_bytes``. A header cannot make this process allocate more than the file holds.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from sweeplab.errors import SweeplabError

NUMERIC_KINDS = frozenset("fiub")
"""dtype kinds accepted: floats, signed and unsigned integers, booleans."""


class ArrayFileError(SweeplabError, ValueError):
    """An ``.npz`` file from the sandbox is missing, too large or not plain arrays."""


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (uncompressed ``.npz``, atomically); return it."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, **{k: np.asarray(v, order="C") for k, v in arrays.items()})
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    path.chmod(0o644)
    return path


def _member_shape(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple, np.dtype]:
    """The shape and dtype one member announces, checked against its size."""
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ArrayFileError(f"{info.filename}: unsupported .npy version {version}")
        header = handle.tell()
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise ArrayFileError(f"{info.filename}: dtype {dtype} is not a plain number type")
    if fortran:
        raise ArrayFileError(f"{info.filename}: Fortran-ordered arrays are not accepted")
    count = 1
    for dim in shape:
        if not isinstance(dim, int) or dim < 0:
            raise ArrayFileError(f"{info.filename}: bad shape {shape}")
        count *= dim
    if header + count * dtype.itemsize != info.file_size:
        raise ArrayFileError(f"{info.filename}: its header announces {shape} of {dtype} but "
                             f"the member holds {info.file_size} bytes")
    return tuple(shape), dtype


def read_arrays(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` written by sandboxed code, checked as the module says.

    Raises :class:`ArrayFileError` (one line) when the file is missing, larger than
    ``max_bytes``, or anything but plain stored arrays.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ArrayFileError(f"{path.name} is missing") from exc
    if size > max_bytes:
        raise ArrayFileError(f"{path.name} holds {size} bytes, more than {max_bytes}")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                raise ArrayFileError(f"{path.name}: duplicate members")
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy") \
                        or "/" in info.filename or info.file_size != info.compress_size:
                    raise ArrayFileError(f"{path.name}: member {info.filename[:60]!r} is not a "
                                         "stored .npy array")
                _member_shape(archive, info)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArrayFileError(f"{path.name} is not a readable .npz archive") from exc
    except ValueError as exc:
        if isinstance(exc, ArrayFileError):
            raise
        raise ArrayFileError(f"{path.name}: a malformed .npy header") from exc
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # e.g. a CRC mismatch
        raise ArrayFileError(f"{path.name}: its arrays cannot be read") from exc
