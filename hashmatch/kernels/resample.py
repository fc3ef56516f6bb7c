"""PDQ's Jarosz blur + decimation as a pair of banded resampling matrices.

PDQ blurs the luma plane with two passes of a clipped box filter along each axis and
then samples 64 rows and 64 columns. All of that is linear and separable, so for an
axis of length n it is one 64 x n matrix S_n = (B_n @ B_n)[index] and the 64x64 buffer
is A = S_H @ L @ S_W.T. Each row of S_n is non-zero only on a short band (about four
box half-widths), so we keep it as (start, weights[band]) and do ~2*full MACs per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hashmatch.kernels.constants import PDQ_BUFFER

JAROSZ_PASSES = 2


def jarosz_window(n: int, out: int = PDQ_BUFFER) -> int:
    """The reference's computeJaroszFilterWindowSize: ceil(n / (2 * out))."""
    return (n + 2 * out - 1) // (2 * out)


def box_matrix(n: int) -> np.ndarray:
    """One clipped box pass along an axis of length n, as an n x n matrix (float64)."""
    full = jarosz_window(n)
    half = (full + 2) // 2
    mat = np.zeros((n, n), dtype=np.float64)
    for o in range(n):
        lo, hi = max(0, o + half - full), min(n - 1, o + half - 1)
        mat[o, lo : hi + 1] = 1.0 / (hi - lo + 1)
    return mat


def decimation_index(n: int, out: int = PDQ_BUFFER) -> np.ndarray:
    """Which input rows the reference's decimateFloat keeps: int((i + 0.5) * n / out)."""
    return ((np.arange(out) + 0.5) * n / out).astype(np.int64)


@dataclass(frozen=True)
class BandedResampler:
    """The 64 x n matrix S_n stored as a band per output row.

    starts[i] is the first input index of row i's band; weights[i, t] multiplies input
    starts[i] + t. Bands are padded with zeros to one common width.
    """

    n: int
    starts: np.ndarray  # int32[64]
    weights: np.ndarray  # float32[64, band]

    @property
    def band(self) -> int:
        return int(self.weights.shape[1])

    def dense(self) -> np.ndarray:
        """S_n as a dense float32 64 x n matrix (for GEMM backends and tests)."""
        out = np.zeros((PDQ_BUFFER, self.n), dtype=np.float32)
        for i in range(PDQ_BUFFER):
            s = int(self.starts[i])
            width = min(self.band, self.n - s)
            out[i, s : s + width] = self.weights[i, :width]
        return out


def _band_of(n: int) -> tuple[np.ndarray, np.ndarray]:
    # The exact composition of the passes, computed sparsely: the sampled rows of
    # B @ B without ever building the n x n matrices (n can be 30,000).
    full = jarosz_window(n)
    half = (full + 2) // 2
    idx = decimation_index(n)
    rows: list[dict[int, float]] = []
    for o in idx:
        acc: dict[int, float] = {int(o): 1.0}
        for _ in range(JAROSZ_PASSES):
            nxt: dict[int, float] = {}
            for k, w in acc.items():
                lo, hi = max(0, k + half - full), min(n - 1, k + half - 1)
                share = w / (hi - lo + 1)
                for m in range(lo, hi + 1):
                    nxt[m] = nxt.get(m, 0.0) + share
            acc = nxt
        rows.append(acc)
    band = max(max(r) - min(r) + 1 for r in rows)
    # Every band lies inside [0, n) so kernels read no guard checks: shift a band
    # that would run past the end back, zero-padded at its front.
    starts = np.array([min(min(r), n - band) for r in rows], dtype=np.int32)
    weights = np.zeros((PDQ_BUFFER, band), dtype=np.float64)
    for i, r in enumerate(rows):
        for m, w in r.items():
            weights[i, m - starts[i]] = w
    return starts, weights.astype(np.float32)


@lru_cache(maxsize=256)
def resampler(n: int) -> BandedResampler:
    """The cached resampler for an axis of length n (depends on n alone)."""
    if n < 1:
        raise ValueError(f"axis length must be positive, got {n}")
    starts, weights = _band_of(n)
    return BandedResampler(n=n, starts=starts, weights=weights)
