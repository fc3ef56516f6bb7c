"""Proto <-> domain conversions for the gRPC layer; nothing else happens here."""

from __future__ import annotations

from hashmatch.banks.model import SignalType
from hashmatch.errors import BadParameter, ItemError
from hashmatch.hashing.engine import Result
from hashmatch.hashing.signature import Signature
from hashmatch.kernels.pdq import DIHEDRAL_NAMES
from hashmatch.matching.bank_matcher import HashQuery, Match, MatchResult
from hashmatch.matching.model import SANDBOX_BANK, MatchOptions
from hashmatch.proto import pb
from hashmatch.server.status import ITEM_CODE

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


def options_from(msg: pb.MatchOptions) -> MatchOptions:
    return MatchOptions(
        banks=(SANDBOX_BANK,) if msg.test else tuple(msg.banks),
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


def query_from(msg: pb.HashQuery) -> HashQuery:
    """A client's hash as a query, or BadParameter saying what is wrong with it."""
    signal = SIGNAL_FROM_PROTO.get(msg.signal_type)
    if signal is None:
        raise BadParameter("signal_type must be PDQ, MD5 or SHA256")
    values: tuple[bytes, ...] = (msg.value,)
    if signal is SignalType.PDQ and msg.pdq_dihedral:
        if len(msg.pdq_dihedral) != len(DIHEDRAL_NAMES):
            raise BadParameter("pdq_dihedral holds the 8 variants, original first")
        values = tuple(msg.pdq_dihedral)
    quality = msg.quality if msg.HasField("quality") else None
    return HashQuery(signal, values, quality)
