"""MatchService over gRPC: proto in, the core's MatchService, proto out. Nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from hashmatch.core.calls import Call, CallRecorder
from hashmatch.core.metrics import Metrics
from hashmatch.core.service import ImageItem, MatchService
from hashmatch.matching.model import MatchOptions
from hashmatch.proto import pb, rpc
from hashmatch.server import convert
from hashmatch.server.status import streaming, unary

# A stream's items are hashed and matched in groups of up to this many, by a few workers.
STREAM_GROUP = 32
STREAM_WORKERS = 4


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return None
    return asyncio.get_running_loop().time() + remaining


def _images(images: list[pb.Image]) -> list[ImageItem]:
    return [(im.content_id, im.data) for im in images]


class MatchServicer(rpc.MatchServiceServicer):
    def __init__(
        self, service: MatchService, calls: CallRecorder, metrics: Metrics, stream_window: int
    ) -> None:
        self.service = service
        self.calls = calls  # read by the status wrappers
        self.metrics = metrics
        self.stream_window = stream_window

    @unary
    async def MatchImages(
        self, request: pb.MatchImagesRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> pb.MatchImagesResponse:
        options = convert.options_from(request.options)
        with self.metrics.rpc("MatchImages", len(request.images)):
            outcomes = await self.service.match_images(
                call, _images(list(request.images)), options, _deadline(context)
            )
        signatures = not options.omit_signatures
        return pb.MatchImagesResponse(
            tracking_id=call.tracking_id,
            results=[convert.item_result(o, signatures, options.dihedral) for o in outcomes],
        )

    @unary
    async def HashImages(
        self, request: pb.HashImagesRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> pb.HashImagesResponse:
        with self.metrics.rpc("HashImages", len(request.images)):
            outcomes = await self.service.hash_images(
                call, _images(list(request.images)), request.dihedral, _deadline(context)
            )
        return pb.HashImagesResponse(
            tracking_id=call.tracking_id,
            results=[convert.item_result(o, True, request.dihedral) for o in outcomes],
        )

    @unary
    async def MatchHashes(
        self, request: pb.MatchHashesRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> pb.MatchHashesResponse:
        options = convert.options_from(request.options)
        self.service.check_batch(len(request.hashes))
        hashes = [(h.content_id, convert.query_from(h)) for h in request.hashes]
        with self.metrics.rpc("MatchHashes", len(request.hashes)):
            outcomes = await self.service.match_hashes(call, hashes, options)
        return pb.MatchHashesResponse(
            tracking_id=call.tracking_id, results=[convert.item_result(o) for o in outcomes]
        )

    @streaming
    async def MatchStream(
        self,
        request_iterator: AsyncIterator[pb.MatchStreamRequest],
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> AsyncIterator[pb.MatchStreamResponse]:
        # At most stream_window items of this stream in flight: past that, reading pauses
        # and HTTP/2 flow control pushes back on the client.
        window = asyncio.Semaphore(self.stream_window)
        inbox: asyncio.Queue[tuple[pb.Image, MatchOptions] | None] = asyncio.Queue()
        out: asyncio.Queue[pb.MatchStreamResponse | BaseException | None] = asyncio.Queue()

        async def reader() -> None:
            # The first message's options hold for the stream unless a later one sets them.
            options = MatchOptions()
            async for req in request_iterator:
                if req.HasField("options"):
                    options = convert.options_from(req.options)
                await window.acquire()
                inbox.put_nowait((req.image, options))

        async def worker() -> None:
            # Takes whatever has arrived (up to a group) and hashes + matches it as one
            # group: per-item work on the event loop stays small.
            while (first := await inbox.get()) is not None:
                group = [first]
                while len(group) < STREAM_GROUP and not inbox.empty():
                    nxt = inbox.get_nowait()
                    if nxt is None:
                        inbox.put_nowait(None)  # let the other workers see the end too
                        break
                    group.append(nxt)
                for result in await self._stream_group(call, group):
                    window.release()
                    await out.put(pb.MatchStreamResponse(result=result))
            inbox.put_nowait(None)

        async def run() -> None:
            try:
                workers = [asyncio.create_task(worker()) for _ in range(STREAM_WORKERS)]
                try:
                    await reader()
                finally:
                    inbox.put_nowait(None)
                await asyncio.gather(*workers)
                await out.put(None)
            except Exception as exc:
                await out.put(exc)

        self.metrics.stream_opened()
        task = asyncio.get_running_loop().create_task(run())
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.metrics.stream_closed()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _stream_group(
        self, call: Call, group: list[tuple[pb.Image, MatchOptions]]
    ) -> list[pb.ItemResult]:
        results = []
        # Items of one group share options when the client did not change them midway.
        by_options: dict[MatchOptions, list[ImageItem]] = {}
        for image, options in group:
            by_options.setdefault(options, []).append((image.content_id, image.data))
        for options, items in by_options.items():
            outcomes = await self.service.match_stream_items(call, items, options)
            results += [
                convert.item_result(o, not options.omit_signatures, options.dihedral)
                for o in outcomes
            ]
        return results
