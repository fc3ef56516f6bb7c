"""Gathers items from every caller into engine batches, adaptively: a batch is formed when
a worker is free, of whatever queued while none was (up to max_batch). An idle server
hashes a lone request at once; under load batches fill by themselves. (max_wait_ms > 0
also waits that long for a fuller batch when a worker is free.)

Items that ask for it are matched in the batch worker right after hashing: one lookup
call per engine batch and match request, across callers, with no further hop.

A lone image reaching an idle batcher (nothing queued or hashing, and no image hashed here
for half the time the last one took; thread pool, CPU backend; a sequential JPEG of one scan
and at most inline_max_pixels, with a clean header) is hashed and matched on the event loop
at once: no hop to a worker and back. Calls that come faster than that, or any other image,
take the queue, so concurrent callers are spread over the workers, never serialised on the
loop, and no crafted file (many scans, junk a header reader walks byte by byte) holds it.

Bounded: past max_queue_items or max_queue_bytes a unary call is refused at once
(Overloaded -> RESOURCE_EXHAUSTED) and a stream waits for room (back-pressure). Items whose
caller went away (cancelled future) or whose deadline passed are dropped before any work.
Batches run on a pool of `workers` threads (or processes), each hashing a whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from hashmatch.config import BatchConfig, EngineConfig, PoolKind
from hashmatch.errors import ErrorCode, ItemError, Overloaded
from hashmatch.hashing.decode.jpeg_markers import plain_header, scan_markers
from hashmatch.hashing.engine import Engine, Result
from hashmatch.hashing.pools import process_pool, worker_engine
from hashmatch.hashing.signature import Signature
from hashmatch.matching.batch import match_signatures
from hashmatch.matching.model import MatchOptions, MatchResult
from hashmatch.matching.protocol import Matcher


@dataclass(frozen=True, slots=True)
class MatchWith:
    """What an item is matched with once hashed: the call's options, as this tenant,
    with its own false positives suppressed."""

    options: MatchOptions
    tenant: str | None
    suppressed: frozenset[int] = frozenset()


# An item's answer: its hash (or error) and, where it asked, its matches.
Hashed = tuple[Result, MatchResult | None]


@dataclass(slots=True)
class _Job:
    data: bytes
    future: asyncio.Future[Hashed]
    deadline: float | None  # loop.time() by which hashing must start
    dihedral: bool = False  # the caller wants the 8 rotation/flip hashes too
    match: MatchWith | None = None
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters the metrics layer reads (and tests assert on)."""

    batches: int = 0
    items: int = 0
    dropped_cancelled: int = 0
    dropped_deadline: int = 0
    rejected: int = 0
    inline: int = 0  # lone images hashed on the event loop
    last_batch_sizes: list[int] = field(default_factory=list)


def _hash_in_worker(config: EngineConfig, items: list[bytes], dihedral: bool) -> list[Result]:
    return worker_engine(config).hash_many(items, dihedral)


def match_hashed(
    matcher: Matcher | None, results: list[Result], wants: list[MatchWith | None]
) -> list[Hashed]:
    """Each hashed item matched as it asked: one lookup call per distinct request."""
    out: list[Hashed] = [(r, None) for r in results]
    if matcher is None:
        return out
    groups: dict[MatchWith, list[int]] = {}
    for k, (result, want) in enumerate(zip(results, wants, strict=True)):
        if want is not None and isinstance(result, Signature):
            groups.setdefault(want, []).append(k)
    for want, members in groups.items():
        sigs = [r for k in members if isinstance(r := results[k], Signature)]
        try:
            found = match_signatures(
                matcher, sigs, want.options, want.tenant, suppressed=want.suppressed
            )
        except Exception as exc:  # one request's failure is its own, not the batch's
            err = ItemError.from_exception(exc)
            for k in members:
                out[k] = (err, None)
            continue
        for k, m in zip(members, found, strict=True):
            out[k] = (results[k], m)
    return out


