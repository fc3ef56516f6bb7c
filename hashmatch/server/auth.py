"""Authentication and role checks for every hashmatch.v1 RPC, in one interceptor.

The key comes from `authorization: Bearer <key>` or `ocp-apim-subscription-key: <key>`
(PhotoDNA's header). The interceptor resolves it to a Principal, checks the RPC's role
and the tenant's request rate, and hands the Principal to the servicer through a context
variable (`caller()`), set in the handler's own task. Health and reflection stay open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import Enum
from typing import Any

import grpc

from hashmatch.core.auditing import Auditor, CallTally
from hashmatch.core.metrics import Metrics
from hashmatch.errors import HashmatchError, PermissionDenied
from hashmatch.proto import admin_pb, bank_pb, pb, report_pb, video_pb
from hashmatch.server.context import CALLER, caller
from hashmatch.server.status import GRPC_STATUS, abort_for
from hashmatch.tenancy.limits import TenantLimits
from hashmatch.tenancy.model import ANONYMOUS, Principal, Role
from hashmatch.tenancy.service import Tenancy


class Open(Enum):
    PUBLIC = "public"  # no key needed (ApplyTenant)
    ANY_KEY = "any key"  # any valid key; the core checks the details


Policy = Role | Open

_MATCH = pb.DESCRIPTOR.services_by_name["MatchService"]
_BANK = bank_pb.DESCRIPTOR.services_by_name["BankService"]
_ADMIN = admin_pb.DESCRIPTOR.services_by_name["AdminService"]
_REPORT = report_pb.DESCRIPTOR.services_by_name["ReportService"]
_VIDEO = video_pb.DESCRIPTOR.services_by_name["VideoService"]


def _table() -> dict[str, Policy]:
    table: dict[str, Policy] = {}
    for m in _MATCH.methods:
        table[f"/{_MATCH.full_name}/{m.name}"] = Role.MATCH
    for m in _BANK.methods:
        table[f"/{_BANK.full_name}/{m.name}"] = Role.BANK_ADMIN
    for m in _REPORT.methods:
        table[f"/{_REPORT.full_name}/{m.name}"] = Role.REPORT
    for m in _VIDEO.methods:  # hashing and matching videos: as images
        table[f"/{_VIDEO.full_name}/{m.name}"] = Role.MATCH
    admin: dict[str, Policy] = {
        "ApplyTenant": Open.PUBLIC,
        "GetTenant": Open.ANY_KEY,
        "ListTenants": Role.OPERATOR,
        "SetTenantState": Role.OPERATOR,
        "CreateKey": Open.ANY_KEY,
        "ListKeys": Open.ANY_KEY,
        "RotateKey": Open.ANY_KEY,
        "RevokeKey": Open.ANY_KEY,
        "WhoAmI": Open.ANY_KEY,
    }
    for m in _ADMIN.methods:
        table[f"/{_ADMIN.full_name}/{m.name}"] = admin[m.name]  # KeyError: add the policy
    return table


POLICY = _table()
__all__ = ["POLICY", "AuthInterceptor", "api_key", "caller"]
PROTECTED_PREFIX = "/hashmatch."


def api_key(metadata: Any) -> str | None:
    for k, v in metadata or ():
        if k == "authorization" and isinstance(v, str):
            scheme, _, token = v.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif k == "ocp-apim-subscription-key" and isinstance(v, str) and v.strip():
            return v.strip()
    return None


def _refusal_status(exc: BaseException) -> str:
    if isinstance(exc, HashmatchError):
        return str(GRPC_STATUS[exc.code].name)
    return "INTERNAL"


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        tenancy: Tenancy,
        limits: TenantLimits,
        metrics: Metrics,
        auditor: Auditor | None = None,
    ) -> None:
        self.tenancy = tenancy
        self.limits = limits
        self.metrics = metrics
        self.auditor = auditor

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        policy = POLICY.get(method)
        if policy is None:
            raise PermissionDenied("unknown method")
        if policy is Open.PUBLIC:  # any key sent is ignored: the call acts as no one
            self.limits.check_public()
            return ANONYMOUS
        key = api_key(context.invocation_metadata())
        principal = await asyncio.to_thread(self.tenancy.authenticate, key)
        if isinstance(policy, Role):
            principal.require(policy)
        self.limits.check_rate(principal)
        self.metrics.tenant_request(principal.tenant_id, method.rsplit("/", 1)[-1])
        return principal

    async def _refuse(self, exc: BaseException, context: grpc.aio.ServicerContext) -> None:
        if isinstance(exc, HashmatchError):
            self.metrics.auth_refused(exc.code.value)
        await abort_for(exc, context)

    def _note(self, principal: Principal, context: grpc.aio.ServicerContext) -> None:
        """Counts a tenant's NOT_FOUND answers: asking for banks it cannot see is how a
        list of another tenant's names would be probed."""
        if principal.limited and context.code() == grpc.StatusCode.NOT_FOUND:
            self.metrics.bank_not_found(principal.tenant_id)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(PROTECTED_PREFIX):
            return handler
        admit, note = self._admit, self._note

        async def refuse(exc: BaseException, context: grpc.aio.ServicerContext) -> None:
            # Refused before any handler ran: audited here (no tenant is known).
            if self.auditor is not None:
                self.auditor.record(
                    method.rsplit("/", 1)[-1], ("", ""), CallTally(), _refusal_status(exc)
                )
            await self._refuse(exc, context)

        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    principal = await admit(method, context)
                except Exception as exc:
                    await refuse(exc, context)
                    raise
                CALLER.set(principal)
                try:
                    return await inner(request, context)
                finally:
                    note(principal, context)

            make = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary
                else grpc.stream_unary_rpc_method_handler
            )
            return make(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        inner_stream = handler.unary_stream or handler.stream_stream

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                principal = await admit(method, context)
            except Exception as exc:
                await refuse(exc, context)
                raise
            CALLER.set(principal)
            try:
                async for item in inner_stream(request, context):
                    yield item
            finally:
                note(principal, context)

        make_stream = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream
            else grpc.stream_stream_rpc_method_handler
        )
        return make_stream(
            streaming,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
