"""The audit chain in its own SQLite file (the embedded default)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hashmatch.audit.tables import GENESIS, ChainView, Links, Signer
from hashmatch.storage.sqlite import migrate, read_transaction, write_transaction

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            record TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS audit_anchor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL
        )""",
    ),
    (
        # The anchor is signed too; records up to keyed_from - 1 predate the key.
        """ALTER TABLE audit_anchor ADD COLUMN mac TEXT""",
        """CREATE TABLE audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """INSERT INTO audit_meta SELECT 'keyed_from', coalesce(max(seq), 0) + 1 FROM audit""",
    ),
)


class SqliteAuditTables:
    shared = False  # one server per file: its head lives beside it (audit.head)

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        migrate(self._db, self._lock, path, MIGRATIONS)

    def append(self, links: Links, sign_head: Signer) -> tuple[int, str]:
        # BEGIN IMMEDIATE: several processes may share the file; the chain stays linear.
        with write_transaction(self._db, self._lock) as db:
            row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None:
                row = db.execute("SELECT seq, hash FROM audit_anchor").fetchone()
            seq, prev = row if row is not None else (0, GENESIS)
            rows = links(seq, prev)
            db.executemany(
                "INSERT INTO audit (seq, ts, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?)", rows
            )
        return (rows[-1][0], rows[-1][4]) if rows else (seq, prev)

    def claim_key(self, fingerprint: str) -> str:
        with write_transaction(self._db, self._lock) as db:
            db.execute(
                "INSERT INTO audit_meta (key, value) VALUES ('key_id', ?) ON CONFLICT DO NOTHING",
                (fingerprint,),
            )
            row = db.execute("SELECT value FROM audit_meta WHERE key = 'key_id'").fetchone()
        return str(row[0])

    @contextmanager
    def view(self) -> Iterator[ChainView]:
        # A connection of its own, in one read transaction: a long verify does not hold
        # the writer's lock (the server's appends go on meanwhile).
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            with read_transaction(db, threading.RLock()):
                row = db.execute("SELECT value FROM audit_meta WHERE key = 'keyed_from'").fetchone()
                anchor = db.execute("SELECT seq, hash, mac FROM audit_anchor").fetchone()
                rows = db.execute("SELECT seq, ts, record, prev_hash, hash FROM audit ORDER BY seq")
                yield ChainView(anchor, int(row[0]) if row else 1, None, iter(rows))
        finally:
            db.close()

    def prune(self, cutoff: str, sign_anchor: Signer) -> int:
        with write_transaction(self._db, self._lock) as db:
            last = db.execute(
                "SELECT seq, hash FROM audit WHERE ts < ? ORDER BY seq DESC LIMIT 1", (cutoff,)
            ).fetchone()
            if last is None:
                return 0
            n = db.execute("DELETE FROM audit WHERE seq <= ?", (last[0],)).rowcount
            db.execute(
                "INSERT INTO audit_anchor (id, seq, hash, mac) VALUES (1, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,"
                " mac = excluded.mac",
                (*last, sign_anchor(*last)),
            )
        return int(n)

    def records(self, start: str, end: str) -> Iterator[tuple[str, str]]:
        # A connection of its own: a long report does not hold the writer's.
        db = sqlite3.connect(self.path, timeout=30)
        try:
            yield from db.execute(
                "SELECT ts, record FROM audit WHERE ts >= ? AND ts < ? ORDER BY seq", (start, end)
            )
        finally:
            db.close()

    def close(self) -> None:
        self._db.close()
