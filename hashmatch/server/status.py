"""Domain errors -> gRPC status codes and per-item codes: the one place they are mapped,
and the wrappers that give every RPC handler its Call (audited once it ends)."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError

from hashmatch.core.calls import Call, CallRecorder, status_of
from hashmatch.errors import BadParameter, ErrorCode, HashmatchError, Overloaded
from hashmatch.proto import pb
from hashmatch.server.context import caller

log = logging.getLogger(__name__)

GRPC_STATUS = {
    ErrorCode.BAD_PARAMETER: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_AN_IMAGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.CORRUPT_IMAGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.SIZE_OUT_OF_RANGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.UNREADABLE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}

ITEM_CODE = {code: pb.ItemCode.Value(code.value) for code in ErrorCode}

# Seconds a client should wait before retrying an overloaded call (sent as metadata),
# unless the error says how long (a rate limit or a monthly quota knows).
RETRY_AFTER_S = "1"


def retry_after(exc: HashmatchError) -> str:
    if isinstance(exc, Overloaded):
        return str(max(1, math.ceil(exc.retry_after_s)))
    return RETRY_AFTER_S


def domain_error(exc: BaseException) -> BaseException:
    """A streamed request message that does not parse is the caller's fault: say so."""
    if isinstance(exc, DecodeError):
        return BadParameter(f"malformed request message: {exc}")
    return exc


async def abort_for(exc: BaseException, context: grpc.aio.ServicerContext) -> None:
    exc = domain_error(exc)
    if isinstance(exc, HashmatchError):
        if exc.code is ErrorCode.RESOURCE_EXHAUSTED:
            context.set_trailing_metadata((("retry-after", retry_after(exc)),))
        await context.abort(GRPC_STATUS[exc.code], exc.message)
    log.exception("unexpected error in an RPC", exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


class HasCalls(Protocol):
    calls: CallRecorder


T = TypeVar("T")
S = TypeVar("S", bound=HasCalls)


def _ended(calls: CallRecorder, call: Call, exc: BaseException) -> None:
    if isinstance(exc, grpc.aio.AbortError):
        calls.record(call, "ABORTED")  # a handler that aborted on purpose said why
    else:
        calls.record(call, status_of(domain_error(exc)))


def unary(
    fn: Callable[[S, Any, grpc.aio.ServicerContext, Call], Awaitable[T]],
) -> Callable[[S, Any, grpc.aio.ServicerContext], Awaitable[T]]:
    """A unary handler gets its Call; what it raises becomes its gRPC status."""

    @functools.wraps(fn)
    async def wrapper(self: S, request: Any, context: grpc.aio.ServicerContext) -> T:
        call = Call(caller(), fn.__name__)
        try:
            response = await fn(self, request, context, call)
        except BaseException as exc:
            _ended(self.calls, call, exc)
            if isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
                await abort_for(exc, context)
            raise
        self.calls.record(call, "OK")
        return response

    return wrapper


def streaming(
    fn: Callable[[S, Any, grpc.aio.ServicerContext, Call], AsyncIterator[T]],
) -> Callable[[S, Any, grpc.aio.ServicerContext], AsyncIterator[T]]:
    """A streaming handler gets its Call (one for the whole stream), audited once."""

    @functools.wraps(fn)
    async def wrapper(self: S, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[T]:
        call = Call(caller(), fn.__name__)
        try:
            async for item in fn(self, request, context, call):
                yield item
        except BaseException as exc:
            _ended(self.calls, call, exc)
            if isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
                await abort_for(exc, context)
            raise
        self.calls.record(call, "OK")

    return wrapper
