"""MatchService over gRPC: proto in, the core's MatchService, proto out. Nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from hashmatch.core.calls import Call, CallRecorder
from hashmatch.core.metrics import Metrics
from hashmatch.core.service import ImageItem, MatchService
from hashmatch.core.streams import StreamSession
from hashmatch.matching.model import MatchOptions
from hashmatch.proto import pb, rpc
from hashmatch.server import convert
from hashmatch.server.status import streaming, unary


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
        session = StreamSession(self.service, call)
        sent = 0  # items submitted; the stream ends when the reader is done and all answered
        packed = False  # the client sends several images a message: answer in groups too

        async def reader() -> None:
            nonlocal sent, packed
            # The first message's options hold for the stream unless a later one sets them.
            options = MatchOptions()
            async for req in request_iterator:
                if req.HasField("options"):
                    options = convert.options_from(req.options)
                images = list(req.images)
                packed = packed or bool(images)
                if req.HasField("image"):
                    images.insert(0, req.image)
                self.service.check_batch(len(images))  # as many as one MatchImages call
                for image in images:
                    await window.acquire()
                    sent += 1
                    await session.submit((image.content_id, image.data), options)

        self.metrics.stream_opened()
        reading = asyncio.get_running_loop().create_task(reader())
        answered = 0
        try:
            while True:
                if reading.done():
                    reading.result()  # the reader's error (a bad message) ends the stream
                    if answered == sent:
                        break
                group = asyncio.ensure_future(session.answers())
                waits = {group} if reading.done() else {group, reading}
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if group not in done:  # the reader ended first: see whether all is answered
                    group.cancel()  # only ever waiting for the next item: none is lost
                    with contextlib.suppress(asyncio.CancelledError):
                        await group
                    continue
                results = [
                    convert.item_result(outcome, not options.omit_signatures, options.dihedral)
                    for options, outcome in group.result()
                ]
                answered += len(results)
                for _ in results:
                    window.release()
                if packed:
                    yield pb.MatchStreamResponse(results=results)
                else:
                    for result in results:
                        yield pb.MatchStreamResponse(result=result)
        finally:
            self.metrics.stream_closed()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            await session.close()
