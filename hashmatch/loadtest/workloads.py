"""What one call of each mode sends: a batch of images, an image down a stream, a batch
of hashes, or one image to the PhotoDNA-style REST face."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import httpx

from hashmatch.client.images import MAX_MESSAGE_BYTES, auth_metadata
from hashmatch.loadtest.recorder import CallResult
from hashmatch.proto import pb, rpc

# Distinct requests built once and sent in turn: building each call's message anew would
# measure the client's protobuf copies, not the server.
_RING = 64


class Workload(Protocol):
    items_per_call: int

    async def call(self, k: int) -> CallResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Target:
    """Where the load goes and as whom."""

    server: str  # host:port for gRPC; a base URL (http[s]://host:port) for REST
    api_key: str | None = None
    tls_ca: Path | None = None
    timeout_s: float = 30.0
    connections: int = 2
    test: bool = False  # match the integration sandbox's Test bank only

    def channels(self) -> list[grpc.aio.Channel]:
        # No client retries: every refusal is counted, as a user's own client would see it.
        opts = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 0),
            ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel
        ]
        if self.tls_ca is None:
            return [grpc.aio.insecure_channel(self.server, opts) for _ in range(self.connections)]
        creds = grpc.ssl_channel_credentials(root_certificates=self.tls_ca.read_bytes())
        return [grpc.aio.secure_channel(self.server, creds, opts) for _ in range(self.connections)]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return auth_metadata(self.api_key)

    def options(self) -> pb.MatchOptions:
        return pb.MatchOptions(test=self.test)


def _item_result(results: Sequence[pb.ItemResult]) -> CallResult:
    codes = tuple(pb.ItemCode.Name(r.status.code) for r in results if r.status.code != pb.OK)
    return CallResult(items=len(results), ok=len(results) - len(codes), item_codes=codes)


def _refused(items: int, exc: grpc.aio.AioRpcError) -> CallResult:
    return CallResult(items=items, status=exc.code().name)


class _Unary:
    """A unary RPC over a ring of prebuilt requests, round robin over the channels."""

    def __init__(self, target: Target, method: str, requests: list[Any], items: int) -> None:
        self._channels = target.channels()
        self._calls = [getattr(rpc.MatchServiceStub(ch), method) for ch in self._channels]  # type: ignore[no-untyped-call]
        self._requests = requests
        self._target = target
        self.items_per_call = items

    async def call(self, k: int) -> CallResult:
        method = self._calls[k % len(self._calls)]
        try:
            resp = await method(
                self._requests[k % len(self._requests)],
                timeout=self._target.timeout_s,
                metadata=self._target.metadata,
            )
        except grpc.aio.AioRpcError as exc:
            return _refused(self.items_per_call, exc)
        return _item_result(resp.results)

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()


def match_images(target: Target, images: Sequence[bytes], batch: int) -> Workload:
    requests = []
    for r in range(min(_RING, max(1, -(-len(images) // batch)))):
        part = [images[(r * batch + j) % len(images)] for j in range(batch)]
        requests.append(
            pb.MatchImagesRequest(
                images=[pb.Image(content_id=str(j), data=d) for j, d in enumerate(part)],
                options=target.options(),
            )
        )
    return _Unary(target, "MatchImages", requests, batch)


def match_hashes(target: Target, hashes: Sequence[bytes], per_call: int) -> Workload:
    requests = []
    for r in range(min(_RING, max(1, -(-len(hashes) // per_call)))):
        part = [hashes[(r * per_call + j) % len(hashes)] for j in range(per_call)]
        requests.append(
            pb.MatchHashesRequest(
                hashes=[
                    pb.HashQuery(content_id=str(j), signal_type=pb.PDQ, value=v)
                    for j, v in enumerate(part)
                ],
                options=target.options(),
            )
        )
    return _Unary(target, "MatchHashes", requests, per_call)


class _Stream:
    """One open MatchStream: requests go in through a queue, results come back in any
    order and settle the caller's future by content id."""

    def __init__(self, stub: Any, target: Target, window: int, per_message: int = 1) -> None:
        self._stub, self._target = stub, target
        self.window = asyncio.Semaphore(window)
        self._per_message = per_message
        self._queue: asyncio.Queue[pb.MatchStreamRequest | None] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[CallResult]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def _requests(self) -> AsyncIterator[pb.MatchStreamRequest]:
        first, ending = True, False
        while not ending and (req := await self._queue.get()) is not None:
            if self._per_message > 1:  # what else is queued already goes in the same message
                images = [req.image]
                while len(images) < self._per_message and not self._queue.empty():
                    more = self._queue.get_nowait()
                    if more is None:
                        ending = True
                        break
                    images.append(more.image)
                req = pb.MatchStreamRequest(images=images)
            if first:  # the first message's options hold for the stream
                req.options.CopyFrom(self._target.options())
                first = False
            yield req

    async def _read(self) -> None:
        call = self._stub.MatchStream(self._requests(), metadata=self._target.metadata)
        try:
            async for resp in call:
                for result in resp.results or [resp.result]:
                    fut = self._pending.pop(result.content_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(_item_result([result]))
        except grpc.aio.AioRpcError as exc:
            self._settle(_refused(1, exc))
        finally:
            self._settle(CallResult(items=1, status="STREAM_ENDED"))  # closed while waiting
            self._reader = None  # the next item opens a new stream

    def _settle(self, result: CallResult) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(result)
        self._pending.clear()

    async def send(self, content_id: str, data: bytes) -> CallResult:
        async with self.window:
            if self._reader is None:
                self._queue = asyncio.Queue()
                self._reader = asyncio.get_running_loop().create_task(self._read())
            fut: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
            self._pending[content_id] = fut
            req = pb.MatchStreamRequest(image=pb.Image(content_id=content_id, data=data))
            await self._queue.put(req)
            return await fut

    async def close(self) -> None:
        if self._reader is not None:
            await self._queue.put(None)
            reader = self._reader
            await asyncio.wait([reader], timeout=self._target.timeout_s)


class _Streams:
    items_per_call = 1

    def __init__(
        self,
        target: Target,
        images: Sequence[bytes],
        streams: int,
        window: int,
        per_message: int = 1,
    ) -> None:
        self._channels = target.channels()
        stubs = [rpc.MatchServiceStub(ch) for ch in self._channels]  # type: ignore[no-untyped-call]
        self._streams = [
            _Stream(stubs[s % len(stubs)], target, window, per_message) for s in range(streams)
        ]
        self._images = images

    async def call(self, k: int) -> CallResult:
        stream = self._streams[k % len(self._streams)]
        return await stream.send(str(k), self._images[k % len(self._images)])

    async def close(self) -> None:
        for s in self._streams:
            await s.close()
        for ch in self._channels:
            await ch.close()


def stream(
    target: Target, images: Sequence[bytes], streams: int, window: int, per_message: int = 1
) -> Workload:
    """per_message > 1: the images queued when a stream writes go in one message (up to
    that many), answered in groups: fewer messages, less CPU per image on both sides."""
    return _Streams(target, images, streams, window, per_message)


class _Rest:
    """PhotoDNA's Match: one image a call, the status in the body (HTTP 200) unless the
    call was refused before any work (429 with Retry-After, 401, 403)."""

    items_per_call = 1

    def __init__(self, target: Target, images: Sequence[bytes], concurrency: int) -> None:
        verify: ssl.SSLContext | bool = True
        if target.tls_ca is not None:
            verify = ssl.create_default_context(cafile=str(target.tls_ca))
        headers = {"content-type": "application/octet-stream"}
        if target.api_key:
            headers["ocp-apim-subscription-key"] = target.api_key
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._http = httpx.AsyncClient(
            base_url=target.server.rstrip("/"), headers=headers, verify=verify,
            timeout=target.timeout_s, limits=limits,
        )  # fmt: skip
        self._images = images

    async def call(self, k: int) -> CallResult:
        try:
            resp = await self._http.post(
                "/photodna/v1.0/Match", content=self._images[k % len(self._images)]
            )
        except httpx.HTTPError as exc:
            return CallResult(items=1, status=f"HTTP {type(exc).__name__}")
        if resp.status_code != 200:
            return CallResult(items=1, status=f"HTTP {resp.status_code}")
        code = int(resp.json().get("Status", {}).get("Code", 3004))
        if code == 3000:
            return CallResult(items=1, ok=1)
        return CallResult(items=1, item_codes=(f"PhotoDNA {code}",))

    async def close(self) -> None:
        await self._http.aclose()


def rest(target: Target, images: Sequence[bytes], concurrency: int) -> Workload:
    return _Rest(target, images, concurrency)
