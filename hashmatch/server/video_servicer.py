"""gRPC VideoService: proto <-> domain around the video service core (hashmatch.video.service).

Uploads arrive as a client stream of chunks, the header on the first; they are spooled to
an unlinked private temp file and hashed when the stream ends (see the core's docstring).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import numpy as np

from hashmatch.config import Config
from hashmatch.core.auditing import Auditor
from hashmatch.core.service import new_tracking_id
from hashmatch.errors import BadParameter
from hashmatch.hashing.backend import select_backend
from hashmatch.hashing.signature import PDQ_BYTES
from hashmatch.proto import video_pb, video_rpc
from hashmatch.server.auth import caller
from hashmatch.server.status import unary
from hashmatch.tenancy.limits import TenantLimits
from hashmatch.video.features import VideoHash
from hashmatch.video.hasher import VideoHasher
from hashmatch.video.matching import VideoBankMatcher, VideoMatch
from hashmatch.video.service import VideoRequest, VideoService
from hashmatch.video.wire import features_to_proto

VIDEO_SERVICE = video_pb.DESCRIPTOR.services_by_name["VideoService"].full_name


def add_video_service(
    server: grpc.aio.Server,
    config: Config,
    matcher: VideoBankMatcher | None,
    auditor: Auditor | None = None,
    limits: TenantLimits | None = None,
) -> None:
    """Registers VideoService (matching needs `matcher`; hashing works without)."""
    hasher = VideoHasher(config.video, select_backend(config.engine))
    core = VideoService(config.video, hasher, matcher)
    servicer = VideoServicer(core, auditor, limits)
    video_rpc.add_VideoServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]


def features_from_proto(features: list[video_pb.VideoFeature]) -> VideoHash:
    rows = []
    for k, f in enumerate(features):
        if len(f.pdq) != PDQ_BYTES or not 0 <= f.quality <= 100 or f.frame_number < 0:
            raise BadParameter(f"feature {k}: a 32-byte pdq, quality 0..100, frame >= 0")
        rows.append((int(f.frame_number), float(f.timestamp), bytes(f.pdq), int(f.quality)))
    video = VideoHash.from_rows(rows)
    if len(video) and (np.diff(video.frame_numbers) <= 0).any():
        raise BadParameter("features must be in increasing frame order")
    return video


def _match_to_proto(m: VideoMatch) -> video_pb.VideoMatch:
    c = m.comparison
    return video_pb.VideoMatch(
        bank=m.bank,
        video_id=m.video_id,
        label=m.label or "",
        external_id=m.external_id or "",
        query_match_percent=c.query_match_percent,
        target_match_percent=c.target_match_percent,
        query_ranges=[video_pb.TimeRange(start=r.start, end=r.end) for r in c.query_ranges],
        target_ranges=[video_pb.TimeRange(start=r.start, end=r.end) for r in c.target_ranges],
    )


def _tenant(context: grpc.aio.ServicerContext) -> str | None:
    """The banks the caller may see: its tenant's view (the auth interceptor's Principal)."""
    return caller().match_tenant


class VideoServicer:
    def __init__(
        self,
        core: VideoService,
        auditor: Auditor | None = None,
        limits: TenantLimits | None = None,
    ) -> None:
        self.core = core
        self.auditor = auditor  # the status wrappers record one audit entry per call
        self.limits = limits

    async def _charge(self) -> None:
        """A video is one item of the tenant's monthly quota, charged before any work."""
        who = caller()
        if self.limits is not None and who.limited:
            await asyncio.to_thread(self.limits.charge_items, who, 1)

    def _request(self, options: video_pb.VideoMatchOptions) -> VideoRequest:
        return VideoRequest(
            options=self.core.match_options(
                options.min_quality if options.HasField("min_quality") else None,
                options.query_match_percent if options.HasField("query_match_percent") else None,
                options.target_match_percent if options.HasField("target_match_percent") else None,
            ),
            banks=tuple(options.banks),
            max_distance=options.max_distance or None,
        )

    async def _upload(
        self, chunks: AsyncIterator[video_pb.VideoChunk]
    ) -> tuple[video_pb.VideoHeader, VideoHash]:
        first = await anext(aiter(chunks), None)
        if first is None:
            raise BadParameter("an empty upload: the first chunk carries the header")
        header = first.header

        async def data() -> AsyncIterator[bytes]:
            if first.data:
                yield first.data
            async for chunk in chunks:
                if chunk.HasField("header"):
                    raise BadParameter("the header goes on the first chunk only")
                yield chunk.data

        sph = header.seconds_per_hash if header.HasField("seconds_per_hash") else None
        return header, await self.core.hash_upload(data(), sph)

    @unary
    async def HashVideo(
        self, request: AsyncIterator[video_pb.VideoChunk], context: grpc.aio.ServicerContext
    ) -> video_pb.HashVideoResponse:
        await self._charge()
        header, video = await self._upload(request)
        return video_pb.HashVideoResponse(
            content_id=header.content_id, features=features_to_proto(video)
        )

    @unary
    async def MatchVideo(
        self, request: AsyncIterator[video_pb.VideoChunk], context: grpc.aio.ServicerContext
    ) -> video_pb.VideoMatchResponse:
        await self._charge()
        header, video = await self._upload(request)
        matches = await self.core.match(video, self._request(header.options), _tenant(context))
        return video_pb.VideoMatchResponse(
            content_id=header.content_id,
            is_match=bool(matches),
            matches=[_match_to_proto(m) for m in matches],
            features=features_to_proto(video) if header.return_features else [],
            tracking_id=new_tracking_id(),
        )

    @unary
    async def MatchVideoHashes(
        self, request: video_pb.MatchVideoHashesRequest, context: grpc.aio.ServicerContext
    ) -> video_pb.VideoMatchResponse:
        await self._charge()
        video = features_from_proto(list(request.features))
        matches = await self.core.match(video, self._request(request.options), _tenant(context))
        return video_pb.VideoMatchResponse(
            content_id=request.content_id,
            is_match=bool(matches),
            matches=[_match_to_proto(m) for m in matches],
            tracking_id=new_tracking_id(),
        )
