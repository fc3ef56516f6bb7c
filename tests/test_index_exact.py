"""The PDQ index is exact: every test compares it with the brute-force oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.faiss_flat import FaissFlatIndex
from hashmatch.errors import BadParameter
from hashmatch.index.mih import MihConfig, MultiIndexHashIndex
from hashmatch.index.snapshot import SnapshotError, read_snapshot, write_snapshot
from tests.banks_helpers import (
    as_sets,
    brute_force,
    clustered_codes,
    flip_bits,
    planted_queries,
    random_codes,
)


def _check(
    index: MultiIndexHashIndex, codes: np.ndarray, ids: np.ndarray, q: np.ndarray, r: int
) -> None:
    got = index.range_search(q, r)
    want = brute_force(codes, ids, q, r)
    assert as_sets(got, q.shape[0]) == want
    # distances are the true distances
    for i in range(q.shape[0]):
        hit_ids, dists = got.of(i)
        for hid, d in zip(hit_ids.tolist(), dists.tolist(), strict=True):
            row = int(np.flatnonzero(ids == hid)[0])
            assert d == int(np.unpackbits(codes[row] ^ q[i]).sum())


@pytest.mark.parametrize("radius", [0, 8, 23, 31, 35, 47, 60])
def test_random_set_matches_brute_force(radius: int) -> None:
    rng = np.random.default_rng(radius)
    codes = random_codes(rng, 50_000)
    ids = np.arange(50_000) * 3 + 7
    index = MultiIndexHashIndex.from_arrays(ids, codes)
    q = planted_queries(rng, codes, 150, max_flip=radius + 6)
    _check(index, codes, ids, q, radius)


def test_clustered_near_duplicates() -> None:
    rng = np.random.default_rng(1)
    codes = clustered_codes(rng, centers=400, per=50, spread=40)
    ids = np.arange(codes.shape[0])
    index = MultiIndexHashIndex.from_arrays(ids, codes)
    q = planted_queries(rng, codes, 200, max_flip=20)
    got = index.range_search(q, 31)
    want = brute_force(codes, ids, q, 31)
    assert as_sets(got, 200) == want
    assert sum(len(w) for w in want) > 1000  # the clusters do produce many hits


def test_threshold_boundary_31_in_32_out() -> None:
    rng = np.random.default_rng(2)
    center = random_codes(rng, 1)[0]
    at = {d: flip_bits(rng, center, d) for d in (30, 31, 32, 33)}
    noise = random_codes(rng, 20_000)
    codes = np.vstack([noise, np.stack(list(at.values()))])
    ids = np.arange(codes.shape[0])
    index = MultiIndexHashIndex.from_arrays(ids, codes)
    hits = index.range_search(center[None, :], 31)
    found = dict(zip(hits.ids.tolist(), hits.distances.tolist(), strict=True))
    n = noise.shape[0]
    assert found.get(n) == 30 and found.get(n + 1) == 31
    assert n + 2 not in found and n + 3 not in found
    hits32 = index.range_search(center[None, :], 32)
    assert n + 2 in set(hits32.ids.tolist())


def test_equal_codes_under_different_ids_all_found() -> None:
    code = np.full((1, 32), 0xA5, dtype=np.uint8)
    index = MultiIndexHashIndex.from_arrays(np.array([5, 9, 11]), np.repeat(code, 3, axis=0))
    assert sorted(index.range_search(code, 0).ids.tolist()) == [5, 9, 11]


def test_incremental_adds_and_removes_stay_exact() -> None:
    rng = np.random.default_rng(3)
    # Small tail and merge settings so the test walks every path: tail scan, delta
    # segment rebuilds, folding into main (with compaction of removed slots).
    index = MultiIndexHashIndex(MihConfig(tail_max=500, merge_fraction=0.5))
    live: dict[int, np.ndarray] = {}
    next_id = 0
    for step in range(12):
        n = int(rng.integers(100, 4000))
        codes = clustered_codes(rng, centers=n // 20, per=20, spread=30)
        ids = np.arange(next_id, next_id + codes.shape[0])
        next_id += codes.shape[0]
        index.add(ids, codes)
        live.update(zip(ids.tolist(), codes, strict=True))
        victims = rng.choice(list(live), size=len(live) // 7, replace=False)
        assert index.remove(victims) == victims.size
        for v in victims.tolist():
            del live[v]
        if step % 4 == 3:  # re-add a few removed ids with new codes
            again = victims[:50]
            new = random_codes(rng, again.size)
            index.add(again, new)
            live.update(zip(again.tolist(), new, strict=True))
        assert len(index) == len(live)
        all_ids = np.array(list(live))
        all_codes = np.stack([live[i] for i in all_ids.tolist()])
        q = planted_queries(rng, all_codes, 60, max_flip=36)
        _check(index, all_codes, all_ids, q, 31)


def test_remove_unknown_ids_is_a_noop() -> None:
    index = MultiIndexHashIndex.from_arrays(np.arange(10), np.zeros((10, 32), np.uint8))
    assert index.remove(np.array([100, 200])) == 0
    assert index.remove(np.array([3, 3])) == 1
    assert len(index) == 9


def test_live_arrays_round_trip_through_a_snapshot_file(tmp_path: Path) -> None:
    """What the matcher's snapshot holds of the index (its live arrays) rebuilds the same
    index, and the file format refuses a flipped byte, a truncation and garbage."""
    rng = np.random.default_rng(4)
    codes = random_codes(rng, 30_000)
    ids = np.arange(30_000)
    index = MultiIndexHashIndex.from_arrays(ids, codes)
    index.remove(np.arange(0, 30_000, 5))
    path = tmp_path / "idx.snap"
    live_ids, live_codes = index.live_arrays()
    write_snapshot(path, {"sequence": 42}, {"ids": live_ids, "codes": live_codes})
    header, arrays = read_snapshot(path)
    assert header == {"sequence": 42}
    loaded = MultiIndexHashIndex.from_arrays(arrays["ids"], arrays["codes"])
    q = planted_queries(rng, codes, 90)
    assert as_sets(loaded.range_search(q, 31), 90) == as_sets(index.range_search(q, 31), 90)
    keep = ids % 5 != 0
    assert as_sets(loaded.range_search(q, 31), 90) == brute_force(codes[keep], ids[keep], q, 31)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    bad = tmp_path / "flipped.snap"
    bad.write_bytes(bytes(raw))
    with pytest.raises(SnapshotError):
        read_snapshot(bad)
    bad.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(SnapshotError):
        read_snapshot(bad)
    bad.write_bytes(b"not a snapshot at all")
    with pytest.raises(SnapshotError):
        read_snapshot(bad)
    with pytest.raises(SnapshotError):
        read_snapshot(tmp_path / "missing.snap")


def test_faiss_flat_agrees() -> None:
    rng = np.random.default_rng(5)
    codes = random_codes(rng, 20_000)
    ids = np.arange(20_000) + 1000
    flat = FaissFlatIndex()
    flat.add(ids, codes)
    flat.remove(ids[:100])
    mih = MultiIndexHashIndex.from_arrays(ids, codes)
    mih.remove(ids[:100])
    q = planted_queries(rng, codes, 120, max_flip=34)
    for r in (31, 32):
        assert as_sets(flat.range_search(q, r), 120) == as_sets(mih.range_search(q, r), 120)


def test_bad_input_raises() -> None:
    index = MultiIndexHashIndex()
    with pytest.raises(BadParameter):
        index.add(np.arange(2), np.zeros((2, 31), np.uint8))
    with pytest.raises(BadParameter):
        index.add(np.arange(3), np.zeros((2, 32), np.uint8))
    with pytest.raises(BadParameter):
        index.add(np.array([-1]), np.zeros((1, 32), np.uint8))
    with pytest.raises(BadParameter):
        index.range_search(np.zeros((1, 32), np.uint8), -1)
    empty = index.range_search(np.zeros((3, 32), np.uint8), 31)
    assert empty.lims.tolist() == [0, 0, 0, 0]


def test_searches_during_writes_always_see_stable_entries() -> None:
    import threading

    rng = np.random.default_rng(6)
    stable = random_codes(rng, 200)
    index = MultiIndexHashIndex(MihConfig(tail_max=300, merge_fraction=0.3))
    index.add(np.arange(200), stable)
    stop = threading.Event()
    failures: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            hits = index.range_search(stable, 0)
            for i in range(200):
                if i not in set(hits.of(i)[0].tolist()):
                    failures.append(f"stable entry {i} missed")
                    return

    t = threading.Thread(target=reader)
    t.start()
    try:
        next_id = 1000
        for _ in range(30):
            batch = random_codes(rng, int(rng.integers(50, 2000)))
            ids = np.arange(next_id, next_id + batch.shape[0])
            next_id += batch.shape[0]
            index.add(ids, batch)
            index.remove(ids[::2])
    finally:
        stop.set()
        t.join()
    assert failures == []


def test_ids_in_any_order_can_be_removed() -> None:
    rng = np.random.default_rng(8)
    codes = random_codes(rng, 3000)
    ids = rng.permutation(3000) + 10
    index = MultiIndexHashIndex(MihConfig(tail_max=100, merge_fraction=0.5))
    for part in np.array_split(np.arange(3000), 7):
        index.add(ids[part], codes[part])
    gone = ids[::3]
    assert index.remove(gone) == gone.size
    keep = ~np.isin(ids, gone)
    q = planted_queries(rng, codes, 60, max_flip=20)
    assert as_sets(index.range_search(q, 31), 60) == brute_force(codes[keep], ids[keep], q, 31)
