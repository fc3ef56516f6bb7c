"""The feedback and flood stores' contract, on SQLite and on PostgreSQL (where every replica
shares them: a tenant's false positives and a suspended entry hold on all)."""

from __future__ import annotations

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
