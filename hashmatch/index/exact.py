"""Exact lookup of cryptographic signals (MD5, SHA-256): a hash map from value to ids."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np


class ExactHashIndex:
    """value bytes -> entry ids. Batch in, batch out, like every index here."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self._map: dict[bytes, list[int]] = {}
        self._live = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._live

    def add(self, ids: np.ndarray, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, self.nbytes)
        with self._lock:
            for i, v in zip(np.asarray(ids).tolist(), values, strict=True):
                self._map.setdefault(v.tobytes(), []).append(int(i))
            self._live += values.shape[0]

    def remove(self, ids: np.ndarray, values: np.ndarray) -> int:
        """Removal needs the value too (the store's change log carries it)."""
        values = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, self.nbytes)
        removed = 0
        with self._lock:
            for i, v in zip(np.asarray(ids).tolist(), values, strict=True):
                key = v.tobytes()
                held = self._map.get(key)
                if held and int(i) in held:
                    held.remove(int(i))
                    removed += 1
                    if not held:
                        del self._map[key]
            self._live -= removed
        return removed

    def lookup(self, values: Sequence[bytes]) -> list[list[int]]:
        return [list(self._map.get(v, ())) for v in values]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, value), for snapshots."""
        with self._lock:
            pairs = [(i, k) for k, ids in self._map.items() for i in ids]
        ids = np.array([p[0] for p in pairs], dtype=np.int64)
        vals = np.frombuffer(b"".join(p[1] for p in pairs), dtype=np.uint8).reshape(-1, self.nbytes)
        return ids, vals
