"""Flood quarantine: an entry that suddenly matches far more distinct content than usual.

A listed hash that matches thousands of different uploads in an hour is far more likely a
bad entry (a logo, a blank frame, a meme) than a real flood of abuse material; reporting
each of those hits would bury reviewers and NCMEC in false reports. Per entry, the monitor
counts distinct content (by MD5 of the upload, or the client's hash) in a sliding window;
past `max_distinct` it flags the entry (kept in flood.sqlite3, with an audit event) and, if
`suspend`, reports its matches as suppressed until an operator releases it
(`hashmatch quarantine release ENTRY_ID`).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hashmatch.config import FloodSettings
from hashmatch.matching.bank_matcher import MatchResult, Suppressor
from hashmatch.storage.sqlite import migrate, write_transaction

FLOOD_FILE = "flood.sqlite3"
QUARANTINE = "quarantine"  # the suppressor's bank name on a suspended entry's matches
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


# How often releases made elsewhere (the CLI, another server) are picked up.
REFRESH_S = 1.0


class FloodStore:
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
        keys = (
            "entry_id",
            "bank",
            "distinct_content",
            "window_s",
            "suspended",
            "flagged_at",
            "released_at",
        )
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(keys)} FROM flagged ORDER BY flagged_at"
            ).fetchall()
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def close(self) -> None:
        self._db.close()


class FloodMonitor:
    def __init__(
        self,
        config: FloodSettings,
        store: FloodStore,
        on_flag: Callable[[int, str, int], None] = lambda entry, bank, n: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.store, self._on_flag, self._clock = config, store, on_flag, clock
        self._seen: dict[int, dict[bytes, float]] = {}  # entry -> content -> last seen
        self._lock = threading.Lock()
        self._suspended = store.suspended()
        self._refreshed = clock()

    def observe(
        self, contents: Sequence[bytes], results: Sequence[MatchResult]
    ) -> list[MatchResult]:
        """Count each result's entries against its content; return the results with the
        matches of suspended entries suppressed."""
        now = self._clock()
        if now - self._refreshed >= REFRESH_S:
            self._suspended = self.store.suspended()
            self._refreshed = now
        for content, result in zip(contents, results, strict=True):
            for m in result.matches:
                if m.suppressed_by is None and m.entry_id not in self._suspended:
                    self._count(m.entry_id, m.bank, content, now)
        return [self._apply(r) for r in results]

    def _count(self, entry_id: int, bank: str, content: bytes, now: float) -> None:
        with self._lock:
            seen = self._seen.setdefault(entry_id, {})
            seen[content] = now
            if len(seen) <= self.config.max_distinct:
                return
            horizon = now - self.config.window_s
            for key in [k for k, t in seen.items() if t < horizon]:
                del seen[key]
            if len(seen) <= self.config.max_distinct:
                return
            distinct = len(seen)
            del self._seen[entry_id]  # flagged: stop counting it
        self.store.flag(entry_id, bank, distinct, self.config.window_s, self.config.suspend)
        if self.config.suspend:
            self._suspended = self._suspended | {entry_id}
        self._on_flag(entry_id, bank, distinct)

    def _apply(self, result: MatchResult) -> MatchResult:
        if not any(m.entry_id in self._suspended for m in result.matches):
            return result
        return MatchResult(
            tuple(
                dataclasses.replace(m, suppressed_by=Suppressor(QUARANTINE, m.entry_id, 0))
                if m.entry_id in self._suspended and m.suppressed_by is None
                else m
                for m in result.matches
            )
        )
