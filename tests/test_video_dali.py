"""The DALI video decode path, run on DALI's CPU backend (device_id=None: no CUDA needed).

DALI's CPU build decodes VP8, VP9 and MJPEG (not H.264), so the clips are VP9/VP8. Its RGB
is not PyAV's rgb24 byte for byte (its swscale flags differ: up to ~90 per channel apart,
luma within ~3), so hashes are compared by distance; frame numbers and timestamps must be
the reference's exactly. Whatever DALI cannot do goes to PyAV, typed errors included.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from hashmatch.config import DecoderChoice, VideoConfig, load_config
from hashmatch.errors import ConfigError, NotAVideo, Unreadable
from hashmatch.hashing.backend import cuda_usable
from hashmatch.hashing.signature import hamming
from hashmatch.video import dali_video
from hashmatch.video.dali_video import DaliVideoDecoder, select_video_decoder
from hashmatch.video.decode import SkipUnsafe, StreamInfo, iter_frames
from hashmatch.video.features import VideoHash
from hashmatch.video.hasher import VideoHasher
from tests.video_helpers import write_video

# hashmatch imports DALI only when asked: the module skips here, before any test runs.
pytest.importorskip("nvidia.dali", reason="nvidia-dali is not installed")

SEEDS = [1, 2, 3, 4, 5, 6]
# Measured on these clips (10 fps, 128x96): max 2 bits at 0.5 s, 4 bits every frame (mean
# 0.7-0.9), qualities equal; the bound leaves room for other FFmpeg builds.
MAX_BITS = 8
NO_GPU = not cuda_usable()


def _config(decoder: DecoderChoice, seconds_per_hash: float = 0.5, **kw: Any) -> VideoConfig:
    return VideoConfig(seconds_per_hash=seconds_per_hash, decoder=decoder, **kw)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dali-clips")
    return {
        "vp9.webm": write_video(d / "c.webm", SEEDS, codec="libvpx-vp9"),  # no frame count
        "vp9.mp4": write_video(d / "c.mp4", SEEDS, codec="libvpx-vp9"),  # a frame count
        "vp8.mkv": write_video(d / "c.mkv", SEEDS, codec="libvpx"),
        "h264.mp4": write_video(d / "h.mp4", SEEDS),  # not in DALI's CPU build
    }


def _pyav_rgb(path: Path, seconds_per_hash: float) -> VideoHash:
    return VideoHasher(_config(DecoderChoice.CPU, seconds_per_hash, rgb=True)).hash(path)


def _dali(source: Any, config: VideoConfig) -> VideoHash:
    """Hashes of DALI's frames only: a fall-back would raise SkipUnsafe here."""
    return VideoHasher(config).hash_frames(DaliVideoDecoder().frames(source, config))


def _close(a: VideoHash, b: VideoHash) -> None:
    assert a.frame_numbers.tolist() == b.frame_numbers.tolist()
    assert a.timestamps.tolist() == b.timestamps.tolist()
    both = (a.quality >= 50) & (b.quality >= 50)
    assert both.all()
    assert int(hamming(a.hashes, b.hashes)[both].max()) <= MAX_BITS
    assert int(np.abs(a.quality - b.quality).max()) <= 2


def _same(a: VideoHash, b: VideoHash) -> bool:
    return (
        a.frame_numbers.tolist() == b.frame_numbers.tolist()
        and a.timestamps.tolist() == b.timestamps.tolist()
        and bool((a.hashes == b.hashes).all() and (a.quality == b.quality).all())
    )


# -- same frames as the PyAV path --------------------------------------------------------
@pytest.mark.parametrize("seconds_per_hash", [0.5, 0.0])
@pytest.mark.parametrize("kind", ["vp9.webm", "vp9.mp4", "vp8.mkv"])
def test_dali_gives_pyavs_frames_and_close_hashes(
    clips: dict[str, Path], kind: str, seconds_per_hash: float
) -> None:
    config = _config(DecoderChoice.DALI, seconds_per_hash)
    frames = list(DaliVideoDecoder().frames(clips[kind], config))
    reference = list(iter_frames(clips[kind], _config(DecoderChoice.CPU, seconds_per_hash)))
    assert [(f.number, f.timestamp) for f in frames] == [(f.number, f.timestamp) for f in reference]
    assert all(f.pixels.shape == (96, 128, 3) and f.y_range == (0.0, 1.0) for f in frames)
    dali = _dali(clips[kind], config)
    assert len(dali) == (12 if seconds_per_hash else 60)
    _close(dali, _pyav_rgb(clips[kind], seconds_per_hash))
    assert _same(VideoHasher(config).hash(clips[kind]), dali)  # the hasher took DALI


