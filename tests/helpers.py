"""Shared test helpers: the reference oracle and image generators."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
import pytest
from PIL import Image

REFERENCE_DATA = Path(
    os.environ.get(
        "HASHMATCH_REFERENCE_DATA",
        Path(__file__).resolve().parents[2] / "shared" / "reference-data",
    )
)


def reference_dir(sub: str) -> Path:
    """A folder of Meta's test vectors; skip (or fail in CI) where they are absent."""
    path = REFERENCE_DATA / sub
    if not path.is_dir():
        if os.environ.get("HASHMATCH_REQUIRE_REFERENCE"):
            pytest.fail(f"reference data missing at {path} (HASHMATCH_REQUIRE_REFERENCE is set)")
        pytest.skip(f"reference data not found at {path}; set HASHMATCH_REFERENCE_DATA")
    return path


def oracle(rgb: np.ndarray) -> tuple[bytes, int]:
    """pdqhash (Meta's C++ PDQ) on an RGB array: packed hash bytes and quality."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(bits.astype(np.uint8)).tobytes(), int(quality)


def oracle_dihedral(rgb: np.ndarray) -> tuple[list[bytes], int]:
    hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [np.packbits(h.astype(np.uint8)).tobytes() for h in hashes], int(quality)


def pillow_rgb(data: bytes) -> np.ndarray:
    """The reference decode (python-threatexchange / HMA): Pillow, convert('RGB')."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def synthetic_rgb(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like test image: smooth random structure, edges and a little noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float64)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float64)[None, :]
    out = np.empty((height, width, 3))
    for c in range(3):
        field = np.zeros((height, width))
        for _ in range(6):
            fy, fx = rng.uniform(0.5, 8, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            field += rng.uniform(0.3, 1) * np.sin(2 * np.pi * (fy * y + fx * x) + phase)
        field += (x * rng.uniform(-2, 2)) + (y * rng.uniform(-2, 2))
        field += (np.hypot(x - rng.uniform(), y - rng.uniform()) < rng.uniform(0.1, 0.4)) * 1.5
        out[:, :, c] = field
    out -= out.min()
    out *= 255.0 / max(out.max(), 1e-9)
    out += rng.normal(0, 4, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **options)
    return buf.getvalue()


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def still_running(pids: set[int], within_s: float) -> set[int]:
    """Which of pids are still running after within_s seconds (zombies count as gone)."""
    deadline = time.monotonic() + within_s
    while True:
        alive = set()
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                alive.add(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def audit_trail(db: Path) -> list[dict[str, Any]]:
    """An embedded installation's audit records, in order."""
    from hashmatch.audit.log import records
    from hashmatch.audit.sqlite_tables import SqliteAuditTables

    tables = SqliteAuditTables(db)
    try:
        return [rec for _, rec in records(tables)]
    finally:
        tables.close()
