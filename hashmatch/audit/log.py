"""A hash-chained audit log in its own SQLite file (one writer at a time; PostgreSQL-ready SQL).

Each record carries the hash of the one before it: hash = SHA-256(prev_hash || canonical
JSON of the record). `verify` recomputes the chain from the retention anchor, so an edited
byte, a deleted record or two records swapped are all detected. Records hold counts, codes
and ids: no image bytes and no hashes of the caller's content.

Writes are queued and committed by a background thread every `flush_interval_s` in one
transaction, so a busy server pays microseconds per call; `close()` flushes what is queued.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hashmatch.storage.sqlite import write_transaction

GENESIS = "0" * 64
SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class AuditEvent:
    """One call, as the audit trail keeps it."""

    rpc: str
    tenant: str = ""
    key_id: str = ""
    items: int = 0
    matched_items: int = 0
    matches_by_bank: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    tracking_id: str = ""
    bank_sequence: int = -1
    status: str = "OK"  # how the call ended: OK, an ErrorCode value, CANCELLED

    def to_json(self) -> dict[str, Any]:
        return {
            "rpc": self.rpc,
            "tenant": self.tenant,
            "key_id": self.key_id,
            "items": self.items,
            "matched_items": self.matched_items,
            "matches_by_bank": self.matches_by_bank,
            "codes": self.codes,
            "tracking_id": self.tracking_id,
            "bank_sequence": self.bank_sequence,
            "status": self.status,
        }


def chain_hash(prev: str, ts: str, record: str) -> str:
    return hashlib.sha256(f"{prev}\n{ts}\n{record}".encode()).hexdigest()


def _canonical(event: AuditEvent) -> str:
    return json.dumps(event.to_json(), sort_keys=True, separators=(",", ":"))


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(SCHEMA)
    return db


class AuditLog:
    def __init__(self, path: Path, flush_interval_s: float = 0.05) -> None:
        self.path = path
        self._db = _connect(path)
        self._lock = threading.RLock()
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue()
        self._interval = flush_interval_s
        self._thread = threading.Thread(target=self._run, name="hashmatch-audit", daemon=True)
        self._thread.start()

    def append(self, event: AuditEvent) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[AuditEvent] = []
            try:
                first = self._queue.get(timeout=self._interval)
            except queue.Empty:
                continue
            for item in [first, *self._drain()]:
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._write(batch)

    def _drain(self) -> Iterator[AuditEvent | None]:
        while True:
            try:
                yield self._queue.get_nowait()
            except queue.Empty:
                return

    def _write(self, events: list[AuditEvent]) -> None:
        # BEGIN IMMEDIATE: several processes may share the file; the chain stays linear.
        with write_transaction(self._db, self._lock) as db:
            row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None:
                row = db.execute("SELECT seq, hash FROM audit_anchor").fetchone()
            seq, prev = row if row is not None else (0, GENESIS)
            for event in events:
                seq += 1
                ts = datetime.now(UTC).isoformat(timespec="microseconds")
                record = _canonical(event)
                digest = chain_hash(prev, ts, record)
                db.execute(
                    "INSERT INTO audit (seq, ts, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
                    (seq, ts, record, prev, digest),
                )
                prev = digest

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._db.close()


@dataclass
class VerifyReport:
    records: int = 0
    ok: bool = True
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "ok": self.ok, "problems": self.problems}


def verify(path: Path) -> VerifyReport:
    """Recompute the chain from the anchor: any edit, deletion or reordering shows."""
    report = VerifyReport()
    db = _connect(path)
    try:
        anchor = db.execute("SELECT seq, hash FROM audit_anchor").fetchone()
        seq, prev = anchor if anchor is not None else (0, GENESIS)
        for row_seq, ts, record, prev_hash, digest in db.execute(
            "SELECT seq, ts, record, prev_hash, hash FROM audit ORDER BY seq"
        ):
            report.records += 1
            problem = None
            if row_seq != seq + 1:
                problem = f"record {row_seq}: expected sequence {seq + 1} (records deleted?)"
            elif prev_hash != prev:
                problem = f"record {row_seq}: does not follow record {seq} (reordered or edited?)"
            elif chain_hash(prev, ts, record) != digest:
                problem = f"record {row_seq}: content does not match its hash (edited)"
            if problem:
                report.ok = False
                report.problems.append(problem)
            seq, prev = row_seq, digest
    finally:
        db.close()
    return report


def prune(path: Path, keep_days: int, now: datetime | None = None) -> int:
    """Retention: drop records older than keep_days; the anchor keeps the chain checkable."""
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=keep_days)).isoformat()
    db = _connect(path)
    try:
        with write_transaction(db, threading.RLock()):
            last = db.execute(
                "SELECT seq, hash FROM audit WHERE ts < ? ORDER BY seq DESC LIMIT 1", (cutoff,)
            ).fetchone()
            if last is None:
                return 0
            n = db.execute("DELETE FROM audit WHERE seq <= ?", (last[0],)).rowcount
            db.execute(
                "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                last,
            )
        return int(n)
    finally:
        db.close()


def records(path: Path, start: str = "", end: str = "9999") -> Iterator[tuple[str, dict[str, Any]]]:
    """(timestamp, record) in order, start <= ts < end (ISO strings)."""
    db = _connect(path)
    try:
        for ts, record in db.execute(
            "SELECT ts, record FROM audit WHERE ts >= ? AND ts < ? ORDER BY seq", (start, end)
        ):
            yield ts, json.loads(record)
    finally:
        db.close()
