"""Exact PDQ range search on a CUDA device: Numba kernels, two passes, queries tiled.

FAISS's GpuIndexBinaryFlat has no range search (k-NN only, k <= 2048) and re-reads the
database for every few queries. Here each block stages a tile of QUERY_TILE queries in
shared memory and each thread holds one bank code in registers (8 x uint32), so the bank
is read once per query tile: at 1,000 queries and 100M codes, 32 passes over 3.2 GB.

One kernel, two passes: the first counts each query's hits (atomics), the host turns
counts into offsets, the second writes (row, distance) pairs into each query's slice.
Both passes compute the same distances, so the slices are filled exactly. The kernel runs
on a real device, or on the CPU under NUMBA_ENABLE_CUDASIM=1 in tests.
"""

from __future__ import annotations

from numba import cuda, int32, uint32

QUERY_TILE = 32
THREADS = 128
WORDS = 8  # 256 bits as uint32 words


@cuda.jit(device=True, inline=True)
def _distance(bank, row, tile, q):  # type: ignore[no-untyped-def]
    d = 0
    for w in range(WORDS):
        d += cuda.popc(bank[row, w] ^ tile[q, w])
    return d


@cuda.jit(device=True, inline=True)
def _stage(queries, q0, tile):  # type: ignore[no-untyped-def]
    """Copy queries[q0 : q0 + QUERY_TILE] into shared memory (zeros past the end)."""
    for k in range(cuda.threadIdx.x, QUERY_TILE * WORDS, cuda.blockDim.x):
        q, w = k // WORDS, k % WORDS
        tile[q, w] = queries[q0 + q, w] if q0 + q < queries.shape[0] else uint32(0)
    cuda.syncthreads()


@cuda.jit
def range_kernel(queries, bank, live, radius, cursor, rows, distances, fill):  # type: ignore[no-untyped-def]
    """For each live bank row within radius of query q: cursor[q] += 1, and with `fill`
    the row and distance are written at the slot cursor[q] held. Grid: (bank blocks,
    query tiles). Pass 1 counts (cursor zeros), pass 2 fills (cursor at the offsets)."""
    tile = cuda.shared.array((QUERY_TILE, WORDS), uint32)
    q0 = cuda.blockIdx.y * QUERY_TILE
    _stage(queries, q0, tile)
    row = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if row < bank.shape[0] and live[row]:
        for q in range(min(QUERY_TILE, queries.shape[0] - q0)):
            d = _distance(bank, row, tile, q)
            if d <= radius:
                slot = cuda.atomic.add(cursor, q0 + q, 1)
                if fill:
                    rows[slot] = int32(row)
                    distances[slot] = d


def launch_shape(n_bank: int, n_queries: int) -> tuple[tuple[int, int], int]:
    blocks = max(1, (n_bank + THREADS - 1) // THREADS)
    tiles = max(1, (n_queries + QUERY_TILE - 1) // QUERY_TILE)
    return (blocks, tiles), THREADS
