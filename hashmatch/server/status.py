"""Domain errors -> gRPC status codes and per-item codes: the one place they are mapped."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from hashmatch.core.auditing import CallTally, caller_of
from hashmatch.errors import ErrorCode, HashmatchError, Overloaded
from hashmatch.proto import pb

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
}

ITEM_CODE = {
    ErrorCode.BAD_PARAMETER: pb.BAD_PARAMETER,
    ErrorCode.NOT_AN_IMAGE: pb.NOT_AN_IMAGE,
    ErrorCode.CORRUPT_IMAGE: pb.CORRUPT_IMAGE,
    ErrorCode.SIZE_OUT_OF_RANGE: pb.SIZE_OUT_OF_RANGE,
    ErrorCode.TOO_LARGE: pb.TOO_LARGE,
    ErrorCode.UNREADABLE: pb.UNREADABLE,
    ErrorCode.INTERNAL: pb.INTERNAL,
    ErrorCode.RESOURCE_EXHAUSTED: pb.RESOURCE_EXHAUSTED,
    ErrorCode.DEADLINE_EXCEEDED: pb.DEADLINE_EXCEEDED,
    ErrorCode.NOT_FOUND: pb.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: pb.ALREADY_EXISTS,
    ErrorCode.UNAUTHENTICATED: pb.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: pb.PERMISSION_DENIED,
}

# Seconds a client should wait before retrying an overloaded call (sent as metadata),
# unless the error says how long (a rate limit or a monthly quota knows).
RETRY_AFTER_S = "1"


def retry_after(exc: HashmatchError) -> str:
    if isinstance(exc, Overloaded):
        return str(max(1, math.ceil(exc.retry_after_s)))
    return RETRY_AFTER_S


T = TypeVar("T")


async def abort_for(exc: BaseException, context: grpc.aio.ServicerContext) -> None:
    if isinstance(exc, DecodeError):
        # A streamed request message that does not parse: the caller's fault, said so.
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request message: {exc}")
    if isinstance(exc, HashmatchError):
        if exc.code is ErrorCode.RESOURCE_EXHAUSTED:
            context.set_trailing_metadata((("retry-after", retry_after(exc)),))
        await context.abort(GRPC_STATUS[exc.code], exc.message)
    log.exception("unexpected error in an RPC")
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _audit(
    self: Any, name: str, context: grpc.aio.ServicerContext, tally: CallTally, status: str
) -> None:
    auditor = getattr(self, "auditor", None)
    if auditor is not None:
        auditor.record(name, caller_of(context), tally, status)


def _status_name(exc: BaseException) -> str:
    if isinstance(exc, DecodeError):
        return "INVALID_ARGUMENT"
    if isinstance(exc, HashmatchError):
        return str(GRPC_STATUS[exc.code].name)
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    return "INTERNAL"


def unary(
    fn: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[T]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[T]]:
    """Map what a unary handler raises to its gRPC status; audit the call."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        tally = CallTally()
        try:
            response = await fn(self, request, context)
        except grpc.aio.AbortError:
            _audit(self, fn.__name__, context, tally, "ABORTED")
            raise
        except BaseException as exc:
            _audit(self, fn.__name__, context, tally, _status_name(exc))
            if isinstance(exc, Exception):
                await abort_for(exc, context)
            raise
        tally.add_response(response)
        _audit(self, fn.__name__, context, tally, "OK")
        return response

    return wrapper


def streaming(
    fn: Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[T]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[T]]:
    """Map what a streaming handler raises to its gRPC status; audit the call once."""

    @functools.wraps(fn)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[T]:
        tally = CallTally()
        status = "OK"
        try:
            async for item in fn(self, request, context):
                tally.add_response(item)
                yield item
        except grpc.aio.AbortError:
            status = "ABORTED"
            raise
        except GeneratorExit:
            status = "CANCELLED"
            raise
        except BaseException as exc:
            status = _status_name(exc)
            if isinstance(exc, Exception):
                await abort_for(exc, context)
            raise
        finally:
            _audit(self, fn.__name__, context, tally, status)

    return wrapper
