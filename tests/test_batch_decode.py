"""The library batch decoders (DALI and nvImageCodec), run on the CPU: no CUDA needed.

Their RGB must equal Pillow's byte for byte on what they take, so the engine with either
gives the reference's hashes (pdqhash on Pillow's RGB) bit for bit; what a decoder fails
or does not take goes through the CPU path with its typed errors.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import urllib.request
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashmatch.client import Client
from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig, HashMode, VideoConfig
from hashmatch.errors import ConfigError, ItemError
from hashmatch.hashing.decode.batch import BatchDecoder, takes
from hashmatch.hashing.decode.dali import DaliDecoder, dali_installed
from hashmatch.hashing.decode.images import peek
from hashmatch.hashing.decode.nvimagecodec import NvImageCodecDecoder, nvimgcodec_installed
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from tests import server_harness
from tests.helpers import encode, oracle, pillow_rgb, reference_dir, synthetic_rgb

RGB = synthetic_rgb(90, 120, seed=5)

# Each decoder on the CPU, in small batches so a test crosses batch boundaries.
_DECODERS: dict[DecoderChoice, tuple[Callable[[], bool], Callable[[], BatchDecoder]]] = {
    DecoderChoice.DALI: (dali_installed, lambda: DaliDecoder(max_batch=4)),
    DecoderChoice.NVIMAGECODEC: (nvimgcodec_installed, lambda: NvImageCodecDecoder()),
}


@pytest.fixture(params=list(_DECODERS), ids=lambda c: c.value)
def choice(request: pytest.FixtureRequest) -> DecoderChoice:
    installed, _ = _DECODERS[request.param]
    if not installed():
        pytest.skip(f"{request.param.value} is not installed")
    return request.param  # type: ignore[no-any-return]


def _variants() -> dict[str, bytes]:
    rgba = np.dstack([RGB, np.full(RGB.shape[:2], 128, np.uint8)])
    return {
        "jpeg 4:4:4": encode(RGB, "JPEG", quality=92, subsampling=0),
        "jpeg 4:2:2": encode(RGB, "JPEG", quality=80, subsampling=1),
        "jpeg 4:2:0": encode(RGB, "JPEG", quality=75, subsampling=2),
        "jpeg grey": encode(RGB[:, :, 0], "JPEG", quality=85),
        "jpeg exif rotated": _exif_rotated_jpeg(),
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


def _png_16_bit() -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one): Pillow opens it as mode "RGB" keeping
    the high byte, DALI scales to 8 bits (off by one in places): the CPU path's."""
    rgb16 = RGB.astype(">u2") * 257 + np.arange(RGB.shape[1], dtype=">u2")[None, :, None]
    rows = b"".join(b"\x00" + row.tobytes() for row in rgb16)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", RGB.shape[1], RGB.shape[0], 16, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return (
        signature + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def test_takes_what_decodes_as_the_reference_and_no_16_bit() -> None:
    config = EngineConfig()
    assert all(takes(peek(data, config)) for data in _variants().values())
    deep = peek(_png_16_bit(), config)
    assert deep.mode == "RGB" and deep.deep and not takes(deep)
    assert not takes(peek(encode(RGB, "GIF"), config))


def _exif_rotated_jpeg() -> bytes:
    """A phone photo's tag (orientation 6, "rotate 90"): the reference hashes the pixels
    as stored, and so must a decoder (DALI and nvImageCodec rotate by default)."""
    img = Image.fromarray(RGB)
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def test_rgb_equals_pillow_byte_for_byte(choice: DecoderChoice) -> None:
    items = _variants()
    got = _DECODERS[choice][1]().decode_many(list(items.values()))
    for (name, data), rgb in zip(items.items(), got, strict=True):
        assert rgb is not None, name
        np.testing.assert_array_equal(rgb, pillow_rgb(data), err_msg=name)


