"""Exact mode on JPEG: pdqhash's hash and quality on Pillow's RGB, bit for bit.

The luma made from the stored planes (kernels/ycc.py) must equal pdqhash's luma of
Pillow's RGB to the last float bit, on every subsampling libjpeg-turbo upsamples; and
the whole engine, with the planes or with the RGB decode beside it, must give the
reference's hash and quality on Meta's test images and on a generated corpus.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import simplejpeg

from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig, HashMode
from hashmatch.errors import ErrorCode, ItemError
from hashmatch.hashing.decode.dali import dali_installed
from hashmatch.hashing.decode.images import decode, jpeg_path
from hashmatch.hashing.decode.nvimagecodec import nvimgcodec_installed
from hashmatch.hashing.decode.turbojpeg import turbojpeg
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from hashmatch.kernels import ycc
from hashmatch.kernels.constants import LUMA_B, LUMA_G, LUMA_R
from hashmatch.kernels.ycc import YccPlanes
from tests.helpers import distance, encode, oracle, pillow_rgb, reference_dir, synthetic_rgb
from tests.jpeg_corpus import SUBSAMPLINGS, colour_wheel, corpus, photo


def _need_turbojpeg() -> None:
    if turbojpeg() is None:
        if os.environ.get("HASHMATCH_REQUIRE_TURBOJPEG"):
            pytest.fail("libturbojpeg is missing (HASHMATCH_REQUIRE_TURBOJPEG is set)")
        pytest.skip("libturbojpeg is not installed (Debian: libturbojpeg0)")


def pdqhash_luma(rgb: np.ndarray) -> np.ndarray:
    """pdqhash.compute's own conversion: float64 products and sum, rounded to float32."""
    return (rgb[:, :, 0] * LUMA_R + rgb[:, :, 1] * LUMA_G + rgb[:, :, 2] * LUMA_B).astype(
        np.float32
    )


def test_integer_luma_is_pdqhash_luma_for_every_colour() -> None:
    """float32(299 R + 587 G + 114 B) / 1000, the kernel's form, for all 2^24 colours."""
    levels = np.arange(256, dtype=np.float64)
    red, green = np.meshgrid(levels, levels, indexing="ij")
    mismatched = 0
    for blue in range(256):
        want = (red * LUMA_R + green * LUMA_G + blue * LUMA_B).astype(np.float32)
        ints = (299 * red + 587 * green + 114 * blue).astype(np.float32)
        mismatched += int(np.count_nonzero(ints / np.float32(1000) != want))
    assert mismatched == 0


@pytest.mark.parametrize("sub", SUBSAMPLINGS)
@pytest.mark.parametrize(("height", "width"), [(5, 5), (7, 9), (53, 37), (120, 161), (64, 3)])
def test_planes_luma_is_pillow_luma(sub: str, height: int, width: int) -> None:
    """Upsampling and conversion from the planes, to the last bit of every pixel."""
    _need_turbojpeg()
    tj = turbojpeg()
    assert tj is not None
    for k, rgb in enumerate([colour_wheel(height, width), synthetic_rgb(height, width, 3)]):
        data = simplejpeg.encode_jpeg(
            np.ascontiguousarray(rgb), quality=(55, 95)[k], colorsubsampling=sub
        )
        with tj.open() as jpeg:
            header = jpeg.header(data)
            assert header is not None
            planes = jpeg.planes(data, header)
        assert isinstance(planes, YccPlanes)
        luma = ycc.luma_plane(planes.y, planes.cb, planes.cr, planes.v, planes.h)
        np.testing.assert_array_equal(luma, pdqhash_luma(pillow_rgb(data)))


def _bit_exact(config: EngineConfig, files: list[tuple[str, bytes]]) -> None:
    with Engine(config) as engine:
        results = engine.hash_many([data for _, data in files])
    wrong = []
    for (name, data), got in zip(files, results, strict=True):
        assert isinstance(got, Signature), (name, got)
        want_hash, want_quality = oracle(pillow_rgb(data))
        if got.pdq.value != want_hash or got.quality != want_quality:
            wrong.append((name, distance(got.pdq.value, want_hash), got.quality, want_quality))
    assert not wrong, wrong


def _meta_jpegs() -> list[tuple[str, bytes]]:
    root = reference_dir("pdq")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    assert len(paths) == 38
    return [(str(p.relative_to(root)), p.read_bytes()) for p in paths]


@pytest.mark.parametrize("planes", [True, False], ids=["planes", "rgb"])
def test_meta_jpegs_bit_exact(planes: bool) -> None:
    """All 38 of Meta's JPEGs, the near-flat and EXIF-rotated ones included."""
    if planes:
        _need_turbojpeg()
    _bit_exact(EngineConfig(backend=BackendChoice.CPU, jpeg_planes=planes), _meta_jpegs())


@pytest.mark.parametrize("planes", [True, False], ids=["planes", "rgb"])
def test_corpus_bit_exact(planes: bool) -> None:
    """Every subsampling, qualities 20-100, 5 px to 6000 px, saturated colour, progressive,
    restart markers, grey, CMYK, EXIF: the reference's hash and quality on every file."""
    if planes:
        _need_turbojpeg()
    files = list(corpus())
    assert len(files) == 196
    _bit_exact(EngineConfig(backend=BackendChoice.CPU, jpeg_planes=planes, workers=2), files)


