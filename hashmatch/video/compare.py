"""vPDQ matching of two videos, with the matched time ranges in both.

As the reference (python-threatexchange's vpdq brute-force match): drop frames under the
quality threshold, keep each distinct hash once, then the query match percent is the share
of the query's distinct hashes within `max_distance` (<=) of some target hash, and the
target match percent the same the other way. A video matches when both reach their
thresholds (vPDQ's defaults: 31 bits, quality 50, 80% each way).

Ranges: every kept frame whose hash is within the distance of some frame of the other
video is marked; runs of consecutive marked frames (frames skipped for low quality do not
break a run) become [start, end) time ranges, the end being the next sampled frame's
timestamp (the last frame's interval is the median sampling interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashmatch.errors import BadParameter
from hashmatch.video.features import VideoHash

_CHUNK = 1024  # query rows per distance block: bounded memory for long videos


@dataclass(frozen=True, slots=True)
class VideoMatchOptions:
    max_distance: int = 31
    min_quality: int = 50
    query_match_percent: float = 80.0
    target_match_percent: float = 80.0
    # Matched runs closer than this are reported as one range (a frame or two that miss,
    # e.g. under a logo, should not split a range).
    merge_gap_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.merge_gap_seconds < 0:
            raise BadParameter("merge_gap_seconds must be >= 0")
        if not 0 <= self.max_distance <= 256:
            raise BadParameter(f"max_distance must be in 0..256, got {self.max_distance}")
        if not 0 <= self.min_quality <= 100:
            raise BadParameter(f"min_quality must be in 0..100, got {self.min_quality}")
        for p in (self.query_match_percent, self.target_match_percent):
            if not 0 <= p <= 100:
                raise BadParameter(f"match percents must be in 0..100, got {p}")


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: float
    end: float

    def to_json(self) -> dict[str, float]:
        return {"start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass(frozen=True, slots=True)
class VideoComparison:
    query_match_percent: float
    target_match_percent: float
    query_ranges: tuple[TimeRange, ...]
    target_ranges: tuple[TimeRange, ...]
    is_match: bool

    def to_json(self) -> dict[str, object]:
        return {
            "is_match": self.is_match,
            "query_match_percent": round(self.query_match_percent, 3),
            "target_match_percent": round(self.target_match_percent, 3),
            "query_ranges": [r.to_json() for r in self.query_ranges],
            "target_ranges": [r.to_json() for r in self.target_ranges],
        }


def _words(hashes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(hashes).view(np.uint64).reshape(-1, 4)


def within(a: np.ndarray, b: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """For packed hashes a uint8[N,32], b uint8[M,32]: which rows of a have some row of b
    within max_distance bits, and which rows of b have some row of a."""
    wa, wb = _words(a), _words(b)
    hit_a = np.zeros(len(a), bool)
    hit_b = np.zeros(len(b), bool)
    if not len(a) or not len(b):
        return hit_a, hit_b
    for lo in range(0, len(a), _CHUNK):
        block = wa[lo : lo + _CHUNK]
        dist = np.zeros((len(block), len(wb)), np.uint16)
        for w in range(4):
            dist += np.bitwise_count(block[:, w, None] ^ wb[None, :, w])
        close = dist <= max_distance
        hit_a[lo : lo + _CHUNK] = close.any(axis=1)
        hit_b |= close.any(axis=0)
    return hit_a, hit_b


def _ranges(
    video: VideoHash, kept: np.ndarray, marked: np.ndarray, gap: float
) -> tuple[TimeRange, ...]:
    """Runs of marked frames among the kept ones; unkept frames neither mark nor break."""
    stamps = video.timestamps
    step = float(np.median(np.diff(stamps))) if len(stamps) > 1 else 0.0
    out: list[TimeRange] = []
    start: float | None = None
    last = -1
    for i in np.flatnonzero(kept).tolist():
        if marked[i]:
            if start is None:
                start = float(stamps[i])
            last = i
        elif start is not None:
            out.append(TimeRange(start, _end(stamps, last, step)))
            start = None
    if start is not None:
        out.append(TimeRange(start, _end(stamps, last, step)))
    merged: list[TimeRange] = []
    for r in out:
        if merged and r.start - merged[-1].end <= gap:
            merged[-1] = TimeRange(merged[-1].start, r.end)
        else:
            merged.append(r)
    return tuple(merged)


def _end(stamps: np.ndarray, i: int, step: float) -> float:
    return float(stamps[i + 1]) if i + 1 < len(stamps) else float(stamps[i]) + step


def compare(
    query: VideoHash, target: VideoHash, options: VideoMatchOptions | None = None
) -> VideoComparison:
    opts = options or VideoMatchOptions()
    q_kept = query.quality >= opts.min_quality
    t_kept = target.quality >= opts.min_quality
    q_uniq, q_inv = np.unique(query.hashes[q_kept], axis=0, return_inverse=True)
    t_uniq, t_inv = np.unique(target.hashes[t_kept], axis=0, return_inverse=True)
    if not len(q_uniq) or not len(t_uniq):
        return VideoComparison(0.0, 0.0, (), (), False)
    q_hit, t_hit = within(q_uniq, t_uniq, opts.max_distance)
    q_pct = 100.0 * float(q_hit.sum()) / len(q_uniq)
    t_pct = 100.0 * float(t_hit.sum()) / len(t_uniq)
    q_marked = np.zeros(len(query), bool)
    q_marked[np.flatnonzero(q_kept)] = q_hit[q_inv.reshape(-1)]
    t_marked = np.zeros(len(target), bool)
    t_marked[np.flatnonzero(t_kept)] = t_hit[t_inv.reshape(-1)]
    is_match = (
        q_pct >= opts.query_match_percent
        and t_pct >= opts.target_match_percent
        and bool(q_hit.any())
    )
    return VideoComparison(
        q_pct,
        t_pct,
        _ranges(query, q_kept, q_marked, opts.merge_gap_seconds),
        _ranges(target, t_kept, t_marked, opts.merge_gap_seconds),
        is_match,
    )
