"""The service core that every transport (gRPC, CLI, REST) is a thin layer over.

Hashing goes through the batcher (items from all callers share engine batches), matching
through the Matcher (the bank index), off the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from hashmatch.engine import Result
from hashmatch.errors import BadParameter
from hashmatch.matching import Matcher, MatchOptions, MatchQuery, MatchResult
from hashmatch.server.batcher import Batcher
from hashmatch.signatures import Signature


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    """What the service says about one image: its hashing result and, if hashed, matches."""

    result: Result
    matches: MatchResult | None = None


def new_tracking_id() -> str:
    return uuid.uuid4().hex


class HashmatchService:
    def __init__(self, batcher: Batcher, matcher: Matcher, max_items: int) -> None:
        self.batcher = batcher
        self.matcher = matcher
        self.max_items = max_items

    def check_batch(self, n: int) -> None:
        if n > self.max_items:
            raise BadParameter(f"{n} items in one request; the limit is {self.max_items}")

    async def hash_images(
        self, images: Sequence[bytes], deadline: float | None = None, wait: bool = False
    ) -> list[Result]:
        self.check_batch(len(images))
        return await self.batcher.submit_many(images, deadline, wait)

    async def match_images(
        self,
        images: Sequence[bytes],
        options: MatchOptions,
        tenant: str = "",
        deadline: float | None = None,
        wait: bool = False,
    ) -> list[ImageOutcome]:
        results = await self.hash_images(images, deadline, wait)
        return await self.match_results(results, options, tenant)

    async def match_results(
        self, results: Sequence[Result], options: MatchOptions, tenant: str = ""
    ) -> list[ImageOutcome]:
        hashed = [(k, r) for k, r in enumerate(results) if isinstance(r, Signature)]
        queries = [MatchQuery.of(sig) for _, sig in hashed]
        if not options.dihedral:
            queries = [MatchQuery(q.pdq, q.quality, q.md5, q.sha256) for q in queries]
        found = await self.match_queries(queries, options, tenant) if queries else []
        by_item = {k: m for (k, _), m in zip(hashed, found, strict=True)}
        return [ImageOutcome(r, by_item.get(k)) for k, r in enumerate(results)]

    async def match_queries(
        self, queries: Sequence[MatchQuery], options: MatchOptions, tenant: str = ""
    ) -> list[MatchResult]:
        self.check_batch(len(queries))
        return await asyncio.to_thread(self.matcher.match, queries, options, tenant)
