"""What a match reports of an entry (its bank, label and source), in memory beside the index.

A match must not read the database: the catalog answers for a whole batch of hit ids
with a few array lookups. It is keyed by entry id over the span of ids it holds (the
store hands out increasing ids), 12 bytes an id; labels and sources are interned, since
a list holds few distinct ones (NCMEC's are A1, A2, B1, B2).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_NONE = 0  # string index of "no label" / "no source"
_ABSENT = -1  # bank id of an id the catalog does not hold


@dataclass(frozen=True, slots=True)
class EntryMeta:
    """Columns for a batch of entry ids (bank -1: not held)."""

    bank_ids: np.ndarray  # int32[n]
    labels: list[str | None]
    sources: list[str | None]


class EntryCatalog:
    def __init__(self) -> None:
        self._base = 0  # the entry id of row 0
        self._bank = np.full(0, _ABSENT, dtype=np.int32)
        self._label = np.zeros(0, dtype=np.int32)
        self._source = np.zeros(0, dtype=np.int32)
        self._strings: list[str | None] = [None]
        self._interned: dict[str, int] = {}
        self._live = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._live

    def _intern(self, text: str | None) -> int:
        if text is None:
            return _NONE
        k = self._interned.get(text)
        if k is None:
            k = self._interned[text] = len(self._strings)
            self._strings.append(text)
        return k

    def _cover(self, ids: np.ndarray) -> None:
        """Grow the rows to hold every id (by doubling: amortised appends)."""
        lo, hi = int(ids.min()), int(ids.max())
        if self._bank.size == 0:
            self._base = lo
        start, stop = min(self._base, lo), max(self._base + self._bank.size, hi + 1)
        if start == self._base and stop <= self._base + self._bank.size:
            return
        size = max(stop - start, 2 * self._bank.size)
        shift = self._base - start
        for name, fill in (("_bank", _ABSENT), ("_label", _NONE), ("_source", _NONE)):
            old = getattr(self, name)
            new = np.full(size, fill, dtype=np.int32)
            new[shift : shift + old.size] = old
            setattr(self, name, new)
        self._base = start

    def _rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row per id, clamped to 0 where outside; bank per id, -1 where not held)."""
        rows = ids - self._base
        inside = (rows >= 0) & (rows < self._bank.size)
        rows = np.where(inside, rows, 0)
        if self._bank.size == 0:
            return rows, np.full(ids.size, _ABSENT, dtype=np.int32)
        return rows, np.where(inside, self._bank[rows], _ABSENT).astype(np.int32)

    def holds(self, ids: np.ndarray) -> np.ndarray:
        """bool[n]: whether each id is held."""
        with self._lock:
            held: np.ndarray = self._rows(np.asarray(ids, dtype=np.int64))[1] != _ABSENT
        return held

    def put(
        self,
        ids: np.ndarray,
        bank_ids: np.ndarray,
        labels: Sequence[str | None],
        sources: Sequence[str | None],
    ) -> None:
        """Add entries, or replace what is held of them (a label changed)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        with self._lock:
            self._cover(ids)
            rows = ids - self._base
            self._live += int((self._bank[rows] == _ABSENT).sum())
            self._bank[rows] = bank_ids
            self._label[rows] = [self._intern(t) for t in labels]
            self._source[rows] = [self._intern(t) for t in sources]

    def drop(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            rows = ids - self._base
            rows = rows[(rows >= 0) & (rows < self._bank.size)]
            self._live -= int((self._bank[rows] != _ABSENT).sum())
            self._bank[rows] = _ABSENT

    def meta(self, ids: np.ndarray) -> EntryMeta:
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            rows, bank = self._rows(ids)
            if self._bank.size == 0:
                return EntryMeta(bank, [None] * ids.size, [None] * ids.size)
            strings = self._strings
            labels = [strings[k] for k in self._label[rows].tolist()]
            sources = [strings[k] for k in self._source[rows].tolist()]
        return EntryMeta(bank, labels, sources)

    # -- snapshots -----------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        with self._lock:
            blob, offsets = _pack(self._strings[1:])
            return {
                "catalog_base": np.array([self._base], dtype=np.int64),
                "catalog_bank": self._bank.copy(),
                "catalog_label": self._label.copy(),
                "catalog_source": self._source.copy(),
                "catalog_strings": blob,
                "catalog_offsets": offsets,
            }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> EntryCatalog:
        """The inverse of arrays(); KeyError or ValueError for arrays that do not fit."""
        catalog = cls()
        bank, label, source = (
            np.ascontiguousarray(arrays[f"catalog_{k}"], dtype=np.int32)
            for k in ("bank", "label", "source")
        )
        strings: list[str | None] = [None, *_unpack(arrays["catalog_strings"],
                                                    arrays["catalog_offsets"])]  # fmt: skip
        if not bank.shape == label.shape == source.shape or bank.ndim != 1:
            raise ValueError("catalog columns of different lengths")
        for col in (label, source):
            if col.size and not 0 <= int(col.min()) <= int(col.max()) < len(strings):
                raise ValueError("catalog string index out of range")
        catalog._base = int(arrays["catalog_base"][0])
        catalog._bank, catalog._label, catalog._source = bank, label, source
        catalog._strings = strings
        catalog._interned = {s: k for k, s in enumerate(strings) if s is not None}
        catalog._live = int((bank != _ABSENT).sum())
        return catalog


def _pack(strings: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [(s or "").encode() for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def _unpack(blob: np.ndarray, offsets: np.ndarray) -> list[str | None]:
    raw = np.ascontiguousarray(blob, dtype=np.uint8).tobytes()
    bounds = np.asarray(offsets, dtype=np.int64).tolist()
    if bounds and (bounds[0] != 0 or bounds[-1] != len(raw)):
        raise ValueError("catalog string offsets do not fit the blob")
    return [raw[a:b].decode() for a, b in itertools.pairwise(bounds)]
