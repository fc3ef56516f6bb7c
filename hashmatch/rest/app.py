"""The REST face: PhotoDNA Cloud's Match and MatchHash calls, an OpenAPI document, health.

Thin: requests become calls on the same HashmatchService the gRPC server uses (same
batcher, same matcher), answers are shaped as PhotoDNA's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hashmatch.core.auditing import Auditor, CallTally
from hashmatch.core.service import HashmatchService, new_tracking_id
from hashmatch.errors import BadParameter, HashmatchError, ItemError, TooLarge
from hashmatch.matching.model import MatchOptions
from hashmatch.reports.model import ReportStatus
from hashmatch.reports.outbox import DONE, ReportOutbox
from hashmatch.rest import photodna
from hashmatch.rest.openapi import OPENAPI

# Who is calling: the tenant for a key (None: the operator), or an HTTP error raised.
Authenticate = Callable[[Request], Awaitable[str | None]]

MAX_HASHES = 1000


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


async def no_auth(request: Request) -> str | None:
    return None


def create_app(
    core: HashmatchService,
    authenticate: Authenticate = no_auth,
    outbox: ReportOutbox | None = None,
    auditor: Auditor | None = None,
    max_body: int = 64 << 20,
) -> Starlette:
    def audit(rpc: str, tenant: str | None, results: list[dict[str, Any]]) -> None:
        if auditor is not None:
            tally = CallTally()
            for r in results:
                tally.add_photodna(r)
            auditor.record(f"REST:{rpc}", (tenant or "", ""), tally, "OK")

    async def body_of(request: Request) -> bytes:
        length = int(request.headers.get("content-length") or 0)
        if length > max_body:
            raise TooLarge(f"request of {length} bytes, over {max_body}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise TooLarge(f"request over {max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def match(request: Request) -> JSONResponse:
        tenant = await authenticate(request)
        tracking = new_tracking_id()
        content_id = request.query_params.get("ContentId")
        try:
            body = await body_of(request)
            if request.headers.get("content-type", "").startswith("application/json"):
                image = photodna.image_from_json(json.loads(body or b"null"))
            else:
                image = body
            (outcome,) = await core.match_images([image], MatchOptions(), tenant)
            answer = photodna.match_response(tracking, content_id, outcome.result, outcome.matches)
        except (HashmatchError, ValueError) as exc:
            err = photodna.code_of(
                exc if isinstance(exc, HashmatchError) else BadParameter(str(exc))
            )
            answer = photodna.match_response(tracking, content_id, err, None)
        audit("Match", tenant, [answer])
        return JSONResponse(answer)

    async def match_hash(request: Request) -> JSONResponse:
        tenant = await authenticate(request)
        tracking = new_tracking_id()
        try:
            items = json.loads(await body_of(request) or b"null")
            if not isinstance(items, list) or len(items) > MAX_HASHES:
                raise BadParameter(f"expected a JSON list of at most {MAX_HASHES} hashes")
        except (HashmatchError, ValueError) as exc:
            err = photodna.code_of(
                exc if isinstance(exc, HashmatchError) else BadParameter(str(exc))
            )
            return JSONResponse(
                {"TrackingId": tracking, "Status": photodna.error_status(err), "MatchResults": []}
            )
        parsed: list[Any] = []
        for item in items:
            try:
                parsed.append(photodna.hash_query(item))
            except HashmatchError as exc:
                parsed.append(ItemError.from_exception(exc))
        queries = [q for q in parsed if not isinstance(q, ItemError)]
        found = iter(await core.match_queries(queries, MatchOptions(), tenant) if queries else [])
        results: list[dict[str, Any]] = []
        for k, (item, q) in enumerate(zip(items, parsed, strict=True)):
            content_id = item.get("ContentId", str(k)) if isinstance(item, dict) else str(k)
            if isinstance(q, ItemError):
                results.append(
                    {
                        "Status": photodna.error_status(q),
                        "ContentId": content_id,
                        "IsMatch": False,
                        "MatchDetails": {"AdvancedInfo": [], "MatchFlags": []},
                    }
                )
            else:
                hit = next(found)
                results.append(
                    {
                        "Status": photodna.status(3000),
                        "ContentId": content_id,
                        "IsMatch": hit.is_match,
                        "MatchDetails": photodna.match_details(hit),
                    }
                )
        audit("MatchHash", tenant, [{**r, "TrackingId": tracking} for r in results])
        return JSONResponse(
            {"TrackingId": tracking, "Status": photodna.status(3000), "MatchResults": results}
        )

    async def report(request: Request) -> JSONResponse:
        """PhotoDNA's Report Violation: filed through the same durable outbox as gRPC's."""
        tenant = await authenticate(request)
        tracking = new_tracking_id()
        if outbox is None:
            raise HttpError(503, "reporting is not enabled on this server")
        try:
            parsed, key = photodna.report_from(json.loads(await body_of(request) or b"null"))
            outbox.client_for(parsed.test)
            rec, created = await asyncio.to_thread(outbox.create, parsed, key, tenant or "")
            if created or rec.status not in DONE:
                rec = await asyncio.to_thread(outbox.deliver, rec, parsed)
        except (HashmatchError, ValueError) as exc:
            err = photodna.code_of(
                exc if isinstance(exc, HashmatchError) else BadParameter(str(exc))
            )
            return JSONResponse({"Status": photodna.error_status(err), "TrackingId": tracking})
        return JSONResponse(
            {
                "Status": photodna.status(
                    3000 if rec.status is ReportStatus.FINISHED else 3004,
                    None if rec.status is ReportStatus.FINISHED else rec.reason,
                ),
                "TrackingId": tracking,
                "ReportId": rec.id,
                "ReportStatus": rec.status.value,
                "CyberTipReportId": rec.endpoint_report_id,
            }
        )

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(OPENAPI)

    async def health(request: Request) -> JSONResponse:
        # Where the math runs, as the metrics say it (hashmatch_backend_info).
        batcher = core.batcher
        return JSONResponse(
            {
                "status": "SERVING",
                "backend": batcher.backend_name,
                "device": batcher.backend_device,
                "decoder": batcher.decoder,
            }
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HttpError)
        return JSONResponse(
            {"statusCode": exc.status, "message": exc.message}, exc.status, exc.headers
        )

    return Starlette(
        routes=[
            Route("/photodna/v1.0/Match", match, methods=["POST"]),
            Route("/photodna/v1.0/MatchHash", match_hash, methods=["POST"]),
            Route("/photodna/v1.0/Report", report, methods=["POST"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={HttpError: http_error},
    )
