"""Video (vPDQ): sampling, hashing, matching with time ranges, compact forms, bad input."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from hashmatch.config import VideoConfig
from hashmatch.errors import BadParameter, NotAVideo, SizeOutOfRange, Unreadable
from hashmatch.hashing.signature import hamming
from hashmatch.video import hasher as hasher_module
from hashmatch.video.compare import VideoMatchOptions, compare
from hashmatch.video.decode import SkipUnsafe, decode_segment, iter_frames, iter_segments
from hashmatch.video.features import VideoHash
from hashmatch.video.h264 import is_idr, is_non_reference, nal_length_size
from hashmatch.video.hasher import VideoHasher
from tests.video_helpers import scene, write_video

SEEDS = [1, 2, 3, 4, 5, 6]
HALF = VideoConfig(seconds_per_hash=0.5)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "orig": write_video(d / "orig.mp4", SEEDS),
        "reencoded": write_video(d / "reenc.avi", SEEDS, codec="mpeg4", bitrate=150_000),
        "resized": write_video(d / "resized.mp4", SEEDS, size=(96, 72)),
        "trimmed": write_video(d / "trimmed.mp4", SEEDS, first_frame=20, n_frames=30),
        "unrelated": write_video(d / "other.mp4", [11, 12, 13, 14, 15, 16]),
    }


@pytest.fixture(scope="module")
def hashes(clips: dict[str, Path]) -> dict[str, VideoHash]:
    hasher = VideoHasher(HALF)
    return {k: hasher.hash(p) for k, p in clips.items()}


def test_samples_one_frame_per_period_with_timestamps(hashes: dict[str, VideoHash]) -> None:
    h = hashes["orig"]  # 10 fps, 6 s, one frame per 0.5 s
    assert h.frame_numbers.tolist() == list(range(0, 60, 5))
    assert np.allclose(h.timestamps, np.arange(0, 6, 0.5))
    assert (h.quality >= 50).all()


def test_every_frame_when_seconds_per_hash_is_zero(clips: dict[str, Path]) -> None:
    h = VideoHasher(VideoConfig(seconds_per_hash=0)).hash(clips["orig"])
    assert h.frame_numbers.tolist() == list(range(60))
    assert np.allclose(h.timestamps, np.arange(60) / 10)


def test_default_is_one_frame_per_second(clips: dict[str, Path]) -> None:
    h = VideoHasher().hash(clips["orig"])
    assert h.frame_numbers.tolist() == [0, 10, 20, 30, 40, 50]


def test_y_plane_and_rgb_paths_agree_within_noise(clips: dict[str, Path]) -> None:
    y = VideoHasher(HALF).hash(clips["orig"])
    rgb = VideoHasher(VideoConfig(seconds_per_hash=0.5, rgb=True)).hash(clips["orig"])
    assert y.frame_numbers.tolist() == rgb.frame_numbers.tolist()
    assert int(hamming(y.hashes, rgb.hashes).max()) <= 8
    assert np.abs(y.quality - rgb.quality).max() <= 2


def test_from_an_open_file(clips: dict[str, Path], hashes: dict[str, VideoHash]) -> None:
    with clips["orig"].open("rb") as fh:
        h = VideoHasher(HALF).hash(fh)
    assert (h.hashes == hashes["orig"].hashes).all()


@pytest.mark.parametrize("variant", ["reencoded", "resized"])
def test_variants_match_whole(hashes: dict[str, VideoHash], variant: str) -> None:
    c = compare(hashes["orig"], hashes[variant])
    assert c.is_match
    assert c.query_match_percent == c.target_match_percent == 100.0
    assert [(r.start, r.end) for r in c.query_ranges] == [(0.0, 6.0)]
    assert [(r.start, r.end) for r in c.target_ranges] == [(0.0, 6.0)]


def test_trimmed_clip_matches_with_time_ranges(hashes: dict[str, VideoHash]) -> None:
    c = compare(hashes["orig"], hashes["trimmed"])  # seconds 2..5 of the original
    assert c.target_match_percent == 100.0
    assert c.query_match_percent == 50.0
    assert not c.is_match  # below 80% of the original: vPDQ's default says no
    assert [(r.start, r.end) for r in c.query_ranges] == [(2.0, 5.0)]
    assert [(r.start, r.end) for r in c.target_ranges] == [(0.0, 3.0)]
    # The clip inside a longer video: only the target side is asked to be covered.
    loose = VideoMatchOptions(query_match_percent=0.0)
    assert compare(hashes["orig"], hashes["trimmed"], loose).is_match


def test_unrelated_clips_do_not_match(hashes: dict[str, VideoHash]) -> None:
    c = compare(hashes["orig"], hashes["unrelated"])
    assert not c.is_match
    assert c.query_match_percent == c.target_match_percent == 0.0
    assert c.query_ranges == c.target_ranges == ()


def _flip(h: bytes, bits: int) -> bytes:
    v = int.from_bytes(h, "big") ^ ((1 << bits) - 1)
    return v.to_bytes(32, "big")


def _video(*rows: tuple[bytes, int]) -> VideoHash:
    return VideoHash.from_rows([(k, float(k), h, q) for k, (h, q) in enumerate(rows)])


@pytest.mark.parametrize(("bits", "matches"), [(31, True), (32, False)])
def test_distance_threshold_is_inclusive(bits: int, matches: bool) -> None:
    base = bytes(range(32))
    c = compare(_video((base, 100)), _video((_flip(base, bits), 100)))
    assert c.is_match is matches
    assert c.query_match_percent == (100.0 if matches else 0.0)


def test_quality_filter_and_distinct_hashes() -> None:
    a, b, flat = bytes(range(32)), bytes(range(1, 33)), bytes(32)
    far = _flip(a, 128)
    query = _video((a, 100), (a, 100), (a, 100), (far, 100), (flat, 10))
    target = _video((a, 90), (b, 100))
    c = compare(query, target)
    # distinct query hashes of quality >= 50: a, far -> 1 of 2; target: a, b -> 1 of 2
    assert (c.query_match_percent, c.target_match_percent) == (50.0, 50.0)
    c = compare(query, target, VideoMatchOptions(min_quality=95))
    assert c.target_match_percent == 0.0


def test_text_and_compact_round_trips(hashes: dict[str, VideoHash]) -> None:
    h = hashes["orig"]
    for back in (VideoHash.from_text(h.to_text()), VideoHash.from_bytes(h.to_bytes())):
        assert back.frame_numbers.tolist() == h.frame_numbers.tolist()
        assert np.allclose(back.timestamps, h.timestamps, atol=5e-4)
        assert (back.hashes == h.hashes).all() and (back.quality == h.quality).all()
    assert len(h.to_bytes()) == 5 + 41 * len(h)
    with pytest.raises(BadParameter):
        VideoHash.from_text("0,100,zz,0.0")
    with pytest.raises(BadParameter):
        VideoHash.from_bytes(b"nope")


# -- bad input ---------------------------------------------------------------------------
def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mp2", rate=44100)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1152), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 44100
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda d: _write(d / "empty.mp4", b""), NotAVideo),
        (lambda d: _write(d / "junk.mp4", b"\x00junk" * 1000), NotAVideo),
        (lambda d: _audio_only(d / "audio.mp2"), NotAVideo),
        (lambda d: d / "missing.mp4", Unreadable),
        (lambda d: d, Unreadable),
    ],
    ids=["zero-length", "garbage", "audio-only", "missing", "directory"],
)
def test_bad_input_raises_typed_errors(tmp_path: Path, make, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        VideoHasher().hash(make(tmp_path))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_stream_cut_mid_upload(tmp_path: Path) -> None:
    # MPEG-TS carries frames as they come: the part that arrived is hashed.
    data = write_video(tmp_path / "full.ts", SEEDS).read_bytes()
    h = VideoHasher(HALF).hash(_write(tmp_path / "cut.ts", data[: len(data) // 2]))
    assert 0 < len(h) < 12
    assert h.frame_numbers.tolist() == list(range(0, 5 * len(h), 5))


def test_mp4_cut_mid_upload_is_not_a_video(tmp_path: Path, clips: dict[str, Path]) -> None:
    # MP4 as written here keeps its index (moov) at the end: without it, nothing decodes.
    data = clips["orig"].read_bytes()
    with pytest.raises(NotAVideo):
        VideoHasher().hash(_write(tmp_path / "cut.mp4", data[: len(data) // 2]))


def test_huge_resolution_is_refused_before_decoding(clips: dict[str, Path]) -> None:
    with pytest.raises(SizeOutOfRange):
        VideoHasher(VideoConfig(max_pixels=100 * 90)).hash(clips["orig"])


# -- skipping non-reference H.264 pictures -----------------------------------------------
@pytest.mark.parametrize("suffix", ["mp4", "ts"])
@pytest.mark.parametrize("seconds_per_hash", [1.0, 0.3])
def test_skipping_non_reference_pictures_changes_nothing(
    tmp_path: Path, suffix: str, seconds_per_hash: float
) -> None:
    clip = write_video(tmp_path / f"c.{suffix}", SEEDS)
    base = VideoConfig(seconds_per_hash=seconds_per_hash, skip_non_reference=False)
    full = VideoHasher(base).hash(clip)
    frames = list(iter_frames(clip, VideoConfig(seconds_per_hash=seconds_per_hash), skip=True))
    assert [f.number for f in frames] == full.frame_numbers.tolist()
    fast = VideoHasher(VideoConfig(seconds_per_hash=seconds_per_hash)).hash(clip)
    assert (fast.hashes == full.hashes).all() and (fast.quality == full.quality).all()


def test_skipping_falls_back_when_it_cannot_prove_the_numbers(
    clips: dict[str, Path], hashes: dict[str, VideoHash], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = hasher_module.iter_frames

    def unsure(source: Any, config: VideoConfig, skip: bool = False) -> Iterator[Any]:
        frames = real(source, config, skip)
        if skip:
            yield next(frames)
            raise SkipUnsafe("test")
        yield from frames

    monkeypatch.setattr(hasher_module, "iter_frames", unsure)
    with clips["orig"].open("rb") as fh:  # a file object is rewound for the second pass
        again = VideoHasher(HALF).hash(fh)
    assert (again.hashes == hashes["orig"].hashes).all()


# -- decoding IDR-to-IDR segments at once ------------------------------------------------
# A new IDR picture every 7 frames (x264 keyint), B-frames on: segments end mid-second.
GOP7 = {"x264-params": "keyint=7:min-keyint=7:scenecut=0:bframes=2:b-adapt=0"}
SEQUENTIAL = {"idr_segments": False, "skip_non_reference": False}


def _same(a: VideoHash, b: VideoHash) -> bool:
    return (
        a.frame_numbers.tolist() == b.frame_numbers.tolist()
        and a.timestamps.tolist() == b.timestamps.tolist()
        and bool((a.hashes == b.hashes).all() and (a.quality == b.quality).all())
    )


@pytest.mark.parametrize("suffix", ["mp4", "ts"])
@pytest.mark.parametrize("seconds_per_hash", [1.0, 0.3, 0.0])
def test_segments_decoded_at_once_give_the_full_decode(
    tmp_path: Path, suffix: str, seconds_per_hash: float
) -> None:
    clip = write_video(tmp_path / f"c.{suffix}", SEEDS, options=GOP7)
    config = VideoConfig(seconds_per_hash=seconds_per_hash, decode_threads=3)
    segments = list(iter_segments(clip, config))
    assert len(segments) == 9  # 60 frames, an IDR every 7
    assert [s.first_number for s in segments] == list(range(0, 60, 7))
    decoded = sum(not skip for s in segments for skip in s.skip)
    # Every frame: all decoded; sampled: only what the sampled frames need.
    assert decoded == {1.0: 20, 0.3: 46, 0.0: 60}[seconds_per_hash]
    full = VideoHasher(VideoConfig(seconds_per_hash=seconds_per_hash, **SEQUENTIAL)).hash(clip)
    assert _same(VideoHasher(config).hash_segments(clip), full)
    assert _same(VideoHasher(config).hash(clip), full)
    one_decoder = VideoHasher(replace(config, decode_threads=1))
    assert _same(one_decoder.hash_segments(clip), full)


def test_a_segment_stops_at_its_last_sampled_frame(tmp_path: Path) -> None:
    """One IDR picture a second and one sample a second: only the IDR pictures decode."""
    options = {"x264-params": "keyint=10:min-keyint=10:scenecut=0"}
    clip = write_video(tmp_path / "phone.mp4", SEEDS, options=options)
    config = VideoConfig(seconds_per_hash=1.0, decode_threads=2)
    segments = list(iter_segments(clip, config))
    assert [s.skip.count(False) for s in segments] == [1] * 6
    full = VideoHasher(VideoConfig(seconds_per_hash=1.0, **SEQUENTIAL)).hash(clip)
    assert _same(VideoHasher(config).hash(clip), full)


def test_interlaced_video_is_decoded_in_one_pass(tmp_path: Path) -> None:
    options = {"x264-params": "keyint=7:min-keyint=7:scenecut=0:interlaced=1"}
    clip = write_video(tmp_path / "tff.mp4", SEEDS, options=options)
    config = VideoConfig(seconds_per_hash=0.5, decode_threads=2)
    with pytest.raises(SkipUnsafe):
        list(decode_segment(next(iter_segments(clip, config)), config))
    with pytest.raises(SkipUnsafe):
        list(iter_frames(clip, config, skip=True))
    full = VideoHasher(VideoConfig(seconds_per_hash=0.5, **SEQUENTIAL)).hash(clip)
    assert _same(VideoHasher(config).hash(clip), full)


def test_segments_held_stay_within_segment_max_bytes(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.mp4", SEEDS, options=GOP7)
    config = VideoConfig(seconds_per_hash=0.3, decode_threads=3)
    full = VideoHasher(VideoConfig(seconds_per_hash=0.3, **SEQUENTIAL)).hash(clip)
    largest = max(s.nbytes for s in iter_segments(clip, config))
    # Room for one segment at a time: each is waited for before the next is decoded.
    one_at_a_time = replace(config, segment_max_bytes=largest)
    assert _same(VideoHasher(one_at_a_time).hash_segments(clip), full)
    # No room for one: the video streams through one decoder instead.
    too_small = replace(config, segment_max_bytes=largest - 1)
    with pytest.raises(SkipUnsafe):
        list(iter_segments(clip, too_small))
    assert _same(VideoHasher(too_small).hash(clip), full)


def test_open_gop_clips_split_only_at_idr_pictures(tmp_path: Path) -> None:
    """Open-GOP I pictures are not IDR: B-frames after them refer back, so no split."""
    options = {"x264-params": "keyint=7:scenecut=0:open-gop=1"}
    clip = write_video(tmp_path / "open.mp4", SEEDS, options=options)
    config = VideoConfig(seconds_per_hash=0.3, decode_threads=2)
    segments = list(iter_segments(clip, config))
    full = VideoHasher(VideoConfig(seconds_per_hash=0.3, **SEQUENTIAL)).hash(clip)
    with av.open(str(clip)) as c:  # the container marks every I picture a keyframe
        assert sum(p.is_keyframe for p in c.demux(c.streams.video[0])) == 9
    assert len(segments) == 1 and len(segments[0].packets) == 60
    assert _same(VideoHasher(config).hash_segments(clip), full)


def test_a_segment_without_its_idr_picture_is_refused(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.mp4", SEEDS, options=GOP7)
    config = VideoConfig(seconds_per_hash=0.0, decode_threads=2)
    second = list(iter_segments(clip, config))[1]
    cut = dataclasses.replace(second, packets=second.packets[1:], skip=second.skip[1:])
    with pytest.raises(SkipUnsafe):
        list(decode_segment(cut, config))


def test_other_codecs_and_failed_splits_fall_back_to_one_decoder(
    clips: dict[str, Path], hashes: dict[str, VideoHash], monkeypatch: pytest.MonkeyPatch
) -> None:
    parallel = replace(HALF, decode_threads=2)
    with pytest.raises(SkipUnsafe):
        list(iter_segments(clips["reencoded"], parallel))  # MPEG-4 part 2
    assert _same(VideoHasher(parallel).hash(clips["reencoded"]), hashes["reencoded"])

    def unsure(source: Any, config: VideoConfig) -> Iterator[Any]:
        yield from list(iter_segments(source, config))[:1]
        raise SkipUnsafe("test")

    monkeypatch.setattr(hasher_module, "iter_segments", unsure)
    with clips["orig"].open("rb") as fh:  # a file object is rewound for the next pass
        assert _same(VideoHasher(parallel).hash(fh), hashes["orig"])


def test_h264_reference_flags() -> None:
    idr, ref_p, nonref_b, sei = 0x65, 0x41, 0x01, 0x06
    avcc = b"".join(len(n).to_bytes(4, "big") + n for n in (bytes([sei, 9]), bytes([nonref_b, 7])))
    assert is_non_reference(avcc, 4)
    assert not is_non_reference(b"\x00\x00\x00\x02" + bytes([ref_p, 1]), 4)
    assert not is_non_reference(b"\x00\x00\x01" + bytes([idr, 1]), 0)
    assert is_non_reference(b"\x00\x00\x00\x01" + bytes([nonref_b, 1]), 0)
    assert not is_non_reference(b"\x00\x00\x01" + bytes([sei, 1]), 0)  # no slice: decode
    assert is_idr(b"\x00\x00\x00\x02" + bytes([sei, 1]) + b"\x00\x00\x00\x02" + bytes([idr, 1]), 4)
    assert not is_idr(b"\x00\x00\x00\x02" + bytes([ref_p, 1]), 4)
    assert not is_idr(b"\x00\x00\x01" + bytes([sei, 1]), 0)
    assert nal_length_size(bytes([1, 100, 0, 40, 0xFF])) == 4
    assert nal_length_size(b"\x00\x00\x00\x01g") == 0


def test_variable_frame_rate_is_sampled_like_the_reference(tmp_path: Path) -> None:
    """By decoded-frame count and the average frame rate (vpdq's rule), skipping or not."""
    path = tmp_path / "vfr.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for n in range(60):
            frame = av.VideoFrame.from_ndarray(scene(n // 10 + 1, 128, 96, n % 10), "rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            t += 50 if n % 3 else 200  # 50 ms, 50 ms, 200 ms, ...
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
    mod = int(0.5 * fps)
    want = list(range(0, 60, mod))
    for skip in (False, True):
        frames = list(iter_frames(path, VideoConfig(seconds_per_hash=0.5), skip=skip))
        assert [f.number for f in frames] == want
        assert np.allclose([f.timestamp for f in frames], np.array(want) / fps)
    segmented = VideoHasher(VideoConfig(seconds_per_hash=0.5, decode_threads=2))
    assert segmented.hash_segments(path).frame_numbers.tolist() == want
