"""VideoService over gRPC: proto <-> domain around the core's video service.

Uploads arrive as a client stream of chunks, the header on the first; the core spools
them to an unlinked private temp file and hashes them when the stream ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from hashmatch.core.calls import Call, CallRecorder
from hashmatch.core.video import VideoRequest, VideoService
from hashmatch.errors import BadParameter
from hashmatch.proto import video_pb, video_rpc
from hashmatch.proto.convert import features_from, features_to
from hashmatch.server.status import unary
from hashmatch.video.features import VideoHash
from hashmatch.video.matching import VideoMatch

VIDEO_SERVICE = video_pb.DESCRIPTOR.services_by_name["VideoService"].full_name


def _match_to(m: VideoMatch) -> video_pb.VideoMatch:
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


class VideoServicer(video_rpc.VideoServiceServicer):
    def __init__(self, service: VideoService, calls: CallRecorder) -> None:
        self.service = service
        self.calls = calls  # read by the status wrappers

    def _request(self, options: video_pb.VideoMatchOptions) -> VideoRequest:
        return VideoRequest(
            options=self.service.match_options(
                options.min_quality if options.HasField("min_quality") else None,
                options.query_match_percent if options.HasField("query_match_percent") else None,
                options.target_match_percent if options.HasField("target_match_percent") else None,
            ),
            banks=tuple(options.banks),
            max_distance=options.max_distance or None,
        )

    async def _upload(
        self, call: Call, chunks: AsyncIterator[video_pb.VideoChunk], matching: bool = False
    ) -> tuple[video_pb.VideoHeader, VideoHash]:
        first = await anext(aiter(chunks), None)
        if first is None:
            raise BadParameter("an empty upload: the first chunk carries the header")
        header = first.header
        if matching:  # a bank the caller cannot match against fails before any decoding
            self.service.check_banks(call, tuple(header.options.banks))

        async def data() -> AsyncIterator[bytes]:
            if first.data:
                yield first.data
            async for chunk in chunks:
                if chunk.HasField("header"):
                    raise BadParameter("the header goes on the first chunk only")
                yield chunk.data

        sph = header.seconds_per_hash if header.HasField("seconds_per_hash") else None
        return header, await self.service.hash_upload(call, data(), sph)

    @unary
    async def HashVideo(
        self,
        request: AsyncIterator[video_pb.VideoChunk],
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> video_pb.HashVideoResponse:
        header, video = await self._upload(call, request)
        return video_pb.HashVideoResponse(content_id=header.content_id, features=features_to(video))

    @unary
    async def MatchVideo(
        self,
        request: AsyncIterator[video_pb.VideoChunk],
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> video_pb.VideoMatchResponse:
        header, video = await self._upload(call, request, matching=True)
        matches = await self.service.match(call, video, self._request(header.options))
        return video_pb.VideoMatchResponse(
            content_id=header.content_id,
            is_match=bool(matches),
            matches=[_match_to(m) for m in matches],
            features=features_to(video) if header.return_features else [],
            tracking_id=call.tracking_id,
        )

    @unary
    async def MatchVideoHashes(
        self,
        request: video_pb.MatchVideoHashesRequest,
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> video_pb.VideoMatchResponse:
        video = features_from(list(request.features))
        matches = await self.service.match_hashes(call, video, self._request(request.options))
        return video_pb.VideoMatchResponse(
            content_id=request.content_id,
            is_match=bool(matches),
            matches=[_match_to(m) for m in matches],
            tracking_id=call.tracking_id,
        )
