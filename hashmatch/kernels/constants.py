"""PDQ's fixed numbers, defined once for the kernels, the hash types and the indexes."""

from __future__ import annotations

PDQ_BUFFER = 64  # the blurred, decimated luma buffer is 64 x 64
PDQ_BITS = 256
PDQ_BYTES = PDQ_BITS // 8
PDQ_HEX_LEN = 2 * PDQ_BYTES

# The reference's luma weights (pdqhash computes R*0.299 + G*0.587 + B*0.114 in float64
# and rounds the sum to float32); every kernel keeps that order of operations.
LUMA_R, LUMA_G, LUMA_B = 0.299, 0.587, 0.114

# The order pdqhash.compute_dihedral and the reference C++ return the variants in.
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)
