"""Run under NUMBA_ENABLE_CUDASIM=1 (tests/test_cuda_kernels.py does): the GPU index's
range search against a NumPy brute force, through adds that grow it and removes."""

from __future__ import annotations

import os
import sys

import numpy as np

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run me under the CUDA simulator"

from hashmatch.hashing.signature import hamming  # noqa: E402
from hashmatch.index.gpu_flat import GpuFlatIndex  # noqa: E402

Hit = tuple[int, int, int]  # (query, id, distance)


def brute(codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, r: int) -> set[Hit]:
    d = hamming(queries[:, None, :], codes[None, :, :])
    q, row = np.nonzero(d <= r)
    return {(int(a), int(ids[b]), int(d[a, b])) for a, b in zip(q, row, strict=True)}


def got(index: GpuFlatIndex, queries: np.ndarray, r: int) -> set[Hit]:
    hits = index.range_search(queries, r)
    out = set()
    for i in range(hits.n_queries):
        ids, dist = hits.of(i)
        out |= {(i, int(a), int(b)) for a, b in zip(ids, dist, strict=True)}
    assert len(out) == int(hits.lims[-1]), "a hit reported twice"
    return out


def near(rng: np.random.Generator, code: np.ndarray, flips: int) -> np.ndarray:
    bits = np.unpackbits(code)
    bits[rng.choice(256, flips, replace=False)] ^= 1
    return np.packbits(bits)


def main(seed: int) -> None:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (150, 32), dtype=np.uint8)
    ids = rng.choice(10_000, 150, replace=False).astype(np.int64)
    index = GpuFlatIndex(capacity=32)  # grows four times on the way
    for lo in range(0, 150, 50):
        index.add(ids[lo : lo + 50], codes[lo : lo + 50])
    picks, flips = rng.integers(0, 150, 40), rng.integers(0, 40, 40)
    queries = np.stack(
        [near(rng, codes[k], f) for k, f in zip(picks, flips, strict=True)]
        + [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(5)]
    )  # 45 queries: two query tiles, one partial
    for r in (0, 10, 31, 120):
        assert got(index, queries, r) == brute(codes, ids, queries, r), r
    gone = ids[::3]
    assert index.remove(gone) == len(gone) and index.remove(gone) == 0
    keep = ~np.isin(ids, gone)
    assert len(index) == int(keep.sum())
    assert got(index, queries, 31) == brute(codes[keep], ids[keep], queries, 31)
    empty = index.range_search(np.zeros((0, 32), np.uint8), 31)
    assert empty.n_queries == 0 and empty.ids.size == 0
    # More codes after the removals, enough to grow again: the dead stay dead.
    more = rng.integers(0, 256, (120, 32), dtype=np.uint8)
    more_ids = np.arange(20_000, 20_120, dtype=np.int64)
    index.add(more_ids, more)
    all_codes, all_ids = np.concatenate([codes[keep], more]), np.concatenate([ids[keep], more_ids])
    assert len(index) == len(all_ids)
    assert got(index, queries, 31) == brute(all_codes, all_ids, queries, 31)
    live_ids, live_codes = index.live_arrays()
    assert set(live_ids.tolist()) == set(all_ids.tolist()) and len(live_codes) == len(live_ids)
    print("cudasim search ok")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
