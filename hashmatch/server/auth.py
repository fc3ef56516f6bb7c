"""Authentication and role checks for every hashmatch.v1 RPC, in one interceptor.

The key comes from `authorization: Bearer <key>` or `ocp-apim-subscription-key: <key>`
(PhotoDNA's header). The interceptor looks up the RPC's policy and has the core's
Admission resolve the key to a Principal (role, tenant state, request rate), then hands
the Principal to the servicer through a context variable (`caller()`), set in the
handler's own task. Health and reflection stay open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from hashmatch.core.admission import Admission, Open, Policy
from hashmatch.proto import admin_pb, bank_pb, exchange_pb, pb, report_pb, video_pb
from hashmatch.server.context import CALLER, caller
from hashmatch.server.status import abort_for
from hashmatch.tenancy.model import Role

_MATCH = pb.DESCRIPTOR.services_by_name["MatchService"]
_BANK = bank_pb.DESCRIPTOR.services_by_name["BankService"]
_ADMIN = admin_pb.DESCRIPTOR.services_by_name["AdminService"]
_REPORT = report_pb.DESCRIPTOR.services_by_name["ReportService"]
_VIDEO = video_pb.DESCRIPTOR.services_by_name["VideoService"]
_EXCHANGE = exchange_pb.DESCRIPTOR.services_by_name["ExchangeService"]


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
    for m in _EXCHANGE.methods:  # what every tenant of a bank fed by an exchange matches
        table[f"/{_EXCHANGE.full_name}/{m.name}"] = Role.OPERATOR
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
        "GetUsage": Open.ANY_KEY,  # the operator's, or a tenant admin's own (core/oversight.py)
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


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Admits every hashmatch.v1 call through the core's Admission before its handler."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        # Each method's handler wrapped once, not on every call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> None:
        policy = POLICY.get(method)
        rpc = method.rsplit("/", 1)[-1]
        try:
            key = api_key(context.invocation_metadata())
            principal = await self.admission.admit_async(key, policy, rpc, context.peer())
        except Exception as exc:
            await abort_for(exc, context)
            raise
        CALLER.set(principal)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(PROTECTED_PREFIX):
            return handler
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        admit = self._admit

        if handler.unary_unary or handler.stream_unary:
            inner = handler.unary_unary or handler.stream_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await admit(method, context)
                return await inner(request, context)

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
            await admit(method, context)
            async for item in inner_stream(request, context):
                yield item

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
