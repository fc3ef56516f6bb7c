"""Drives a workload: open loop at a fixed rate (each call has a slot in a schedule and its
latency counts from that slot, so a slow server cannot slow the load and hide its own
queueing) or closed loop (a fixed number of calls in flight: the ceiling)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from hashmatch.loadtest.recorder import CallResult, Recorder, Summary
from hashmatch.loadtest.workloads import Workload

LATE_S = 0.010


@dataclass(frozen=True)
class Plan:
    """rate: items/s, open loop (None: closed loop, `concurrency` calls in flight);
    open loop keeps at most `concurrency` calls in flight too, as a guard for the client.
    Stops after `duration_s` seconds or `count` items, whichever comes first."""

    rate: float | None
    concurrency: int
    duration_s: float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.duration_s is None and self.count is None:
            raise ValueError("a plan needs a duration or a count")


Progress = Callable[[Recorder], None]


async def run(
    workload: Workload, plan: Plan, progress: Progress | None = None, every_s: float = 1.0
) -> tuple[Summary, Recorder]:
    rec = Recorder()
    ticker = None
    if progress is not None:
        ticker = asyncio.get_running_loop().create_task(_tick(rec, progress, every_s))
    try:
        if plan.rate is None:
            await _closed(workload, plan, rec)
        else:
            await _open(workload, plan, rec)
    finally:
        if ticker is not None:
            ticker.cancel()
    summary = rec.summary()
    if plan.rate is not None:
        summary = _with_target(summary, plan.rate)
    return summary, rec


def _with_target(summary: Summary, rate: float) -> Summary:
    from dataclasses import replace

    return replace(summary, target_items_per_s=rate)


def _stopped(plan: Plan, items_sent: int, at: float, t0: float) -> bool:
    if plan.count is not None and items_sent >= plan.count:
        return True
    return plan.duration_s is not None and at - t0 >= plan.duration_s


async def _one(workload: Workload, k: int, intended: float, rec: Recorder) -> None:
    try:
        result = await workload.call(k)
    except Exception as exc:  # a client-side failure is a result too, never a crash
        result = CallResult(items=workload.items_per_call, status=f"CLIENT {type(exc).__name__}")
    rec.record(intended, time.perf_counter(), result)


async def _open(workload: Workload, plan: Plan, rec: Recorder) -> None:
    assert plan.rate is not None
    interval = workload.items_per_call / plan.rate
    slots = asyncio.Semaphore(plan.concurrency)
    tasks: set[asyncio.Task[None]] = set()
    t0 = rec.started = time.perf_counter()
    for k in itertools.count():
        intended = t0 + k * interval
        if _stopped(plan, k * workload.items_per_call, intended, t0):
            break
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        if time.perf_counter() - intended > LATE_S:
            rec.late_starts += 1
        task = asyncio.get_running_loop().create_task(_one(workload, k, intended, rec))
        tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            tasks.discard(t)
            slots.release()

        task.add_done_callback(finished)
    if tasks:
        await asyncio.wait(tasks)


async def _closed(workload: Workload, plan: Plan, rec: Recorder) -> None:
    counter = itertools.count()
    t0 = rec.started = time.perf_counter()

    async def worker() -> None:
        while True:
            k = next(counter)
            start = time.perf_counter()
            if _stopped(plan, k * workload.items_per_call, start, t0):
                return
            await _one(workload, k, start, rec)

    await asyncio.gather(*(worker() for _ in range(plan.concurrency)))


async def _tick(rec: Recorder, progress: Progress, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        progress(rec)
