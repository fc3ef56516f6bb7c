"""The batcher on its own: items of several callers share batches; dihedral hashes are
computed for a batch only when one of its items asks, and each caller gets what it asked."""

from __future__ import annotations

import asyncio

import pytest

from hashmatch.config import BackendChoice, BatchConfig, EngineConfig, PoolKind
from hashmatch.core.batcher import Batcher
from hashmatch.errors import ErrorCode, ItemError
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature
from tests.helpers import encode, synthetic_rgb

IMAGES = [encode(synthetic_rgb(40 + k, 50, seed=k), "PNG") for k in range(6)]


@pytest.mark.parametrize("pool", [PoolKind.THREAD, PoolKind.PROCESS])
def test_dihedral_on_demand_and_shared_batches(pool: PoolKind) -> None:
    want = Engine(EngineConfig(backend=BackendChoice.CPU, dihedral=True)).hash_many(IMAGES)

    async def run() -> tuple[list[object], list[object], int]:
        batcher = Batcher(
            EngineConfig(backend=BackendChoice.CPU),
            BatchConfig(max_batch=64, max_wait_ms=50.0, workers=1, pool=pool),
        )
        batcher.start()
        try:
            plain, rotated = await asyncio.gather(
                batcher.submit_many(IMAGES[:3]), batcher.submit_many(IMAGES[3:], dihedral=True)
            )
            return list(plain), list(rotated), batcher.stats.batches
        finally:
            await batcher.close()

    plain, rotated, batches = asyncio.run(run())
    assert batches == 1  # both callers' items in one batch (max_wait 50 ms)
    for got, ref in zip(plain + rotated, want, strict=True):
        assert isinstance(got, Signature) and isinstance(ref, Signature)
        assert (got.pdq, got.quality, got.md5) == (ref.pdq, ref.quality, ref.md5)
    # A batch computes the 8 variants when any item asks: the asker gets them.
    assert all(isinstance(r, Signature) and r.dihedral == w.dihedral for r, w in
               zip(rotated, want[3:], strict=True))  # fmt: skip
    alone = asyncio.run(_alone())
    assert isinstance(alone, Signature) and alone.dihedral is None


async def _alone() -> object:
    batcher = Batcher(EngineConfig(backend=BackendChoice.CPU), BatchConfig(workers=1))
    batcher.start()
    try:
        return await batcher.submit(IMAGES[0])
    finally:
        await batcher.close()


def test_a_lone_image_at_an_idle_batcher_is_hashed_at_once_on_the_loop() -> None:
    jpegs = [encode(synthetic_rgb(40 + k, 50, seed=k), "JPEG", quality=75) for k in range(6)]
    want = Engine(EngineConfig(backend=BackendChoice.CPU)).hash_many(jpegs)

    async def run(config: BatchConfig) -> tuple[list[object], Batcher]:
        batcher = Batcher(EngineConfig(backend=BackendChoice.CPU), config)
        batcher.start()
        try:
            alone = await batcher.submit(jpegs[0])
            # A lone image arriving while others are queued takes the queue with them.
            busy, behind = await asyncio.gather(
                batcher.submit_many(jpegs[1:4]), batcher.submit(jpegs[4])
            )
            await asyncio.sleep(0.05)  # idle again
            late = await batcher.submit(jpegs[5], deadline=asyncio.get_running_loop().time())
            broken = await batcher.submit(b"\xff\xd8 not a jpeg")
            return [alone, *busy, behind, late, broken], batcher
        finally:
            await batcher.close()

    got, batcher = asyncio.run(run(BatchConfig(workers=1)))
    for r, w in zip(got[:5], want[:5], strict=True):
        assert isinstance(r, Signature) and isinstance(w, Signature)
        assert (r.pdq, r.quality, r.md5) == (w.pdq, w.quality, w.md5)
    late, broken = got[5], got[6]
    assert isinstance(late, ItemError) and late.code is ErrorCode.DEADLINE_EXCEEDED
    assert isinstance(broken, ItemError) and broken.code is not ErrorCode.INTERNAL
    # alone on the loop (late dropped there at its deadline); the three and the one
    # behind them in the queue, and what has no readable header goes to a worker.
    assert batcher.stats.inline == 1 and batcher.stats.dropped_deadline == 1
    assert batcher.stats.items == 6
    # Over the pixel bound (40x50), or turned off, nothing is hashed on the loop.
    for config in (BatchConfig(workers=1, inline_max_pixels=40 * 50 - 1),
                   BatchConfig(workers=1, inline_max_pixels=0)):  # fmt: skip
        got, batcher = asyncio.run(run(config))
        assert batcher.stats.inline == 0 and isinstance(got[0], Signature)


def test_only_a_plain_jpeg_is_hashed_on_the_loop_and_concurrent_callers_go_to_workers() -> None:
    pixels = synthetic_rgb(64, 48, seed=7)
    baseline = encode(pixels, "JPEG", quality=75)
    # Only a sequential JPEG of one scan with a short, clean header: a progressive one, a
    # PNG, a TEM marker (which Pillow's header reader stops at and libjpeg-turbo skips) or
    # a long chain of segments go to a worker, whatever size the file claims.
    tem = baseline[:2] + b"\xff\x01" + baseline[2:]
    comments = b"".join(b"\xff\xfe\x00\x03x" for _ in range(40))  # a reader's 40 steps
    others = [
        encode(pixels, "JPEG", quality=75, progressive=True),
        encode(pixels, "PNG"),
        tem,
        baseline[:2] + comments + baseline[2:],
    ]

    async def run() -> tuple[list[object], list[object], Batcher]:
        batcher = Batcher(EngineConfig(backend=BackendChoice.CPU), BatchConfig(workers=2))
        batcher.start()
        try:
            singles = []
            for data in others:
                singles.append(await batcher.submit(data))
                await asyncio.sleep(0.05)
            assert batcher.stats.inline == 0
            # Eight callers at once: the first on the loop, the rest to the workers (not
            # one after another on the loop while the workers sit idle).
            burst = await asyncio.gather(*(batcher.submit(baseline) for _ in range(8)))
            return singles, list(burst), batcher
        finally:
            await batcher.close()

    singles, burst, batcher = asyncio.run(run())
    assert all(isinstance(r, Signature) for r in singles + burst)
    assert batcher.stats.inline == 1 and batcher.stats.items == 12
