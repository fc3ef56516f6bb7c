"""The REST face: PhotoDNA Cloud's Match, MatchHash and Report calls, OpenAPI, health.

Thin: every request is admitted by the core's Admission (the same keys, roles and rate
limits as gRPC), becomes a call on the same MatchService (batcher, matcher, quota,
webhooks, metrics, audit), and its answer is shaped as PhotoDNA's. Refusals are HTTP
401 / 403 / 429 (with Retry-After), mapped in one exception handler; item outcomes are
PhotoDNA status codes in a 200 body, as PhotoDNA answers them.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from hashmatch.core.calls import Call, status_of
from hashmatch.core.runtime import Runtime
from hashmatch.errors import BadParameter, ErrorCode, HashmatchError, Overloaded
from hashmatch.matching.model import MatchOptions
from hashmatch.reports.model import ReportStatus
from hashmatch.rest import photodna
from hashmatch.rest.bodies import bounded_body
from hashmatch.rest.openapi import OPENAPI
from hashmatch.tenancy.model import Role

MAX_HASHES = 1000
HTTP_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.UNAVAILABLE: 503,
}


class Refused(Exception):
    """A call refused before any work (admission): answered with an HTTP status."""

    def __init__(self, error: HashmatchError) -> None:
        super().__init__(error.message)
        self.error = error


def request_key(request: Request) -> str | None:
    key = request.headers.get("ocp-apim-subscription-key", "").strip()
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


Handler = Callable[[Request, Call], Awaitable[JSONResponse]]


def create_app(runtime: Runtime, max_body: int = 64 << 20) -> Starlette:
    service, readiness = runtime.service, runtime.readiness

    def admitted(rpc: str, role: Role, handler: Handler) -> Callable[[Request], Awaitable[Any]]:
        async def endpoint(request: Request) -> JSONResponse:
            try:
                peer = request.client.host if request.client else ""
                who = await runtime.admission.admit_async(
                    request_key(request), role, f"REST:{rpc}", peer
                )
            except HashmatchError as exc:
                raise Refused(exc) from None
            with runtime.calls.call(who, f"REST:{rpc}") as call:
                return await handler(request, call)

        return endpoint

    async def body_of(request: Request) -> bytes:
        return await bounded_body(request, max_body)

    async def json_body(request: Request) -> Any:
        try:
            return json.loads(await body_of(request) or b"null")
        except (ValueError, RecursionError) as exc:
            raise BadParameter(f"the body is not JSON: {type(exc).__name__}") from None

    async def image_of(request: Request) -> bytes:
        if request.headers.get("content-type", "").startswith("application/json"):
            return photodna.image_from_json(await json_body(request))
        return await body_of(request)

    async def match(request: Request, call: Call) -> JSONResponse:
        content_id = request.query_params.get("ContentId")
        try:
            image = await image_of(request)
        except HashmatchError as exc:
            (outcome,) = service.unreadable(call, [(content_id or "", photodna.code_of(exc))])
        else:
            (outcome,) = await service.match_images(
                call, [(content_id or "", image)], MatchOptions()
            )
        return JSONResponse(photodna.match_response(call.tracking_id, content_id, outcome))

    async def match_hash(request: Request, call: Call) -> JSONResponse:
        items = await json_body(request)
        if not isinstance(items, list) or len(items) > MAX_HASHES:
            raise BadParameter(f"expected a JSON list of at most {MAX_HASHES} hashes")
        hashes = [(photodna.content_id_of(item, k), photodna.hash_query(item))
                  for k, item in enumerate(items)]  # fmt: skip
        outcomes = await service.match_hashes(call, hashes, MatchOptions())
        return JSONResponse(
            {
                "TrackingId": call.tracking_id,
                "Status": photodna.status(3000),
                "MatchResults": [photodna.hash_result(o) for o in outcomes],
            }
        )

    async def report(request: Request, call: Call) -> JSONResponse:
        """PhotoDNA's Report Violation: filed through the same durable outbox as gRPC's."""
        parsed, key = photodna.report_from(await json_body(request))
        owner = call.caller.report_owner
        rec = await asyncio.to_thread(runtime.outbox.file, parsed, key, owner)
        call.count_items(1)
        done = rec.status is ReportStatus.FINISHED
        return JSONResponse(
            {
                "Status": photodna.status(3000 if done else 3004, None if done else rec.reason),
                "TrackingId": call.tracking_id,
                "ReportId": rec.id,
                "ReportStatus": rec.status.value,
                "CyberTipReportId": rec.endpoint_report_id,
            }
        )

    def photodna_errors(handler: Handler) -> Handler:
        """A call-level error (a bad body) is a PhotoDNA status in a 200 body."""

        async def wrapped(request: Request, call: Call) -> JSONResponse:
            try:
                return await handler(request, call)
            except HashmatchError as exc:
                err = photodna.error_status(photodna.code_of(exc))
                body: dict[str, Any] = {"TrackingId": call.tracking_id, "Status": err}
                if handler is match_hash:
                    body["MatchResults"] = []
                call.status = status_of(exc)
                return JSONResponse(body)

        return wrapped

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(OPENAPI)

    async def health(request: Request) -> JSONResponse:
        """Readiness, and where the hashing runs (as hashmatch_backend_info says it)."""
        b = runtime.batcher
        state = "SERVING" if readiness.ready else "NOT_SERVING"
        body = {"status": state, "backend": b.backend_name, "device": b.backend_device,
                "decoder": b.decoder}  # fmt: skip
        return JSONResponse(body, 200 if readiness.ready else 503)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ALIVE"})

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, Refused):  # Starlette routes only Refused here
            raise exc
        err = exc.error
        headers = {}
        if isinstance(err, Overloaded):
            headers["Retry-After"] = str(max(1, math.ceil(err.retry_after_s)))
        status = HTTP_STATUS.get(err.code, 400)
        return JSONResponse({"statusCode": status, "message": err.message}, status, headers)

    def post(path: str, rpc: str, role: Role, handler: Handler) -> Route:
        endpoint = admitted(rpc, role, photodna_errors(handler))
        return Route(f"/photodna/v1.0/{path}", endpoint, methods=["POST"])

    routes: list[BaseRoute] = []
    if runtime.config.console.enabled:  # the operator console, over the same core
        from hashmatch.console.app import mount

        routes.append(mount(runtime))
    return Starlette(
        routes=[
            *routes,
            post("Match", "Match", Role.MATCH, match),
            post("MatchHash", "MatchHash", Role.MATCH, match_hash),
            post("Report", "Report", Role.REPORT, report),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/health/live", live, methods=["GET"]),
        ],
        exception_handlers={Refused: refused},
    )
