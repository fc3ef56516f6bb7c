"""The audit trail's contract, on SQLite and on PostgreSQL: chained records; verify catches
edits, deletions, swaps, a cut tail and forged heads; retention; usage. On PostgreSQL,
several writers (replicas) make one chain."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hashmatch.audit.log import AuditEvent, AuditLog, prune, verify
from hashmatch.audit.log import records as audit_records
from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.errors import ConfigError
from hashmatch.storage.datadir import DataDir
from tests import postgres


@dataclass
class Chain:
    """An installation's audit chain, and raw SQL on its database (the attacker's view)."""

    data: DataDir

    def sql(self, statement: str, *args: object) -> list[tuple[Any, ...]]:
        if self.data.database_url:
            import psycopg

            with psycopg.connect(self.data.database_url, autocommit=True) as pg:
                cur = pg.execute(statement.replace("?", "%s"), args)
                return cur.fetchall() if cur.description else []
        db = sqlite3.connect(self.data.audit)
        try:
            rows = db.execute(statement, args).fetchall()
            db.commit()
            return rows
        finally:
            db.close()

    def verify(self) -> Any:
        tables = self.data.open_audit_tables()
        try:
            return verify(tables, self.data.audit_files)
        finally:
            tables.close()

    def prune(self, keep_days: int, now: datetime) -> int:
        tables = self.data.open_audit_tables()
        try:
            return prune(tables, self.data.audit_files, keep_days, now)
        finally:
            tables.close()

    def cli(self, *args: str) -> list[str]:
        url = ["--database-url", self.data.database_url] if self.data.database_url else []
        return [*args, "--data-dir", str(self.data.root), *url]


def _event(k: int) -> AuditEvent:
    return AuditEvent(
        rpc="MatchImages" if k % 3 else "MatchHashes",
        tenant=f"t{k % 2}",
        key_id=f"k{k % 2}",
        items=4,
        matched_items=k % 2,
        matches_by_bank={"ncmec": k % 2} if k % 2 else {},
        codes={"OK": 3, "NOT_AN_IMAGE": 1},
        tracking_id=f"track-{k}",
    )


def _write(data: DataDir, events: range) -> None:
    log = data.open_audit()
    log._interval = 0.01
    for k in events:
        log.append(_event(k))
    log.close()


@pytest.fixture(params=["sqlite", "postgres"])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chain]:
    if request.param == "sqlite":
        data = DataDir(tmp_path / "data")
    else:
        cluster: postgres.Cluster = request.getfixturevalue("pg_cluster")
        data = DataDir(tmp_path / "data", cluster.new_database())
    _write(data, range(50))
    yield Chain(data)


@pytest.fixture()
def pg_chain(pg_cluster: postgres.Cluster, tmp_path: Path) -> Chain:
    """What only a shared chain has: a head in the database, several writers."""
    data = DataDir(tmp_path / "data", pg_cluster.new_database())
    _write(data, range(50))
    return Chain(data)


def test_intact_chain_verifies(chain: Chain) -> None:
    report = chain.verify()
    assert report.ok and report.records == 50 and not report.problems


def test_flipped_byte_is_caught(chain: Chain) -> None:
    chain.sql(
        "UPDATE audit SET record = replace(record, '\"items\":4', '\"items\":5') WHERE seq = 17"
    )
    report = chain.verify()
    assert not report.ok and "record 17" in report.problems[0] and "edited" in report.problems[0]


def test_deleted_record_is_caught(chain: Chain) -> None:
    chain.sql("DELETE FROM audit WHERE seq = 30")
    report = chain.verify()
    assert not report.ok and "record 31" in report.problems[0]


def test_swapped_pair_is_caught(chain: Chain) -> None:
    (a,) = chain.sql("SELECT ts, record, prev_hash, hash FROM audit WHERE seq = 10")
    (b,) = chain.sql("SELECT ts, record, prev_hash, hash FROM audit WHERE seq = 11")
    chain.sql("UPDATE audit SET ts=?, record=?, prev_hash=?, hash=? WHERE seq = 10", *b)
    chain.sql("UPDATE audit SET ts=?, record=?, prev_hash=?, hash=? WHERE seq = 11", *a)
    report = chain.verify()
    assert not report.ok and "record 10" in report.problems[0]


def test_retention_keeps_the_chain_checkable(chain: Chain) -> None:
    future = datetime.now(UTC) + timedelta(days=2)
    assert chain.prune(keep_days=1, now=future) == 50
    _write(chain.data, range(1))
    report = chain.verify()
    assert report.ok and report.records == 1


def test_cli_verify_and_usage(chain: Chain) -> None:
    out = io.StringIO()
    assert main(chain.cli("audit", "verify"), Streams(stdout=out)) == 0
    assert json.loads(out.getvalue())["ok"] is True
    args = chain.cli("report", "usage", "--from", "2000-01-01", "--to", "2100-01-01")
    out = io.StringIO()
    assert main(args, Streams(stdout=out)) == 0
    rows = {r["tenant"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert rows["t1"]["matched_items"] == 25 and rows["t1"]["matches_by_bank"] == {"ncmec": 25}
    assert rows["t0"]["calls"] == 25 and rows["t0"]["errors"] == 25
    assert rows["t0"]["images"] + rows["t0"]["hashes"] == 100
    out = io.StringIO()
    assert main([*args, "--format", "csv"], Streams(stdout=out)) == 0
    assert out.getvalue().splitlines()[0].startswith("tenant,calls,images")
    out = io.StringIO()
    assert main([*args, "--format", "ncmec-aggregate"], Streams(stdout=out)) == 0
    agg = json.loads(out.getvalue())
    assert sum(c["matched"] for c in agg["customers"]) == 25
    chain.sql("DELETE FROM audit WHERE seq = 3")
    assert main(chain.cli("audit", "verify"), Streams(stdout=io.StringIO())) == 1


def test_a_cut_tail_is_caught(chain: Chain) -> None:
    """Deleting the last records leaves a valid-looking chain: the signed head says the
    log went further."""
    chain.sql("DELETE FROM audit WHERE seq > 45")
    report = chain.verify()
    assert not report.ok and "46..50 are missing" in report.problems[0]


def test_re_chaining_without_the_key_is_caught(chain: Chain) -> None:
    """An attacker edits a record and recomputes every later hash, as the unkeyed chain
    allowed: without the key (apart from the database) the links do not verify."""
    rows = chain.sql("SELECT seq, ts, record, prev_hash FROM audit ORDER BY seq")
    prev = rows[19][3]
    for seq, ts, record, _ in rows[19:]:
        if seq == 20:
            record = record.replace('"items":4', '"items":0')
        digest = hashlib.sha256(f"{prev}\n{ts}\n{record}".encode()).hexdigest()
        chain.sql("UPDATE audit SET record=?, prev_hash=?, hash=? WHERE seq=?",
                  record, prev, digest, seq)  # fmt: skip
        prev = digest
    report = chain.verify()
    assert not report.ok and "record 20" in report.problems[0]


def test_a_forged_head_or_anchor_is_caught(chain: Chain) -> None:
    head = chain.data.audit_files.head
    body = json.loads(head.read_text())
    head.write_text(json.dumps({**body, "seq": 40}))  # an older head: its MAC no longer fits
    assert not chain.verify().ok
    head.write_text(json.dumps(body))
    assert chain.verify().ok
    chain.prune(keep_days=1, now=datetime.now(UTC) + timedelta(days=2))
    chain.sql("UPDATE audit_anchor SET seq = seq - 5")
    assert not chain.verify().ok


def test_a_replayed_older_head_with_a_cut_tail_is_caught(pg_chain: Chain) -> None:
    """Whoever can write the database may cut the tail and put back a head it saw
    earlier (validly signed): the head this data dir signed last still says more."""
    (old,) = pg_chain.sql("SELECT seq, hash, mac FROM audit_head")
    _write(pg_chain.data, range(50, 60))
    pg_chain.sql("DELETE FROM audit WHERE seq > ?", old[0])
    pg_chain.sql("UPDATE audit_head SET seq = ?, hash = ?, mac = ?", *old)
    report = pg_chain.verify()
    assert not report.ok and "51..60 are missing" in " ".join(report.problems)
    # Verified from elsewhere (a data dir without a head of its own), the database's head
    # is all there is: the same cut passes unseen there, so verify from the replicas.
    elsewhere = DataDir(pg_chain.data.root.parent / "elsewhere", pg_chain.data.database_url,
                        pg_chain.data.audit_files.key)  # fmt: skip
    there = verify_at(elsewhere)
    assert there.ok and there.heads == ["the database's signed head, record 50"]
    assert "verify in each replica's data dir" in there.notes[0]


def verify_at(data: DataDir) -> Any:
    tables = data.open_audit_tables()
    try:
        return verify(tables, data.audit_files)
    finally:
        tables.close()


def test_a_forged_database_head_is_caught(pg_chain: Chain) -> None:
    pg_chain.sql("UPDATE audit_head SET seq = 40")
    report = pg_chain.verify()
    assert not report.ok and "the database's signed head" in report.problems[0]


def test_replicas_write_one_chain(pg_chain: Chain, tmp_path: Path) -> None:
    """Two writers (replicas with data dirs of their own and one key) interleave into one
    verifiable chain; a replica given another key is refused at start."""
    key = pg_chain.data.audit_files.key
    other = DataDir(tmp_path / "replica-b", pg_chain.data.database_url, key)
    a, b = pg_chain.data.open_audit(), other.open_audit()
    for k in range(40):
        (a if k % 2 else b).append(_event(100 + k))
    a.close()
    b.close()
    for data in (pg_chain.data, other):
        report = verify_at(data)
        assert report.ok and report.records == 90, report.problems
    tables = pg_chain.data.open_audit_tables()
    try:
        tracking = [r["tracking_id"] for _, r in audit_records(tables)]
    finally:
        tables.close()
    assert sorted(tracking[50:]) == sorted(f"track-{100 + k}" for k in range(40))
    stranger = DataDir(tmp_path / "replica-c", pg_chain.data.database_url)  # its own new key
    with pytest.raises(ConfigError, match="same key"):
        stranger.open_audit()


def test_a_lost_database_delays_audit_records_but_loses_none(
    pg_chain: Chain, pg_cluster: postgres.Cluster
) -> None:
    log = pg_chain.data.open_audit()
    log._interval = 0.01
    pg_cluster.stop()
    try:
        for k in range(5):
            log.append(_event(200 + k))
        import time

        time.sleep(0.5)  # the writer fails and retries meanwhile
    finally:
        pg_cluster.start()
    log.close()
    report = pg_chain.verify()
    assert report.ok and report.records == 55, report.problems


def test_a_log_opened_from_its_file_alone_still_works(tmp_path: Path) -> None:
    """The embedded chain opened directly (as tools do): its key and head beside it."""
    from hashmatch.audit.log import open_sqlite

    tables, files = open_sqlite(tmp_path / "audit.sqlite3")
    log = AuditLog(tables, files, flush_interval_s=0.01)
    log.append(_event(1))
    log.close()
    tables, files = open_sqlite(tmp_path / "audit.sqlite3")
    try:
        assert verify(tables, files).records == 1 and files.key.exists()
    finally:
        tables.close()


def test_one_tenants_usage_reads_only_its_records(chain: Chain) -> None:
    from hashmatch.audit.usage import matches_per_day, usage

    tables = chain.data.open_audit_tables()
    try:
        every = {u.tenant: u for u in usage(tables, "2000", "2100")}
        (mine,) = usage(tables, "2000", "2100", tenant="t1")
        assert mine == every["t1"] and usage(tables, "2000", "2100", tenant="t") == []
        days = matches_per_day(tables, "2000", "2100", tenant="t1")
        assert sum(c["ncmec"] for c in days.values()) == 25
        assert not any(matches_per_day(tables, "2000", "2100", tenant="t0").values())
    finally:
        tables.close()
