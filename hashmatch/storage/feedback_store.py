"""Match feedback verdicts, kept per (tenant, bank, entry) in feedback.sqlite3 (or the
PostgreSQL database: postgres_feedback.py) and exported, counted per entry, for the list's
source (e.g. NCMEC's hash-sharing feedback)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from hashmatch.storage.sqlite import migrate, write_transaction

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE feedback (
            tenant TEXT NOT NULL,
            bank TEXT NOT NULL,
            entry_id INTEGER NOT NULL,
            external_id TEXT NOT NULL,
            verdict TEXT NOT NULL,
            note TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, bank, entry_id)
        )""",
    ),
)


_UPSERT = """
INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, bank, entry_id) DO UPDATE SET
    verdict = excluded.verdict, note = excluded.note, updated_at = excluded.updated_at
"""
_EXPORT = """
SELECT entry_id, external_id, SUM(verdict = 'confirmed'), SUM(verdict = 'false_positive')
FROM feedback WHERE bank = ? GROUP BY entry_id, external_id ORDER BY entry_id
"""


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class FeedbackStore(Protocol):
    def record(
        self, tenant: str, bank: str, entry_id: int, external_id: str, verdict: Verdict, note: str
    ) -> None: ...
    def false_positives(self) -> dict[str, frozenset[int]]:
        """Per tenant, the entry ids its current verdict calls false positives."""
        ...

    def export(self, bank: str) -> list[dict[str, Any]]:
        """Per entry of the bank: how many tenants confirmed it, how many called it wrong."""
        ...

    def close(self) -> None: ...


class SqliteFeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._lock = threading.RLock()
        migrate(self._db, self._lock, path, MIGRATIONS)

    def record(
        self, tenant: str, bank: str, entry_id: int, external_id: str, verdict: Verdict, note: str
    ) -> None:
        row = (
            tenant,
            bank,
            entry_id,
            external_id,
            verdict.value,
            note,
            datetime.now(UTC).isoformat(),
        )
        with write_transaction(self._db, self._lock) as db:
            db.execute(_UPSERT, row)

    def false_positives(self) -> dict[str, frozenset[int]]:
        """Per tenant, the entry ids its current verdict calls false positives."""
        out: dict[str, set[int]] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant, entry_id FROM feedback WHERE verdict = 'false_positive'"
            ).fetchall()
        for tenant, entry_id in rows:
            out.setdefault(tenant, set()).add(int(entry_id))
        return {t: frozenset(ids) for t, ids in out.items()}

    def export(self, bank: str) -> list[dict[str, Any]]:
        """Per entry of the bank: how many tenants confirmed it, how many called it wrong."""
        keys = ("entry_id", "external_id", "confirmed", "false_positive")
        return [
            {"bank": bank, **dict(zip(keys, r, strict=True))}
            for r in self._db.execute(_EXPORT, (bank,)).fetchall()
        ]

    def close(self) -> None:
        self._db.close()
