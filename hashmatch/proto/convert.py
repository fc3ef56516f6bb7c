"""Proto <-> domain tables the server and the clients share: signal types, matches, vPDQ
frame features. Face-specific shaping (results, options) lives with each face."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hashmatch.banks.model import SignalType
from hashmatch.errors import BadParameter
from hashmatch.hashing.signature import DIHEDRAL_NAMES, PDQ_BYTES
from hashmatch.matching.model import Match, MatchResult, Suppressor
from hashmatch.proto import pb, video_pb
from hashmatch.video.features import VideoHash

SIGNAL_FROM_PROTO: dict[int, SignalType] = {
    pb.PDQ: SignalType.PDQ,
    pb.MD5: SignalType.MD5,
    pb.SHA256: SignalType.SHA256,
}
SIGNAL_TO_PROTO: dict[SignalType, pb.SignalType] = {
    SignalType.PDQ: pb.PDQ,
    SignalType.MD5: pb.MD5,
    SignalType.SHA256: pb.SHA256,
}


def signal_from(code: int) -> SignalType:
    try:
        return SIGNAL_FROM_PROTO[code]
    except KeyError:
        raise BadParameter("signal_type must be PDQ, MD5 or SHA256") from None


def match_to(m: Match) -> pb.Match:
    # The stored value is left out: a tenant must not learn a list's contents by matching
    # (owners read their own banks through BankService).
    out = pb.Match(
        bank=m.bank,
        entry_id=m.entry_id,
        label=m.label or "",
        source=m.source or "",
        distance=m.distance,
        signal_type=SIGNAL_TO_PROTO[m.signal_type],
        variant=DIHEDRAL_NAMES[m.dihedral],
    )
    if m.suppressed_by is not None:
        s = m.suppressed_by
        out.suppressed_by.CopyFrom(
            pb.Suppressor(bank=s.bank, entry_id=s.entry_id, distance=s.distance)
        )
    return out


def match_from(m: pb.Match) -> Match:
    s = m.suppressed_by
    return Match(
        bank=m.bank,
        entry_id=m.entry_id,
        signal_type=SIGNAL_FROM_PROTO.get(m.signal_type, SignalType.PDQ),
        distance=m.distance,
        label=m.label or None,
        source=m.source or None,
        dihedral=DIHEDRAL_NAMES.index(m.variant) if m.variant in DIHEDRAL_NAMES else 0,
        suppressed_by=Suppressor(s.bank, s.entry_id, s.distance)
        if m.HasField("suppressed_by")
        else None,
    )


def result_from(r: pb.ItemResult) -> MatchResult:
    return MatchResult(tuple(match_from(m) for m in r.matches))


def features_to(h: VideoHash) -> list[video_pb.VideoFeature]:
    return [
        video_pb.VideoFeature(frame_number=f, timestamp=t, pdq=p, quality=q)
        for f, t, p, q in h.rows()
    ]


def features_from(features: Sequence[video_pb.VideoFeature]) -> VideoHash:
    """A caller's frame list, checked: 32-byte hashes, quality 0..100, frames increasing."""
    rows = []
    for k, f in enumerate(features):
        if len(f.pdq) != PDQ_BYTES or not 0 <= f.quality <= 100 or f.frame_number < 0:
            raise BadParameter(f"feature {k}: a 32-byte pdq, quality 0..100, frame >= 0")
        rows.append((int(f.frame_number), float(f.timestamp), bytes(f.pdq), int(f.quality)))
    video = VideoHash.from_rows(rows)
    if len(video) and (np.diff(video.frame_numbers) <= 0).any():
        raise BadParameter("features must be in increasing frame order")
    return video
