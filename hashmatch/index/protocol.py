"""The contract every signature index keeps: batch in, batch out, ids chosen by the caller.

The index knows codes and ids only; what an id means (bank, label, value) lives beside it
in the bank store, so the index stays a plain, replaceable data structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hashmatch.errors import BadParameter
from hashmatch.hashing.signature import PDQ_BYTES

# Ids are the bank store's entry ids; the index keeps them as uint32 to stay within its
# memory budget (10M entries in under 1 GB).
MAX_ID = (1 << 32) - 1


@dataclass(frozen=True)
class RangeHits:
    """Hits of a batch of Q queries, grouped by query: query i's hits are
    ids[lims[i]:lims[i + 1]] at distances[lims[i]:lims[i + 1]] (in no particular order)."""

    lims: np.ndarray  # int64[Q + 1]
    ids: np.ndarray  # int64[M]
    distances: np.ndarray  # int16[M]

    @property
    def n_queries(self) -> int:
        return int(self.lims.shape[0]) - 1

    def of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = int(self.lims[i]), int(self.lims[i + 1])
        return self.ids[lo:hi], self.distances[lo:hi]

    @classmethod
    def from_unsorted(
        cls, n_queries: int, query: np.ndarray, ids: np.ndarray, distances: np.ndarray
    ) -> RangeHits:
        order = np.argsort(query, kind="stable")
        counts = np.bincount(query, minlength=n_queries) if query.size else np.zeros(n_queries)
        lims = np.zeros(n_queries + 1, dtype=np.int64)
        np.cumsum(counts, out=lims[1:])
        return cls(lims, ids[order].astype(np.int64), distances[order].astype(np.int16))


class SignatureIndex(Protocol):
    """Exact range search over packed 256-bit codes, updated in place."""

    def __len__(self) -> int:
        """Live (not removed) entries."""
        ...

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Add codes uint8[N, 32] under ids int[N] (0 <= id <= MAX_ID)."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove every live entry with one of these ids; returns how many were removed."""
        ...

    def range_search(self, queries: np.ndarray, radius: int) -> RangeHits:
        """Every live entry within Hamming distance <= radius of each query uint8[Q, 32]."""
        ...


def check_codes(codes: np.ndarray) -> np.ndarray:
    """Packed codes as a C-contiguous uint8[N, 32] array, or BadParameter."""
    arr = np.ascontiguousarray(codes, dtype=np.uint8)
    if arr.ndim != 2 or arr.shape[1] != PDQ_BYTES:
        raise BadParameter(f"codes must be uint8[N, {PDQ_BYTES}], got shape {arr.shape}")
    return arr


def check_ids(ids: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.shape != (n,):
        raise BadParameter(f"expected {n} ids, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > MAX_ID):
        raise BadParameter(f"ids must be in [0, {MAX_ID}]")
    return arr.astype(np.int64)


class PdqIndex(SignatureIndex, Protocol):
    """What the bank matcher needs of its PDQ index: the contract, plus its live entries
    (for snapshots) and a close."""

    def live_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64[n], codes uint8[n, 32]) of every live entry."""
        ...

    def close(self) -> None: ...