def test_engine_gives_the_reference_hashes_and_typed_errors(choice: DecoderChoice) -> None:
    good = _variants()
    cpu_path = [encode(RGB, "GIF"), _png_16_bit()]  # not the decoders'
    items = [*good.values(), *cpu_path, b"\xff\xd8\xff\xe0 not a jpeg", b"plain text", b""]
    for workers in (1, 3):  # in this thread, and the host work spread over a pool
        engine = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=choice, workers=workers))
        assert engine.decoder_name == f"{choice.value} cpu"  # as metrics and start-up say
        results = engine.hash_many(items)
        for data, r in zip([*good.values(), *cpu_path], results, strict=False):
            assert isinstance(r, Signature)
            assert (r.pdq.value, r.quality) == oracle(pillow_rgb(data))  # bit for bit
            assert (r.width, r.height) == (120, 90)  # as stored: EXIF not applied
        codes = [r.code.value for r in results[-3:] if isinstance(r, ItemError)]
        assert codes == ["CORRUPT_IMAGE", "NOT_AN_IMAGE", "NOT_AN_IMAGE"]
        engine.close()


def test_what_a_decoder_fails_is_decoded_on_the_cpu_path(choice: DecoderChoice) -> None:
    """A JPEG whose header is fine but whose data is cut: DALI fails its whole batch,
    nvImageCodec that item; every other item still hashes, the cut one gets the CPU
    path's answer."""
    whole = encode(RGB, "JPEG", quality=90)
    cut = whole[: len(whole) // 3]
    others = [encode(synthetic_rgb(64, 64, seed=k), "PNG") for k in range(3)]
    decoded = _DECODERS[choice][1]().decode_many([others[0], cut, others[1]])
    assert decoded[1] is None
    if choice is DecoderChoice.DALI:
        assert all(r is None for r in decoded)  # DALI fails the batch
    else:
        assert decoded[0] is not None and decoded[2] is not None  # per item
    engine = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=choice))
    results = engine.hash_many([others[0], cut, others[1], others[2]])
    cpu = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=DecoderChoice.CPU))
    want = cpu.hash_many([others[0], cut, others[1], others[2]])
    assert isinstance(want[1], ItemError)  # the cut one
    for got, ref in zip(results, want, strict=True):
        if isinstance(ref, Signature):
            assert isinstance(got, Signature) and got.pdq == ref.pdq
        else:
            assert isinstance(got, ItemError) and got.code == ref.code


def test_decoders_only_in_exact_mode_and_only_where_asked(choice: DecoderChoice) -> None:
    cpu_auto = Engine(EngineConfig(backend=BackendChoice.CPU))
    assert cpu_auto.decoder is None  # auto: a library decoder goes with the GPU backend
    cpp = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=choice, mode=HashMode.CPP))
    assert cpp.decoder is None  # the C++ hasher's shrink is the CPU path's
    asked = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=choice))
    want = DaliDecoder if choice is DecoderChoice.DALI else NvImageCodecDecoder
    assert isinstance(asked.decoder, want)


@pytest.mark.parametrize(
    ("dali", "nvimgcodec", "want"),
    [(True, True, "dali"), (False, True, "nvimagecodec"), (False, False, None)],
)
def test_auto_beside_the_gpu_backend_prefers_dali_then_nvimagecodec(
    monkeypatch: pytest.MonkeyPatch, dali: bool, nvimgcodec: bool, want: str | None
) -> None:
    from hashmatch.hashing.decode import batch
    from hashmatch.hashing.decode import dali as dali_decode
    from hashmatch.hashing.decode import nvimagecodec as nvimgcodec_decode

    made: list[tuple[str, int | None]] = []
    monkeypatch.setattr(dali_decode, "dali_installed", lambda: dali)
    monkeypatch.setattr(nvimgcodec_decode, "nvimgcodec_installed", lambda: nvimgcodec)
    monkeypatch.setattr(
        dali_decode, "DaliDecoder", lambda **kw: made.append(("dali", kw["device_id"]))
    )
    monkeypatch.setattr(
        nvimgcodec_decode,
        "NvImageCodecDecoder",
        lambda **kw: made.append(("nvimagecodec", kw["device_id"])),
    )
    gpu = type("FakeGpuBackend", (), {"name": "gpu"})()
    batch.select_decoder(EngineConfig(), gpu)
    assert made == ([] if want is None else [(want, 0)])  # device 0: the backend's


