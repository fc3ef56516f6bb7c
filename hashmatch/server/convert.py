"""Proto <-> domain conversions for the gRPC layer; nothing else happens here."""

from __future__ import annotations

from hashmatch.engine import Result
from hashmatch.errors import BadParameter, ItemError
from hashmatch.matching import Match, MatchOptions, MatchQuery, MatchResult
from hashmatch.proto import pb
from hashmatch.server.status import ITEM_CODE
from hashmatch.signatures import Signature

SIGNAL_BYTES = {pb.PDQ: 32, pb.MD5: 16, pb.SHA256: 32}
SIGNAL_TYPE = {"pdq": pb.PDQ, "md5": pb.MD5, "sha256": pb.SHA256}


def options_from(msg: pb.MatchOptions) -> MatchOptions:
    return MatchOptions(
        banks=tuple(msg.banks),
        max_distance=msg.max_distance or None,
        dihedral=msg.dihedral,
    )


def signatures_to(sig: Signature, dihedral: bool) -> pb.Signatures:
    out = pb.Signatures(
        pdq=sig.pdq.value,
        quality=sig.quality,
        md5=sig.md5,
        sha256=sig.sha256,
        width=sig.width,
        height=sig.height,
    )
    if dihedral and sig.dihedral:
        out.pdq_dihedral.extend(h.value for h in sig.dihedral)
    return out


def match_to(m: Match) -> pb.Match:
    return pb.Match(
        bank=m.bank,
        entry_id=m.entry_id,
        label=m.label,
        distance=m.distance,
        signal_type=SIGNAL_TYPE.get(m.signal_type, pb.SIGNAL_TYPE_UNSPECIFIED),
        source=m.source,
        variant=m.variant,
        value=m.value,
    )


def error_status(err: ItemError) -> pb.ItemStatus:
    return pb.ItemStatus(
        code=ITEM_CODE[err.code], message=err.message, photodna_code=err.code.photodna_status
    )


OK_STATUS = pb.ItemStatus(code=pb.OK, message="OK", photodna_code=3000)


def item_result(
    content_id: str,
    tracking_id: str,
    result: Result | ItemError,
    matches: MatchResult | None,
    signatures: bool = True,
    dihedral: bool = False,
) -> pb.ItemResult:
    out = pb.ItemResult(content_id=content_id, tracking_id=tracking_id)
    if isinstance(result, ItemError):
        out.status.CopyFrom(error_status(result))
        return out
    out.status.CopyFrom(OK_STATUS)
    if signatures:
        out.signatures.CopyFrom(signatures_to(result, dihedral))
    if matches is not None:
        out.matches.extend(match_to(m) for m in matches.matches)
        out.is_match = matches.is_match
    return out


def query_from(msg: pb.HashQuery) -> MatchQuery:
    """A client's hash as a query, or BadParameter saying what is wrong with it."""
    want = SIGNAL_BYTES.get(msg.signal_type)
    if want is None:
        raise BadParameter("signal_type must be PDQ, MD5 or SHA256")
    if len(msg.value) != want:
        raise BadParameter(
            f"a {pb.SignalType.Name(msg.signal_type)} value is {want} bytes, got {len(msg.value)}"
        )
    if msg.signal_type == pb.MD5:
        return MatchQuery(md5=msg.value)
    if msg.signal_type == pb.SHA256:
        return MatchQuery(sha256=msg.value)
    dihedral = tuple(msg.pdq_dihedral)
    if dihedral and (len(dihedral) != 8 or any(len(v) != 32 for v in dihedral)):
        raise BadParameter("pdq_dihedral must hold 8 values of 32 bytes")
    quality = msg.quality if msg.HasField("quality") else None
    return MatchQuery(pdq=msg.value, quality=quality, pdq_dihedral=dihedral)
