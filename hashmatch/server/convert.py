"""Proto <-> domain for the MatchService: options, client hashes, outcomes to results.
(Tables shared with the clients are in hashmatch.proto.convert.)"""

from __future__ import annotations

from hashmatch.banks.model import SignalType
from hashmatch.core.outcome import Outcome
from hashmatch.errors import BadParameter, ItemError
from hashmatch.hashing.signature import DIHEDRAL_NAMES, Signature
from hashmatch.matching.model import SANDBOX_BANK, HashQuery, MatchOptions
from hashmatch.proto import pb
from hashmatch.proto.convert import SIGNAL_FROM_PROTO, match_to
from hashmatch.server.status import ITEM_CODE

OK_STATUS = pb.ItemStatus(code=pb.OK, message="OK", photodna_code=3000)


def options_from(msg: pb.MatchOptions) -> MatchOptions:
    return MatchOptions(
        banks=(SANDBOX_BANK,) if msg.test else tuple(msg.banks),
        max_distance=msg.max_distance or None,
        dihedral=msg.dihedral,
        omit_signatures=msg.omit_signatures,
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


def error_status(err: ItemError) -> pb.ItemStatus:
    return pb.ItemStatus(
        code=ITEM_CODE[err.code], message=err.message, photodna_code=err.code.photodna_status
    )


def item_result(o: Outcome, signatures: bool = True, dihedral: bool = False) -> pb.ItemResult:
    out = pb.ItemResult(content_id=o.content_id, tracking_id=o.tracking_id)
    err = o.error
    if err is not None:
        out.status.CopyFrom(error_status(err))
        return out
    out.status.CopyFrom(OK_STATUS)
    sig = o.signature
    if signatures and sig is not None:
        out.signatures.CopyFrom(signatures_to(sig, dihedral))
    if o.matches is not None:
        out.matches.extend(match_to(m) for m in o.matches.matches)
        out.is_match = o.matches.is_match
        out.matches_left_out = o.matches.left_out
    return out


def query_from(msg: pb.HashQuery) -> HashQuery | ItemError:
    """A client's hash as a query, or the item's error saying what is wrong with it."""
    try:
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
    except BadParameter as exc:
        return ItemError.from_exception(exc)
