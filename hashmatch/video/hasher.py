"""vPDQ hashing: sampled frames through the same backend seam as images, in batches.

Each kept frame goes through `Backend.prepare` (the banded resample to 64x64, fused with
the luma conversion) as soon as it is decoded, so only 64x64 buffers wait for their batch;
`Backend.finish` then hashes a batch of frames at once (DCT, median, bits, quality).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hashmatch.backend import Backend, CpuBackend
from hashmatch.config import VideoConfig
from hashmatch.video.decode import Frame, SkipUnsafe, Source, iter_frames
from hashmatch.video.features import VideoHash


class VideoHasher:
    """Source (path or binary file object) -> VideoHash. One hasher serves many videos."""

    def __init__(self, config: VideoConfig | None = None, backend: Backend | None = None):
        self.config = config or VideoConfig()
        self.backend = backend or CpuBackend()

    def hash(self, source: Source) -> VideoHash:
        if self.config.skip_non_reference and self.config.frame_mod_may_skip:
            try:
                return self.hash_frames(iter_frames(source, self.config, skip=True))
            except SkipUnsafe:
                if not isinstance(source, (str, os.PathLike)):
                    source.seek(0)
        return self.hash_frames(iter_frames(source, self.config))

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
