"""The video service every face calls: uploads spooled privately, hashed off
the event loop, matched against the banks.

Privacy: an upload is written to a temp file created with mode 0600 in the configured
spool directory and unlinked at once, before its first byte is written: it has no name
on disk while it is read, so it disappears with the last file descriptor on every exit
path (success, error, client cancel, server crash or kill). Nothing else of the video is
kept; only its hashes are returned or matched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from hashmatch.config import VideoConfig, usable_cores
from hashmatch.core.calls import Call
from hashmatch.core.service import MatchService
from hashmatch.errors import BadParameter, TooLarge
from hashmatch.video.compare import VideoMatchOptions
from hashmatch.video.features import VideoHash
from hashmatch.video.hasher import VideoHasher
from hashmatch.video.matching import VideoBankMatcher, VideoMatch


@dataclass(frozen=True)
class VideoRequest:
    seconds_per_hash: float | None = None
    options: VideoMatchOptions | None = None
    banks: tuple[str, ...] = ()
    max_distance: int | None = None  # None: each bank's own threshold


def spool_file(config: VideoConfig) -> IO[bytes]:
    """An anonymous private temp file (see the module docstring)."""
    fd, path = tempfile.mkstemp(prefix="hashmatch-video-", dir=config.spool_dir or None)
    try:
        os.unlink(path)
        return os.fdopen(fd, "w+b")
    except BaseException:
        os.close(fd)
        raise


class VideoService:
    def __init__(
        self,
        config: VideoConfig,
        hasher: VideoHasher,
        matcher: VideoBankMatcher | None,
        images: MatchService,
    ) -> None:
        self.config = config
        self.hasher = hasher
        self.matcher = matcher
        self.images = images  # the quota is the same as for images
        # A video is seconds of CPU: bound how many are decoded at once.
        self._slots = asyncio.Semaphore(max(1, usable_cores()))

    def match_options(
        self,
        min_quality: int | None = None,
        query_percent: float | None = None,
        target_percent: float | None = None,
    ) -> VideoMatchOptions:
        c = self.config
        return VideoMatchOptions(
            max_distance=c.max_distance,
            min_quality=c.min_quality if min_quality is None else min_quality,
            query_match_percent=c.query_match_percent if query_percent is None else query_percent,
            target_match_percent=(
                c.target_match_percent if target_percent is None else target_percent
            ),
        )

    async def hash_upload(
        self, call: Call, chunks: AsyncIterator[bytes], seconds_per_hash: float | None = None
    ) -> VideoHash:
        """Spools the chunks (bounded by max_bytes), then hashes the file. Charged a quota
        item per frame hashed: the first before any work, the rest once they are known."""
        await self.images.charge(call.caller, 1)
        hasher = self.hasher
        if seconds_per_hash is not None and seconds_per_hash != self.config.seconds_per_hash:
            if seconds_per_hash < 0:
                raise BadParameter("seconds_per_hash must be >= 0")
            cfg = dataclasses.replace(self.config, seconds_per_hash=seconds_per_hash)
            hasher = VideoHasher(cfg, self.hasher.backend)
        with spool_file(self.config) as fh:
            size = 0
            async for data in chunks:
                size += len(data)
                if size > self.config.max_bytes:
                    raise TooLarge(f"video over the limit of {self.config.max_bytes} bytes")
                fh.write(data)
            fh.flush()
            fh.seek(0)
            async with self._slots:
                video = await asyncio.to_thread(hasher.hash, fh)
        await self.images.charge(call.caller, len(video) - 1)
        call.count_items(max(1, len(video)))
        return video

    async def match_hashes(
        self, call: Call, video: VideoHash, request: VideoRequest
    ) -> list[VideoMatch]:
        """A client's vPDQ, charged a quota item per frame (its cost is per frame: one
        100,000-frame request is 100,000 lookups), up to max_frames."""
        if len(video) > self.config.max_frames:
            raise BadParameter(
                f"{len(video)} frames: at most {self.config.max_frames} ([video] max_frames)"
            )
        await self.images.charge(call.caller, max(1, len(video)))
        call.count_items(max(1, len(video)))
        return await self.match(call, video, request)

    def _video_matcher(self) -> VideoBankMatcher:
        if self.matcher is None:
            raise BadParameter("this server has no video banks")
        return self.matcher

    def check_banks(self, call: Call, banks: tuple[str, ...]) -> None:
        """NotFound (as for any bank not seen) unless every named bank is one the caller
        matches against: checked before an upload is decoded, not after."""
        self._video_matcher().matcher.visible_banks(call.caller.match_tenant, banks)

    async def match(self, call: Call, video: VideoHash, request: VideoRequest) -> list[VideoMatch]:
        matcher = self._video_matcher()
        tenant = call.caller.match_tenant
        options = request.options or self.match_options()
        # As for images: an API caller's max_distance can only tighten a bank's threshold.
        matches = await asyncio.to_thread(
            matcher.match,
            video,
            options,
            tenant,
            request.banks,
            request.max_distance,
            True,
        )
        self.images.effects.video_answered(call, len(video), matches)
        return matches
