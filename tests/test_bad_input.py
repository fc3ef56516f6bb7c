"""Bad and unusual input: a typed per-item error or a correct hash, never a crash."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from hashmatch.config import EngineConfig
from hashmatch.errors import ErrorCode, ItemError
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from tests.helpers import distance, encode, oracle, pillow_rgb, synthetic_rgb

RGB = synthetic_rgb(120, 160, seed=11)
JPEG = encode(RGB, "JPEG", quality=90)
PNG = encode(RGB, "PNG")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(EngineConfig(backend="cpu", max_pixels=50_000_000))  # type: ignore[arg-type]


def _error(engine: Engine, data: bytes) -> ErrorCode:
    result = engine.hash_one(data)
    assert isinstance(result, ItemError), result
    assert result.message
    return result.code


def _exact(engine: Engine, data: bytes) -> Signature:
    """Hashes, and equals pdqhash on the reference (Pillow RGB) decode bit for bit."""
    result = engine.hash_one(data)
    assert isinstance(result, Signature), result
    want, quality = oracle(pillow_rgb(data))
    assert result.pdq.value == want
    assert result.quality == quality
    return result


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (a decompression bomb) with a tiny body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_zero_bytes(engine: Engine) -> None:
    assert _error(engine, b"") is ErrorCode.NOT_AN_IMAGE


def test_not_an_image(engine: Engine) -> None:
    assert _error(engine, b"%PDF-1.7 hello") is ErrorCode.NOT_AN_IMAGE
    assert _error(engine, b"<svg xmlns='http://www.w3.org/2000/svg'/>") is ErrorCode.NOT_AN_IMAGE


@pytest.mark.parametrize("data", [JPEG, PNG], ids=["jpeg", "png"])
def test_truncated(engine: Engine, data: bytes) -> None:
    assert _error(engine, data[: len(data) // 2]) is ErrorCode.CORRUPT_IMAGE
    assert _error(engine, data[:40]) is ErrorCode.CORRUPT_IMAGE


@pytest.mark.parametrize("data", [JPEG, PNG], ids=["jpeg", "png"])
def test_corrupt_body(engine: Engine, data: bytes) -> None:
    rng = np.random.default_rng(3)
    body = bytearray(data)
    body[200:600] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    result = engine.hash_one(bytes(body))
    # libjpeg can decode garbage entropy data into garbage pixels; both are fine.
    if isinstance(result, ItemError):
        assert result.code is ErrorCode.CORRUPT_IMAGE
    else:
        assert isinstance(result, Signature)


@pytest.mark.parametrize(
    "data",
    [png_claiming(100_000, 100_000), jpeg_claiming(60_000, 60_000)],
    ids=["png", "jpeg"],
)
def test_decompression_bomb_rejected_from_header(engine: Engine, data: bytes) -> None:
    assert _error(engine, data) is ErrorCode.SIZE_OUT_OF_RANGE


def test_gif_bomb_rejected_from_header(engine: Engine) -> None:
    gif = bytearray(encode(RGB, "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen size
    assert _error(engine, bytes(gif)) in (ErrorCode.SIZE_OUT_OF_RANGE, ErrorCode.CORRUPT_IMAGE)


def test_pixel_cap_is_configurable() -> None:
    small_cap = Engine(EngineConfig(backend="cpu", max_pixels=10_000))  # type: ignore[arg-type]
    assert _error(small_cap, PNG) is ErrorCode.SIZE_OUT_OF_RANGE


def test_byte_cap() -> None:
    capped = Engine(EngineConfig(backend="cpu", max_bytes=1000))  # type: ignore[arg-type]
    assert _error(capped, PNG) is ErrorCode.TOO_LARGE


@pytest.mark.parametrize(("w", "h"), [(1, 1), (4, 100), (100, 4)])
def test_too_small(engine: Engine, w: int, h: int) -> None:
    assert _error(engine, encode(RGB[:h, :w].copy(), "PNG")) is ErrorCode.SIZE_OUT_OF_RANGE


def test_animated_gif_hashes_first_frame(engine: Engine) -> None:
    frames = [Image.fromarray(RGB), Image.fromarray(synthetic_rgb(120, 160, seed=99))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    animated = buf.getvalue()
    sig = _exact(engine, animated)
    first_only = encode(np.asarray(frames[0]), "GIF")
    assert sig.pdq.value == _exact(engine, first_only).pdq.value


def test_cmyk_jpeg(engine: Engine) -> None:
    buf = io.BytesIO()
    Image.fromarray(RGB).convert("CMYK").save(buf, format="JPEG", quality=92)
    _exact(engine, buf.getvalue())


def test_greyscale_jpeg_is_exact(engine: Engine) -> None:
    grey = encode(np.asarray(Image.fromarray(RGB).convert("L")), "JPEG")
    _exact(engine, grey)


def test_progressive_jpeg(engine: Engine) -> None:
    data = encode(RGB, "JPEG", progressive=True, quality=85)
    result = engine.hash_one(data)
    assert isinstance(result, Signature)
    assert distance(result.pdq.value, oracle(pillow_rgb(data))[0]) <= 8


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "I;16", "I", "F"])
def test_pillow_modes_are_exact(engine: Engine, mode: str) -> None:
    img = Image.fromarray(RGB)
    if mode == "LA":
        img = img.convert("RGBA").convert("LA")
    elif mode == "I;16":
        # 16-bit samples; Pillow clips to 8 bits on convert("RGB"), as the reference does.
        img = Image.fromarray(np.asarray(img.convert("L"), dtype=np.uint16) + 100)
    else:
        img = img.convert(mode)
    fmt = "TIFF" if mode in ("I", "F") else "PNG"
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    _exact(engine, buf.getvalue())


def test_palette_with_transparency(engine: Engine) -> None:
    img = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    buf = io.BytesIO()
    img.save(buf, format="PNG", transparency=3)
    _exact(engine, buf.getvalue())


def test_rgba_alpha_is_dropped_like_the_reference(engine: Engine) -> None:
    rgba = np.dstack([RGB, np.linspace(0, 255, RGB.shape[1], dtype=np.uint8)[None].repeat(120, 0)])
    sig = _exact(engine, encode(rgba, "PNG"))
    assert sig.pdq.value == oracle(RGB)[0]


def test_a_bad_item_never_fails_its_batch(engine: Engine) -> None:
    results = engine.hash_many([JPEG, b"", PNG, b"GIF89a\x00", png_claiming(10**5, 10**5)])
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["Signature", "ItemError", "Signature", "ItemError", "ItemError"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from([JPEG, PNG, encode(RGB, "GIF"), encode(RGB, "WEBP"), encode(RGB, "BMP")]),
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
)
def test_mutated_images_never_raise(engine: Engine, base: bytes, cut: int, flips: list) -> None:  # type: ignore[type-arg]
    data = bytearray(base[: max(cut, 1)] if cut < len(base) else base)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    result = engine.hash_one(bytes(data))
    assert isinstance(result, Signature | ItemError)
    if isinstance(result, ItemError):
        assert result.code is not ErrorCode.INTERNAL, result
