"""Video decoding with PyAV (FFmpeg), sampling frames the way the vPDQ reference does.

The reference (vpdq's filehasher) decodes every frame of the first video stream, numbers
them in decode-output order from 0, and keeps frame n where n % int(seconds_per_hash * fps)
== 0 (every frame when that is 0), fps being the stream's average frame rate (else its
r_frame_rate). The timestamp is n / fps. It converts kept frames to RGB24 with swscale and
hashes RGB -> luma; like the reference, display rotation metadata is not applied.

Speed: for 8-bit YUV the luma the reference computes from the RGB24 frame is, up to
rounding and clipping, an affine function of the Y plane (BT.601: 0.299 R + 0.587 G +
0.114 B = 1.164 (Y - 16) exactly in the conversion's coefficients). PDQ's bits do not
change under a positive affine map (the DCT rows carry no DC), and the quality is fixed by
undoing the scale on the 64x64 buffer. So the Y plane is read without any colour
conversion; `VideoConfig.rgb` forces the reference's RGB24 path.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import av
import numpy as np

from hashmatch.config import VideoConfig
from hashmatch.errors import CorruptVideo, NotAVideo, SizeOutOfRange, Unreadable
from hashmatch.video.h264 import is_idr, is_non_reference, nal_length_size

_Y_PLANE_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}
)
Source = str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame: pixels are luma uint8 [H, W] (`y_range` says how to read them)
    or RGB uint8 [H, W, 3]."""

    number: int
    timestamp: float
    pixels: np.ndarray
    # (offset, scale) taking the pixel values to the reference's luma: (16, 255/219) for
    # limited-range Y, (0, 1) for full-range Y and RGB.
    y_range: tuple[float, float]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    width: int
    height: int
    fps: float
    frame_mod: int


def open_container(source: Source) -> Any:
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except IsADirectoryError:
        raise Unreadable("is a directory") from None
    except av.FFmpegError as exc:
        raise NotAVideo(f"not a readable video container ({type(exc).__name__})") from None
    except OSError as exc:
        raise Unreadable(exc.strerror or type(exc).__name__) from None


def stream_info(stream: Any, config: VideoConfig) -> StreamInfo:
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise NotAVideo("the video stream has no frame size")
    if width * height > config.max_pixels:
        raise SizeOutOfRange(f"{width}x{height} frames, over the limit of {config.max_pixels} px")
    rate = stream.average_rate
    if not rate:
        rate = stream.base_rate
    fps = float(rate) if rate else 0.0
    if fps <= 0:
        raise NotAVideo("the video stream has no frame rate")
    frame_mod = max(1, int(config.seconds_per_hash * fps))
    return StreamInfo(width, height, fps, frame_mod)


def _video_stream(container: Any, config: VideoConfig) -> tuple[Any, StreamInfo]:
    """The first video stream (the reference's choice) and what sampling needs of it."""
    if not container.streams.video:
        raise NotAVideo("no video stream (audio only?)")
    stream = container.streams.video[0]
    return stream, stream_info(stream, config)


def _checked_for_skipping(frame: Any, config: VideoConfig) -> int:
    """A decoded frame's pts, where frame numbers come from packet ranks: each frame must
    have a pts and be progressive (interlaced fields may travel as two packets)."""
    if frame.width * frame.height > config.max_pixels:
        raise SizeOutOfRange(f"a {frame.width}x{frame.height} frame")
    if frame.pts is None:
        raise SkipUnsafe("a frame without pts")
    if frame.interlaced_frame:
        raise SkipUnsafe("interlaced")
    return int(frame.pts)


def _pixels(frame: Any, config: VideoConfig) -> tuple[np.ndarray, tuple[float, float]]:
    name = frame.format.name
    if not config.rgb and name in _Y_PLANE_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
        y = rows[:, : frame.width]
        full = name.startswith("yuvj") or frame.color_range == 2  # AVCOL_RANGE_JPEG
        return y, ((0.0, 1.0) if full else (16.0, 255.0 / 219.0))
    rgb: np.ndarray = frame.to_ndarray(format="rgb24")
    return rgb, (0.0, 1.0)


class SkipUnsafe(Exception):
    """The non-reference skipping could not prove its frame numbers right: decode again
    without it (internal; never leaves the hasher)."""


