"""Numba CPU kernels: the banded PDQ resampling, fused with the luma conversion.

These are the hot loops of the CPU engine. They read the decoded pixels once (no float
copy of the whole image) and release the GIL, so a thread pool scales across cores.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hashmatch.kernels.constants import LUMA_B as _B
from hashmatch.kernels.constants import LUMA_G as _G
from hashmatch.kernels.constants import LUMA_R as _R
from hashmatch.kernels.constants import PDQ_BUFFER
from hashmatch.kernels.resample import BandedResampler, columns_first


@njit(nogil=True, cache=True)
def _rows_gray(img, starts, weights):  # type: ignore[no-untyped-def]
    _, w = img.shape
    band = weights.shape[1]
    out = np.zeros((PDQ_BUFFER, w), dtype=np.float32)
    for i in range(PDQ_BUFFER):
        s = starts[i]
        for t in range(band):
            wt = weights[i, t]
            if wt == 0.0:
                continue
            row = img[s + t]
            acc = out[i]
            for c in range(w):
                acc[c] += wt * np.float32(row[c])
    return out


@njit(nogil=True, cache=True)
def _rows_rgb(img, starts, weights):  # type: ignore[no-untyped-def]
    w = img.shape[1]
    band = weights.shape[1]
    out = np.zeros((PDQ_BUFFER, w), dtype=np.float32)
    luma = np.empty(w, dtype=np.float32)
    last = -1
    for i in range(PDQ_BUFFER):
        s = starts[i]
        for t in range(band):
            wt = weights[i, t]
            if wt == 0.0:
                continue
            r = s + t
            if r != last:  # bands overlap: convert a row once per use run
                for c in range(w):
                    luma[c] = np.float32(
                        np.float64(img[r, c, 0]) * _R
                        + np.float64(img[r, c, 1]) * _G
                        + np.float64(img[r, c, 2]) * _B
                    )
                last = r
            acc = out[i]
            for c in range(w):
                acc[c] += wt * luma[c]
    return out


@njit(nogil=True, cache=True)
def _cols(tmp, starts, weights):  # type: ignore[no-untyped-def]
    band = weights.shape[1]
    out = np.zeros((PDQ_BUFFER, PDQ_BUFFER), dtype=np.float32)
    for i in range(PDQ_BUFFER):
        for j in range(PDQ_BUFFER):
            s = starts[j]
            acc = np.float32(0.0)
            for t in range(band):
                acc += weights[j, t] * tmp[i, s + t]
            out[i, j] = acc
    return out


def resample_to_64(img: np.ndarray, rows: BandedResampler, cols: BandedResampler) -> np.ndarray:
    """A = S_H @ L @ S_W.T for one image: gray uint8/float32 [H, W] or RGB uint8 [H, W, 3]."""
    if columns_first(rows.n, cols.n):  # A.T = S_W @ L.T @ S_H.T: the same bits
        return np.ascontiguousarray(resample_to_64(np.swapaxes(img, 0, 1), cols, rows).T)
    if img.ndim == 3:
        tmp = _rows_rgb(img, rows.starts, rows.weights)
    else:
        tmp = _rows_gray(img, rows.starts, rows.weights)
    out: np.ndarray = _cols(tmp, cols.starts, cols.weights)
    return out
