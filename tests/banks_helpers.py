"""Shared by the bank and index tests: the brute-force oracle and hash generators."""

from __future__ import annotations

import numpy as np

_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.int16)


def brute_force(
    codes: np.ndarray, ids: np.ndarray, queries: np.ndarray, radius: int
) -> list[set[int]]:
    """The oracle: per query, the ids within `radius`, by a popcount table over all bytes."""
    out = []
    for q in queries:
        d = _POP[np.bitwise_xor(codes, q)].sum(axis=1)
        out.append(set(ids[d <= radius].tolist()))
    return out


def flip_bits(rng: np.random.Generator, code: np.ndarray, n: int) -> np.ndarray:
    """The code with exactly n distinct bits flipped."""
    bits = np.unpackbits(code)
    where = rng.choice(256, size=n, replace=False)
    bits[where] ^= 1
    return np.packbits(bits)


def random_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def clustered_codes(rng: np.random.Generator, centers: int, per: int, spread: int) -> np.ndarray:
    """Near-duplicate clusters: each member 0..spread bits from its center."""
    base = random_codes(rng, centers)
    out = np.empty((centers * per, 32), dtype=np.uint8)
    for c in range(centers):
        for j in range(per):
            out[c * per + j] = flip_bits(rng, base[c], int(rng.integers(0, spread + 1)))
    return out


def planted_queries(
    rng: np.random.Generator, codes: np.ndarray, n: int, max_flip: int = 40
) -> np.ndarray:
    """n queries: a third random, the rest 0..max_flip bits from a random stored code."""
    q = random_codes(rng, n)
    for i in range(n):
        if i % 3:
            src = codes[rng.integers(codes.shape[0])]
            q[i] = flip_bits(rng, src, int(rng.integers(0, max_flip + 1)))
    return q


def as_sets(hits: object, n: int) -> list[set[int]]:
    return [set(hits.of(i)[0].tolist()) for i in range(n)]  # type: ignore[attr-defined]
