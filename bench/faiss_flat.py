"""SignatureIndex on FAISS's brute-force binary index: the baseline, and an option.

IndexBinaryFlat on the CPU; GpuIndexBinaryFlat when a GPU is there. Constructing the GPU
index without a GPU aborts the whole process, so it is only tried when
faiss.get_num_gpus() > 0. FAISS's binary range_search is strict (distance < radius):
asking for "<= r" means passing r + 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashmatch.errors import BadParameter
from hashmatch.index.protocol import RangeHits, check_codes, check_ids


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise BadParameter("the faiss index needs faiss-cpu (or faiss-gpu) installed") from None
    return faiss


class FaissFlatIndex:
    """Exact, linear-time. Removal is a tombstone filtered at query time; `compact()`
    rebuilds the FAISS index without the dead codes."""

    def __init__(self, use_gpu: bool = True) -> None:
        self._faiss = _faiss()
        self._codes = np.empty((0, 32), dtype=np.uint8)
        self._ids = np.empty(0, dtype=np.int64)
        self._alive = np.empty(0, dtype=bool)
        self._use_gpu = use_gpu and self._faiss.get_num_gpus() > 0
        self._index = self._new_index()

    def _new_index(self) -> Any:
        cpu = self._faiss.IndexBinaryFlat(256)
        if self._use_gpu:
            res = self._faiss.StandardGpuResources()
            return self._faiss.GpuIndexBinaryFlat(res, cpu)
        return cpu

    @property
    def on_gpu(self) -> bool:
        return self._use_gpu

    def __len__(self) -> int:
        return int(self._alive.sum())

    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        codes = check_codes(codes)
        ids64 = check_ids(ids, codes.shape[0])
        self._index.add(codes)
        self._codes = np.concatenate([self._codes, codes])
        self._ids = np.concatenate([self._ids, ids64])
        self._alive = np.concatenate([self._alive, np.ones(codes.shape[0], dtype=bool)])

    def remove(self, ids: np.ndarray) -> int:
        dead = np.isin(self._ids, np.asarray(ids, dtype=np.int64)) & self._alive
        self._alive[dead] = False
        return int(dead.sum())

    def compact(self) -> None:
        keep = self._alive
        self._codes, self._ids = self._codes[keep], self._ids[keep]
        self._alive = np.ones(self._ids.shape[0], dtype=bool)
        self._index = self._new_index()
        self._index.add(self._codes)

    def range_search(self, queries: np.ndarray, radius: int) -> RangeHits:
        queries = check_codes(queries)
        if radius < 0:
            raise BadParameter(f"radius must be >= 0, got {radius}")
        if queries.shape[0] == 0 or self._ids.shape[0] == 0:
            empty = np.empty(0, dtype=np.int64)
            return RangeHits(
                np.zeros(queries.shape[0] + 1, np.int64), empty, empty.astype(np.int16)
            )
        lims, dist, labels = self._index.range_search(queries, radius + 1)  # strict: < radius + 1
        q = np.repeat(np.arange(queries.shape[0]), np.diff(lims.astype(np.int64)))
        live = self._alive[labels]
        return RangeHits.from_unsorted(
            queries.shape[0], q[live], self._ids[labels[live]], dist[live].astype(np.int16)
        )
