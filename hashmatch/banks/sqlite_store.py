"""BankStore on an embedded SQLite file: WAL, foreign keys, versioned migrations.

Plain SQL that PostgreSQL also speaks (UPDATE ... FROM, partial unique indexes, triggers
writing the change log). The change log is filled by triggers, so no code path can change
an entry without logging it, and in the same transaction as the change: a reader that
polls `changes` for seq > last never misses a committed change. (SQLite has one writer at
a time, so sequence order is commit order; on PostgreSQL a follower must also wait out
in-flight transactions, e.g. by reading below the oldest running xid's sequence.)
"""

from __future__ import annotations

import fcntl
import itertools
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np

from hashmatch.banks import records
from hashmatch.banks.exchange_tables import SQLITE_DDL, ExchangeTables
from hashmatch.banks.model import (
    Bank,
    BankSettings,
    Change,
    ChangeKind,
    Entry,
    LiveState,
    NewEntry,
    SignalType,
    Tombstone,
    WriteReport,
    check_bank_name,
)
from hashmatch.errors import AlreadyExists, NotFound
from hashmatch.exchanges.model import Progress, check_exchange_name
from hashmatch.storage.sqlite import migrate, read_transaction, write_transaction

SCHEMA_VERSION = 4

# Migration i brings the schema from version i - 1 to i. Append only; never edit one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE banks (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '',
            visibility TEXT NOT NULL DEFAULT 'private'
                CHECK (visibility IN ('private', 'shared', 'public')),
            kind TEXT NOT NULL DEFAULT 'block' CHECK (kind IN ('block', 'allow')),
            signal_types TEXT NOT NULL DEFAULT 'md5,pdq,sha256',
            pdq_threshold INTEGER NOT NULL DEFAULT 31,
            min_quality INTEGER NOT NULL DEFAULT 0,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            deleted_at TEXT
        )""",
        """CREATE UNIQUE INDEX banks_live_name ON banks (name) WHERE deleted_at IS NULL""",
        """CREATE TABLE bank_shares (
            bank_id INTEGER NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
            tenant TEXT NOT NULL,
            PRIMARY KEY (bank_id, tenant)
        )""",
        """CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            bank_id INTEGER NOT NULL REFERENCES banks (id) ON DELETE CASCADE,
            signal_type TEXT NOT NULL CHECK (signal_type IN ('pdq', 'md5', 'sha256')),
            value BLOB NOT NULL,
            label TEXT,
            external_id TEXT,
            source TEXT,
            added_at TEXT NOT NULL,
            removed_at TEXT,
            UNIQUE (signal_type, value, bank_id)
        )""",
        """CREATE INDEX entries_external ON entries (bank_id, external_id)""",
        """CREATE TABLE changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('add', 'remove', 'bank')),
            bank_id INTEGER NOT NULL,
            entry_id INTEGER,
            at TEXT NOT NULL
        )""",
        """CREATE TRIGGER entries_added AFTER INSERT ON entries WHEN NEW.removed_at IS NULL
        BEGIN
            INSERT INTO changes (kind, bank_id, entry_id, at)
            VALUES ('add', NEW.bank_id, NEW.id, NEW.added_at);
        END""",
        """CREATE TRIGGER entries_tombstoned AFTER UPDATE OF removed_at ON entries
        WHEN OLD.removed_at IS NULL AND NEW.removed_at IS NOT NULL
        BEGIN
            INSERT INTO changes (kind, bank_id, entry_id, at)
            VALUES ('remove', NEW.bank_id, NEW.id, NEW.removed_at);
        END""",
        """CREATE TRIGGER entries_revived AFTER UPDATE OF removed_at ON entries
        WHEN OLD.removed_at IS NOT NULL AND NEW.removed_at IS NULL
        BEGIN
            INSERT INTO changes (kind, bank_id, entry_id, at)
            VALUES ('add', NEW.bank_id, NEW.id, NEW.added_at);
        END""",
        """CREATE TRIGGER banks_created AFTER INSERT ON banks
        BEGIN
            INSERT INTO changes (kind, bank_id, at) VALUES ('bank', NEW.id, NEW.created_at);
        END""",
        """CREATE TRIGGER banks_updated AFTER UPDATE ON banks
        BEGIN
            INSERT INTO changes (kind, bank_id, at) VALUES ('bank', NEW.id, NEW.updated_at);
        END""",
    ),
    (
        # A live entry's label or source changed: matchers keep both in memory.
        """CREATE TRIGGER entries_relabelled AFTER UPDATE OF label, source ON entries
        WHEN NEW.removed_at IS NULL AND OLD.removed_at IS NULL
            AND (OLD.label IS NOT NEW.label OR OLD.source IS NOT NEW.source)
        BEGIN
            INSERT INTO changes (kind, bank_id, entry_id, at)
            VALUES ('add', NEW.bank_id, NEW.id, NEW.added_at);
        END""",
    ),
    (
        # A share is an invitation until the invited tenant accepts it (NULL: invited).
        """ALTER TABLE bank_shares ADD COLUMN accepted_at TEXT""",
        """ALTER TABLE banks ADD COLUMN distance_policy TEXT NOT NULL DEFAULT 'bucketed'
            CHECK (distance_policy IN ('exact', 'bucketed', 'hidden'))""",
    ),
    SQLITE_DDL,  # exchanges feeding banks, their checkpoints, verdicts for upstream
)

# An import's staging, in the temp database (a file: an import of any size stays small in
# memory); the first row of a value wins, the event order (seq) decides tombstones.
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS staging (seq INTEGER NOT NULL, signal_type TEXT NOT NULL,"
    " value BLOB NOT NULL, label TEXT, external_id TEXT, source TEXT,"
    " PRIMARY KEY (signal_type, value))",
    "CREATE INDEX IF NOT EXISTS temp.staging_external ON staging (external_id)",
    "CREATE TEMP TABLE IF NOT EXISTS staging_removals (seq INTEGER NOT NULL,"
    " external_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS temp.staging_removals_external ON staging_removals (external_id)",
    "DELETE FROM staging",
    "DELETE FROM staging_removals",
)
# SQLite's default limit on host parameters per statement is 32766; stay well below.
_IN_CHUNK = 900


class SqliteBankStore(ExchangeTables):
    """BankStore in one SQLite file. Safe to share between threads (one connection,
    serialized by a lock) and between processes (SQLite's own locking, WAL readers).
    Reads use a connection of their own: a long write (a 10M-row import) holds the write
    connection, and WAL lets readers see the last commit meanwhile."""

    _postgres = False

    def __init__(self, path: Path | str, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        # A new data dir is the service user's alone: it holds the banks, keys and audit.
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a killed process loses nothing committed; a power cut may
            # lose the last transactions but never corrupts the file.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            # 256 MiB of page cache (default 2 MiB): bulk imports insert into three indexes
            # on random 32-byte keys, which thrash a small cache.
            self._db.execute("PRAGMA cache_size = -65536")
            # An import's staging goes to a temp file, not memory: any size, bounded RSS.
            self._db.execute("PRAGMA temp_store = FILE")
            self._migrate()
            row = self._db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
            self._reader = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except BaseException:
            self._db.close()
            raise
        self._read_lock = threading.RLock()
        self._store_id = str(row[0])

    # -- plumbing ------------------------------------------------------------------------
    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return read_transaction(self._reader, self._read_lock)

    def _migrate(self) -> None:
        def after(db: sqlite3.Connection, version: int) -> None:
            if version == 1:
                db.execute("INSERT INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))

        migrate(self._db, self._lock, self.path, MIGRATIONS, after)

    @property
    def store_id(self) -> str:
        return self._store_id

    def _lock_path(self, name: str) -> Path:
        return self.path.with_name(f"{self.path.name}.exchange-{check_exchange_name(name)}.lock")

    def remove_exchange(self, name: str) -> None:
        super().remove_exchange(name)
        self._lock_path(name).unlink(missing_ok=True)

    @contextmanager
    def sync_lock(self, name: str) -> Iterator[bool]:
        """A lock file beside the database (flock: released by the kernel when the holder
        dies, however it dies)."""
        path = self._lock_path(name)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def wait_for_change(self, timeout: float) -> bool:
        """SQLite has no notifications: the follower polls every `timeout` seconds."""
        time.sleep(timeout)
        return False

    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()

    # -- banks ---------------------------------------------------------------------------
    def _bank_rows(
        self, db: sqlite3.Connection, where: str, args: tuple[object, ...]
    ) -> list[Bank]:
        found = db.execute(
            f"SELECT {records.BANK_COLUMNS} FROM banks WHERE deleted_at IS NULL {where}"
            " ORDER BY name",
            args,
        ).fetchall()
        shares = db.execute(
            "SELECT s.bank_id, s.tenant, s.accepted_at FROM bank_shares s"
            " JOIN banks b ON b.id = s.bank_id WHERE b.deleted_at IS NULL"
        ).fetchall()
        return records.banks(found, shares)

    def _bank(self, db: sqlite3.Connection, name: str) -> Bank:
        found = self._bank_rows(db, "AND name = ?", (name,))
        if not found:
            raise NotFound(f"no bank named {name!r}")
        return found[0]

    def create_bank(self, name: str, settings: BankSettings) -> Bank:
        check_bank_name(name)
        now = records.now()
        with self._write() as db:
            if db.execute(
                "SELECT 1 FROM banks WHERE name = ? AND deleted_at IS NULL", (name,)
            ).fetchone():
                raise AlreadyExists(f"bank {name!r} already exists")
            cur = db.execute(
                "INSERT INTO banks (name, created_at, updated_at) VALUES (?, ?, ?)",
                (name, now, now),
            )
            self._apply_settings(db, int(cur.lastrowid or 0), settings, now)
            return self._bank(db, name)

    def _apply_settings(
        self, db: sqlite3.Connection, bank_id: int, s: BankSettings, now: str
    ) -> None:
        fields = records.settings_columns(s)
        if fields or s.shared_with is not None:
            fields["updated_at"] = now
            assignments = ", ".join(f"{k} = ?" for k in fields)
            db.execute(f"UPDATE banks SET {assignments} WHERE id = ?", (*fields.values(), bank_id))
        if s.shared_with is not None:
            # Invitations kept stay as they were (accepted or not); new ones wait.
            marks = ",".join("?" * len(s.shared_with))
            db.execute(
                f"DELETE FROM bank_shares WHERE bank_id = ? AND tenant NOT IN ({marks})",
                (bank_id, *sorted(s.shared_with)),
            )
            db.executemany(
                "INSERT INTO bank_shares (bank_id, tenant) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(bank_id, t) for t in sorted(s.shared_with)],
            )

    def get_bank(self, name: str) -> Bank:
        with self._read() as db:
            return self._bank(db, name)

    def set_share_accepted(self, name: str, tenant: str, accepted: bool) -> Bank:
        with self._write() as db:
            bank = self._bank(db, name)
            if tenant not in bank.shared_with:
                raise NotFound(f"no bank named {name!r}")  # as for any bank not seen
            now = records.now()
            db.execute(
                "UPDATE bank_shares SET accepted_at = ? WHERE bank_id = ? AND tenant = ?",
                (now if accepted else None, bank.id, tenant),
            )
            # A bank change in the log: matchers pick the share up within a second.
            db.execute("UPDATE banks SET updated_at = ? WHERE id = ?", (now, bank.id))
            return self._bank(db, name)

    def list_banks(self) -> list[Bank]:
        with self._read() as db:
            return self._bank_rows(db, "", ())

    def banks_by_id(self) -> dict[int, Bank]:
        return {b.id: b for b in self.list_banks()}

    def update_bank(self, name: str, settings: BankSettings) -> Bank:
        with self._write() as db:
            bank = self._bank(db, name)
            self._apply_settings(db, bank.id, settings, records.now())
            return self._bank(db, name)

    def delete_bank(self, name: str) -> None:
        """Tombstones the bank and every live entry in it (logged, so followers drop them)."""
        now = records.now()
        with self._write() as db:
            bank = self._bank(db, name)
            self.check_unfed(db, bank.id)
            db.execute(
                "UPDATE entries SET removed_at = ? WHERE bank_id = ? AND removed_at IS NULL",
                (now, bank.id),
            )
            db.execute(
                "UPDATE banks SET deleted_at = ?, updated_at = ? WHERE id = ?", (now, now, bank.id)
            )

    # -- entries -------------------------------------------------------------------------
    def write_entries(
        self,
        bank: str,
        entries: Iterable[NewEntry],
        remove_external_ids: Iterable[str] = (),
    ) -> WriteReport:
        removals = [Tombstone(x) for x in sorted(set(remove_external_ids))]
        return self.import_entries(bank, itertools.chain(entries, removals))

    def import_entries(
        self,
        bank: str,
        events: Iterable[NewEntry | Tombstone],
        chunk: int = 10_000,
        progress: Progress | None = None,
    ) -> WriteReport:
        report = WriteReport()
        now = records.now()
        with self._write() as db:
            b = self._bank(db, bank)
            self._stage(db, events, chunk, report)
            self._merge(db, b.id, now, report)
            if progress is not None:
                self.advance(db, b.id, progress, report)
        return report

    @staticmethod
    def _stage(
        db: sqlite3.Connection,
        events: Iterable[NewEntry | Tombstone],
        chunk: int,
        report: WriteReport,
    ) -> None:
        """The events into temp tables (on disk: bounded memory), in order."""
        for statement in _STAGING:
            db.execute(statement)
        seq = 0
        it = iter(events)
        while part := list(itertools.islice(it, chunk)):
            adds = [(seq + k, e.signal_type.value, e.value, e.label, e.external_id, e.source)
                    for k, e in enumerate(part) if isinstance(e, NewEntry)]  # fmt: skip
            gone = [(seq + k, e.external_id) for k, e in enumerate(part)
                    if isinstance(e, Tombstone)]  # fmt: skip
            seq += len(part)
            before = db.total_changes
            db.executemany(
                "INSERT INTO staging VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", adds
            )
            report.duplicates += len(adds) - (db.total_changes - before)
            db.executemany("INSERT INTO staging_removals VALUES (?, ?)", gone)
        # Per external id the later event wins: entries before a tombstone of their id go;
        # a tombstone followed by entries of its id removes the id's other values (an
        # upstream record replaced by what it holds now).
        db.execute(
            "DELETE FROM staging WHERE external_id IS NOT NULL AND EXISTS (SELECT 1 FROM"
            " staging_removals r WHERE r.external_id = staging.external_id"
            " AND r.seq > staging.seq)"
        )

    @staticmethod
    def _merge(db: sqlite3.Connection, bank_id: int, now: str, report: WriteReport) -> None:
        """What was staged, into the bank: added, revived, relabelled or unchanged; then
        the tombstones. The staging tables are emptied again."""
        key = "e.bank_id = ? AND e.signal_type = s.signal_type AND e.value = s.value"
        differs = (
            "(e.label IS NOT s.label OR e.external_id IS NOT s.external_id"
            " OR e.source IS NOT s.source)"
        )
        staged = db.execute("SELECT count(*) FROM staging").fetchone()[0]
        # CROSS JOIN: staging drives (SQLite has no statistics for a temp table and would
        # otherwise walk the whole bank by its bank_id index, once per import).
        report.revived, report.updated, existing = db.execute(
            f"SELECT coalesce(sum(e.removed_at IS NOT NULL), 0),"
            f" coalesce(sum(e.removed_at IS NULL AND {differs}), 0), count(*)"
            f" FROM staging s CROSS JOIN entries e ON {key}",
            (bank_id,),
        ).fetchone()
        report.added = staged - existing
        report.unchanged = existing - report.revived - report.updated
        # Materialized first: UPDATE ... FROM would drive from the target table.
        db.execute(
            f"WITH u AS MATERIALIZED (SELECT e.id, s.label, s.external_id, s.source"
            f" FROM staging s CROSS JOIN entries e ON {key}"
            f" WHERE e.removed_at IS NOT NULL OR {differs})"
            f" UPDATE entries SET label = u.label, external_id = u.external_id,"
            f" source = u.source,"
            f" added_at = CASE WHEN entries.removed_at IS NULL THEN entries.added_at ELSE ? END,"
            f" removed_at = NULL FROM u WHERE entries.id = u.id",
            (bank_id, now),
        )
        db.execute(
            "INSERT INTO entries (bank_id, signal_type, value, label, external_id, source,"
            " added_at) SELECT ?, s.signal_type, s.value, s.label, s.external_id, s.source, ?"
            " FROM staging s WHERE NOT EXISTS"
            f" (SELECT 1 FROM entries e WHERE {key}) ORDER BY s.seq",
            (bank_id, now, bank_id),
        )
        cur = db.execute(
            "UPDATE entries SET removed_at = ? WHERE bank_id = ? AND removed_at IS NULL"
            " AND external_id IN (SELECT external_id FROM staging_removals)"
            " AND NOT EXISTS (SELECT 1 FROM staging s WHERE s.signal_type = entries.signal_type"
            " AND s.value = entries.value)",
            (now, bank_id),
        )
        report.removed = max(cur.rowcount, 0)
        db.execute("DELETE FROM staging")
        db.execute("DELETE FROM staging_removals")

    def remove_entries(self, bank: str, values: Iterable[tuple[SignalType, bytes]]) -> int:
        now = records.now()
        keys = sorted({(t.value, v) for t, v in values})
        removed = 0
        with self._write() as db:
            b = self._bank(db, bank)
            for t, v in keys:
                cur = db.execute(
                    "UPDATE entries SET removed_at = ? WHERE bank_id = ? AND signal_type = ?"
                    " AND value = ? AND removed_at IS NULL",
                    (now, b.id, t, v),
                )
                removed += cur.rowcount
        return removed

    def list_entries(self, bank: str, after_id: int = 0, limit: int = 1000) -> list[Entry]:
        with self._read() as db:
            b = self._bank(db, bank)
            rows = db.execute(
                f"SELECT {records.ENTRY_COLUMNS} FROM entries WHERE bank_id = ? AND id > ?"
                " AND removed_at IS NULL ORDER BY id LIMIT ?",
                (b.id, after_id, limit),
            ).fetchall()
        return [records.entry(r) for r in rows]

    def count_entries(self, bank: str) -> dict[SignalType, int]:
        with self._read() as db:
            b = self._bank(db, bank)
            rows = db.execute(
                "SELECT signal_type, count(*) FROM entries WHERE bank_id = ?"
                " AND removed_at IS NULL GROUP BY signal_type",
                (b.id,),
            ).fetchall()
        counts = dict.fromkeys(SignalType, 0)
        counts.update({SignalType(t): n for t, n in rows})
        return counts

    def entries_by_id(self, ids: Sequence[int]) -> dict[int, Entry]:
        unique = sorted({int(i) for i in ids})
        out: dict[int, Entry] = {}
        with self._read() as db:
            for i in range(0, len(unique), _IN_CHUNK):
                part = unique[i : i + _IN_CHUNK]
                marks = ",".join("?" * len(part))
                for r in db.execute(
                    f"SELECT {records.ENTRY_COLUMNS} FROM entries WHERE id IN ({marks})", part
                ):
                    out[r[0]] = records.entry(r)
        return out

    def lookup(self, signal_type: SignalType, values: Sequence[bytes]) -> list[list[int]]:
        with self._read() as db:
            return [
                [
                    r[0]
                    for r in db.execute(
                        "SELECT e.id FROM entries e JOIN banks b ON b.id = e.bank_id"
                        " WHERE e.signal_type = ? AND e.value = ? AND e.removed_at IS NULL"
                        " AND b.deleted_at IS NULL ORDER BY e.id",
                        (signal_type.value, v),
                    )
                ]
                for v in values
            ]

    # -- change log ----------------------------------------------------------------------
    def current_sequence(self) -> int:
        with self._read() as db:
            row = db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
        return int(row[0])

    def changes_since(self, seq: int, limit: int = 100_000) -> list[Change]:
        with self._read() as db:
            rows = db.execute(
                "SELECT c.seq, c.kind, c.bank_id, c.entry_id, e.signal_type, e.value, e.label,"
                " e.source FROM changes c LEFT JOIN entries e ON e.id = c.entry_id"
                " WHERE c.seq > ? ORDER BY c.seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [
            Change(
                seq=r[0],
                kind=ChangeKind(r[1]),
                bank_id=r[2],
                entry_id=r[3],
                signal_type=SignalType(r[4]) if r[4] is not None else None,
                value=bytes(r[5]) if r[5] is not None else None,
                label=r[6],
                source=r[7],
            )
            for r in rows
        ]

    def live_signals(self) -> LiveState:
        out: dict[SignalType, tuple[np.ndarray, np.ndarray]] = {}
        with self._read() as db:
            seq = int(db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])
            for st in SignalType:
                out[st] = self._live_of(db, st)
            ids, bank_ids, labels, sources = self._live_meta(db)
        return LiveState(seq, out, ids, bank_ids, labels, sources)

    @staticmethod
    def _live_meta(
        db: sqlite3.Connection,
    ) -> tuple[np.ndarray, np.ndarray, list[str | None], list[str | None]]:
        cur = db.execute(
            "SELECT e.id, e.bank_id, e.label, e.source FROM entries e"
            " JOIN banks b ON b.id = e.bank_id"
            " WHERE e.removed_at IS NULL AND b.deleted_at IS NULL ORDER BY e.id"
        )
        ids: list[int] = []
        banks: list[int] = []
        labels: list[str | None] = []
        sources: list[str | None] = []
        while rows := cur.fetchmany(1 << 16):
            for r in rows:
                ids.append(r[0])
                banks.append(r[1])
                labels.append(r[2])
                sources.append(r[3])
        return np.array(ids, np.int64), np.array(banks, np.int32), labels, sources

    @staticmethod
    def _live_of(db: sqlite3.Connection, st: SignalType) -> tuple[np.ndarray, np.ndarray]:
        cur = db.execute(
            "SELECT e.id, e.value FROM entries e JOIN banks b ON b.id = e.bank_id"
            " WHERE e.signal_type = ? AND e.removed_at IS NULL AND b.deleted_at IS NULL"
            " ORDER BY e.id",
            (st.value,),
        )
        ids_parts: list[np.ndarray] = []
        value_parts: list[np.ndarray] = []
        while rows := cur.fetchmany(1 << 16):
            ids_parts.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            blob = b"".join(r[1] for r in rows)
            value_parts.append(np.frombuffer(blob, dtype=np.uint8).reshape(-1, st.nbytes))
        if not ids_parts:
            return np.empty(0, np.int64), np.empty((0, st.nbytes), np.uint8)
        return np.concatenate(ids_parts), np.concatenate(value_parts)
