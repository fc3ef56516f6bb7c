"""Feedback verdicts in the PostgreSQL database: every replica's verdicts in one table, so
a tenant's false positives suppress its matches on every replica (each picks them up
within core/false_positives.REFRESH_S)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hashmatch.storage.feedback_store import Verdict
from hashmatch.storage.postgres import connection, lock_id, open_migrated, read_transaction

_LOCK = lock_id("feedback")
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE feedback (
            tenant TEXT NOT NULL,
            bank TEXT NOT NULL,
            entry_id BIGINT NOT NULL,
            external_id TEXT NOT NULL,
            verdict TEXT NOT NULL,
            note TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, bank, entry_id)
        )""",
    ),
)


class PostgresFeedbackStore:
    def __init__(self, url: str) -> None:
        self._pool = open_migrated(
            url,
            _LOCK,
            "the feedback table",
            MIGRATIONS,
            table="feedback_schema_version",
            pool_size=2,
        )

    def record(
        self, tenant: str, bank: str, entry_id: int, external_id: str, verdict: Verdict, note: str
    ) -> None:
        with connection(self._pool) as db:
            db.execute(
                "INSERT INTO feedback VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant, bank, entry_id) DO UPDATE SET verdict = excluded.verdict,"
                " note = excluded.note, updated_at = excluded.updated_at",
                (tenant, bank, entry_id, external_id, verdict.value, note,
                 datetime.now(UTC).isoformat()),
            )  # fmt: skip

    def false_positives(self) -> dict[str, frozenset[int]]:
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT tenant, entry_id FROM feedback WHERE verdict = 'false_positive'"
            ).fetchall()
        out: dict[str, set[int]] = {}
        for tenant, entry_id in rows:
            out.setdefault(tenant, set()).add(int(entry_id))
        return {t: frozenset(ids) for t, ids in out.items()}

    def export(self, bank: str) -> list[dict[str, Any]]:
        keys = ("entry_id", "external_id", "confirmed", "false_positive")
        with read_transaction(self._pool) as db:
            rows = db.execute(
                "SELECT entry_id, external_id, count(*) FILTER (WHERE verdict = 'confirmed'),"
                " count(*) FILTER (WHERE verdict = 'false_positive') FROM feedback"
                " WHERE bank = %s GROUP BY entry_id, external_id ORDER BY entry_id",
                (bank,),
            ).fetchall()
        return [{"bank": bank, **dict(zip(keys, r, strict=True))} for r in rows]

    def close(self) -> None:
        self._pool.close()
