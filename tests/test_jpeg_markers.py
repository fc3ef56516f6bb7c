"""A JPEG's scans bounded from its bytes, and a file of too many refused before any decoder
spends a pass over the image on each one, whatever its frame type or markers claim."""

from __future__ import annotations

import pytest

from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.errors import ConfigError, ErrorCode, ItemError, SizeOutOfRange
from hashmatch.hashing.decode.images import decode, peek
from hashmatch.hashing.decode.jpeg_markers import plain_header, scan_markers
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from tests.helpers import encode, synthetic_rgb

PIXELS = synthetic_rgb(96, 80, seed=3)
# One Huffman table whose single code covers every symbol the scan below needs, and an AC
# refinement scan of the luma (bands 1-63) whose data ends every block at once: libjpeg-
# turbo accepts any number of them, each one more pass over all the blocks.
_DHT = b"\xff\xc4\x00\x14\x13" + bytes([1] + [0] * 15) + b"\xe0"
_TINY_SCAN = b"\xff\xda\x00\x08\x01\x01\x03\x01\x3f\x00" + b"\x7f\xff\x00"


def _bomb(scans: int) -> bytes:
    data = encode(PIXELS, "JPEG", quality=90, progressive=True)
    assert data[-2:] == b"\xff\xd9"
    return data[:-2] + _DHT + _TINY_SCAN * scans + b"\xff\xd9"


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (2 + len(payload)).to_bytes(2, "big") + payload


def test_scans_are_bounded_from_the_bytes() -> None:
    colour = encode(PIXELS, "JPEG", progressive=True)
    baseline = encode(PIXELS, "JPEG")
    assert scan_markers(colour) == 10  # libjpeg's standard progressive script
    assert scan_markers(encode(PIXELS[:, :, 0], "JPEG", progressive=True)) == 6
    assert scan_markers(baseline) == 1
    # A scan marker hidden in a segment (where a restart or a bad length could make a
    # decoder read it) counts too: an upper bound, never an undercount.
    hidden = baseline[:2] + _segment(0xEF, b"\xff\xda" * 50) + baseline[2:]
    assert scan_markers(hidden) == 51
    assert scan_markers(_bomb(300)) == 310
    assert scan_markers(b"") == 0 and scan_markers(b"\xff") == 0


def test_many_scans_are_paid_for_by_the_pixels() -> None:
    """Past the 12 scans a standard script writes, scans x pixels are bounded too: a huge
    image is refused at fewer scans than a small one."""
    pixels = PIXELS.shape[0] * PIXELS.shape[1]
    bomb = _bomb(50)  # 60 scans
    budget = 60 * pixels
    assert isinstance(decode(bomb, EngineConfig(max_jpeg_scan_pixels=budget)).width, int)
    for check in (decode, peek):
        with pytest.raises(SizeOutOfRange, match="scan pixels"):
            check(bomb, EngineConfig(max_jpeg_scan_pixels=budget - 1))
    # A standard progressive file is never asked its size, whatever the budget.
    standard = encode(PIXELS, "JPEG", progressive=True)
    assert decode(standard, EngineConfig(max_jpeg_scan_pixels=1)).width == PIXELS.shape[1]
    with pytest.raises(ConfigError, match="max_jpeg_scan_pixels"):
        EngineConfig(max_jpeg_scan_pixels=0)


def test_a_jpeg_of_too_many_scans_is_refused_on_every_path() -> None:
    bomb = _bomb(1000)
    with pytest.raises(SizeOutOfRange, match="scans"):
        decode(bomb, EngineConfig())
    with pytest.raises(SizeOutOfRange, match="scans"):
        peek(bomb, EngineConfig())
    for config in (EngineConfig(backend=BackendChoice.CPU),
                   EngineConfig(backend=BackendChoice.CPU, jpeg_planes=False)):  # fmt: skip
        (result,) = Engine(config).hash_many([bomb])
        assert isinstance(result, ItemError) and result.code is ErrorCode.SIZE_OUT_OF_RANGE
    # Sequential frames are bounded too (components in scans of their own, repeated).
    baseline = encode(PIXELS, "JPEG")
    sequential = baseline[:-2] + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" * 200 + b"\xff\xd9"
    with pytest.raises(SizeOutOfRange, match="scans"):
        decode(sequential, EngineConfig())
    # The same bomb under a limit above its scans decodes: the count is what refused it.
    loose = EngineConfig(backend=BackendChoice.CPU, max_jpeg_scans=2000)
    (result,) = Engine(loose).hash_many([bomb])
    assert isinstance(result, Signature)
    assert (decode(bomb, loose).width, decode(bomb, loose).height) == (80, 96)


def test_a_plain_header_is_a_short_clean_chain_to_a_sequential_scan() -> None:
    baseline = encode(PIXELS, "JPEG")
    assert plain_header(baseline) == (80, 96)
    assert plain_header(encode(PIXELS, "JPEG", progressive=True)) is None
    comments = b"".join(_segment(0xFE, b"x") for _ in range(40))
    assert plain_header(baseline[:2] + comments + baseline[2:]) is None  # too many steps
    assert plain_header(baseline[:2] + b"\x00junk" + baseline[2:]) is None
    assert plain_header(baseline[:2] + b"\xff\x01" + baseline[2:]) is None  # TEM
    assert plain_header(baseline[:2] + b"\xff" + baseline[2:]) is None  # a fill byte
    sof = baseline.index(b"\xff\xc0")
    assert plain_header(baseline[:sof] + b"\xff\xc0\x00\x01" + baseline[sof:]) is None
    assert plain_header(baseline[:sof]) is None  # cut before its frame
    for cut in range(len(baseline[:sof]) + 20):
        assert plain_header(baseline[:cut]) is None  # truncated anywhere: no error
