"""The matching service every face (gRPC, REST) is a thin layer over.

Each call: the batch checked, the tenant's monthly quota charged, the images hashed and
matched against the banks through the batcher (items from all callers share engine
batches, matched in the batch worker right after hashing; a caller's max_distance can only
make a bank stricter), flood quarantine applied, then the effects (metrics, webhooks, the
audit tally) once, here, whichever face asked.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

import numpy as np

from hashmatch.banks.model import SignalType
from hashmatch.core.batcher import Batcher, Hashed, MatchWith
from hashmatch.core.calls import Call
from hashmatch.core.effects import Effects
from hashmatch.core.false_positives import FalsePositives
from hashmatch.core.flood import FloodMonitor
from hashmatch.core.outcome import Outcome
from hashmatch.core.probing import ProbeDetector
from hashmatch.errors import BadParameter, ErrorCode, ItemError
from hashmatch.hashing.signature import Signature
from hashmatch.matching.batch import match_parsed
from hashmatch.matching.model import HashQuery, MatchOptions, MatchResult
from hashmatch.matching.protocol import Matcher
from hashmatch.tenancy.limits import TenantLimits
from hashmatch.tenancy.model import Principal

# An item a face received: its content id and its bytes (an image) or parsed hash.
ImageItem = tuple[str, bytes]
HashItem = tuple[str, HashQuery | ItemError]


class MatchService:
    def __init__(
        self,
        batcher: Batcher,
        matcher: Matcher,
        limits: TenantLimits,
        effects: Effects,
        max_items: int,
        flood: FloodMonitor | None = None,
        false_positives: FalsePositives | None = None,
        probes: ProbeDetector | None = None,
    ) -> None:
        self.batcher = batcher
        self.matcher = matcher
        if batcher.matcher is None:  # images are matched where they are hashed
            batcher.matcher = matcher
        self.limits = limits
        self.effects = effects
        self.max_items = max_items
        self.flood = flood
        self.false_positives = false_positives
        self.probes = probes

    def _suppressed(self, who: Principal) -> frozenset[int]:
        return frozenset() if self.false_positives is None else self.false_positives.of(who)

    def check_batch(self, n: int) -> None:
        if n > self.max_items:
            raise BadParameter(f"{n} items in one request; the limit is {self.max_items}")

    async def charge(self, who: Principal, n: int) -> None:
        """The tenant's monthly item quota, charged before any work: from items charged
        ahead where there are enough, else on a thread (a store write)."""
        if who.limited and n > 0 and not self.limits.charge_items(who, n, wait=False):
            await asyncio.to_thread(self.limits.charge_items, who, n)

    # -- the calls -----------------------------------------------------------------------
    async def match_images(
        self,
        call: Call,
        images: Sequence[ImageItem],
        options: MatchOptions,
        deadline: float | None = None,
        wait: bool = False,
    ) -> list[Outcome]:
        """wait=False (unary calls): admitted whole or refused whole by the batcher."""
        self.check_batch(len(images))
        match = self.match_with(call, options)
        await self.charge(call.caller, len(images))
        hashed = await self.batcher.submit_matched(
            [data for _, data in images], match, deadline, wait, options.dihedral
        )
        return self.answer(call, images, hashed)

    def match_with(self, call: Call, options: MatchOptions) -> MatchWith:
        """How the call's images are matched once hashed; its banks and threshold checked
        now (an unknown bank is the call's NOT_FOUND, before any work)."""
        who = call.caller
        self.matcher.match([], who.match_tenant, options.banks, options.max_distance,
                           stricter_only=True)  # fmt: skip
        return MatchWith(options, who.match_tenant, self._suppressed(who))

    async def hash_images(
        self,
        call: Call,
        images: Sequence[ImageItem],
        dihedral: bool = False,
        deadline: float | None = None,
    ) -> list[Outcome]:
        self.check_batch(len(images))
        await self.charge(call.caller, len(images))
        results = await self.batcher.submit_many([d for _, d in images], deadline, False, dihedral)
        ids = call.item_ids(len(images))
        outcomes = [Outcome(cid, t, r) for (cid, _), t, r in zip(images, ids, results, strict=True)]
        self.effects.answered(call, outcomes)
        return outcomes

    async def match_hashes(
        self, call: Call, hashes: Sequence[HashItem], options: MatchOptions
    ) -> list[Outcome]:
        """Client hashes, each parsed by the face (a query, or the item's typed error)."""
        self.check_batch(len(hashes))
        who = call.caller
        await self.charge(who, len(hashes))
        parsed = [_tenant_query(h) if who.limited else h for _, h in hashes]
        if who.limited and self.probes is not None:
            pdq = [q.values[0] for q in parsed
                   if isinstance(q, HashQuery) and q.signal_type is SignalType.PDQ]  # fmt: skip
            codes = np.frombuffer(b"".join(pdq), dtype=np.uint8).reshape(-1, 32)
            await asyncio.to_thread(self.probes.observe, who.tenant_id, codes)
        found = await asyncio.to_thread(
            functools.partial(match_parsed, suppressed=self._suppressed(who)),
            self.matcher, parsed, options, who.match_tenant,
        )  # fmt: skip
        if self.flood is not None:  # content identity: the client's hash itself
            hits = [(k, q, f) for k, (q, f) in enumerate(zip(parsed, found, strict=True))
                    if isinstance(q, HashQuery) and isinstance(f, MatchResult)]  # fmt: skip
            seen = self.flood.observe(
                who.tenant_id, [q.values[0] for _, q, _ in hits], [f for *_, f in hits]
            )
            for (k, _, _), result in zip(hits, seen, strict=True):
                found[k] = result
        ids = call.item_ids(len(hashes))
        outcomes = [
            Outcome(cid, t, f, None) if isinstance(f, ItemError) else Outcome(cid, t, None, f)
            for (cid, _), t, f in zip(hashes, ids, found, strict=True)
        ]
        self.effects.answered(call, outcomes)
        return outcomes

    def unreadable(self, call: Call, items: Sequence[tuple[str, ItemError]]) -> list[Outcome]:
        """Items a face could not even read (a body that is no image and no hash): each
        answered with its error, and counted like any other answer."""
        ids = call.item_ids(len(items))
        outcomes = [Outcome(cid, t, err) for (cid, err), t in zip(items, ids, strict=True)]
        self.effects.answered(call, outcomes)
        return outcomes

    # -- the steps -----------------------------------------------------------------------
    def answer(
        self, call: Call, images: Sequence[ImageItem], hashed: Sequence[Hashed]
    ) -> list[Outcome]:
        """Hashed and matched items to outcomes: flood quarantine applied (content
        identity: the upload's MD5), then the effects."""
        found = [(k, r, m) for k, (r, m) in enumerate(hashed)
                 if isinstance(r, Signature) and m is not None]  # fmt: skip
        by_item = {k: m for k, _, m in found}
        if self.flood is not None and found:
            who = call.caller
            seen = self.flood.observe(
                who.tenant_id, [r.md5 for _, r, _ in found], [m for *_, m in found]
            )
            by_item = {k: m for (k, _, _), m in zip(found, seen, strict=True)}
        ids = call.item_ids(len(images))
        outcomes = [
            Outcome(cid, t, r, by_item.get(k))
            for k, ((cid, _), t, (r, _)) in enumerate(zip(images, ids, hashed, strict=True))
        ]
        self.effects.answered(call, outcomes)
        return outcomes


def _tenant_query(q: HashQuery | ItemError) -> HashQuery | ItemError:
    """A tenant's client hash: dihedral variants are the server's to compute (from the
    image, with the dihedral option), since 8 arbitrary values per item are 8 probes."""
    if isinstance(q, HashQuery) and len(q.values) > 1:
        return ItemError(
            ErrorCode.BAD_PARAMETER,
            "pdq_dihedral is not accepted from tenants: send the image with the dihedral"
            " option and the server computes the 8 variants",
        )
    return q
