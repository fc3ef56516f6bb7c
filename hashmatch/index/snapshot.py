"""Snapshot files: a JSON header, then raw arrays, checked by length and CRC-32.

Written to a temp file in the same folder, fsync'd, then os.replace'd over the old one,
so a crash leaves either the old snapshot or the new one, never a torn file. A reader
that finds anything off raises SnapshotError and the caller rebuilds from the store.
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hashmatch.errors import HashmatchError

MAGIC = b"HMSNAP01"
_CRC_BLOCK = 1 << 24


class SnapshotError(HashmatchError):
    """A snapshot that cannot be used (missing, torn, corrupt, or of another format)."""


def _crc(arr: np.ndarray, crc: int) -> int:
    flat = arr.reshape(-1).view(np.uint8)
    for i in range(0, flat.size, _CRC_BLOCK):
        crc = zlib.crc32(flat[i : i + _CRC_BLOCK].data, crc)
    return crc


def write_snapshot(path: Path, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    crc = 0
    specs = []
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        crc = _crc(arr, crc)
        specs.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape)})
    head = json.dumps({"header": dict(header), "arrays": specs, "crc32": crc}).encode()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC)
            f.write(len(head).to_bytes(8, "little"))
            f.write(head)
            for arr in arrays.values():
                np.ascontiguousarray(arr).tofile(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_snapshot(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise SnapshotError(f"{path}: not a hashmatch snapshot")
            n = int.from_bytes(f.read(8), "little")
            if not 0 < n < 1 << 20:
                raise SnapshotError(f"{path}: bad header length")
            meta = json.loads(f.read(n))
            arrays: dict[str, np.ndarray] = {}
            crc = 0
            for spec in meta["arrays"]:
                dtype = np.dtype(spec["dtype"])
                shape = tuple(int(s) for s in spec["shape"])
                count = int(np.prod(shape, dtype=np.int64))
                arr = np.fromfile(f, dtype=dtype, count=count)
                if arr.size != count:
                    raise SnapshotError(f"{path}: truncated")
                arr = arr.reshape(shape)
                crc = _crc(arr, crc)
                arrays[spec["name"]] = arr
            if f.read(1):
                raise SnapshotError(f"{path}: trailing bytes")
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no snapshot") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path}: unreadable ({type(exc).__name__})") from None
    if crc != meta["crc32"]:
        raise SnapshotError(f"{path}: checksum mismatch")
    header: dict[str, Any] = meta["header"]
    return header, arrays
