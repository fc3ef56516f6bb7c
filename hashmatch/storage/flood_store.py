"""Entries flagged by flood quarantine (flood.sqlite3, or the PostgreSQL database:
postgres_flood.py): who was flagged, when, how many distinct contents, whether suspended,
and released by whom."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from hashmatch.storage.sqlite import migrate, write_transaction

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE flagged (
            entry_id INTEGER PRIMARY KEY,
            bank TEXT NOT NULL,
            distinct_content INTEGER NOT NULL,
            window_s REAL NOT NULL,
            suspended INTEGER NOT NULL,
            flagged_at TEXT NOT NULL,
            released_at TEXT
        )""",
    ),
)


# One sighting: (entry_id, tenant, content digest).
Sighting = tuple[int, str, bytes]


@runtime_checkable
class SharedFloodCounts(Protocol):
    """Distinct contents per entry counted across every replica (the PostgreSQL store)."""

    def count_sightings(
        self, sightings: Sequence[Sighting], window_s: float, per_tenant: int
    ) -> dict[int, int]:
        """Records the sightings; returns, for each entry among them, its distinct
        contents within the window, each tenant counting for at most per_tenant."""
        ...


class FloodStore(Protocol):
    def flag(
        self, entry_id: int, bank: str, distinct: int, window_s: float, suspend: bool
    ) -> None: ...
    def release(self, entry_id: int) -> bool: ...
    def suspended(self) -> set[int]: ...
    def listing(self) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


LISTING_KEYS = (
    "entry_id", "bank", "distinct_content", "window_s", "suspended", "flagged_at", "released_at"
)  # fmt: skip


class SqliteFloodStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._lock = threading.RLock()
        migrate(self._db, self._lock, path, MIGRATIONS)

    def flag(self, entry_id: int, bank: str, distinct: int, window_s: float, suspend: bool) -> None:
        now = datetime.now(UTC).isoformat()
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "INSERT INTO flagged VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (entry_id) DO"
                " UPDATE SET distinct_content = excluded.distinct_content, suspended ="
                " excluded.suspended, flagged_at = excluded.flagged_at, released_at = NULL",
                (entry_id, bank, distinct, window_s, int(suspend), now),
            )

    def release(self, entry_id: int) -> bool:
        with write_transaction(self._db, self._lock) as db:
            cur = db.execute(
                "UPDATE flagged SET released_at = ? WHERE entry_id = ? AND released_at IS NULL",
                (datetime.now(UTC).isoformat(), entry_id),
            )
        return cur.rowcount > 0

    def suspended(self) -> set[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT entry_id FROM flagged WHERE suspended = 1 AND released_at IS NULL"
            ).fetchall()
        return {int(r[0]) for r in rows}

    def listing(self) -> list[dict[str, Any]]:
        keys = LISTING_KEYS
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(keys)} FROM flagged ORDER BY flagged_at"
            ).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def close(self) -> None:
        self._db.close()
