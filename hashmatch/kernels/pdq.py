"""PDQ from the 64x64 buffer on: DCT, median threshold, bit packing, quality, dihedral.

Written once against an array namespace `xp` (NumPy or CuPy) and batch-first: every
function takes a stack of N buffers. The CPU and GPU engines share this code.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from hashmatch.kernels.constants import PDQ_BITS, PDQ_BUFFER, PDQ_BYTES


@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """The reference's 16 x 64 DCT-II rows 1..16 (no DC), float32."""
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(PDQ_BUFFER, dtype=np.float64)[None, :]
    d = np.sqrt(2.0 / PDQ_BUFFER) * np.cos(np.pi / 2.0 / PDQ_BUFFER * i * (2 * j + 1))
    out: np.ndarray = d.astype(np.float32)
    return out


def dct16(buffers: Any, xp: Any = np) -> Any:
    """C = D @ A @ D.T for a stack of 64x64 float32 buffers -> [N, 16, 16]."""
    d = xp.asarray(dct_matrix())
    return xp.matmul(xp.matmul(d, buffers), d.T)


def quality(buffers: Any, xp: Any = np) -> Any:
    """The reference's image-domain quality: int32[N] in 0..100."""
    hundred, denom = np.float32(100.0), np.float32(255.0)
    dv = ((buffers[:, :-1, :] - buffers[:, 1:, :]) * hundred) / denom
    dh = ((buffers[:, :, :-1] - buffers[:, :, 1:]) * hundred) / denom
    # C++ truncates toward zero (int d = ...), then takes abs.
    total = xp.abs(dv.astype(xp.int32)).sum(axis=(1, 2)) + xp.abs(dh.astype(xp.int32)).sum(
        axis=(1, 2)
    )
    return xp.minimum(total // 90, 100).astype(xp.int32)


def dihedral(coeffs: Any, xp: Any = np) -> Any:
    """All 8 dihedral variants of the DCT coefficients: [N, 16, 16] -> [N, 8, 16, 16].

    Rotating or flipping the image only changes signs and transposes the DCT outputs
    (row i holds frequency i + 1, which flips sign under a reflection when i is even).
    """
    idx = xp.arange(16)
    odd_i = (idx[:, None] & 1).astype(bool)
    odd_j = (idx[None, :] & 1).astype(bool)
    one = xp.ones((16, 16), dtype=coeffs.dtype)
    sign_i = xp.where(odd_i, one, -one)  # + where i odd
    sign_j = xp.where(odd_j, one, -one)  # + where j odd
    sign_ij = xp.where(odd_i ^ odd_j, -one, one)  # - where i + j odd
    t = xp.swapaxes(coeffs, 1, 2)
    # B[j][i] = s(i, j) * A[i][j]  <=>  B = (s * A).T
    variants = [
        coeffs,
        xp.swapaxes(coeffs * sign_j, 1, 2),  # rotate90
        coeffs * sign_ij,  # rotate180
        xp.swapaxes(coeffs * sign_i, 1, 2),  # rotate270
        coeffs * sign_i,  # flipx
        coeffs * sign_j,  # flipy
        t,  # flipplus1
        xp.swapaxes(coeffs * sign_ij, 1, 2),  # flipminus1
    ]
    return xp.stack(variants, axis=1)


def to_bits(coeffs: Any, xp: Any = np) -> Any:
    """Threshold [..., 16, 16] coefficients at their median -> packed uint8[..., 32].

    The reference's median (torben) is the lower median, the 128th smallest value;
    bit k = i*16 + j is set where C[i, j] exceeds it. Packed bytes are the big-endian
    form of sum(bit_k << k), the same bytes as the reference's 64-digit hex.
    """
    lead = coeffs.shape[:-2]
    flat = coeffs.reshape(-1, PDQ_BITS)
    median = xp.partition(flat, PDQ_BITS // 2 - 1, axis=1)[:, PDQ_BITS // 2 - 1]
    bits = (flat > median[:, None]).astype(xp.uint8)
    # Byte 0 holds bits 255..248, most significant first.
    msb_first = bits[:, ::-1].reshape(-1, PDQ_BYTES, 8)
    weights = xp.asarray(np.array([128, 64, 32, 16, 8, 4, 2, 1], dtype=np.uint8))
    packed = (msb_first * weights).sum(axis=2, dtype=xp.uint32).astype(xp.uint8)
    return packed.reshape(*lead, PDQ_BYTES)


def hash_buffers(buffers: Any, with_dihedral: bool = False, xp: Any = np) -> tuple[Any, Any]:
    """Hashes and qualities of a stack of 64x64 buffers.

    Returns (uint8[N, 32] or uint8[N, 8, 32] with dihedral, int32[N]).
    """
    coeffs = dct16(buffers, xp)
    q = quality(buffers, xp)
    if with_dihedral:
        return to_bits(dihedral(coeffs, xp), xp), q
    return to_bits(coeffs, xp), q