@pytest.mark.parametrize("choice", [DecoderChoice.DALI, DecoderChoice.NVIMAGECODEC])
def test_a_decoder_asked_for_but_not_installed_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, choice: DecoderChoice
) -> None:
    from hashmatch.hashing.decode import dali as dali_decode
    from hashmatch.hashing.decode import nvimagecodec as nvimgcodec_decode

    monkeypatch.setattr(dali_decode, "dali_installed", lambda: False)
    monkeypatch.setattr(nvimgcodec_decode, "nvimgcodec_installed", lambda: False)
    with pytest.raises(ConfigError, match="not installed"):
        Engine(EngineConfig(backend=BackendChoice.CPU, decoder=choice))


def test_nvimagecodec_is_for_images_only() -> None:
    with pytest.raises(ConfigError, match="nvImageCodec"):
        VideoConfig(decoder=DecoderChoice.NVIMAGECODEC)


def test_one_decoder_shared_by_concurrent_batches(choice: DecoderChoice) -> None:
    """The server runs several engine batches at once over one engine: each batch must get
    its own images back, never another's (a pipeline's feed and run are one step)."""
    decoder = _DECODERS[choice][1]()
    sets = [
        [encode(synthetic_rgb(40 + t, 50 + k, seed=10 * t + k), "PNG") for k in range(4)]
        for t in range(4)
    ]
    want = [[pillow_rgb(data) for data in items] for items in sets]

    def hammer(t: int) -> int:
        wrong = 0
        for _ in range(15):
            got = decoder.decode_many(sets[t])
            wrong += sum(
                g is None or g.shape != w.shape or not np.array_equal(g, w)
                for g, w in zip(got, want[t], strict=True)
            )
        return wrong

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(hammer, range(4))) == [0, 0, 0, 0]


def test_meta_reference_images_bit_exact(choice: DecoderChoice) -> None:
    """All of Meta's PDQ test images (EXIF-rotated ones included): the same hash and
    quality as Pillow + pdqhash, bit for bit, JPEG too (as the CPU path gives)."""
    root = reference_dir("pdq")
    with (root / "reference-pillow-pdqhash.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    engine = Engine(EngineConfig(backend=BackendChoice.CPU, decoder=choice))
    results = engine.hash_many([root / r["file"] for r in rows])
    for row, sig in zip(rows, results, strict=True):
        assert isinstance(sig, Signature), row["file"]
        assert (sig.pdq.hex(), sig.quality) == (row["hash"], int(row["quality"])), row["file"]
    assert len(rows) == 53


def test_server_with_a_library_decoder(choice: DecoderChoice, tmp_path: Path) -> None:
    """A real server on a real port, `[engine] decoder` set: concurrent calls share its
    one decoder; every image hashes as the reference, bad ones get their typed errors."""
    config = tmp_path / "c.toml"
    config.write_text(f'[engine]\ndecoder = "{choice.value}"\n')
    srv = server_harness.start(
        tmp_path / "data", "--config", str(config), "--workers", "3", "--rest-listen", "127.0.0.1:0"
    )
    try:
        assert any(f"decoder {choice.value} cpu" in line for line in srv.log)  # the banner
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.rest_port}/health") as resp:
            health = json.loads(resp.read())
        assert health["status"] == "SERVING" and health["backend"] == "cpu"
        assert health["decoder"] == f"{choice.value} cpu" and health["device"]
        images = [encode(synthetic_rgb(60 + k, 80, seed=k), "JPEG") for k in range(12)]
        items = [*images, b"\xff\xd8\xff\xe0 not a jpeg"]
        with Client(srv.target) as client, ThreadPoolExecutor(4) as pool:
            calls = list(pool.map(lambda _: client.hash_images(items, batch_size=4), range(4)))
        want = [oracle(pillow_rgb(data)) for data in images]
        for outcomes in calls:
            assert [(o.pdq, o.quality) for o in outcomes[:-1]] == [(h.hex(), q) for h, q in want]
            assert outcomes[-1].code == "CORRUPT_IMAGE"
    finally:
        assert srv.stop() == 0
