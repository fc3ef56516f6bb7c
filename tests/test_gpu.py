"""On a real CUDA device: the GPU backend equals the CPU engine at full size."""

from __future__ import annotations

import numpy as np
import pytest

from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig
from hashmatch.hashing.backend import CpuBackend, GpuBackend, _try_cupy
from hashmatch.hashing.decode.dali import dali_installed
from hashmatch.hashing.decode.nvimagecodec import nvimgcodec_installed
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import PdqHash, Signature
from tests.helpers import encode, oracle, pillow_rgb, synthetic_rgb

cupy = _try_cupy()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cupy is None, reason="no CUDA device or CuPy here (CPU-only machine)"),
]


@pytest.mark.parametrize("dihedral", [False, True])
def test_gpu_backend_equals_cpu_on_full_size_images(dihedral: bool) -> None:
    images = [synthetic_rgb(h, w, seed=h) for h, w in [(960, 1280), (2000, 3000), (480, 640)]]
    images += [np.ascontiguousarray(im[:, :, 1]) for im in images]  # luma planes too
    cpu, gpu = CpuBackend(), GpuBackend(cupy)
    want_h, want_q = cpu.finish([cpu.prepare(im) for im in images], dihedral)
    got_h, got_q = gpu.finish([gpu.prepare(im) for im in images], dihedral)
    np.testing.assert_array_equal(got_q, want_q)
    bits = np.unpackbits(got_h ^ want_h, axis=-1).sum(axis=-1)
    # Same math in float32; a GPU may order a sum differently (FMA), which can move a
    # coefficient lying within rounding of the median: allow a stray bit, no more.
    assert bits.max() <= 2, bits
    assert (bits == 0).mean() >= 0.8, bits


@pytest.mark.parametrize("choice", [DecoderChoice.DALI, DecoderChoice.NVIMAGECODEC])
def test_gpu_decoders_leave_pixels_on_the_device_and_hash_as_the_cpu(
    choice: DecoderChoice,
) -> None:
    installed = dali_installed if choice is DecoderChoice.DALI else nvimgcodec_installed
    if not installed():
        pytest.skip(f"{choice.value} is not installed on this GPU machine")
    rgb = [synthetic_rgb(h, w, seed=h) for h, w in [(960, 1280), (480, 640), (960, 1280)]]
    items = [encode(im, "JPEG", quality=90) for im in rgb] + [encode(rgb[1], "PNG")]
    engine = Engine(EngineConfig(backend=BackendChoice.GPU, decoder=choice, workers=4))
    assert engine.decoder is not None and engine.decoder.device == "gpu:0"
    decoded = engine.decoder.decode_many(items)
    assert all(isinstance(px, cupy.ndarray) for px in decoded)  # no host round trip
    for data, got in zip(items, engine.hash_many(items), strict=True):
        assert isinstance(got, Signature)
        want, quality = oracle(pillow_rgb(data))  # the reference: Pillow + pdqhash
        # nvJPEG's IDCT may round a pixel differently from libjpeg-turbo's: a few bits.
        assert got.pdq - PdqHash(want) <= 8
        assert abs(got.quality - quality) <= 2
