"""The engine against the reference PDQ (pdqhash) on generated images and real photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import skimage

from hashmatch.config import EngineConfig
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from tests.helpers import encode, oracle, pillow_rgb, synthetic_rgb

SIZES = [
    (5, 5),
    (7, 13),
    (64, 64),
    (63, 65),
    (100, 37),
    (128, 128),
    (255, 257),
    (480, 640),
    (1001, 333),
    (960, 1280),
    (2000, 3000),
]

PHOTOS = sorted(
    p
    for p in (Path(skimage.__file__).parent / "data").iterdir()
    if p.suffix in (".png", ".jpg") and p.stat().st_size > 10_000
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(EngineConfig(backend="cpu"))  # type: ignore[arg-type]


def _signature(engine: Engine, data: bytes) -> Signature:
    result = engine.hash_one(data)
    assert isinstance(result, Signature), result
    return result


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_png_is_bit_exact(engine: Engine, height: int, width: int) -> None:
    rgb = synthetic_rgb(height, width, seed=height * 7919 + width)
    sig = _signature(engine, encode(rgb, "PNG"))
    want, want_quality = oracle(rgb)
    assert sig.pdq.value.hex() == want.hex()
    assert sig.quality == want_quality
    assert (sig.width, sig.height) == (width, height)


def test_png_4000x3000_is_bit_exact(engine: Engine) -> None:
    rgb = synthetic_rgb(3000, 4000, seed=4)
    sig = _signature(engine, encode(rgb, "PNG", compress_level=1))
    want, want_quality = oracle(rgb)
    assert sig.pdq.value == want
    assert sig.quality == want_quality


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "GIF"])
def test_other_formats_are_bit_exact(engine: Engine, fmt: str) -> None:
    rgb = synthetic_rgb(300, 411, seed=len(fmt))
    options: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(rgb, fmt, **options)
    sig = _signature(engine, data)
    want, want_quality = oracle(pillow_rgb(data))
    assert sig.pdq.value == want
    assert sig.quality == want_quality


def test_jpegs_are_bit_exact(engine: Engine) -> None:
    """JPEG too (tests/test_jpeg_exact.py has the full corpus)."""
    blobs = [encode(synthetic_rgb(h, w, seed=h + w), "JPEG", quality=90) for h, w in SIZES[2:]]
    blobs += [encode(pillow_rgb(p.read_bytes()), "JPEG") for p in PHOTOS[:8]]
    for data in blobs:
        sig = _signature(engine, data)
        assert (sig.pdq.value, sig.quality) == oracle(pillow_rgb(data))


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_real_photographs(engine: Engine, path: Path) -> None:
    data = path.read_bytes()
    sig = _signature(engine, data)
    assert (sig.pdq.value, sig.quality) == oracle(pillow_rgb(data))
