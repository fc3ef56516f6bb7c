"""The DALI decode stage, run on the CPU (a pipeline with device_id=None: no CUDA needed).

DALI's RGB must equal Pillow's byte for byte on what it takes, so the engine with DALI
gives the reference's hashes (pdqhash on Pillow's RGB) bit for bit; what DALI refuses or
does not take goes through the CPU path with its typed errors.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig, HashMode
from hashmatch.dali_decode import DaliDecoder, dali_installed
from hashmatch.engine import Engine
from hashmatch.errors import ItemError
from hashmatch.signatures import Signature
from tests.helpers import encode, oracle, pillow_rgb, synthetic_rgb

pytestmark = pytest.mark.skipif(not dali_installed(), reason="nvidia-dali is not installed")

RGB = synthetic_rgb(90, 120, seed=5)


def _variants() -> dict[str, bytes]:
    rgba = np.dstack([RGB, np.full(RGB.shape[:2], 128, np.uint8)])
    return {
        "jpeg 4:4:4": encode(RGB, "JPEG", quality=92, subsampling=0),
        "jpeg 4:2:0": encode(RGB, "JPEG", quality=75, subsampling=2),
        "jpeg grey": encode(RGB[:, :, 0], "JPEG", quality=85),
        "png": encode(RGB, "PNG"),
        "png rgba": encode(rgba, "PNG"),
        "png palette": _palette_png(),
        "webp": encode(RGB, "WEBP", quality=80),
        "webp lossless": encode(RGB, "WEBP", lossless=True),
        "bmp": encode(RGB, "BMP"),
        "tiff": encode(RGB, "TIFF"),
    }


def _palette_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(RGB).quantize(64).save(buf, "PNG")
    return buf.getvalue()


def test_dali_rgb_equals_pillow_byte_for_byte() -> None:
    items = _variants()
    got = DaliDecoder(max_batch=4).decode_many(list(items.values()))  # 3 DALI batches
    for (name, data), rgb in zip(items.items(), got, strict=True):
        assert rgb is not None, name
        np.testing.assert_array_equal(rgb, pillow_rgb(data), err_msg=name)


def test_engine_with_dali_gives_the_reference_hashes_and_typed_errors() -> None:
    good = _variants()
    gif = encode(RGB, "GIF")  # not DALI's: the CPU path
    items = [*good.values(), gif, b"\xff\xd8\xff\xe0 not a jpeg", b"plain text", b""]
    engine = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=DecoderChoice.DALI))
    assert engine.decoder is not None and engine.decoder.device == "cpu"
    results = engine.hash_many(items)
    for data, r in zip([*good.values(), gif], results, strict=False):
        assert isinstance(r, Signature)
        assert (r.pdq.value, r.quality) == oracle(pillow_rgb(data))  # bit for bit
        assert (r.width, r.height) == (120, 90)
    codes = [r.code.value for r in results[-3:] if isinstance(r, ItemError)]
    assert codes == ["CORRUPT_IMAGE", "NOT_AN_IMAGE", "NOT_AN_IMAGE"]


def test_a_batch_dali_refuses_is_decoded_on_the_cpu_path() -> None:
    """A JPEG whose header is fine but whose data is cut: DALI fails its whole batch; every
    other item of the batch still hashes, the cut one gets the CPU path's answer."""
    whole = encode(RGB, "JPEG", quality=90)
    cut = whole[: len(whole) // 3]
    others = [encode(synthetic_rgb(64, 64, seed=k), "PNG") for k in range(3)]
    assert all(r is None for r in DaliDecoder().decode_many([others[0], cut, others[1]]))
    engine = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=DecoderChoice.DALI))
    results = engine.hash_many([others[0], cut, others[1], others[2]])
    cpu = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=DecoderChoice.CPU))
    want = cpu.hash_many([others[0], cut, others[1], others[2]])
    assert isinstance(want[1], ItemError)  # the cut one
    for got, ref in zip(results, want, strict=True):
        if isinstance(ref, Signature):
            assert isinstance(got, Signature) and got.pdq == ref.pdq
        else:
            assert isinstance(got, ItemError) and got.code == ref.code


def test_dali_only_in_exact_mode_and_only_where_asked() -> None:
    cpu_auto = Engine(EngineConfig(backend=BackendChoice.CPU))
    assert cpu_auto.decoder is None  # auto: DALI goes with the GPU backend
    cpp = Engine(
        EngineConfig(backend=BackendChoice.CPU, decoder=DecoderChoice.DALI, mode=HashMode.CPP)
    )
    assert cpp.decoder is None  # the C++ hasher's shrink is the CPU path's
