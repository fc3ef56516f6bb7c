"""The blocking image client: `with Client("host:port", api_key=KEY) as c: ...`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
    stream_requests,
    stream_results,
)
from hashmatch.proto import rpc


class Client:
    """Blocking client. `with Client("host:port", api_key=KEY) as c: c.match_images([...])`.

    `test=True` on a call matches against the integration sandbox's "Test" bank only."""

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
            self._channel = grpc.insecure_channel(target, options=channel_opts)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=channel_opts)
        self._stub = rpc.MatchServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata = tuple(metadata) + auth_metadata(api_key)
        self.timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, req: Any) -> Any:
        return method(req, timeout=self.timeout, metadata=self._metadata)

    def match_images(
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
            out += outcomes(self._call(self._stub.MatchImages, req).results)
        return out

    def hash_images(
        self, images: Sequence[bytes], dihedral: bool = False, batch_size: int = 64
    ) -> list[ItemOutcome]:
        out: list[ItemOutcome] = []
        for req in hash_requests(images, dihedral, batch_size):
            out += outcomes(self._call(self._stub.HashImages, req).results)
        return out

    def match_hashes(
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
            out += outcomes(self._call(self._stub.MatchHashes, req).results)
        return out

    def match_stream(
        self,
        images: Iterable[tuple[str, bytes]],
        banks: Sequence[str] = (),
        max_distance: int = 0,
        dihedral: bool = False,
        per_message: int = 1,
    ) -> Iterator[ItemOutcome]:
        """(content_id, bytes) pairs in, outcomes out as they finish (any order).
        per_message > 1 packs that many images in a stream message (a producer faster
        than the server: less CPU per image; a slow one: images wait for their message)."""
        opts = options(banks, max_distance, dihedral)
        requests = stream_requests(images, opts, per_message)
        for resp in self._stub.MatchStream(requests, metadata=self._metadata):
            yield from stream_results(resp)
