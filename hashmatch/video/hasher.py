"""vPDQ hashing: sampled frames through the same backend seam as images, in batches.

Each kept frame goes through `Backend.prepare` (the banded resample to 64x64, fused with
the luma conversion) as soon as it is decoded, so only 64x64 buffers wait for their batch;
`Backend.finish` then hashes a batch of frames at once (DCT, median, bits, quality).
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from hashmatch.config import DecoderChoice, VideoConfig
from hashmatch.hashing.backend import Backend, CpuBackend
from hashmatch.video.dali_video import DaliVideoDecoder, select_video_decoder
from hashmatch.video.decode import (
    Frame,
    Segment,
    SkipUnsafe,
    Source,
    decode_segment,
    iter_frames,
    iter_segments,
)
from hashmatch.video.features import VideoHash


class VideoHasher:
    """Source (path or binary file object) -> VideoHash. One hasher serves many videos."""

    def __init__(self, config: VideoConfig | None = None, backend: Backend | None = None):
        self.config = config or VideoConfig()
        self.backend = backend or CpuBackend()
        if self.config.decoder is DecoderChoice.DALI:
            _ = self.dali  # asked for by name: fail here (not installed), not at a video

    @functools.cached_property
    def dali(self) -> DaliVideoDecoder | None:
        """DALI (NVDEC) where config.decoder and the machine say so; None: PyAV only.
        Chosen at the first video: "auto" imports DALI (~0.35 s) only when one is hashed."""
        return select_video_decoder(self.config)

    def hash(self, source: Source) -> VideoHash:
        # DALI where chosen, then PyAV's paths fastest first; each path but the last proves
        # its frame numbers or steps aside (SkipUnsafe).
        if self.dali is not None:
            try:
                return self.hash_frames(self.dali.frames(source, self.config))
            except SkipUnsafe:
                _rewind(source)
        if self.config.idr_segments:
            try:
                return self.hash_segments(source)
            except SkipUnsafe:
                _rewind(source)
        if self.config.skip_non_reference and self.config.frame_mod_may_skip:
            try:
                return self.hash_frames(iter_frames(source, self.config, skip=True))
            except SkipUnsafe:
                _rewind(source)
        return self.hash_frames(iter_frames(source, self.config))

    def hash_segments(self, source: Source) -> VideoHash:
        """H.264 decoded from each IDR picture on its own decoder, `decoders` at once (the
        decoder releases the GIL): the cores a single decoder's frame threads leave idle
        when most frames are skipped; and a segment stops at its last sampled frame.
        Held at once: at most decoders + 1 segments, and their packets within
        segment_max_bytes (past it, the oldest segment is waited for)."""
        workers = self.config.decoders
        parts: list[VideoHash] = []
        pending: deque[tuple[Future[VideoHash], int]] = deque()
        with ThreadPoolExecutor(workers, "hashmatch-segment") as pool:
            try:
                for segment in iter_segments(source, self.config):
                    pending.append((pool.submit(self._hash_segment, segment), segment.nbytes))
                    del segment  # the future holds it until decoded
                    while len(pending) > workers or (
                        len(pending) > 1
                        and sum(n for _, n in pending) > self.config.segment_max_bytes
                    ):
                        parts.append(pending.popleft()[0].result())
                parts.extend(f.result() for f, _ in pending)
            finally:
                for future, _ in pending:
                    future.cancel()
        return VideoHash.concat(parts)

    def _hash_segment(self, segment: Segment) -> VideoHash:
        return self.hash_frames(decode_segment(segment, self.config))

    def hash_frames(self, frames: Iterable[Frame]) -> VideoHash:
        numbers: list[int] = []
        stamps: list[float] = []
        hashes: list[np.ndarray] = []
        quality: list[np.ndarray] = []
        pending: list[np.ndarray] = []

        def flush() -> None:
            if pending:
                h, q = self.backend.finish(pending, False)
                hashes.append(h)
                quality.append(q)
                pending.clear()

        # Resampling a frame (Numba, GIL released) overlaps with decoding the next ones.
        with ThreadPoolExecutor(1, "hashmatch-video") as pool:
            futures = []
            for frame in frames:
                numbers.append(frame.number)
                stamps.append(frame.timestamp)
                futures.append(pool.submit(self._prepare, frame))
                if len(futures) >= self.config.batch_frames:
                    pending.extend(f.result() for f in futures)
                    futures.clear()
                    flush()
            pending.extend(f.result() for f in futures)
            flush()
        if not numbers:
            return VideoHash.empty()
        return VideoHash(
            np.asarray(numbers, np.int64),
            np.asarray(stamps, np.float64),
            np.concatenate(hashes).astype(np.uint8, copy=False),
            np.concatenate(quality).astype(np.int32, copy=False),
        )

    def _prepare(self, frame: Frame) -> np.ndarray:
        buf = self.backend.prepare(frame.pixels)
        offset, scale = frame.y_range
        if offset or scale != 1.0:
            # The buffer is a weighted mean of pixels: the affine map commutes with it.
            buf = (buf - np.float32(offset)) * np.float32(scale)
        return buf


def _rewind(source: Source) -> None:
    if not isinstance(source, (str, os.PathLike)):
        source.seek(0)