def iter_frames(source: Source, config: VideoConfig, skip: bool = False) -> Iterator[Frame]:
    """The sampled frames of a video, in order. Raises typed errors (NotAVideo,
    CorruptVideo, SizeOutOfRange, Unreadable); always closes the container.

    skip: H.264 packets of non-reference pictures that will not be sampled are not
    decoded (about half the frames of a typical encode). Frame numbers then come from
    each packet's rank in presentation order; at the end they are checked against the
    complete list, and SkipUnsafe is raised where anything does not add up (the caller
    decodes again without skipping).
    """
    container = open_container(source)
    try:
        stream, info = _video_stream(container, config)
        stream.thread_type = "AUTO"
        stream.thread_count = config.decode_threads
        if skip and stream.codec_context.name == "h264":
            yield from _skipping(container, stream, info, config)
            return
        number = 0
        try:
            for frame in container.decode(stream):
                if frame.width * frame.height > config.max_pixels:
                    raise SizeOutOfRange(f"a {frame.width}x{frame.height} frame")
                if number % info.frame_mod == 0:
                    pixels, y_range = _pixels(frame, config)
                    yield Frame(number, number / info.fps, pixels, y_range)
                number += 1
        except av.FFmpegError as exc:
            if number == 0:
                raise NotAVideo(f"no decodable frame ({type(exc).__name__})") from None
            raise CorruptVideo(f"decoding failed after {number} frames") from None
        if number == 0:
            raise NotAVideo("the video stream has no frames")
    finally:
        container.close()


def _skipping(
    container: Any, stream: Any, info: StreamInfo, config: VideoConfig
) -> Iterator[Frame]:
    length_size = nal_length_size(stream.codec_context.extradata)
    seen: list[int] = []  # every packet's pts so far, sorted
    claimed: list[tuple[int, int]] = []  # (pts, number) of frames decoded or skipped
    decoded = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                if packet.pts is None:
                    raise SkipUnsafe("a packet without pts")
                bisect.insort(seen, packet.pts)
                if is_non_reference(bytes(packet), length_size):
                    rank = bisect.bisect_left(seen, packet.pts)
                    if rank % info.frame_mod:
                        claimed.append((packet.pts, rank))
                        continue
            for frame in stream.codec_context.decode(packet if packet.size else None):
                pts = _checked_for_skipping(frame, config)
                number = bisect.bisect_left(seen, pts)
                claimed.append((pts, number))
                decoded += 1
                if number % info.frame_mod == 0:
                    pixels, y_range = _pixels(frame, config)
                    yield Frame(number, number / info.fps, pixels, y_range)
    except av.FFmpegError as exc:
        if decoded == 0:
            raise NotAVideo(f"no decodable frame ({type(exc).__name__})") from None
        raise CorruptVideo(f"decoding failed after {decoded} frames") from None
    if decoded == 0:
        raise NotAVideo("the video stream has no frames")
    # Every packet gave exactly one frame, and every number claimed is its final rank.
    if len(claimed) != len(seen) or len(set(seen)) != len(seen):
        raise SkipUnsafe("packets and frames do not pair up")
    if any(seen[n] != pts for pts, n in claimed if n < len(seen)) or any(
        n >= len(seen) for _, n in claimed
    ):
        raise SkipUnsafe("a frame number changed once every packet was seen")


@dataclass(frozen=True, slots=True)
class Segment:
    """H.264 packets from one IDR picture up to the next, in decoding order: decodable on
    their own, with the output a decoder that started at frame 0 would give."""

    codec: str
    extradata: bytes | None
    info: StreamInfo
    first_number: int  # frames of the video before this segment
    packets: list[Any]
    pts: list[int]  # the packets' pts, sorted: a frame's number is its rank here + first
    skip: list[bool]  # per packet: a picture no sampled frame needs, not decoded

    @property
    def nbytes(self) -> int:
        return sum(p.size for p in self.packets)


