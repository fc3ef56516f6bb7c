"""API keys on the REST face: PhotoDNA's `Ocp-Apim-Subscription-Key` header (or
`Authorization: Bearer`), checked by the same tenancy core as gRPC; errors as HTTP
401 / 403 / 429 (with Retry-After), the REST face's one mapping of them."""

from __future__ import annotations

import asyncio
import math

from starlette.requests import Request

from hashmatch.errors import ErrorCode, HashmatchError, Overloaded
from hashmatch.rest.app import Authenticate, HttpError
from hashmatch.tenancy.limits import TenantLimits
from hashmatch.tenancy.model import Role
from hashmatch.tenancy.service import Tenancy

HTTP_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
}


def request_key(request: Request) -> str | None:
    key = request.headers.get("ocp-apim-subscription-key", "").strip()
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def tenancy_auth(tenancy: Tenancy, limits: TenantLimits) -> Authenticate:
    """The REST face's `authenticate`: the tenant matching runs as (None: open mode)."""

    async def authenticate(request: Request) -> str | None:
        try:
            who = await asyncio.to_thread(tenancy.authenticate, request_key(request))
            who.require(Role.REPORT if request.url.path.endswith("/Report") else Role.MATCH)
            limits.check_rate(who)
            # One item per call: the REST face answers before it knows how many hashes a
            # MatchHash body holds (gRPC counts every item).
            if who.limited:
                await asyncio.to_thread(limits.charge_items, who, 1)
        except HashmatchError as exc:
            headers = {}
            if isinstance(exc, Overloaded):
                headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
            raise HttpError(HTTP_STATUS.get(exc.code, 400), exc.message, headers) from None
        return who.match_tenant

    return authenticate