class Batcher:
    def __init__(
        self,
        engine_config: EngineConfig,
        config: BatchConfig,
        on_batch: Callable[[int, float], None] | None = None,
        on_drop: Callable[[str], None] | None = None,
        matcher: Matcher | None = None,
    ) -> None:
        self.config = config
        self.matcher = matcher
        self.stats = BatchStats()
        self._on_batch = on_batch or (lambda size, seconds: None)
        self._on_drop = on_drop or (lambda reason: None)
        # Each batch runs on one worker; the engine inside it is single-threaded.
        self._engine_config = EngineConfig(**{**engine_config.__dict__, "workers": 1})
        self._engine = Engine(self._engine_config)
        self._executor: Executor = self._make_executor()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._queued_bytes = 0
        self._room = asyncio.Condition()
        # A batch is formed only when a worker can take it: until then items queue up, and
        # the batch is as large as the load makes it.
        self._slots = asyncio.Semaphore(config.worker_count)
        self._running: set[asyncio.Task[None]] = set()
        self._collector: asyncio.Task[None] | None = None
        # Hashing on the event loop only where the worker's work is a plain call: thread
        # pool, CPU backend.
        self._inline_ok = (
            config.inline_max_pixels > 0
            and config.pool is PoolKind.THREAD
            and self._engine.backend.name == "cpu"
        )
        self._inline_free_at = 0.0  # perf_counter: no inline hash before then

    def _make_executor(self) -> Executor:
        n = self.config.worker_count
        if self.config.pool is PoolKind.PROCESS:
            return process_pool(n)  # a killed server takes its workers with it
        return ThreadPoolExecutor(n, "hashmatch-batch")

    @property
    def backend_name(self) -> str:
        return self._engine.backend.name

    @property
    def backend_device(self) -> str:
        return self._engine.backend.device

    @property
    def decoder(self) -> str:
        """The batch image decoder and where it runs ("dali gpu:0"), or "cpu": the CPU
        path (simplejpeg / Pillow)."""
        return self._engine.decoder_name

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect())

    async def submit_many(
        self,
        items: Sequence[bytes],
        deadline: float | None = None,
        wait: bool = False,
        dihedral: bool = False,
    ) -> list[Result]:
        """Hash items (in one or more batches); one result per item, in order.

        wait=False (unary calls): the request is admitted whole or refused whole.
        dihedral: with the 8 rotation/flip hashes (a batch computes them when any of its
        items asks: one DCT either way, but 8 hashes to carry per image).
        """
        return [r for r, _ in await self.submit_matched(items, None, deadline, wait, dihedral)]

    async def submit_matched(
        self,
        items: Sequence[bytes],
        match: MatchWith | None,
        deadline: float | None = None,
        wait: bool = False,
        dihedral: bool = False,
    ) -> list[Hashed]:
        """Hash items and, with `match`, match them in the batch worker (or, a lone
        small image at an idle batcher, right here)."""
        if len(items) == 1 and self._may_inline(items[0]):
            return [self._hash_inline(items[0], match, deadline, dihedral)]
        futures = await self.enqueue(items, match, deadline, wait, dihedral)
        try:
            return list(await asyncio.gather(*futures))
        except asyncio.CancelledError:
            for f in futures:
                f.cancel()  # the collector skips cancelled items: no work for a gone caller
            raise

    async def submit(
        self, data: bytes, deadline: float | None = None, wait: bool = True, dihedral: bool = False
    ) -> Result:
        return (await self.submit_many([data], deadline, wait, dihedral))[0]

    def _may_inline(self, data: bytes) -> bool:
        """Only what is cheap to judge and bounded to decode: a sequential JPEG of one
        scan, a clean header of a few segments (no reader loops over junk), at most
        inline_max_pixels and no more bytes than pixels."""
        if not self._inline_ok or self._running or not self._queue.empty():
            return False
        if time.perf_counter() < self._inline_free_at or len(data) > self.config.inline_max_pixels:
            return False
        size = plain_header(data)
        if size is None or not len(data) <= size[0] * size[1] <= self.config.inline_max_pixels:
            return False
        return scan_markers(data) == 1

    def _hash_inline(
        self, data: bytes, match: MatchWith | None, deadline: float | None, dihedral: bool
    ) -> Hashed:
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            self.stats.dropped_deadline += 1
            self._on_drop("deadline")
            return ItemError(ErrorCode.DEADLINE_EXCEEDED, "deadline passed before hashing"), None
        t0 = time.perf_counter()
        try:
            (result,) = self._hash_and_match([data], dihedral, [match])
        except Exception as exc:  # as a failed pool: the item learns it
            result = (ItemError.from_exception(exc), None)
        self.stats.batches += 1
        self.stats.items += 1
        self.stats.inline += 1
        t1 = time.perf_counter()
        # Calls that waited while this one held the loop reach here within their own
        # handler's work; a sequential caller's next call takes a round trip, longer.
        self._inline_free_at = t1 + (t1 - t0) / 2
        self._on_batch(1, t1 - t0)
        return result

    def _has_room(self, count: int, size: int) -> bool:
        return (
            self._queue.qsize() + count <= self.config.max_queue_items
            and self._queued_bytes + size <= self.config.max_queue_bytes
        )

    async def enqueue(
        self,
        items: Sequence[bytes],
        match: MatchWith | None,
        deadline: float | None,
        wait: bool,
        dihedral: bool,
    ) -> list[asyncio.Future[Hashed]]:
        """Items into the queue (room waited for, with wait), a future for each: what a
        stream uses to answer items one by one as their batches finish."""
        count, size = len(items), sum(len(d) for d in items)
        if not self._has_room(count, size):
            # A request larger than the whole queue could never be admitted: refuse it.
            fits_at_all = (
                count <= self.config.max_queue_items and size <= self.config.max_queue_bytes
            )
            if not wait or not fits_at_all:
                self.stats.rejected += 1
                self._on_drop("queue_full")
                raise Overloaded("server busy: the hashing queue is full, retry with backoff")
            async with self._room:
                await self._room.wait_for(lambda: self._has_room(count, size))
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Hashed]] = []
        for data in items:
            future: asyncio.Future[Hashed] = loop.create_future()
            self._queue.put_nowait(_Job(data, future, deadline, dihedral, match))
            futures.append(future)
        self._queued_bytes += size
        return futures

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        wait_s = self.config.max_wait_ms / 1000.0
        while True:
            batch = [await self._queue.get()]
            await self._slots.acquire()  # a free worker; meanwhile more items queued
            self._take_queued(batch)
            if wait_s > 0 and len(batch) < self.config.max_batch:
                await self._wait_for_more(batch, loop.time() + wait_s)
            await self._release([len(j.data) for j in batch])
            live = self._live(batch, loop.time())
            if not live:
                self._slots.release()
                continue
            task = loop.create_task(self._run(live))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _take_queued(self, batch: list[_Job]) -> None:
        while len(batch) < self.config.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    async def _wait_for_more(self, batch: list[_Job], until: float) -> None:
        loop = asyncio.get_running_loop()
        while len(batch) < self.config.max_batch and (left := until - loop.time()) > 0:
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                return
            self._take_queued(batch)

    async def _release(self, sizes: list[int]) -> None:
        self._queued_bytes -= sum(sizes)
        async with self._room:
            self._room.notify_all()

    def _live(self, batch: list[_Job], now: float) -> list[_Job]:
        live = []
        for job in batch:
            if job.future.done():
                self.stats.dropped_cancelled += 1
                self._on_drop("cancelled")
            elif job.deadline is not None and now >= job.deadline:
                self.stats.dropped_deadline += 1
                self._on_drop("deadline")
                late = ItemError(ErrorCode.DEADLINE_EXCEEDED, "deadline passed before hashing")
                job.future.set_result((late, None))
            else:
                live.append(job)
        return live

    async def _run(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        data = [j.data for j in jobs]
        wants = [j.match for j in jobs]
        dihedral = any(j.dihedral for j in jobs)
        try:
            if isinstance(self._executor, ProcessPoolExecutor):
                hashed = await loop.run_in_executor(
                    self._executor, _hash_in_worker, self._engine_config, data, dihedral
                )
                results = await asyncio.to_thread(match_hashed, self.matcher, hashed, wants)
            else:
                results = await loop.run_in_executor(
                    self._executor, self._hash_and_match, data, dihedral, wants
                )
        except Exception as exc:  # the pool itself failed: every item learns it, none hangs
            results = [(ItemError.from_exception(exc), None)] * len(jobs)
        finally:
            self._slots.release()
        self.stats.batches += 1
        self.stats.items += len(jobs)
        self._on_batch(len(jobs), time.perf_counter() - t0)
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    def _hash_and_match(
        self, data: list[bytes], dihedral: bool, wants: list[MatchWith | None]
    ) -> list[Hashed]:
        return match_hashed(self.matcher, self._engine.hash_many(data, dihedral), wants)

    async def close(self, timeout: float | None = None) -> None:
        """Finish what was admitted (graceful shutdown drains through here), for up to
        `timeout` seconds: what is still queued then is answered "shutting down" and a
        batch still hashing is abandoned, so shutdown takes no longer than its grace."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while (self._queue.qsize() or self._running) and (
            deadline is None or loop.time() < deadline
        ):
            await asyncio.sleep(0.01)
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                gone = ItemError(ErrorCode.INTERNAL, "the server is shutting down")
                job.future.set_result((gone, None))
        self._executor.shutdown(wait=not self._running, cancel_futures=True)