def iter_segments(source: Source, config: VideoConfig) -> Iterator[Segment]:
    """The IDR-to-IDR segments of an H.264 video, demuxed without decoding, for decoding
    several at once (`decode_segment`). Raises SkipUnsafe where the split cannot be
    proved to number frames like a decode from the start (not H.264, a packet without
    pts, segments whose presentation times interleave), or where one segment's packets
    pass `segment_max_bytes`: the caller decodes in one pass.
    """
    container = open_container(source)
    try:
        stream, info = _video_stream(container, config)
        ctx = stream.codec_context
        if ctx.name != "h264":
            raise SkipUnsafe("only H.264 is split at IDR pictures")
        length_size = nal_length_size(ctx.extradata)
        may_skip = config.skip_non_reference and config.frame_mod_may_skip
        packets: list[Any] = []
        non_ref: list[bool] = []
        first, last_pts, held = 0, None, 0
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if packet.pts is None:
                    raise SkipUnsafe("a packet without pts")
                data = bytes(packet)
                if packets and is_idr(data, length_size):
                    segment = _segment(ctx, info, first, packets, non_ref, may_skip, last_pts)
                    yield segment
                    first, last_pts = first + len(packets), segment.pts[-1]
                    packets, non_ref, held = [], [], 0
                packets.append(packet)
                held += packet.size
                if held > config.segment_max_bytes:  # one GOP for a whole film: stream it
                    raise SkipUnsafe("a segment over segment_max_bytes")
                non_ref.append(may_skip and is_non_reference(data, length_size))
        except av.FFmpegError:
            raise SkipUnsafe("demuxing failed") from None
        if not packets:
            raise SkipUnsafe("no packets")
        yield _segment(ctx, info, first, packets, non_ref, may_skip, last_pts)
    finally:
        container.close()


def _segment(
    ctx: Any,
    info: StreamInfo,
    first: int,
    packets: list[Any],
    non_ref: list[bool],
    may: bool,
    after: int | None,  # the previous segment's last pts
) -> Segment:
    pts = sorted(p.pts for p in packets)
    if len(set(pts)) != len(pts):
        raise SkipUnsafe("two packets with one pts")
    if after is not None and pts[0] <= after:
        raise SkipUnsafe("segments overlap in presentation time")
    sampled = [(first + bisect.bisect_left(pts, p.pts)) % info.frame_mod == 0 for p in packets]
    # Pictures only refer to pictures decoded before them, and none of the next segment
    # refers to this one: past its last sampled frame (decoding order) nothing is needed.
    # With 1-second sampling and 1-second keyframe intervals (phone cameras), that is
    # every picture but the IDR one.
    last = max((i for i, s in enumerate(sampled) if s), default=-1) if may else len(packets)
    skip = [
        k > last or (may and nr and not s)
        for k, (nr, s) in enumerate(zip(non_ref, sampled, strict=True))
    ]
    return Segment(ctx.name, ctx.extradata, info, first, packets, pts, skip)


def decode_segment(segment: Segment, config: VideoConfig) -> Iterator[Frame]:
    """A segment's sampled frames, from a decoder of its own (one thread: segments are
    what runs in parallel). Raises SkipUnsafe unless exactly one progressive frame came
    out per decoded packet, in presentation order: then the numbers are those of a full
    decode.
    """
    ctx: Any = av.CodecContext.create(segment.codec, "r")
    ctx.extradata = segment.extradata
    ctx.thread_count = 1
    info = segment.info
    decoded = [p for p, s in zip(segment.packets, segment.skip, strict=True) if not s]
    wanted = sorted(p.pts for p in decoded)
    got: list[int] = []
    try:
        for packet in [*decoded, None]:  # None: drain the decoder
            for frame in ctx.decode(packet):
                pts = _checked_for_skipping(frame, config)
                if got and pts <= got[-1]:
                    raise SkipUnsafe("a frame out of presentation order")
                got.append(pts)
                number = segment.first_number + bisect.bisect_left(segment.pts, pts)
                if number % info.frame_mod == 0:
                    pixels, y_range = _pixels(frame, config)
                    yield Frame(number, number / info.fps, pixels, y_range)
    except av.FFmpegError:
        raise SkipUnsafe("a segment did not decode on its own") from None
    if got != wanted:
        raise SkipUnsafe("a segment's frames and packets do not pair up")


def probe(source: Source, config: VideoConfig) -> StreamInfo:
    container = open_container(source)
    try:
        return _video_stream(container, config)[1]
    finally:
        container.close()
