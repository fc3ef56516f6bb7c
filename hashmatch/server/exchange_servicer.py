"""ExchangeService over gRPC (operator keys): proto in, the exchanges core, proto out."""

from __future__ import annotations

import asyncio

import grpc

from hashmatch.core.calls import Call, CallRecorder
from hashmatch.core.exchanges import ExchangeOps, describe, exchange_type
from hashmatch.errors import PermissionDenied
from hashmatch.exchanges.model import Exchange, ExchangeSettings
from hashmatch.exchanges.sync import SyncReport
from hashmatch.proto import exchange_pb, exchange_rpc
from hashmatch.server.status import unary

API_CREDENTIALS = "HASHMATCH_EXCHANGE_"


def exchange_to(x: Exchange) -> exchange_pb.Exchange:
    s = x.status
    return exchange_pb.Exchange(
        name=x.name,
        type=x.type.value,
        bank=x.bank,
        environment=x.settings.environment,
        url=x.settings.url,
        credentials_env=list(x.settings.credentials_env),
        privacy_groups=list(x.settings.privacy_groups),
        feedback_upstream=x.settings.feedback_upstream,
        paused=x.paused,
        created_at=x.created_at,
        status=exchange_pb.ExchangeStatus(
            last_run_at=s.last_run_at or "",
            last_success_at=s.last_success_at or "",
            last_error=s.last_error or "",
            last_error_at=s.last_error_at or "",
            upstream_time=s.upstream_time or 0.0,
            added=s.added,
            removed=s.removed,
            skipped=s.skipped,
            errors=s.errors,
            feedback_pending=s.feedback_pending,
        ),
        status_text=describe(x),
    )


def report_to(r: SyncReport) -> exchange_pb.SyncReport:
    return exchange_pb.SyncReport(
        exchange=r.exchange,
        pages=r.pages,
        added=r.added,
        revived=r.revived,
        updated=r.updated,
        unchanged=r.unchanged,
        removed=r.removed,
        skipped=r.skipped,
        feedback_sent=r.feedback_sent,
        seconds=r.seconds,
        error=r.error or "",
        busy=r.busy,
        feedback_error=r.feedback_error or "",
    )


class ExchangeServicer(exchange_rpc.ExchangeServiceServicer):
    """Store and upstream calls run in threads, off the event loop."""

    def __init__(self, ops: ExchangeOps, calls: CallRecorder) -> None:
        self.ops = ops
        self.calls = calls  # read by the status wrappers

    @unary
    async def AddExchange(
        self, request: exchange_pb.AddExchangeRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> exchange_pb.Exchange:
        if request.url:
            # The credentials go to the base URL: a key (however privileged) must not be
            # able to send the server's environment to a host of its choosing.
            raise PermissionDenied(
                "a base URL other than the environment's is set with `hashmatch exchange add"
                " --url` on the server, not over the API"
            )
        outside = [n for n in request.credentials_env if not n.startswith(API_CREDENTIALS)]
        if outside:
            # Names the server's environment: over the API only variables kept for
            # exchanges, never (say) the database's password.
            raise PermissionDenied(
                f"credentials_env: over the API, variables named {API_CREDENTIALS}*"
                f" (got {outside[0]!r}); any name from `hashmatch exchange add` on the server"
            )
        settings = ExchangeSettings(
            environment=request.environment,
            url=request.url,
            credentials_env=tuple(request.credentials_env),
            privacy_groups=tuple(request.privacy_groups),
            feedback_upstream=request.feedback_upstream,
        )
        x, _ = await asyncio.to_thread(
            self.ops.add, request.name, exchange_type(request.type), request.bank, settings
        )
        return exchange_to(x)

    @unary
    async def ListExchanges(
        self,
        request: exchange_pb.ListExchangesRequest,
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> exchange_pb.ListExchangesResponse:
        found = await asyncio.to_thread(self.ops.list)
        return exchange_pb.ListExchangesResponse(exchanges=[exchange_to(x) for x in found])

    @unary
    async def GetExchange(
        self, request: exchange_pb.GetExchangeRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> exchange_pb.Exchange:
        return exchange_to(await asyncio.to_thread(self.ops.get, request.name))

    @unary
    async def SyncExchange(
        self,
        request: exchange_pb.SyncExchangeRequest,
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> exchange_pb.SyncReport:
        report = await asyncio.to_thread(self.ops.sync, request.name, full=request.full)
        return report_to(report)

    @unary
    async def SetExchangePaused(
        self,
        request: exchange_pb.SetExchangePausedRequest,
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> exchange_pb.Exchange:
        x = await asyncio.to_thread(self.ops.set_paused, request.name, request.paused)
        return exchange_to(x)

    @unary
    async def RemoveExchange(
        self,
        request: exchange_pb.RemoveExchangeRequest,
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> exchange_pb.RemoveExchangeResponse:
        await asyncio.to_thread(self.ops.remove, request.name)
        return exchange_pb.RemoveExchangeResponse()
