"""SignatureIndex on a CUDA device: the bank's codes live in device memory and every range
search is an exact scan by the tiled kernels of hashmatch.index.gpu_flat_kernels.

Brute force on purpose: at 100M codes a GPU scans the bank faster than the CPU's MIH
probes it, and the scan's cost does not depend on the radius. Host copies of ids and codes
stay beside it (for snapshots and to map rows back to ids); adds copy only the new codes,
on the host and to the device (both double their capacity when full, so a change costs
what it adds, not the bank's size: at 100M codes a copy of the bank is 3.2 GB), removes
flip live flags (only the span they touch goes to the device).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from hashmatch.errors import BadParameter
from hashmatch.hashing.backend import cuda_usable
from hashmatch.index.protocol import RangeHits, check_codes, check_ids


def _grown(array: np.ndarray, used: int, capacity: int) -> np.ndarray:
    """`array` with room for `capacity` rows, its first `used` rows kept."""
    out = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    out[:used] = array[:used]
    return out


def _cuda() -> Any:
    if not cuda_usable():
        raise BadParameter("the GPU index needs a CUDA device (none is usable here)")
    from numba import cuda

    return cuda


class GpuFlatIndex:
    def __init__(self, capacity: int = 1 << 16) -> None:
        self._cuda = _cuda()
        self._n = 0  # rows used; the arrays below have room for more
        self._codes = np.empty((capacity, 32), dtype=np.uint8)
        self._ids = np.empty(capacity, dtype=np.int64)
        self._alive = np.zeros(capacity, dtype=bool)
        self._bank = self._cuda.device_array((capacity, 8), dtype=np.uint32)
        self._live = self._cuda.to_device(np.zeros(capacity, dtype=np.uint8))
        # Searches and updates come from different threads (the matcher's follower): one
        # at a time, so a search never sees a half-grown bank.
        self._lock = threading.Lock()

    @classmethod
    def from_arrays(cls, ids: np.ndarray, codes: np.ndarray) -> GpuFlatIndex:
        index = cls(capacity=max(1 << 16, len(ids)))
        index.add(ids, codes)
        return index

    def close(self) -> None:
        """Device memory goes with the object; nothing else to release."""

    def __len__(self) -> int:
        return int(self._alive[: self._n].sum())

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        with self._lock:
            self._add(ids, codes)

    def _add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        codes = check_codes(codes)
        ids64 = check_ids(ids, codes.shape[0])
        k = codes.shape[0]
        if k == 0:
            return
        self._grow(self._n + k)
        lo, hi = self._n, self._n + k
        self._bank[lo:hi].copy_to_device(codes.view(np.uint32))
        self._live[lo:hi].copy_to_device(np.ones(k, dtype=np.uint8))
        self._codes[lo:hi], self._ids[lo:hi], self._alive[lo:hi] = codes, ids64, True
        self._n = hi

    def _grow(self, need: int) -> None:
        capacity = self._bank.shape[0]
        if need <= capacity:
            return
        while capacity < need:
            capacity *= 2
        n = self._n
        bank = self._cuda.device_array((capacity, 8), dtype=np.uint32)
        live = self._cuda.to_device(np.zeros(capacity, dtype=np.uint8))
        if n:
            bank[:n].copy_to_device(self._bank[:n])
            live[:n].copy_to_device(self._live[:n])
        self._bank, self._live = bank, live
        self._codes = _grown(self._codes, n, capacity)
        self._ids = _grown(self._ids, n, capacity)
        self._alive = _grown(self._alive, n, capacity)

    def remove(self, ids: np.ndarray) -> int:
        with self._lock:
            return self._remove(ids)

    def _remove(self, ids: np.ndarray) -> int:
        n = self._n
        dead = np.flatnonzero(
            np.isin(self._ids[:n], np.asarray(ids, dtype=np.int64)) & self._alive[:n]
        )
        if len(dead):
            self._alive[dead] = False
            lo, hi = int(dead[0]), int(dead[-1]) + 1
            self._live[lo:hi].copy_to_device(self._alive[lo:hi].astype(np.uint8))
        return len(dead)

    def range_search(self, queries: np.ndarray, radius: int) -> RangeHits:
        with self._lock:
            return self._range_search(queries, radius)

    def _range_search(self, queries: np.ndarray, radius: int) -> RangeHits:
        from hashmatch.index import gpu_flat_kernels as k

        queries = check_codes(queries)
        if radius < 0:
            raise BadParameter(f"radius must be >= 0, got {radius}")
        nq = queries.shape[0]
        lims = np.zeros(nq + 1, dtype=np.int64)
        if nq == 0 or self._n == 0:
            return RangeHits(lims, np.empty(0, np.int64), np.empty(0, np.int16))
        cuda = self._cuda
        d_queries = cuda.to_device(np.ascontiguousarray(queries).view(np.uint32))
        bank, live = self._bank[: self._n], self._live[: self._n]
        grid, block = k.launch_shape(self._n, nq)
        counts = cuda.to_device(np.zeros(nq, dtype=np.int32))
        unused = cuda.device_array(1, dtype=np.int32)
        k.range_kernel[grid, block](d_queries, bank, live, radius, counts, unused, unused, False)
        np.cumsum(counts.copy_to_host(), out=lims[1:])
        total = int(lims[-1])
        if total > np.iinfo(np.int32).max:  # the kernels' slots are int32
            raise BadParameter(f"{total} hits in one search: ask with a smaller radius or batch")
        if total == 0:
            return RangeHits(lims, np.empty(0, np.int64), np.empty(0, np.int16))
        cursor = cuda.to_device(lims[:-1].astype(np.int32))
        rows = cuda.device_array(total, dtype=np.int32)
        distances = cuda.device_array(total, dtype=np.int32)
        k.range_kernel[grid, block](d_queries, bank, live, radius, cursor, rows, distances, True)
        found = rows.copy_to_host()
        return RangeHits(lims, self._ids[found], distances.copy_to_host().astype(np.int16))

    def live_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            keep = np.flatnonzero(self._alive[: self._n])
            return self._ids[keep], self._codes[keep]
