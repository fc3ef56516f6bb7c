"""The report outbox's table in its own SQLite file (reports.sqlite3), synchronous = FULL:
a filed report must not be forgotten."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from hashmatch.reports.outbox import REPORT_COLUMNS
from hashmatch.storage.sqlite import migrate, write_transaction

if TYPE_CHECKING:
    from hashmatch.reports.outbox import ReportRecord, ReportRow

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    tenant TEXT NOT NULL,
    test INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    endpoint_report_id TEXT NOT NULL DEFAULT '',
    report TEXT NOT NULL,
    files TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (tenant, idempotency_key)
)""",
    ),
    (
        # Who delivers a report now (a lease, seconds since the epoch): one deliverer at
        # a time, also when a retry with the same key arrives while the first is sending.
        """ALTER TABLE reports ADD COLUMN claimed_until REAL""",
    ),
)


class SqliteOutboxTables:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._lock = threading.RLock()
        migrate(self._db, self._lock, path, MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    def insert(
        self, idempotency_key: str, tenant: str, test: bool, status: str, report: str,
        files: str, now: str,
    ) -> tuple[int, bool]:  # fmt: skip
        with write_transaction(self._db, self._lock) as db:
            cur = db.execute(
                "INSERT INTO reports (idempotency_key, tenant, test, status, report, files,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant, idempotency_key) DO NOTHING",
                (idempotency_key, tenant, int(test), status, report, files, now, now),
            )
            created = cur.rowcount == 1
            (report_id,) = db.execute(
                "SELECT id FROM reports WHERE tenant = ? AND idempotency_key = ?",
                (tenant, idempotency_key),
            ).fetchone()
        return int(report_id), created

    def row(self, report_id: int) -> ReportRow | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {REPORT_COLUMNS} FROM reports WHERE id = ?", (report_id,)
            ).fetchone()
        return None if row is None else tuple(row)

    def ids(self, tenant: str | None) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM reports WHERE ? IS NULL OR tenant = ? ORDER BY id",
                (tenant, tenant),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def update(self, rec: ReportRecord, lease_until: float) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE reports SET status = ?, reason = ?, endpoint_report_id = ?, files = ?,"
                " attempts = ?, updated_at = ?, claimed_until = CASE WHEN claimed_until IS"
                " NULL THEN NULL ELSE ? END WHERE id = ?",
                (rec.status.value, rec.reason, rec.endpoint_report_id, json.dumps(rec.files),
                 rec.attempts, rec.updated_at, lease_until, rec.id),
            )  # fmt: skip

    def claim(self, report_id: int, now: float, until: float) -> bool:
        with write_transaction(self._db, self._lock) as db:
            cur = db.execute(
                "UPDATE reports SET claimed_until = ? WHERE id = ?"
                " AND (claimed_until IS NULL OR claimed_until < ?)",
                (until, report_id, now),
            )
        return cur.rowcount == 1

    def release(self, report_id: int) -> None:
        with write_transaction(self._db, self._lock) as db:
            db.execute("UPDATE reports SET claimed_until = NULL WHERE id = ?", (report_id,))

    def filed_by_tenant(self, start: str, end: str) -> dict[str, int]:
        """Reports finished in [start, end), per tenant."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant, COUNT(*) FROM reports WHERE status = 'finished'"
                " AND updated_at >= ? AND updated_at < ? GROUP BY tenant",
                (start, end),
            ).fetchall()
        return {str(t): int(n) for t, n in rows}
