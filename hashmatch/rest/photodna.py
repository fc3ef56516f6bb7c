"""PhotoDNA Cloud's request and response shapes, mapped to and from the service core.

Status codes travel in the body (HTTP 200) as PhotoDNA does: 3000 OK, 3002 bad parameter,
3004 unexpected, 3206 not an image, 3208 size out of range, 3209 request too large.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from hashmatch.banks.model import SignalType
from hashmatch.engine import Result
from hashmatch.errors import BadParameter, ErrorCode, ItemError
from hashmatch.matcher import HashQuery, MatchResult

DESCRIPTIONS = {
    3000: "OK",
    3002: "Invalid or missing request parameter(s)",
    3004: "Unknown scenario or unhandled error occurred while processing request",
    3206: "The given file could not be verified as an image",
    3208: "Image size in pixels is not within allowed range",
    3209: "Request Size Exceeded",
}

HASH_TYPES = {"PDQ": SignalType.PDQ, "MD5": SignalType.MD5, "SHA256": SignalType.SHA256}


def status(code: int, exception: str | None = None) -> dict[str, Any]:
    return {"Code": code, "Description": DESCRIPTIONS.get(code, ""), "Exception": exception}


def error_status(err: ItemError) -> dict[str, Any]:
    return status(err.code.photodna_status, err.message)


def match_details(found: MatchResult | None) -> dict[str, Any]:
    flags = []
    for m in found.matches if found else ():
        if m.suppressed_by is not None:
            continue  # an allow-listed false positive is no match for the caller
        flags.append(
            {
                "AdvancedInfo": [{"Key": "MatchId", "Value": str(m.entry_id)}],
                "Source": m.bank,
                "Violations": [m.label] if m.label else [],
                "MatchDistance": m.distance,
            }
        )
    return {"AdvancedInfo": [], "MatchFlags": flags}


def match_response(
    tracking_id: str, content_id: str | None, result: Result, found: MatchResult | None
) -> dict[str, Any]:
    if isinstance(result, ItemError):
        return {
            "Status": error_status(result),
            "TrackingId": tracking_id,
            "ContentId": content_id,
            "IsMatch": False,
            "MatchDetails": {"AdvancedInfo": [], "MatchFlags": []},
            "EvaluateResponse": None,
        }
    return {
        "Status": status(3000),
        "TrackingId": tracking_id,
        "ContentId": content_id,
        "IsMatch": bool(found and found.is_match),
        "MatchDetails": match_details(found),
        "EvaluateResponse": None,
    }


def image_from_json(body: Any) -> bytes:
    """`{"DataRepresentation": "inline", "Value": base64}`; URLs are not fetched (a server
    that fetches caller-chosen URLs is an SSRF hole)."""
    if not isinstance(body, dict) or "DataRepresentation" not in body:
        raise BadParameter('expected {"DataRepresentation": ..., "Value": ...}')
    kind = str(body["DataRepresentation"]).lower()
    if kind == "url":
        raise BadParameter("DataRepresentation URL is not supported: send the image bytes")
    if kind != "inline":
        raise BadParameter(f"unknown DataRepresentation {body['DataRepresentation']!r}")
    try:
        return base64.b64decode(str(body.get("Value", "")), validate=True)
    except (binascii.Error, ValueError):
        raise BadParameter("Value is not valid base64") from None


def hash_query(item: Any) -> HashQuery:
    """A MatchHash item: {"DataRepresentation": "PDQ"|"MD5"|"SHA256", "Value": hex}."""
    if not isinstance(item, dict):
        raise BadParameter('each item is {"DataRepresentation": ..., "Value": ...}')
    kind = str(item.get("DataRepresentation", ""))
    signal = HASH_TYPES.get(kind.upper())
    if signal is None:
        raise BadParameter(
            f"DataRepresentation {kind!r}: hashmatch matches PDQ, MD5 and SHA256 hex values "
            "(PhotoDNA edge hashes are proprietary)"
        )
    return HashQuery(signal, (signal.parse_hex(str(item.get("Value", ""))),))


def code_of(exc: BaseException) -> ItemError:
    err = ItemError.from_exception(exc)
    if err.code is ErrorCode.INTERNAL:
        return ItemError(ErrorCode.INTERNAL, "internal error")
    return err
