"""A MatchStream in the core: each item joins the batcher's engine batches as it arrives
(waiting for room there: back-pressure) and is answered as soon as its batch is done, in
the order batches finish; items done together are answered together (one flood pass, one
effects call). Each item is paid from the tenant's credit that every call on this server
shares (TenantLimits charges a block ahead), so a stream holds none of its own: nothing
to give back when it ends, in whichever month that is, and open streams do not hold the
quota away from the tenant's other calls."""

from __future__ import annotations

import asyncio
import functools

from hashmatch.core.batcher import Hashed, MatchWith
from hashmatch.core.calls import Call
from hashmatch.core.outcome import Outcome
from hashmatch.core.service import ImageItem, MatchService
from hashmatch.errors import ItemError
from hashmatch.matching.model import MatchOptions

_Done = tuple[ImageItem, MatchOptions, Hashed]


class StreamSession:
    def __init__(self, service: MatchService, call: Call) -> None:
        self._service, self._call = service, call
        self._done: asyncio.Queue[_Done] = asyncio.Queue()
        self._waiting: set[asyncio.Future[Hashed]] = set()
        self._match: dict[MatchOptions, MatchWith] = {}  # options checked once a stream

    async def submit(self, item: ImageItem, options: MatchOptions) -> None:
        """Queues one item for hashing (after room in the batcher); its answer comes out
        of answers(). A failure (the quota, say) is the item's answer: the stream goes on."""
        service = self._service
        try:
            match = self._match.get(options)
            if match is None:
                match = self._match[options] = service.match_with(self._call, options)
            await service.charge(self._call.caller, 1)
            (future,) = await service.batcher.enqueue(
                [item[1]], match, None, True, options.dihedral
            )
        except Exception as exc:
            self._done.put_nowait((item, options, (ItemError.from_exception(exc), None)))
            return
        self._waiting.add(future)
        future.add_done_callback(functools.partial(self._finished, item, options))

    def _finished(
        self, item: ImageItem, options: MatchOptions, future: asyncio.Future[Hashed]
    ) -> None:
        self._waiting.discard(future)
        if not future.cancelled():
            self._done.put_nowait((item, options, future.result()))

    async def answers(self) -> list[tuple[MatchOptions, Outcome]]:
        """The next items done: waits for one, and takes every other already done."""
        group = [await self._done.get()]
        while not self._done.empty():
            group.append(self._done.get_nowait())
        outcomes = self._service.answer(
            self._call, [item for item, _, _ in group], [hashed for *_, hashed in group]
        )
        return [(options, o) for (_, options, _), o in zip(group, outcomes, strict=True)]

    async def close(self) -> None:
        """The stream ended or went away: its items still queued are dropped unhashed
        (the batcher skips cancelled ones)."""
        for future in list(self._waiting):
            future.cancel()
