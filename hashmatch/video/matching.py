"""Matching a video against the banks: candidates from the PDQ index, then vPDQ.

1. The query's distinct frame hashes (quality >= the request's min quality) are looked up
   in the PDQ index like images (the bank matcher, with its visibility and thresholds).
2. Each PDQ entry found leads, through the back-reference, to the video entries holding
   that frame: the candidates.
3. Each candidate's stored frame list is compared with the query by vPDQ's rule (both
   match percents, with the time ranges); those reaching both thresholds are returned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hashmatch.banks.model import Bank, SignalType
from hashmatch.config import VideoConfig
from hashmatch.errors import TooLarge
from hashmatch.matching.model import HashQuery
from hashmatch.matching.protocol import Matcher
from hashmatch.video.compare import VideoComparison, VideoMatchOptions, compare
from hashmatch.video.features import VideoHash
from hashmatch.video.store import VideoStore

_QUERY_CHUNK = 1000


@dataclass(frozen=True)
class VideoMatch:
    bank: str
    video_id: int
    label: str | None
    external_id: str | None
    comparison: VideoComparison

    def to_json(self) -> dict[str, object]:
        return {
            "bank": self.bank,
            "video_id": self.video_id,
            "label": self.label,
            "external_id": self.external_id,
            **self.comparison.to_json(),
        }


class VideoMatcher(Protocol):
    """Matches a video's frame list against video banks: the local VideoBankMatcher, or a
    running server's MatchVideoHashes (hashmatch.client.remote_matcher.RemoteVideoMatcher)."""

    def match(
        self,
        query: VideoHash,
        options: VideoMatchOptions,
        tenant: str | None = None,
        banks: Sequence[str] = (),
        max_distance: int | None = None,
        stricter_only: bool = False,
    ) -> list[VideoMatch]: ...


class BankView(Matcher, Protocol):
    """What video matching needs of the bank matcher (hashmatch.matching.bank_matcher):
    the image Matcher's match, plus the banks a caller may see."""

    def visible_banks(self, tenant: str | None = None, names: Sequence[str] = ()) -> list[Bank]: ...

    def pdq_threshold_of(self, bank: Bank) -> int: ...


class VideoBankMatcher:
    """Per bank: the frame distance is the bank's PDQ threshold unless the request sets one,
    the frame quality floor the higher of the request's and the bank's min quality."""

    def __init__(
        self,
        matcher: BankView,
        videos: VideoStore,
        max_frame_pairs: int = VideoConfig.max_frame_pairs,
    ) -> None:
        self.matcher = matcher
        self.videos = videos
        self.max_frame_pairs = max_frame_pairs

    def match(
        self,
        query: VideoHash,
        options: VideoMatchOptions,
        tenant: str | None = None,
        banks: Sequence[str] = (),
        max_distance: int | None = None,
        stricter_only: bool = False,
    ) -> list[VideoMatch]:
        """`options.max_distance` is ignored here: `max_distance` (None: each bank's own
        threshold) is the frame distance; with stricter_only (API callers) it can only
        lower a bank's threshold, as for images."""
        visible = {b.name: b for b in self.matcher.visible_banks(tenant, banks)}
        keep = query.quality >= options.min_quality
        distinct = np.unique(query.hashes[keep], axis=0)
        candidates: dict[int, str] = {}  # video id -> bank name
        for lo in range(0, len(distinct), _QUERY_CHUNK):
            queries = [
                HashQuery(SignalType.PDQ, (bytes(h),)) for h in distinct[lo : lo + _QUERY_CHUNK]
            ]
            found = self.matcher.match(
                queries, tenant, banks, max_distance, stricter_only=stricter_only
            )
            by_entry = {m.entry_id: m.bank for r in found for m in r.matches}
            for eid, vids in self.videos.videos_of_entries(list(by_entry)).items():
                for vid in vids:
                    candidates.setdefault(vid, by_entry[eid])
        entries = self.videos.get_entries(list(candidates))
        # Each candidate is compared frame against frame: the cost is the product, which a
        # call's per-frame charge does not pay for (86,400 frames against five stored
        # two-hour videos took 23 s of CPU).
        pairs = len(distinct) * sum(e.n_frames for e in entries.values())
        if pairs > self.max_frame_pairs:
            raise TooLarge(
                f"{len(distinct)} distinct frames against {len(entries)} candidate videos"
                f" are {pairs:,} frame comparisons, over [video] max_frame_pairs"
                f" ({self.max_frame_pairs:,}): send a shorter segment"
            )
        frames = self.videos.frames(list(entries))
        out = []
        for vid, entry in entries.items():
            bank = visible.get(candidates[vid])
            if bank is None:
                continue
            own = self.matcher.pdq_threshold_of(bank)
            distance = bank.threshold_for(tenant, own, max_distance, stricter_only)
            per_bank = dataclasses.replace(
                options,
                max_distance=distance,
                min_quality=max(options.min_quality, bank.min_quality),
            )
            c = compare(query, frames[vid], per_bank)
            if not bank.shows_distances_to(tenant):
                # Which frames matched, or how many, is one answer per frame: a walk of
                # crafted frames would read a stored frame's hash in two calls.
                c = VideoComparison(0.0, 0.0, (), (), c.is_match)
            if c.is_match:
                out.append(VideoMatch(bank.name, entry.id, entry.label, entry.external_id, c))
        out.sort(key=lambda m: (-m.comparison.query_match_percent, m.bank, m.video_id))
        return out
