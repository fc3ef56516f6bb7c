"""PDQ's Jarosz blur + decimation as a pair of banded resampling matrices.

PDQ blurs the luma plane with two passes of a clipped box filter along each axis and
then samples 64 rows and 64 columns. All of that is linear and separable, so for an
axis of length n it is one 64 x n matrix S_n = (B_n @ B_n)[index] and the 64x64 buffer
is A = S_H @ L @ S_W.T. Each row of S_n is non-zero only on a short band (about four
box half-widths), so we keep it as (start, weights[band]) and do ~2*full MACs per pixel.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

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


def columns_first(h: int, w: int) -> bool:
    """Whether to resample the columns first (on the transposed image). Under 128 rows
    the row pass is a pure selection (a window of 1), so both orders are the same float
    operations and give the same bits; and rows first would cost 64 x W and a 64 x W
    buffer (5 GB for a 5 x 20,000,000 image) where columns first costs 64 x H x band."""
    return jarosz_window(h) == 1 and w > h


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
    """The sampled rows of B @ B (two clipped box passes), without building the n x n
    matrices, in time linear in n: row i is pass 1's uniform window around its sample,
    each of whose inputs k spreads 1/|W(k)| over its own window W(k); summed with prefix
    sums, since the k whose windows cover an input m are one contiguous run. (A pure
    Python double loop here was quadratic in n: a 5 x 20,000,000 PNG of 91 bytes took
    hours of CPU with the GIL held.) Equal, in float32, to composing the passes term by
    term (tests/test_resample.py)."""
    full = jarosz_window(n)
    half = (full + 2) // 2
    rows: list[tuple[int, np.ndarray]] = []
    for o in decimation_index(n).tolist():
        a, b = max(0, o + half - full), min(n - 1, o + half - 1)
        k = np.arange(a, b + 1)
        lo = np.maximum(0, k + half - full)
        hi = np.minimum(n - 1, k + half - 1)
        share = (1.0 / (b - a + 1)) / (hi - lo + 1)
        prefix = np.concatenate([[0.0], np.cumsum(share)])
        m = np.arange(lo[0], hi[-1] + 1)
        first = np.searchsorted(hi, m, side="left")  # the first k with m <= hi_k
        past = np.searchsorted(lo, m, side="right")  # one past the last k with lo_k <= m
        rows.append((int(lo[0]), prefix[past] - prefix[first]))
    band = max(len(w) for _, w in rows)
    # Every band lies inside [0, n) so kernels read no guard checks: shift a band
    # that would run past the end back, zero-padded at its front.
    starts = np.array([min(s, n - band) for s, _ in rows], dtype=np.int32)
    weights = np.zeros((PDQ_BUFFER, band), dtype=np.float64)
    for i, (s, w) in enumerate(rows):
        weights[i, s - starts[i] : s - starts[i] + len(w)] = w
    return starts, weights.astype(np.float32)


K = TypeVar("K")
V = TypeVar("V")


class ByteBoundedCache(Generic[K, V]):
    """Made on first use, least recently used out first, within a byte budget: a few
    image sizes recur (cameras, thumbnails), but every size an attacker sends must not
    stay (a 20,000,000 px axis needs an 80 MB band). Values over `largest` bytes are
    made each time and not kept."""

    def __init__(
        self, make: Callable[[K], V], size_of: Callable[[V], int], budget: int, largest: int
    ) -> None:
        self._make, self._size_of = make, size_of
        self.budget, self.largest = budget, largest
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found[0]
        made = self._make(key)
        size = self._size_of(made)
        if size > self.largest:
            return made
        with self._lock:
            if key not in self._items:
                self._items[key] = (made, size)
                self._bytes += size
            while self._bytes > self.budget:
                _, (_, old) = self._items.popitem(last=False)
                self._bytes -= old
        return made


def _make_resampler(n: int) -> BandedResampler:
    starts, weights = _band_of(n)
    return BandedResampler(n=n, starts=starts, weights=weights)


_CACHE: ByteBoundedCache[int, BandedResampler] = ByteBoundedCache(
    _make_resampler, lambda r: r.starts.nbytes + r.weights.nbytes, 64 << 20, 8 << 20
)


def resampler(n: int) -> BandedResampler:
    """The resampler for an axis of length n (depends on n alone), cached."""
    if n < 1:
        raise ValueError(f"axis length must be positive, got {n}")
    return _CACHE.get(n)
