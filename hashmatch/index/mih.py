"""Exact PDQ range search by multi-index hashing (Numba kernels in kernels.py).

Layout, LSM style, so adds and removes never wait for a full rebuild:
- `main`: a segment with its 12 tables over slots [0, main_stop);
- `delta`: a second, smaller segment over [main_stop, delta_stop), rebuilt (cost
  proportional to its size) whenever the tail grows past `tail_max`;
- the tail [delta_stop, n): the newest codes, scanned by brute force.
When delta passes `merge_fraction` of main, everything is folded into a new main (dead
slots dropped): amortized O(1) work per add. Removal clears an `alive` flag (tombstone).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np

from hashmatch.errors import BadParameter, ConfigError
from hashmatch.hashing.signature import PDQ_BYTES
from hashmatch.index import mih_kernels as kernels
from hashmatch.index.protocol import RangeHits, check_codes, check_ids

# Beyond this many bits of difference per chunk the probe sets explode: scan instead.
MAX_T = 3


@dataclass(frozen=True)
class MihConfig:
    threads: int = 0  # 0: one per CPU
    tail_max: int = 4096  # newest codes scanned by brute force before they get tables
    merge_fraction: float = 0.25  # delta larger than this share of main: fold into main
    min_key_bits: int = 10

    def __post_init__(self) -> None:
        if self.threads < 0 or self.tail_max < 1 or not 0 < self.merge_fraction <= 1:
            raise ConfigError("MihConfig: threads >= 0, tail_max >= 1, 0 < merge_fraction <= 1")

    @property
    def n_threads(self) -> int:
        return self.threads or os.cpu_count() or 1


@cache
def _masks(nbits: int, t: int) -> np.ndarray:
    """Every nbits-wide value with at most t bits set, fewest bits first."""
    out = [0]
    for r in range(1, t + 1):
        out.extend(sum(1 << b for b in c) for c in itertools.combinations(range(nbits), r))
    return np.array(out, dtype=np.uint64)


@cache
def _probe_set(key_bits: tuple[int, ...], t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Probing happens on the key; a key narrower than its chunk needs masks of key width.
    parts = [_masks(b, t) for b in key_bits]
    hi = np.cumsum([p.size for p in parts]).astype(np.int64)
    lo = np.concatenate([[0], hi[:-1]]).astype(np.int64)
    return np.concatenate(parts), lo, hi


@dataclass
class _Segment:
    start: int
    stop: int
    key_bits: np.ndarray  # int64[12]
    obase: np.ndarray  # int64[12]
    offsets: np.ndarray  # uint32[sum(2**key_bits + 1)]
    members: np.ndarray  # uint32[12, stop - start]

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.members.nbytes)


def _build_segment(codes64: np.ndarray, start: int, stop: int, cfg: MihConfig) -> _Segment:
    size = stop - start
    want = max(cfg.min_key_bits, math.ceil(math.log2(max(size, 2))))
    key_bits = np.minimum(kernels.CHUNK_BITS, want).astype(np.int64)
    sizes = (1 << key_bits) + 1
    obase = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    offsets = np.empty(int(sizes.sum()), dtype=np.uint32)
    members = np.empty((kernels.N_CHUNKS, size), dtype=np.uint32)

    def one(k: int) -> None:
        kernels.build_table(
            codes64,
            start,
            stop,
            kernels.CHUNK_START[k],
            kernels.CHUNK_BITS[k],
            key_bits[k],
            offsets[obase[k] : obase[k] + sizes[k]],
            members[k],
        )

    with ThreadPoolExecutor(cfg.n_threads) as pool:
        list(pool.map(one, range(kernels.N_CHUNKS)))
    return _Segment(start, stop, key_bits, obase, offsets, members)


class MultiIndexHashIndex:
    """SignatureIndex: exact Hamming range search over PDQ codes, sub-linear for r < 48.

    Thread-safe: a search takes a consistent view (arrays, segments, size) and runs without
    a lock; writers append past the published size, flip tombstones in place, and swap in
    new segments atomically, so searches never wait for a table build.
    """

    def __init__(self, config: MihConfig | None = None) -> None:
        self.config = config or MihConfig()
        # Writers are serialized by _write_lock; _lock only guards swapping the arrays and
        # segments that searches take a consistent view of.
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._codes = np.empty((0, PDQ_BYTES), dtype=np.uint8)
        self._ids = np.empty(0, dtype=np.uint32)
        self._alive = np.empty(0, dtype=np.uint8)
        self._n = 0
        self._live = 0
        # Slots [0, _sorted_len) hold non-decreasing ids (binary search finds them); later
        # slots are searched linearly. Compaction sorts every slot by id again.
        self._sorted_len = 0
        self._main: _Segment | None = None
        self._delta: _Segment | None = None
        self._pool = ThreadPoolExecutor(self.config.n_threads)

    # -- state ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._live

    @property
    def nbytes(self) -> int:
        """Bytes held: codes, ids, tombstones and tables (the resident footprint)."""
        segs = sum(s.nbytes for s in (self._main, self._delta) if s is not None)
        return int(self._codes.nbytes + self._ids.nbytes + self._alive.nbytes + segs)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- mutation ------------------------------------------------------------------------
    def _reserve(self, need: int) -> None:
        cap = self._codes.shape[0]
        if need <= cap:
            return
        new_cap = max(need, cap + cap // 4, 1024)
        codes = np.empty((new_cap, PDQ_BYTES), dtype=np.uint8)
        codes[: self._n] = self._codes[: self._n]
        ids = np.empty(new_cap, dtype=np.uint32)
        ids[: self._n] = self._ids[: self._n]
        alive = np.zeros(new_cap, dtype=np.uint8)
        alive[: self._n] = self._alive[: self._n]
        self._codes, self._ids, self._alive = codes, ids, alive

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        codes = check_codes(codes)
        ids64 = check_ids(ids, codes.shape[0])
        if not codes.shape[0]:
            return
        with self._write_lock:
            n0, n1 = self._n, self._n + codes.shape[0]
            with self._lock:
                self._reserve(n1)
            # Slots past n are invisible to searches: fill them, then publish the new n.
            self._codes[n0:n1] = codes
            self._ids[n0:n1] = ids64
            self._alive[n0:n1] = 1
            if (
                self._sorted_len == n0
                and not np.any(np.diff(ids64) < 0)
                and not (n0 and ids64[0] < self._ids[n0 - 1])
            ):
                self._sorted_len = n1
            with self._lock:
                self._n = n1
                self._live += codes.shape[0]
            self._maintain()

    def _maintain(self) -> None:
        """Give the tail tables once it is large; fold delta into main once that is.
        Tables are built outside `_lock`: searches go on over the old ones meanwhile."""
        cfg = self.config
        main_stop = self._main.stop if self._main else 0
        delta_stop = self._delta.stop if self._delta else main_stop
        n = self._n
        if n - delta_stop <= cfg.tail_max:
            return
        if n - main_stop > cfg.merge_fraction * main_stop:
            self._compact()
            return
        delta = _build_segment(self._codes.view(np.uint64), main_stop, n, cfg)
        with self._lock:
            self._delta = delta

    def _compact(self) -> None:
        """One main segment over every live code, slots sorted by id (drops tombstones)."""
        n = self._n
        codes, ids, alive = self._codes, self._ids, self._alive
        if self._live < n or self._sorted_len < n:
            keep = np.flatnonzero(alive[:n])
            if self._sorted_len < n:
                keep = keep[np.argsort(ids[keep], kind="stable")]
            codes = np.ascontiguousarray(codes[keep])
            ids = ids[keep]
            alive = np.ones(keep.size, dtype=np.uint8)
            n = keep.size
        main = _build_segment(codes.view(np.uint64), 0, n, self.config)
        with self._lock:
            self._codes, self._ids, self._alive = codes, ids, alive
            self._n = self._sorted_len = n
            self._main, self._delta = main, None

    def _slots_of(self, ids: np.ndarray) -> np.ndarray:
        """Every slot (live or not) holding one of these ids."""
        n, m = self._n, self._sorted_len
        keys = self._ids[:m]
        lo = np.searchsorted(keys, ids, side="left")
        hi = np.searchsorted(keys, ids, side="right")
        counts = (hi - lo).astype(np.int64)
        total = int(counts.sum())
        firsts = np.cumsum(counts) - counts
        pos = np.repeat(lo, counts) + np.arange(total) - np.repeat(firsts, counts)
        rest = m + np.flatnonzero(np.isin(self._ids[m:n], ids))
        return np.concatenate([pos.astype(np.int64), rest.astype(np.int64)])

    def remove(self, ids: np.ndarray) -> int:
        ids64 = check_ids(ids, np.asarray(ids).shape[0] if np.ndim(ids) == 1 else -1)
        with self._write_lock:
            slots = np.unique(self._slots_of(ids64))
            slots = slots[self._alive[slots] != 0]
            self._alive[slots] = 0  # in place: a search sees each flag before or after
            with self._lock:
                self._live -= int(slots.size)
            return int(slots.size)

    # -- search --------------------------------------------------------------------------
    def range_search(self, queries: np.ndarray, radius: int) -> RangeHits:
        queries = check_codes(queries)
        if radius < 0:
            raise BadParameter(f"radius must be >= 0, got {radius}")
        nq = queries.shape[0]
        with self._lock:  # a consistent view; the arrays are not mutated in place after
            view = (self._codes, self._ids, self._alive, self._n, self._main, self._delta)
        codes, ids, alive, n, main, delta = view
        if nq == 0 or n == 0:
            empty = np.empty(0, dtype=np.int64)
            return RangeHits(np.zeros(nq + 1, np.int64), empty, empty.astype(np.int16))
        codes64 = codes.view(np.uint64)
        q64 = queries.view(np.uint64)
        t = radius // kernels.N_CHUNKS
        segments = [s for s in (main, delta) if s is not None]
        indexed_stop = segments[-1].stop if segments else 0
        if t > MAX_T:
            segments, indexed_stop = [], 0

        def part(lo: int, hi: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            qs = q64[lo:hi]
            out = []
            for seg in segments:
                masks, mlo, mhi = _probe_set(tuple(int(b) for b in seg.key_bits), t)
                q, s, d = kernels.mih_search(
                    codes64, alive, seg.offsets, seg.obase, seg.key_bits, seg.members,
                    qs, masks, mlo, mhi, t, radius,
                )  # fmt: skip
                out.append((q + lo, s, d))
            if indexed_stop < n:
                q, s, d = kernels.scan_search(codes64, alive, indexed_stop, n, qs, radius)
                out.append((q + lo, s, d))
            return out

        return self._gather(nq, part, ids)

    def _gather(
        self,
        nq: int,
        part: Callable[[int, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]],
        ids: np.ndarray,
    ) -> RangeHits:
        n_parts = min(self.config.n_threads, nq)
        bounds = np.linspace(0, nq, n_parts + 1).astype(int)
        if n_parts == 1:
            pieces = part(0, nq)
        else:
            futures = [
                self._pool.submit(part, int(a), int(b)) for a, b in itertools.pairwise(bounds)
            ]
            pieces = [p for f in futures for p in f.result()]
        q = np.concatenate([p[0] for p in pieces]).astype(np.int64)
        s = np.concatenate([p[1] for p in pieces])
        d = np.concatenate([p[2] for p in pieces])
        return RangeHits.from_unsorted(nq, q, ids[s].astype(np.int64), d)

    # -- bulk in and out (what the matcher's snapshot holds) -----------------------------
    @classmethod
    def from_arrays(
        cls, ids: np.ndarray, codes: np.ndarray, config: MihConfig | None = None
    ) -> MultiIndexHashIndex:
        """An index over these entries, built in one go (the arrays are adopted, not copied,
        when they already have the right types)."""
        codes = check_codes(codes)
        ids64 = check_ids(ids, codes.shape[0])
        index = cls(config)
        index._load_arrays(ids64.astype(np.uint32), codes)
        return index

    def live_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64[n], codes uint8[n, 32]) of every live entry: what a snapshot holds."""
        with self._write_lock:
            keep = np.flatnonzero(self._alive[: self._n])
            return self._ids[keep].astype(np.int64), self._codes[keep]

    def _load_arrays(self, ids: np.ndarray, codes: np.ndarray) -> None:
        with self._write_lock:
            with self._lock:
                self._codes, self._ids = codes, ids
                self._alive = np.ones(ids.shape[0], dtype=np.uint8)
                self._n = self._live = int(ids.shape[0])
                self._sorted_len = 0 if np.any(ids[1:] < ids[:-1]) else self._n
                self._main = self._delta = None
            self._compact()
