"""Scan rows and their Parquet schema: one row per input, hashes as hex (an edge format)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MATCH_TYPE = pa.struct(
    [
        ("bank", pa.string()),
        ("entry_id", pa.int64()),
        ("signal_type", pa.string()),
        ("distance", pa.int32()),
        ("label", pa.string()),
        ("variant", pa.int32()),
        ("suppressed", pa.bool_()),
    ]
)

RANGE_TYPE = pa.struct([("start", pa.float64()), ("end", pa.float64())])
VIDEO_MATCH_TYPE = pa.struct(
    [
        ("bank", pa.string()),
        ("video_id", pa.int64()),
        ("label", pa.string()),
        ("query_match_percent", pa.float64()),
        ("target_match_percent", pa.float64()),
        ("query_ranges", pa.list_(RANGE_TYPE)),
        ("target_ranges", pa.list_(RANGE_TYPE)),
    ]
)

SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("mtime", pa.float64()),
        ("pdq", pa.string()),
        ("quality", pa.int32()),
        ("md5", pa.string()),
        ("sha256", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("is_match", pa.bool_()),
        ("matches", pa.list_(MATCH_TYPE)),
        ("error_code", pa.string()),
        ("error_message", pa.string()),
        # Videos (one row per video): the vPDQ hash in its compact form (41 bytes a frame,
        # hashmatch.video.features), the number of frames hashed, and the videos matched
        # with their time ranges. Null on image rows.
        ("vpdq", pa.binary()),
        ("video_frames", pa.int32()),
        ("video_matches", pa.list_(VIDEO_MATCH_TYPE)),
    ]
)


@dataclass
class ScanRow:
    path: str
    size: int = -1
    mtime: float = 0.0
    pdq: str | None = None
    quality: int | None = None
    md5: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    is_match: bool = False
    matches: list[dict[str, Any]] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    vpdq: bytes | None = None
    video_frames: int | None = None
    video_matches: list[dict[str, Any]] | None = None


def to_table(rows: list[ScanRow]) -> pa.Table:
    columns = {name: [getattr(r, name) for r in rows] for name in SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def write_atomic(table: pa.Table, path: Path) -> None:
    """Temp file + os.replace: a reader (or a resumed scan) sees the whole shard or none."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, row_group_size=4096)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_rows(path: Path) -> pa.Table:
    """A scan output: one Parquet file, or a scan's folder of shard files."""
    if path.is_dir():
        parts = sorted(path.glob("part-*.parquet"))
        return (
            pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in parts])
            if parts
            else SCHEMA.empty_table()
        )
    return pq.read_table(path, schema=SCHEMA)