def test_exact_uses_the_planes_where_libturbojpeg_is() -> None:
    _need_turbojpeg()
    config = EngineConfig(backend=BackendChoice.CPU)
    assert jpeg_path(config) == "planes"
    assert jpeg_path(EngineConfig(jpeg_planes=False)) == "rgb"
    colour = simplejpeg.encode_jpeg(photo(60, 80, 0), quality=80, colorsubsampling="420")
    assert isinstance(decode(colour, config).pixels, YccPlanes)
    grey = encode(photo(60, 80, 0)[:, :, 0], "JPEG", quality=80)
    assert decode(grey, config).pixels.shape == (60, 80)  # the Y plane: exact for grey


def test_damaged_jpeg_decodes_as_pillow_does() -> None:
    """libjpeg warns about corrupt entropy data and goes on; TurboJPEG refuses, so Pillow
    decodes it, as for the reference; a cut-off file is CORRUPT_IMAGE."""
    data = bytearray(simplejpeg.encode_jpeg(photo(200, 300, 2), quality=85))
    start = data.index(b"\xff\xda") + 40  # inside the first scan's entropy-coded data
    for k in range(start, start + 400, 7):
        data[k] = 0x00 if data[k] != 0x00 else 0x11
    damaged = bytes(data)
    tj = turbojpeg()
    if tj is not None:  # the planes path refuses it: what this test is about
        with tj.open() as jpeg:
            header = jpeg.header(damaged)
            assert header is not None and jpeg.planes(damaged, header) is None
    with pytest.raises(ValueError, match="Corrupt JPEG data"):
        simplejpeg.decode_jpeg(damaged, colorspace="RGB", fastdct=False, fastupsample=False)
    with Engine(EngineConfig(backend=BackendChoice.CPU)) as engine:
        got, cut = engine.hash_many([damaged, damaged[: len(damaged) // 3]])
    assert isinstance(got, Signature)
    assert (got.pdq.value, got.quality) == oracle(pillow_rgb(damaged))
    assert isinstance(cut, ItemError) and cut.code is ErrorCode.CORRUPT_IMAGE


def _without_quantization_tables(data: bytes) -> bytes:
    """The file with its DQT segments cut out (an "abbreviated" JPEG)."""
    out, k = bytearray(data[:2]), 2
    while data[k : k + 2] != b"\xff\xda":
        length = int.from_bytes(data[k + 2 : k + 4], "big")
        if data[k + 1] != 0xDB:
            out += data[k : k + 2 + length]
        k += 2 + length
    return bytes(out + data[k:])


def test_no_state_carries_from_one_file_to_the_next() -> None:
    """A damaged Huffman table does not break the files after it, and a file without
    quantization tables is refused as Pillow refuses it, never decoded with the tables
    of the file before (another caller's)."""
    good = simplejpeg.encode_jpeg(photo(64, 80, 1), quality=80, colorsubsampling="420")
    dht = good.index(b"\xff\xc4")
    bogus = good[: dht + 4] + b"\xff" * 17 + good[dht + 21 :]
    abbreviated = _without_quantization_tables(good)
    with pytest.raises(OSError):
        pillow_rgb(abbreviated)
    want = oracle(pillow_rgb(good))
    with Engine(EngineConfig(backend=BackendChoice.CPU)) as engine:
        results = engine.hash_many([good, bogus, good, abbreviated, good])
    first, broken, again, cut, last = results
    for sig in (first, again, last):
        assert isinstance(sig, Signature) and (sig.pdq.value, sig.quality) == want
    for err in (broken, cut):
        assert isinstance(err, ItemError) and err.code is ErrorCode.CORRUPT_IMAGE


def test_luma_mode_keeps_the_y_plane() -> None:
    """The named faster mode hashes a colour JPEG's Y plane as a grey image."""
    data = simplejpeg.encode_jpeg(colour_wheel(90, 120), quality=60, colorsubsampling="420")
    y = simplejpeg.decode_jpeg(data, colorspace="GRAY")[:, :, 0]
    with Engine(EngineConfig(backend=BackendChoice.CPU, mode=HashMode.LUMA)) as engine:
        got = engine.hash_one(data)
    assert isinstance(got, Signature)
    assert (got.pdq.value, got.quality) == oracle(np.dstack([y, y, y]))
    assert got.pdq.value != oracle(pillow_rgb(data))[0]  # chroma matters on a colour wheel


_BATCH_DECODERS = {
    DecoderChoice.DALI: dali_installed,
    DecoderChoice.NVIMAGECODEC: nvimgcodec_installed,
}


@pytest.mark.parametrize("choice", list(_BATCH_DECODERS), ids=lambda c: c.value)
def test_batch_decoders_give_the_cpu_hashes(choice: DecoderChoice, tmp_path: Path) -> None:
    """DALI and nvImageCodec (run on the CPU here, as CI has no GPU) against the CPU path:
    the same hashes on the same files."""
    if not _BATCH_DECODERS[choice]():
        pytest.skip(f"{choice.value} is not installed")
    files = [data for _, data in corpus(large=False)][::3]
    cpu = Engine(EngineConfig(backend=BackendChoice.CPU))
    batch = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=choice))
    with cpu, batch:
        assert batch.decoder is not None
        want = [r.pdq.value for r in cpu.hash_many(files) if isinstance(r, Signature)]
        got = [r.pdq.value for r in batch.hash_many(files) if isinstance(r, Signature)]
    assert len(want) == len(files) and got == want
