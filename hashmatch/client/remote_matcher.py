"""Matchers that ask a running server (MatchHashes, MatchVideoHashes): bulk scans can
match against a remote deployment's banks with the same code that matches locally."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cached_property
from typing import Any

import grpc

from hashmatch.errors import BadParameter
from hashmatch.matching.model import HashQuery, MatchResult
from hashmatch.proto import pb, rpc, video_pb, video_rpc
from hashmatch.proto.convert import SIGNAL_TO_PROTO, features_to, result_from
from hashmatch.video.compare import TimeRange, VideoComparison, VideoMatchOptions
from hashmatch.video.features import VideoHash
from hashmatch.video.matching import VideoMatch

BATCH = 1000


class _Remote:
    """A server's channel, the time one call may take, and the caller's API key."""

    def __init__(
        self,
        channel: grpc.Channel,
        timeout: float = 120.0,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        self._metadata = tuple(metadata)  # the API key, once the server has keys


class RemoteMatcher(_Remote):
    @cached_property
    def _stub(self) -> Any:
        return rpc.MatchServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def match(
        self,
        queries: Sequence[HashQuery],
        tenant: str | None = None,
        banks: Sequence[str] = (),
        threshold: int | None = None,
        *,
        stricter_only: bool = True,  # what a server does for its callers anyway
        suppressed: Collection[int] = (),  # the server applies the caller's own
    ) -> list[MatchResult]:
        out: list[MatchResult] = []
        options = pb.MatchOptions(banks=list(banks), max_distance=threshold or 0)
        for lo in range(0, len(queries), BATCH):
            req = pb.MatchHashesRequest(options=options)
            for q in queries[lo : lo + BATCH]:
                msg = req.hashes.add(signal_type=SIGNAL_TO_PROTO[q.signal_type], value=q.values[0])
                if len(q.values) > 1:
                    msg.pdq_dihedral.extend(q.values)
                if q.quality is not None:
                    msg.quality = q.quality
            resp = self._stub.MatchHashes(req, timeout=self.timeout, metadata=self._metadata)
            out += [self._result(r) for r in resp.results]
        return out

    @staticmethod
    def _result(r: pb.ItemResult) -> MatchResult:
        if r.status.code != pb.OK:
            raise BadParameter(f"server refused a hash: {r.status.message}")
        return result_from(r)


class RemoteVideoMatcher(_Remote):
    """A VideoMatcher that asks a running server (MatchVideoHashes): a scan's video rows
    are matched against the server's video banks from their vPDQ, no video is sent."""

    @cached_property
    def _stub(self) -> Any:
        return video_rpc.VideoServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def match(
        self,
        query: VideoHash,
        options: VideoMatchOptions,
        tenant: str | None = None,
        banks: Sequence[str] = (),
        max_distance: int | None = None,
        stricter_only: bool = True,  # what a server does for its callers anyway
    ) -> list[VideoMatch]:
        req = video_pb.MatchVideoHashesRequest(
            features=features_to(query),
            options=video_pb.VideoMatchOptions(
                banks=list(banks),
                max_distance=max_distance or 0,
                min_quality=options.min_quality,
                query_match_percent=options.query_match_percent,
                target_match_percent=options.target_match_percent,
            ),
        )
        resp = self._stub.MatchVideoHashes(req, timeout=self.timeout, metadata=self._metadata)
        return [
            VideoMatch(
                bank=m.bank,
                video_id=m.video_id,
                label=m.label or None,
                external_id=m.external_id or None,
                comparison=VideoComparison(
                    m.query_match_percent,
                    m.target_match_percent,
                    tuple(TimeRange(r.start, r.end) for r in m.query_ranges),
                    tuple(TimeRange(r.start, r.end) for r in m.target_ranges),
                    is_match=True,  # the server returns matches only
                ),
            )
            for m in resp.matches
        ]
