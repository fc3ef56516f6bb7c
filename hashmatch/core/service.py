"""The service core that every transport (gRPC, CLI, REST) is a thin layer over.

Hashing goes through the batcher (items from all callers share engine batches), matching
through the Matcher (the bank index), off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from hashmatch.core.batcher import Batcher
from hashmatch.core.flood import FloodMonitor
from hashmatch.errors import BadParameter
from hashmatch.hashing.engine import Result
from hashmatch.hashing.signature import Signature
from hashmatch.matching.bank_matcher import HashQuery, MatchResult
from hashmatch.matching.model import Matcher, MatchOptions, image_queries, merge_results


@dataclass(frozen=True, slots=True)
class ImageOutcome:
    """What the service says about one image: its hashing result and, if hashed, matches."""

    result: Result
    matches: MatchResult | None = None


def new_tracking_id() -> str:
    return uuid.uuid4().hex


class HashmatchService:
    def __init__(
        self,
        batcher: Batcher,
        matcher: Matcher,
        max_items: int,
        flood: FloodMonitor | None = None,
    ) -> None:
        self.batcher = batcher
        self.matcher = matcher
        self.max_items = max_items
        self.flood = flood

    def check_batch(self, n: int) -> None:
        if n > self.max_items:
            raise BadParameter(f"{n} items in one request; the limit is {self.max_items}")

    async def hash_images(
        self,
        images: Sequence[bytes],
        deadline: float | None = None,
        wait: bool = False,
        dihedral: bool = False,
    ) -> list[Result]:
        self.check_batch(len(images))
        return await self.batcher.submit_many(images, deadline, wait, dihedral)

    async def match_images(
        self,
        images: Sequence[bytes],
        options: MatchOptions,
        tenant: str | None = None,
        deadline: float | None = None,
        wait: bool = False,
    ) -> list[ImageOutcome]:
        results = await self.hash_images(images, deadline, wait, options.dihedral)
        return await self.match_results(results, options, tenant)

    async def match_results(
        self, results: Sequence[Result], options: MatchOptions, tenant: str | None = None
    ) -> list[ImageOutcome]:
        hashed = [(k, r) for k, r in enumerate(results) if isinstance(r, Signature)]
        per_image = [image_queries(sig, options.dihedral) for _, sig in hashed]
        flat = [q for qs in per_image for q in qs]
        found = await self._match(flat, options, tenant) if flat else []
        merged: list[MatchResult] = []
        pos = 0
        for qs in per_image:
            merged.append(merge_results(found[pos : pos + len(qs)]))
            pos += len(qs)
        if self.flood is not None:  # content identity: the upload's MD5
            merged = self.flood.observe([sig.md5 for _, sig in hashed], merged)
        by_item = {k: m for (k, _), m in zip(hashed, merged, strict=True)}
        return [ImageOutcome(r, by_item.get(k)) for k, r in enumerate(results)]

    async def match_queries(
        self, queries: Sequence[HashQuery], options: MatchOptions, tenant: str | None = None
    ) -> list[MatchResult]:
        self.check_batch(len(queries))
        found = await self._match(queries, options, tenant)
        if self.flood is not None:  # content identity: the client's hash itself
            found = self.flood.observe([q.values[0] for q in queries], found)
        return found

    async def _match(
        self, queries: Sequence[HashQuery], options: MatchOptions, tenant: str | None
    ) -> list[MatchResult]:
        # The index search is CPU work: off the event loop. A caller's max_distance can
        # only make a bank stricter (probing a list with a looser one is not allowed).
        return await asyncio.to_thread(
            functools.partial(
                self.matcher.match,
                queries,
                tenant,
                options.banks,
                options.max_distance,
                stricter_only=True,
            )
        )
