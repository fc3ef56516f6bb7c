"""A video's vPDQ hash: one feature per sampled frame, packed arrays inside.

The reference (Meta's vpdq) prints one line per frame,
`frame_number,quality,pdq_hex,timestamp_seconds`; that text form lives at the edges
(`to_text`/`from_text`). Inside, a VideoHash is four parallel arrays, and its compact
binary form (`to_bytes`) is one fixed-size record per frame (41 bytes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hashmatch.errors import BadParameter
from hashmatch.hashing.signature import PDQ_BYTES

_MAGIC = b"VPDQ\x01"
# frame number, timestamp in milliseconds, quality, hash
_RECORD = np.dtype([("frame", "<u4"), ("ms", "<u4"), ("quality", "u1"), ("pdq", "u1", (32,))])


@dataclass(frozen=True, eq=False)
class VideoHash:
    """frame_numbers int64[N] (increasing), timestamps float64[N] seconds,
    hashes uint8[N, 32] (big-endian form of the reference's hex), quality int32[N]."""

    frame_numbers: np.ndarray
    timestamps: np.ndarray
    hashes: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.frame_numbers)
        if self.hashes.shape != (n, PDQ_BYTES) or len(self.timestamps) != n:
            raise BadParameter("a video hash needs one timestamp, hash and quality per frame")
        if len(self.quality) != n:
            raise BadParameter("a video hash needs one timestamp, hash and quality per frame")

    def __len__(self) -> int:
        return len(self.frame_numbers)

    @classmethod
    def empty(cls) -> VideoHash:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros((0, PDQ_BYTES), np.uint8),
            np.zeros(0, np.int32),
        )

    @classmethod
    def concat(cls, parts: list[VideoHash]) -> VideoHash:
        """Consecutive pieces of one video, in order."""
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.frame_numbers for p in parts]),
            np.concatenate([p.timestamps for p in parts]),
            np.concatenate([p.hashes for p in parts]),
            np.concatenate([p.quality for p in parts]),
        )

    @classmethod
    def from_rows(cls, rows: list[tuple[int, float, bytes, int]]) -> VideoHash:
        """From (frame_number, timestamp, 32-byte hash, quality) tuples."""
        if not rows:
            return cls.empty()
        frames, stamps, hashes, quality = zip(*rows, strict=True)
        if any(len(h) != PDQ_BYTES for h in hashes):
            raise BadParameter(f"a frame's PDQ hash is {PDQ_BYTES} bytes")
        return cls(
            np.asarray(frames, np.int64),
            np.asarray(stamps, np.float64),
            np.frombuffer(b"".join(hashes), np.uint8).reshape(-1, PDQ_BYTES).copy(),
            np.asarray(quality, np.int32),
        )

    def rows(self) -> Iterator[tuple[int, float, bytes, int]]:
        """(frame_number, timestamp, 32-byte hash, quality) per frame: from_rows' input."""
        return zip(
            self.frame_numbers.tolist(),
            self.timestamps.tolist(),
            (bytes(h) for h in self.hashes),
            self.quality.tolist(),
            strict=True,
        )

    @property
    def duration(self) -> float:
        return float(self.timestamps[-1]) if len(self) else 0.0

    # -- text (the reference's format) ---------------------------------------------------
    def to_text(self) -> str:
        return "".join(f"{f},{q},{h.hex()},{t:.3f}\n" for f, t, h, q in self.rows())

    @classmethod
    def from_text(cls, text: str) -> VideoHash:
        """Lines `frame_number,quality,pdq_hex,timestamp_seconds` (blank lines ignored)."""
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.strip().split(",")
            if len(parts) != 4:
                raise BadParameter(f"line {lineno}: want frame,quality,pdq_hex,timestamp")
            try:
                frame, quality, stamp = int(parts[0]), int(parts[1]), float(parts[3])
                pdq = bytes.fromhex(parts[2])
            except ValueError:
                raise BadParameter(f"line {lineno}: not a vPDQ feature line") from None
            if len(pdq) != PDQ_BYTES or not 0 <= quality <= 100 or frame < 0 or stamp < 0:
                raise BadParameter(f"line {lineno}: out-of-range vPDQ feature")
            rows.append((frame, stamp, pdq, quality))
        return cls.from_rows(rows)

    # -- compact binary (banks, wire) ----------------------------------------------------
    def to_bytes(self) -> bytes:
        rec = np.zeros(len(self), _RECORD)
        rec["frame"] = self.frame_numbers
        rec["ms"] = np.rint(self.timestamps * 1000.0)
        rec["quality"] = self.quality
        rec["pdq"] = self.hashes
        return _MAGIC + rec.tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes) -> VideoHash:
        if not blob.startswith(_MAGIC) or (len(blob) - len(_MAGIC)) % _RECORD.itemsize:
            raise BadParameter("not a compact vPDQ hash")
        rec = np.frombuffer(blob, _RECORD, offset=len(_MAGIC))
        return cls(
            rec["frame"].astype(np.int64),
            rec["ms"].astype(np.float64) / 1000.0,
            np.ascontiguousarray(rec["pdq"]),
            rec["quality"].astype(np.int32),
        )
