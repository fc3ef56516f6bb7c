"""The feedback and flood stores' contract, on SQLite and on PostgreSQL (where every replica
shares them: a tenant's false positives and a suspended entry hold on all)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hashmatch.storage.datadir import DataDir
from hashmatch.storage.feedback_store import Verdict
from tests import postgres


@pytest.fixture(params=["sqlite", "postgres"])
def data(request: pytest.FixtureRequest, tmp_path: Path) -> DataDir:
    if request.param == "sqlite":
        return DataDir(tmp_path / "data")
    cluster: postgres.Cluster = request.getfixturevalue("pg_cluster")
    return DataDir(tmp_path / "data", cluster.new_database())


def test_feedback_verdicts_latest_wins_per_tenant(data: DataDir) -> None:
    a, b = data.open_feedback(), data.open_feedback()  # two replicas
    a.record("acme", "ncmec", 7, "x7", Verdict.FALSE_POSITIVE, "a cat")
    a.record("acme", "ncmec", 8, "x8", Verdict.CONFIRMED, "")
    b.record("beta", "ncmec", 7, "x7", Verdict.CONFIRMED, "")
    assert b.false_positives() == {"acme": frozenset({7})}
    b.record("acme", "ncmec", 7, "x7", Verdict.CONFIRMED, "changed my mind")
    assert a.false_positives() == {}
    rows = {r["entry_id"]: r for r in a.export("ncmec")}
    assert rows[7]["confirmed"] == 2 and rows[7]["false_positive"] == 0
    assert rows[8]["confirmed"] == 1 and a.export("other") == []
    a.close()
    b.close()


def test_flood_flags_suspend_and_release_everywhere(data: DataDir) -> None:
    a, b = data.open_flood(), data.open_flood()
    a.flag(11, "ncmec", 120, 3600.0, suspend=True)
    a.flag(12, "ncmec", 150, 3600.0, suspend=False)
    assert b.suspended() == {11}
    assert [r["entry_id"] for r in b.listing()] == [11, 12]
    assert b.release(11) and not a.release(11)  # once
    assert a.suspended() == set()
    a.flag(11, "ncmec", 200, 3600.0, suspend=True)  # flagged again: suspended again
    assert b.suspended() == {11} and b.listing()[0]["released_at"] is None
    a.close()
    b.close()


def test_flood_counts_add_up_across_replicas(pg_cluster: postgres.Cluster, tmp_path: Path) -> None:
    """Two replicas each see 6 distinct contents match one entry (max_distinct 10): alone
    neither would flag it; counted together in the database they do, at the next refresh,
    and the entry is suspended on both. The database keeps digests, not the contents."""
    from hashmatch.banks.model import SignalType
    from hashmatch.config import FloodSettings
    from hashmatch.core.flood import REFRESH_S, FloodMonitor
    from hashmatch.matching.model import Match, MatchResult

    data = DataDir(tmp_path / "data", pg_cluster.new_database())
    config = FloodSettings(max_distinct=10, min_tenants=2, suspend=True)
    now = [0.0]
    flagged: list[tuple[int, int]] = []
    stores = [data.open_flood(), data.open_flood()]

    def flag(entry: int, bank: str, n: int) -> None:
        flagged.append((entry, n))

    key = b"k" * 32  # the replicas' shared secret (from the audit key in a server)
    monitors = [
        FloodMonitor(config, s, on_flag=flag, clock=lambda: now[0], digest_key=key) for s in stores
    ]
    hit = MatchResult((Match("ncmec", 7, SignalType.PDQ, 3, None),))
    contents = [f"upload-{k}".encode() for k in range(12)]
    for k, content in enumerate(contents):
        # Two tenants, 3 contents each per replica: 6 per tenant in all (the cap is 6).
        monitors[k % 2].observe(f"tenant-{k // 2 % 2}", [content], [hit])
    assert flagged == []  # each replica alone: 6 distinct
    now[0] += REFRESH_S
    for m in monitors:
        m.observe("tenant-0", [contents[0]], [hit])
    assert flagged and flagged[0] == (7, 12)
    now[0] += REFRESH_S
    out = [m.observe("tenant-1", [b"another"], [hit])[0] for m in monitors]
    assert all(r.matches[0].suppressed_by is not None for r in out)
    import psycopg

    with psycopg.connect(data.database_url) as db:
        kept = {bytes(r[0]) for r in db.execute("SELECT content FROM flood_sightings")}
    assert len(kept) == 12 and not kept & set(contents)
    unkeyed = {hashlib.blake2b(c, digest_size=12, person=b"hashmatch-flood").digest()
               for c in contents}  # fmt: skip
    assert not kept & unkeyed  # a candidate content cannot be tested without the key
    for s in stores:
        s.close()
