"""The audit trail: chained records, verify catches edits, deletions and swaps; usage."""

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hashmatch.audit.log import AuditEvent, AuditLog, prune, verify
from hashmatch.cli import main
from hashmatch.commands.common import Streams


@pytest.fixture()
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.sqlite3"
    log = AuditLog(path, flush_interval_s=0.01)
    for k in range(50):
        log.append(
            AuditEvent(
                rpc="MatchImages" if k % 3 else "MatchHashes",
                tenant=f"t{k % 2}",
                key_id=f"k{k % 2}",
                items=4,
                matched_items=k % 2,
                matches_by_bank={"ncmec": k % 2} if k % 2 else {},
                codes={"OK": 3, "NOT_AN_IMAGE": 1},
                tracking_id=f"track-{k}",
            )
        )
    log.close()
    return path


def _sql(path: Path, statement: str, *args: object) -> None:
    db = sqlite3.connect(path)
    db.execute(statement, args)
    db.commit()
    db.close()


def test_intact_chain_verifies(log_path: Path) -> None:
    report = verify(log_path)
    assert report.ok and report.records == 50 and not report.problems


def test_flipped_byte_is_caught(log_path: Path) -> None:
    _sql(
        log_path,
        "UPDATE audit SET record = replace(record, '\"items\":4', '\"items\":5') WHERE seq = 17",
    )
    report = verify(log_path)
    assert not report.ok and "record 17" in report.problems[0] and "edited" in report.problems[0]


def test_deleted_record_is_caught(log_path: Path) -> None:
    _sql(log_path, "DELETE FROM audit WHERE seq = 30")
    report = verify(log_path)
    assert not report.ok and "record 31" in report.problems[0]


def test_swapped_pair_is_caught(log_path: Path) -> None:
    db = sqlite3.connect(log_path)
    a = db.execute("SELECT ts, record, prev_hash, hash FROM audit WHERE seq = 10").fetchone()
    b = db.execute("SELECT ts, record, prev_hash, hash FROM audit WHERE seq = 11").fetchone()
    db.execute("UPDATE audit SET ts=?, record=?, prev_hash=?, hash=? WHERE seq = 10", b)
    db.execute("UPDATE audit SET ts=?, record=?, prev_hash=?, hash=? WHERE seq = 11", a)
    db.commit()
    db.close()
    report = verify(log_path)
    assert not report.ok and "record 10" in report.problems[0]


def test_retention_keeps_the_chain_checkable(log_path: Path) -> None:
    future = datetime.now(UTC) + timedelta(days=2)
    assert prune(log_path, keep_days=1, now=future) == 50
    log = AuditLog(log_path, flush_interval_s=0.01)
    log.append(AuditEvent(rpc="MatchImages", items=1))
    log.close()
    report = verify(log_path)
    assert report.ok and report.records == 1


def test_cli_verify_and_usage(log_path: Path) -> None:
    data = log_path.parent
    out = io.StringIO()
    assert main(["audit", "verify", "--data-dir", str(data)], Streams(stdout=out)) == 0
    assert json.loads(out.getvalue())["ok"] is True
    out = io.StringIO()
    args = [
        "report",
        "usage",
        "--data-dir",
        str(data),
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
    ]
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
    _sql(log_path, "DELETE FROM audit WHERE seq = 3")
    assert main(["audit", "verify", "--data-dir", str(data)], Streams(stdout=io.StringIO())) == 1


def test_a_cut_tail_is_caught(log_path: Path) -> None:
    """Deleting the last records leaves a valid-looking chain: the signed head says the
    log went further."""
    _sql(log_path, "DELETE FROM audit WHERE seq > 45")
    report = verify(log_path)
    assert not report.ok and "46..50 are missing" in report.problems[0]


def test_re_chaining_without_the_key_is_caught(log_path: Path) -> None:
    """An attacker edits a record and recomputes every later hash, as the unkeyed chain
    allowed: without the key (apart from the database) the links do not verify."""
    import hashlib

    db = sqlite3.connect(log_path)
    rows = db.execute("SELECT seq, ts, record, prev_hash FROM audit ORDER BY seq").fetchall()
    prev = rows[19][3]
    for seq, ts, record, _ in rows[19:]:
        if seq == 20:
            record = record.replace('"items":4', '"items":0')
        digest = hashlib.sha256(f"{prev}\n{ts}\n{record}".encode()).hexdigest()
        db.execute("UPDATE audit SET record=?, prev_hash=?, hash=? WHERE seq=?",
                   (record, prev, digest, seq))  # fmt: skip
        prev = digest
    db.commit()
    db.close()
    report = verify(log_path)
    assert not report.ok and "record 20" in report.problems[0]


def test_a_forged_head_or_anchor_is_caught(log_path: Path) -> None:
    head = log_path.with_suffix(".head")
    body = json.loads(head.read_text())
    head.write_text(json.dumps({**body, "seq": 40}))  # an older head: its MAC no longer fits
    assert not verify(log_path).ok
    head.write_text(json.dumps(body))
    assert verify(log_path).ok
    future = datetime.now(UTC) + timedelta(days=2)
    prune(log_path, keep_days=1, now=future)
    _sql(log_path, "UPDATE audit_anchor SET seq = seq - 5")
    assert not verify(log_path).ok
