"""PhotoDNA Cloud's request and response shapes, mapped to and from the service core.

Status codes travel in the body (HTTP 200) as PhotoDNA does: 3000 OK, 3002 bad parameter,
3004 unexpected, 3206 not an image, 3208 size out of range, 3209 request too large.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from hashmatch.banks.model import SignalType
from hashmatch.core.outcome import Outcome
from hashmatch.errors import BadParameter, ErrorCode, HashmatchError, ItemError
from hashmatch.matching.model import HashQuery, MatchResult
from hashmatch.reports.model import INCIDENT_TYPES, Report, ReportFile

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


def _status_of(o: Outcome) -> dict[str, Any]:
    err = o.error
    return status(3000) if err is None else error_status(code_of_item(err))


def match_response(tracking_id: str, content_id: str | None, o: Outcome) -> dict[str, Any]:
    return {
        "Status": _status_of(o),
        "TrackingId": tracking_id,
        "ContentId": content_id,
        "IsMatch": o.is_match,
        "MatchDetails": match_details(o.matches),
        "EvaluateResponse": None,
    }


def hash_result(o: Outcome) -> dict[str, Any]:
    """One MatchHash item's answer."""
    return {
        "Status": _status_of(o),
        "ContentId": o.content_id,
        "IsMatch": o.is_match,
        "MatchDetails": match_details(o.matches),
    }


def content_id_of(item: Any, k: int) -> str:
    """A MatchHash item's ContentId, else its position (also where it is no string: the
    item's error then says so)."""
    cid = item.get("ContentId") if isinstance(item, dict) else None
    return cid if isinstance(cid, str) else str(k)


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


def hash_query(item: Any) -> HashQuery | ItemError:
    """A MatchHash item: {"DataRepresentation": "PDQ"|"MD5"|"SHA256", "Value": hex}, or
    the item's error."""
    try:
        return _hash_query(item)
    except HashmatchError as exc:
        return ItemError.from_exception(exc)


def _hash_query(item: Any) -> HashQuery:
    if not isinstance(item, dict):
        raise BadParameter('each item is {"DataRepresentation": ..., "Value": ...}')
    kind = str(item.get("DataRepresentation", ""))
    signal = HASH_TYPES.get(kind.upper())
    if signal is None:
        raise BadParameter(
            f"DataRepresentation {kind!r}: hashmatch matches PDQ, MD5 and SHA256 hex values "
            "(PhotoDNA edge hashes are proprietary)"
        )
    value, cid = item.get("Value", ""), item.get("ContentId")
    if not isinstance(value, str):
        raise BadParameter(f"Value is a {signal.value} hex string, not {type(value).__name__}")
    if cid is not None and not isinstance(cid, str):
        raise BadParameter(f"ContentId is a string, not {type(cid).__name__}")
    return HashQuery(signal, (signal.parse_hex(value),))


def code_of(exc: BaseException) -> ItemError:
    return code_of_item(ItemError.from_exception(exc))


def code_of_item(err: ItemError) -> ItemError:
    """What PhotoDNA's Exception field may say: never internals."""
    if err.code is ErrorCode.INTERNAL:
        return ItemError(ErrorCode.INTERNAL, "internal error")
    return err


def _objects(body: dict[str, Any], field: str) -> list[dict[str, Any]]:
    """A list of JSON objects, or BadParameter naming the field (not a 500)."""
    items = body.get(field) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadParameter(f"{field} must be a list of objects")
    return items


def _metadata(item: dict[str, Any], where: str) -> dict[str, str]:
    """PhotoDNA's [{"Key": ..., "Value": ...}] as a dict."""
    return {
        str(m.get("Key")): str(m.get("Value"))
        for m in _objects({where: item.get(where.rsplit(".", 1)[-1])}, where)
    }


def report_from(body: Any) -> tuple[Report, str]:
    """PhotoDNA's /Report body as a Report, and its idempotency key (the caller's
    `IdempotencyKey` field, else a digest of the body: a re-sent request files once)."""
    if not isinstance(body, dict):
        raise BadParameter("expected a JSON object")
    files = []
    for k, item in enumerate(_objects(body, "ViolationContentCollection")):
        meta = _metadata(item, f"ViolationContentCollection[{k}].AdditionalMetadata")
        try:
            content = base64.b64decode(str(item.get("Value", "")), validate=True)
        except (binascii.Error, ValueError):
            raise BadParameter(f"ViolationContentCollection[{k}].Value is not base64") from None
        files.append(
            ReportFile(
                name=str(item.get("Name") or f"file-{k}"),
                content=content,
                classification=meta.get("classification", ""),
                viewed_by_esp=meta.get("viewedByEsp", "").lower() == "true",
                publicly_available=meta.get("publiclyAvailable", "").lower() == "true",
                upload_ip=str(item.get("UploadIpAddress") or ""),
                upload_time=str(item.get("UploadDateTime") or ""),
                match_details=meta.get("additionalInfo", ""),
            )
        )
    extra = _metadata(body, "AdditionalMetadata")
    report = Report(
        incident_type=str(body.get("IncidentType") or INCIDENT_TYPES[0]),
        incident_time=str(body.get("IncidentTime") or ""),
        reporter_email=str(body.get("ReporterEmail") or ""),
        reporter_first_name=str(body.get("ReporterName") or ""),
        org_name=str(body.get("OrgName") or ""),
        reportee_name=str(body.get("ReporteeName") or ""),
        reportee_ip=str(body.get("ReporteeIPAddress") or ""),
        files=tuple(files),
        test=extra.get("IsTest", "").lower() == "true",
    )
    key = str(body.get("IdempotencyKey") or "")
    if not key:
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return report, key
