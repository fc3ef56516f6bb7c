"""Pillow's luma from a JPEG's stored Y, Cb, Cr planes, bit for bit, inside the resampling.

Pillow's RGB is libjpeg-turbo's: chroma upsampled with its "fancy" triangle filter
(jdsample.c; integer, with its own rounding biases), then R = Y + round(1.402 Cr'),
G = Y + ((-22554 Cb' - 46802 Cr' + 32768) >> 16), B = Y + round(1.772 Cb'), each clipped
to 0..255 (jdcolor.c, 16-bit fixed point). pdqhash's luma of that is
float32(0.299 R + 0.587 G + 0.114 B), which equals float32(299 R + 587 G + 114 B) / 1000
for every R, G, B (tests/test_ycc.py checks all 2^24). Every step is an integer below
2^24, so it is exact in float32, where Numba vectorises it (its integers widen to int64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from hashmatch.kernels.constants import PDQ_BUFFER

f32 = np.float32
# jdcolor.c's FIX(x) = int(x * 65536 + 0.5), over 65536: exact in float32.
_CR_R = f32(91881 / 65536)
_CB_B = f32(116130 / 65536)
_CB_G = f32(-22554 / 65536)
_CR_G = f32(-46802 / 65536)
_SIXTEENTH = f32(0.0625)
# Every value in the conversion is an integer (or a 16th of one) below 2^24 and never NaN:
# fused multiply-adds and NaN-free min/max give the same bits, and vectorise better. Not
# for the resampling sums, whose rounding must stay as it is.
_EXACT_HERE = {"contract", "nnan", "ninf", "nsz"}


@dataclass(frozen=True, slots=True)
class YccPlanes:
    """A JPEG's planes as stored: Y at full size, Cb and Cr every `v` rows, `h` columns."""

    y: np.ndarray  # uint8 [H, W]
    cb: np.ndarray  # uint8 [ceil(H / v), ceil(W / h)]
    cr: np.ndarray
    v: int
    h: int

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.y.shape[0]), int(self.y.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.y.nbytes + self.cb.nbytes + self.cr.nbytes)


@njit(nogil=True, cache=True, inline="always", fastmath=_EXACT_HERE)
def _luma(y, cb, cr):  # type: ignore[no-untyped-def]
    """Pillow's luma of one pixel; cb and cr already minus 128."""
    r = min(max(y + np.floor(cr * _CR_R + f32(0.5)), f32(0)), f32(255))
    g = min(max(y + np.floor(cb * _CB_G + cr * _CR_G + f32(0.5)), f32(0)), f32(255))
    b = min(max(y + np.floor(cb * _CB_B + f32(0.5)), f32(0)), f32(255))
    return (f32(299) * r + f32(587) * g + f32(114) * b) / f32(1000)


@njit(nogil=True, cache=True, inline="always")
def _near_far(r, v, rows):  # type: ignore[no-untyped-def]
    """The chroma row nearest to luma row r and the next nearest (libjpeg's context rows:
    above for even rows, below for odd, the edge row repeated at the edges)."""
    k = r // v
    if v == 1:
        return k, k
    far = k - 1 if r % 2 == 0 else k + 1
    return k, min(max(far, 0), rows - 1)


@njit(nogil=True, cache=True, fastmath=_EXACT_HERE)
def _h2_row(yr, cb0, cb1, cr0, cr1, v, w, luma, sb, sr):  # type: ignore[no-untyped-def]
    """jdsample.c's h2v1/h2v2 fancy upsampling fused with the conversion, on column sums
    (3 near + far rows for v2; 4 x the row for v1, which turns h2v1's >> 2 and biases
    1, 2 into h2v2's >> 4 with biases 4, 8)."""
    dw = sb.shape[0]
    if v == 2:
        be, bo = f32(8), f32(7)
        for j in range(dw):
            sb[j] = f32(cb0[j]) * f32(3) + f32(cb1[j])
            sr[j] = f32(cr0[j]) * f32(3) + f32(cr1[j])
    else:
        be, bo = f32(4), f32(8)
        for j in range(dw):
            sb[j] = f32(cb0[j]) * f32(4)
            sr[j] = f32(cr0[j]) * f32(4)
    c128 = f32(128)
    b = np.floor((sb[0] * f32(4) + be) * _SIXTEENTH) - c128
    r = np.floor((sr[0] * f32(4) + be) * _SIXTEENTH) - c128
    luma[0] = _luma(f32(yr[0]), b, r)
    for j in range(1, dw - 1):
        b0 = np.floor((sb[j] * f32(3) + sb[j - 1] + be) * _SIXTEENTH) - c128
        r0 = np.floor((sr[j] * f32(3) + sr[j - 1] + be) * _SIXTEENTH) - c128
        b1 = np.floor((sb[j] * f32(3) + sb[j + 1] + bo) * _SIXTEENTH) - c128
        r1 = np.floor((sr[j] * f32(3) + sr[j + 1] + bo) * _SIXTEENTH) - c128
        luma[2 * j] = _luma(f32(yr[2 * j]), b0, r0)
        luma[2 * j + 1] = _luma(f32(yr[2 * j + 1]), b1, r1)
    b = np.floor((sb[0] * f32(3) + sb[1] + bo) * _SIXTEENTH) - c128
    r = np.floor((sr[0] * f32(3) + sr[1] + bo) * _SIXTEENTH) - c128
    luma[1] = _luma(f32(yr[1]), b, r)
    j = dw - 1
    b = np.floor((sb[j] * f32(3) + sb[j - 1] + be) * _SIXTEENTH) - c128
    r = np.floor((sr[j] * f32(3) + sr[j - 1] + be) * _SIXTEENTH) - c128
    luma[2 * j] = _luma(f32(yr[2 * j]), b, r)
    if 2 * j + 1 < w:  # an odd width ends on the left half of the last chroma sample
        b = np.floor((sb[j] * f32(4) + bo) * _SIXTEENTH) - c128
        r = np.floor((sr[j] * f32(4) + bo) * _SIXTEENTH) - c128
        luma[2 * j + 1] = _luma(f32(yr[2 * j + 1]), b, r)


