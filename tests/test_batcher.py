"""The batcher on its own: items of several callers share batches; dihedral hashes are
computed for a batch only when one of its items asks, and each caller gets what it asked."""

from __future__ import annotations

import asyncio

import pytest

from hashmatch.config import BackendChoice, BatchConfig, EngineConfig, PoolKind
from hashmatch.core.batcher import Batcher
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
