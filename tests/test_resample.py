"""The banded resampler: the same bands as composing PDQ's two box passes term by term,
in time linear in the side (hostile sizes), and a cache that cannot grow without bound."""

from __future__ import annotations

import numpy as np
import pytest

from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.errors import ErrorCode, ItemError
from hashmatch.hashing.backend import CpuBackend
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from hashmatch.kernels import resample
from hashmatch.kernels.constants import PDQ_BUFFER
from tests.helpers import encode, synthetic_rgb


def _composed(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The passes composed term by term, as the reference filters: slow, exact."""
    full = resample.jarosz_window(n)
    half = (full + 2) // 2
    rows = []
    for o in resample.decimation_index(n):
        acc = {int(o): 1.0}
        for _ in range(resample.JAROSZ_PASSES):
            nxt: dict[int, float] = {}
            for k, w in acc.items():
                lo, hi = max(0, k + half - full), min(n - 1, k + half - 1)
                for m in range(lo, hi + 1):
                    nxt[m] = nxt.get(m, 0.0) + w / (hi - lo + 1)
            acc = nxt
        rows.append(acc)
    band = max(max(r) - min(r) + 1 for r in rows)
    starts = np.array([min(min(r), n - band) for r in rows], dtype=np.int32)
    weights = np.zeros((PDQ_BUFFER, band))
    for i, r in enumerate(rows):
        for m, w in r.items():
            weights[i, m - starts[i]] = w
    return starts, weights.astype(np.float32)


@pytest.mark.parametrize("n", [*range(1, 140), 255, 256, 257, 640, 1000, 1999, 3000, 4001])
def test_bands_equal_the_passes_composed_term_by_term(n: int) -> None:
    got_starts, got_weights = resample._band_of(n)
    want_starts, want_weights = _composed(n)
    assert np.array_equal(got_starts, want_starts)
    assert np.array_equal(got_weights, want_weights)  # bit for bit, in float32
    dense = (resample.box_matrix(n) @ resample.box_matrix(n))[resample.decimation_index(n)]
    assert np.allclose(resample.resampler(n).dense(), dense, atol=1e-6)


def test_a_hostile_side_is_linear_and_not_kept() -> None:
    """The 5 x 20,000,000 PNG's long side (it took hours before): its 80 MB band is made,
    used and not cached; the cache stays within its budget."""
    r = resample.resampler(20_000_000)
    assert r.weights.shape[0] == PDQ_BUFFER and r.band > 300_000
    assert 20_000_000 not in resample._CACHE._items
    for n in range(200_000, 200_100):  # many distinct large sizes: evicted, bounded
        resample.resampler(n)
    assert resample._CACHE._bytes <= resample._CACHE.budget


class _KeepingBackend(CpuBackend):
    """The CPU math, holding decoded pixels until finish() as the GPU backend does."""

    keeps_pixels = True

    def __init__(self) -> None:
        self.held: list[int] = []

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        return pixels

    def finish(
        self,
        prepared: list[np.ndarray],
        dihedral: bool,  # type: ignore[override]
    ) -> tuple[np.ndarray, np.ndarray]:
        self.held.append(sum(p.nbytes for p in prepared))
        return super().finish([super(_KeepingBackend, self).prepare(p) for p in prepared],
                              dihedral)  # fmt: skip


def test_a_backend_that_keeps_pixels_gets_parts_within_the_batch_budget() -> None:
    images = [encode(synthetic_rgb(200, 300, seed=k), "PNG") for k in range(12)]
    images.insert(5, b"not an image")
    budget = 4 * 200 * 300 * 11  # four images' decoding (RGB: 11 bytes a pixel at its peak)
    cfg = EngineConfig(backend=BackendChoice.CPU, max_batch_decoded_bytes=budget,
                       max_decoded_bytes=budget)  # fmt: skip
    keeping = _KeepingBackend()
    got = Engine(cfg, keeping).hash_many(images)
    want = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_many(images)
    assert got == want and isinstance(got[5], ItemError)
    assert len(keeping.held) == 3 and max(keeping.held) <= budget  # 12 images, 4 a part


def test_decoded_size_is_refused_from_the_header() -> None:
    """A lossless WebP of 16383 x 6000 is a few KB and 393 MB decoded: refused before a
    pixel is decoded; the same pixels as JPEG (its Y plane: 1 byte a pixel) pass."""
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (16383, 6000), (40, 90, 200)).save(buf, "WEBP", lossless=True)
    assert len(buf.getvalue()) < 100_000
    (res,) = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_many([buf.getvalue()])
    assert isinstance(res, ItemError) and res.code is ErrorCode.SIZE_OUT_OF_RANGE
    assert "decodes to" in res.message
    gray = BytesIO()
    Image.new("L", (8000, 6000), 90).save(gray, "JPEG")
    (ok,) = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_many([gray.getvalue()])
    assert isinstance(ok, Signature)
