"""A blocking client for the server's VideoService: uploads stream from the file in
chunks (a video is never read whole into memory); results as JSON-ready dicts."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import grpc

from hashmatch.client.images import auth_metadata
from hashmatch.proto import video_pb, video_rpc
from hashmatch.proto.convert import features_from, features_to
from hashmatch.video.features import VideoHash

CHUNK_BYTES = 1024 * 1024
VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".ts",
        ".mts",
        ".flv",
        ".wmv",
        ".mpg",
        ".mpeg",
        ".3gp",
        ".ogv",
    }
)
_OPTIONS = [("grpc.max_receive_message_length", 80 * 1024 * 1024)]


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Chosen by file name: the CLI routes these to the video API."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _chunks(
    source: str | os.PathLike[str] | IO[bytes], header: video_pb.VideoHeader
) -> Iterator[video_pb.VideoChunk]:
    if isinstance(source, (str, os.PathLike)):
        with Path(source).open("rb") as fh:
            yield from _chunks(fh, header)
        return
    yield video_pb.VideoChunk(header=header, data=source.read(CHUNK_BYTES))
    while data := source.read(CHUNK_BYTES):
        yield video_pb.VideoChunk(data=data)


def options(
    banks: Sequence[str] = (),
    max_distance: int = 0,
    min_quality: int | None = None,
    query_match_percent: float | None = None,
    target_match_percent: float | None = None,
) -> video_pb.VideoMatchOptions:
    o = video_pb.VideoMatchOptions(banks=list(banks), max_distance=max_distance)
    if min_quality is not None:
        o.min_quality = min_quality
    if query_match_percent is not None:
        o.query_match_percent = query_match_percent
    if target_match_percent is not None:
        o.target_match_percent = target_match_percent
    return o


def response_json(r: video_pb.VideoMatchResponse) -> dict[str, Any]:
    return {
        "content_id": r.content_id,
        "is_match": r.is_match,
        "matches": [
            {
                "bank": m.bank,
                "video_id": m.video_id,
                "label": m.label,
                "external_id": m.external_id,
                "query_match_percent": round(m.query_match_percent, 3),
                "target_match_percent": round(m.target_match_percent, 3),
                "query_ranges": [
                    {"start": round(t.start, 3), "end": round(t.end, 3)} for t in m.query_ranges
                ],
                "target_ranges": [
                    {"start": round(t.start, 3), "end": round(t.end, 3)} for t in m.target_ranges
                ],
            }
            for m in r.matches
        ],
        "tracking_id": r.tracking_id,
    }


class VideoClient:
    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None = None,
        api_key: str | None = None,
    ) -> None:
        self._metadata = auth_metadata(api_key)  # Bearer key, as the image client sends
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=_OPTIONS)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=_OPTIONS)
        self.stub = video_rpc.VideoServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def hash_video(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        seconds_per_hash: float | None = None,
        content_id: str = "",
    ) -> VideoHash:
        header = video_pb.VideoHeader(content_id=content_id)
        if seconds_per_hash is not None:
            header.seconds_per_hash = seconds_per_hash
        r = self.stub.HashVideo(_chunks(source, header), metadata=self._metadata)
        return features_from(r.features)

    def match_video(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        match_options: video_pb.VideoMatchOptions | None = None,
        seconds_per_hash: float | None = None,
        content_id: str = "",
    ) -> dict[str, Any]:
        header = video_pb.VideoHeader(content_id=content_id, options=match_options)
        if seconds_per_hash is not None:
            header.seconds_per_hash = seconds_per_hash
        return response_json(self.stub.MatchVideo(_chunks(source, header), metadata=self._metadata))

    def match_video_hashes(
        self,
        video: VideoHash,
        match_options: video_pb.VideoMatchOptions | None = None,
        content_id: str = "",
    ) -> dict[str, Any]:
        request = video_pb.MatchVideoHashesRequest(
            content_id=content_id, features=features_to(video), options=match_options
        )
        return response_json(self.stub.MatchVideoHashes(request, metadata=self._metadata))

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> VideoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