@njit(nogil=True, cache=True, fastmath=_EXACT_HERE)
def _h1_row(yr, cb0, cb1, cr0, cr1, v, odd, w, luma):  # type: ignore[no-untyped-def]
    """Full-width chroma: as stored (h1v1), or h1v2's vertical fancy filter
    (3 near + far + 1 or 2) >> 2."""
    c128 = f32(128)
    if v == 1:
        for c in range(w):
            luma[c] = _luma(f32(yr[c]), f32(cb0[c]) - c128, f32(cr0[c]) - c128)
        return
    bias = f32(2) if odd else f32(1)
    for c in range(w):
        b = np.floor((f32(cb0[c]) * f32(3) + f32(cb1[c]) + bias) * f32(0.25)) - c128
        r = np.floor((f32(cr0[c]) * f32(3) + f32(cr1[c]) + bias) * f32(0.25)) - c128
        luma[c] = _luma(f32(yr[c]), b, r)


@njit(nogil=True, cache=True, fastmath=_EXACT_HERE)
def _replicated_row(yr, cb0, cr0, h, w, luma):  # type: ignore[no-untyped-def]
    """Chroma repeated h times across (jdsample.c's int_upsample, and h2 under 3 chroma
    columns, where libjpeg-turbo does not filter)."""
    c128 = f32(128)
    for c in range(w):
        luma[c] = _luma(f32(yr[c]), f32(cb0[c // h]) - c128, f32(cr0[c // h]) - c128)


@njit(nogil=True, cache=True)
def _luma_row(y, cb, cr, v, h, r, luma, sb, sr):  # type: ignore[no-untyped-def]
    w = y.shape[1]
    dw = cb.shape[1]
    fancy_h2 = h == 2 and dw > 2
    if h == 1 or fancy_h2:
        near, far = _near_far(r, v, cb.shape[0])
    else:  # libjpeg-turbo repeats rows too where it does not filter across
        near = far = r // v
    odd = r % 2 == 1
    if fancy_h2:
        _h2_row(y[r], cb[near], cb[far], cr[near], cr[far], v, w, luma, sb, sr)
    elif h == 1:
        _h1_row(y[r], cb[near], cb[far], cr[near], cr[far], v, odd, w, luma)
    else:
        _replicated_row(y[r], cb[near], cr[near], h, w, luma)


@njit(nogil=True, cache=True)
def rows_ycc(y, cb, cr, v, h, starts, weights):  # type: ignore[no-untyped-def]
    """The row pass S_H @ L of kernels/cpu.py with L made from the planes one row at a
    time (each row once, added into every output row whose band covers it, in the same
    order as the luma kernels add)."""
    w = y.shape[1]
    band = weights.shape[1]
    out = np.zeros((PDQ_BUFFER, w), dtype=np.float32)
    luma = np.empty(cb.shape[1] * h + 2, dtype=np.float32)
    sb = np.empty(cb.shape[1], dtype=np.float32)
    sr = np.empty(cb.shape[1], dtype=np.float32)
    for r in range(starts[0], starts[PDQ_BUFFER - 1] + band):
        made = False
        for i in range(PDQ_BUFFER):
            t = r - starts[i]
            if t < 0 or t >= band or weights[i, t] == 0.0:
                continue
            if not made:
                _luma_row(y, cb, cr, v, h, r, luma, sb, sr)
                made = True
            wt = weights[i, t]
            acc = out[i]
            for c in range(w):
                acc[c] += wt * luma[c]
    return out


@njit(nogil=True, cache=True)
def luma_plane(y, cb, cr, v, h):  # type: ignore[no-untyped-def]
    """The whole float32 luma plane (for column-first resampling and the GPU)."""
    rows, w = y.shape
    out = np.empty((rows, w), dtype=np.float32)
    sb = np.empty(cb.shape[1], dtype=np.float32)
    sr = np.empty(cb.shape[1], dtype=np.float32)
    for r in range(rows):  # every row kernel writes exactly w values: no copy through a row buffer
        _luma_row(y, cb, cr, v, h, r, out[r], sb, sr)
    return out
