"""The asyncio image client, with the same calls as the blocking one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from hashmatch.client.images import (
    DEFAULT_TARGET,
    MAX_MESSAGE_BYTES,
    ItemOutcome,
    auth_metadata,
    channel_options,
    hash_requests,
    hashes_requests,
    match_requests,
    options,
    outcomes,
    stream_request,
    stream_results,
)
from hashmatch.proto import pb, rpc


class AsyncClient:
    """asyncio client with the same calls as `Client`."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        api_key: str | None = None,
        timeout: float = 60.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        channel_opts = channel_options(max_message_bytes)
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=channel_opts)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=channel_opts)
        self._stub = rpc.MatchServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata = tuple(metadata) + auth_metadata(api_key)
        self.timeout = timeout

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: Any, req: Any) -> Any:
        return await method(req, timeout=self.timeout, metadata=self._metadata)

    async def match_images(
        self,
        images: Sequence[bytes],
        content_ids: Sequence[str] | None = None,
        banks: Sequence[str] = (),
        max_distance: int = 0,
        dihedral: bool = False,
        batch_size: int = 64,
        test: bool = False,
    ) -> list[ItemOutcome]:
        opts = options(banks, max_distance, dihedral, test)
        out: list[ItemOutcome] = []
        for req in match_requests(images, content_ids, opts, batch_size):
            out += outcomes((await self._call(self._stub.MatchImages, req)).results)
        return out

    async def hash_images(
        self, images: Sequence[bytes], dihedral: bool = False, batch_size: int = 64
    ) -> list[ItemOutcome]:
        out: list[ItemOutcome] = []
        for req in hash_requests(images, dihedral, batch_size):
            out += outcomes((await self._call(self._stub.HashImages, req)).results)
        return out

    async def match_hashes(
        self,
        hashes: Sequence[str | bytes],
        banks: Sequence[str] = (),
        max_distance: int = 0,
        batch_size: int = 1000,
        test: bool = False,
    ) -> list[ItemOutcome]:
        out: list[ItemOutcome] = []
        opts = options(banks, max_distance, False, test)
        for req in hashes_requests(hashes, opts, batch_size):
            out += outcomes((await self._call(self._stub.MatchHashes, req)).results)
        return out

    async def match_stream(
        self,
        images: AsyncIterator[tuple[str, bytes]],
        banks: Sequence[str] = (),
        max_distance: int = 0,
        dihedral: bool = False,
    ) -> AsyncIterator[ItemOutcome]:
        opts = options(banks, max_distance, dihedral)

        async def requests() -> AsyncIterator[pb.MatchStreamRequest]:
            k = 0
            async for cid, data in images:
                yield stream_request(cid, data, opts if k == 0 else None)
                k += 1

        async for resp in self._stub.MatchStream(requests(), metadata=self._metadata):
            for outcome in stream_results(resp):
                yield outcome
