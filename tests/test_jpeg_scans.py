"""Progressive JPEG scans counted from the markers, and a file of too many refused before
any decoder spends a pass over the image on each one."""

from __future__ import annotations

import numpy as np
import pytest

from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.errors import ErrorCode, ItemError, SizeOutOfRange
from hashmatch.hashing.decode.images import decode, peek
from hashmatch.hashing.decode.jpeg_scans import jpeg_coding
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


def test_scans_are_counted_as_libjpeg_reads_them() -> None:
    grey = encode(PIXELS[:, :, 0], "JPEG", progressive=True)
    colour = encode(PIXELS, "JPEG", progressive=True)
    baseline = encode(PIXELS, "JPEG")
    assert jpeg_coding(colour, 100).scans == 10  # libjpeg's standard script
    assert jpeg_coding(grey, 100).scans == 6
    assert jpeg_coding(colour, 100).progressive and not jpeg_coding(baseline, 100).progressive
    # Scan markers inside a segment (an APP payload, an embedded thumbnail) are not scans,
    # and junk between segments does not hide the ones after it.
    app = b"\xff\xef" + (2 + 1000).to_bytes(2, "big") + b"\xff\xda" * 500
    assert jpeg_coding(colour[:2] + app + colour[2:], 100).scans == 10
    assert not jpeg_coding(baseline[:2] + app + baseline[2:], 100).progressive
    bomb = _bomb(300)
    junk = bomb.index(_DHT) + len(_DHT)  # after a segment, where a marker must follow
    assert jpeg_coding(bomb[:junk] + b"\x00junk" + bomb[junk:], 1000).scans == 310
    assert jpeg_coding(bomb, 50).scans == 51  # counting stops past the limit


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
    # The same file under a limit above its scans decodes: the count is what refused it.
    loose = EngineConfig(backend=BackendChoice.CPU, max_jpeg_scans=2000)
    (result,) = Engine(loose).hash_many([bomb])
    assert isinstance(result, Signature)
    image = decode(bomb, loose)
    assert (image.width, image.height) == (80, 96)
    assert np.asarray(image.pixels).size > 0