@pytest.mark.parametrize("seconds_per_hash", [0.5, 0.6, 0.0])
def test_short_sequences_sample_the_same_frames(
    clips: dict[str, Path], seconds_per_hash: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(DecoderChoice.DALI, seconds_per_hash)
    whole = _dali(clips["vp9.webm"], config)
    # Three frames a run: frame_mod 5 -> sequences of 1, 6 -> of 3 (every other one sampled).
    monkeypatch.setattr(dali_video, "_RUN_BYTES", 3 * 128 * 96 * 3)
    assert _same(_dali(clips["vp9.webm"], config), whole)


def test_sequence_sizes() -> None:
    def plan(w: int, h: int, frame_mod: int) -> tuple[int, int]:
        p = dali_video._sizes(StreamInfo(w, h, 30.0, frame_mod), 1000)
        return p.sequence, p.batch

    assert plan(1920, 1080, 30) == (30, 1)  # 6 MB frames: one sampled frame a run
    assert plan(3840, 2160, 30) == (10, 1)  # a divisor of 30 within 256 MiB
    assert plan(128, 96, 1) == (1, 64)  # every frame: 64 a run
    assert plan(128, 96, 7) == (7, 64)


# -- sources -----------------------------------------------------------------------------
def test_file_objects(clips: dict[str, Path]) -> None:
    config = _config(DecoderChoice.DALI)
    expected = _dali(clips["vp9.webm"], config)
    with clips["vp9.webm"].open("rb") as fh:
        assert _same(_dali(fh, config), expected)
        fh.seek(0)
        assert _same(VideoHasher(config).hash(fh), expected)
    assert _same(_dali(io.BytesIO(clips["vp9.webm"].read_bytes()), config), expected)


# -- bad input and fall-backs ------------------------------------------------------------
def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mp2", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), "s16", "mono")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda d, c: _write(d / "empty.webm", b""), NotAVideo),
        (lambda d, c: _write(d / "junk.webm", b"\x00junk" * 1000), NotAVideo),
        (lambda d, c: _audio_only(d / "audio.mkv"), NotAVideo),
        (lambda d, c: _write(d / "cut.mp4", c["vp9.mp4"].read_bytes()[:3000]), NotAVideo),
        (lambda d, c: d / "missing.webm", Unreadable),
        (lambda d, c: d, Unreadable),
    ],
    ids=["zero-length", "garbage", "audio-only", "mp4-cut", "missing", "directory"],
)
def test_bad_input_gives_pyavs_typed_errors(  # type: ignore[no-untyped-def]
    tmp_path: Path, clips: dict[str, Path], make, error
) -> None:
    path = make(tmp_path, clips)
    with pytest.raises(error) as pyav:
        VideoHasher(_config(DecoderChoice.CPU)).hash(path)
    with pytest.raises(error) as dali:
        VideoHasher(_config(DecoderChoice.DALI)).hash(path)
    assert dali.value.message == pyav.value.message


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_damaged_stream_gives_pyavs_frames(
    tmp_path: Path, clips: dict[str, Path], damage: str
) -> None:
    data = bytearray(clips["vp9.webm"].read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    else:
        third = len(data) // 3
        data[third : third + 400] = bytes(b ^ 0x5A for b in data[third : third + 400])
    path = _write(tmp_path / "damaged.webm", bytes(data))
    dali = VideoHasher(_config(DecoderChoice.DALI)).hash(path)
    assert 0 < len(dali) < 12
    _close(dali, _pyav_rgb(path, 0.5))


def test_what_dali_cannot_decode_goes_to_pyav(clips: dict[str, Path]) -> None:
    with pytest.raises(SkipUnsafe):  # no H.264 in DALI's CPU build
        list(DaliVideoDecoder().frames(clips["h264.mp4"], _config(DecoderChoice.DALI)))
    pyav = VideoHasher(_config(DecoderChoice.CPU)).hash(clips["h264.mp4"])
    assert _same(VideoHasher(_config(DecoderChoice.DALI)).hash(clips["h264.mp4"]), pyav)


def test_too_large_for_memory_goes_to_pyav(clips: dict[str, Path]) -> None:
    config = _config(DecoderChoice.DALI, dali_max_bytes=1000)
    with pytest.raises(SkipUnsafe):
        list(DaliVideoDecoder().frames(clips["vp9.webm"], config))
    pyav = VideoHasher(_config(DecoderChoice.CPU)).hash(clips["vp9.webm"])
    assert _same(VideoHasher(config).hash(clips["vp9.webm"]), pyav)
    with clips["vp9.webm"].open("rb") as fh:
        assert _same(VideoHasher(config).hash(fh), pyav)


def test_a_failure_mid_video_goes_to_pyav_from_the_start(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = DaliVideoDecoder._run

    def fails(self: DaliVideoDecoder, pipe: Any, data: Any, plan: Any) -> Iterator[Any]:
        frames = real(self, pipe, data, plan)
        yield next(frames)
        raise SkipUnsafe("test")

    monkeypatch.setattr(DaliVideoDecoder, "_run", fails)
    pyav = VideoHasher(_config(DecoderChoice.CPU)).hash(clips["vp9.webm"])
    with clips["vp9.webm"].open("rb") as fh:  # rewound for PyAV
        assert _same(VideoHasher(_config(DecoderChoice.DALI)).hash(fh), pyav)


# -- choosing the decoder ----------------------------------------------------------------
@pytest.mark.skipif(not NO_GPU, reason="a CUDA device is visible: auto would pick DALI")
def test_auto_without_a_gpu_is_pyav() -> None:
    assert select_video_decoder(VideoConfig()) is None
    assert VideoHasher().dali is None
    assert select_video_decoder(VideoConfig(decoder=DecoderChoice.CPU)) is None
    dali = select_video_decoder(VideoConfig(decoder=DecoderChoice.DALI))
    assert dali is not None and dali.device == "cpu"


def test_dali_asked_for_but_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dali_video, "dali_installed", lambda: False)
    with pytest.raises(ConfigError):
        VideoHasher(VideoConfig(decoder=DecoderChoice.DALI))
    assert VideoHasher(VideoConfig(decoder=DecoderChoice.AUTO)).dali is None


def test_decoder_loads_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "hashmatch.toml"
    path.write_text('[video]\ndecoder = "dali"\ndali_max_bytes = 1000000\n')
    video = load_config(path).video
    assert video.decoder is DecoderChoice.DALI and video.dali_max_bytes == 1_000_000
    path.write_text('[video]\ndecoder = "nvdec"\n')
    with pytest.raises(ConfigError):
        load_config(path)
    with pytest.raises(ConfigError):
        VideoConfig(dali_max_bytes=2**31)
