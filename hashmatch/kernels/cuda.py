"""Numba CUDA kernels: the same banded resampling and luma as kernels/cpu.py, on a GPU.

Each kernel handles a batch of same-sized images (the GPU backend buckets by size).
They run on a real device, or on the CPU under NUMBA_ENABLE_CUDASIM=1 in tests.
Accumulation follows the CPU kernels' order (band taps in order, float32).
"""

from __future__ import annotations

from numba import cuda, float32, float64

from hashmatch.kernels.constants import LUMA_B, LUMA_G, LUMA_R, PDQ_BUFFER


@cuda.jit
def luma_kernel(rgb, out):  # type: ignore[no-untyped-def]
    """out[n, r, c] = float32(R*0.299 + G*0.587 + B*0.114) in float64, as the reference."""
    c, r, n = cuda.grid(3)
    if n < rgb.shape[0] and r < rgb.shape[1] and c < rgb.shape[2]:
        v = (
            float64(rgb[n, r, c, 0]) * LUMA_R
            + float64(rgb[n, r, c, 1]) * LUMA_G
            + float64(rgb[n, r, c, 2]) * LUMA_B
        )
        out[n, r, c] = float32(v)


@cuda.jit
def rows_kernel(imgs, starts, weights, out):  # type: ignore[no-untyped-def]
    """out[n, i, c] = sum_t weights[i, t] * imgs[n, starts[i] + t, c]."""
    c, i, n = cuda.grid(3)
    if n < imgs.shape[0] and i < PDQ_BUFFER and c < imgs.shape[2]:
        s = starts[i]
        acc = float32(0.0)
        for t in range(weights.shape[1]):
            acc += weights[i, t] * float32(imgs[n, s + t, c])
        out[n, i, c] = acc


@cuda.jit
def cols_kernel(tmp, starts, weights, out):  # type: ignore[no-untyped-def]
    """out[n, i, j] = sum_t weights[j, t] * tmp[n, i, starts[j] + t]."""
    j, i, n = cuda.grid(3)
    if n < tmp.shape[0] and i < PDQ_BUFFER and j < PDQ_BUFFER:
        s = starts[j]
        acc = float32(0.0)
        for t in range(weights.shape[1]):
            acc += weights[j, t] * tmp[n, i, s + t]
        out[n, i, j] = acc


Launch = tuple[tuple[int, int, int], tuple[int, int, int]]


def grid_for(width: int, rows: int, batch: int, block: tuple[int, int] = (32, 8)) -> Launch:
    """Launch shape covering (width, rows, batch) with 2-D blocks."""
    bx, by = block
    return ((width + bx - 1) // bx, (rows + by - 1) // by, batch), (bx, by, 1)
