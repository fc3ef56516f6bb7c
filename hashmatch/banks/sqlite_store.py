"""BankStore on an embedded SQLite file: WAL, foreign keys, versioned migrations.

Plain SQL that PostgreSQL also speaks (UPDATE ... FROM, partial unique indexes, triggers
writing the change log). The change log is filled by triggers, so no code path can change
an entry without logging it (but an import's INSERT, which logs its id range itself, in one
row), and in the same transaction as the change: a reader that
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
    Entry,
    EntryBatch,
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

SCHEMA_VERSION = 6

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
    (
        # One row logs an import's new entries, ids entry_id..last_entry_id, in sequence
        # numbers seq - (last_entry_id - entry_id)..seq (changes_since expands it).
        """ALTER TABLE changes ADD COLUMN last_entry_id INTEGER""",
    ),
    (
        # A bank's live entries: pages by id, counts per signal type (read in the index
        # alone). Without them both read every entry of the bank.
        """CREATE INDEX entries_bank_page ON entries (bank_id, id) WHERE removed_at IS NULL""",
        """CREATE INDEX entries_bank_count ON entries (bank_id, signal_type)
        WHERE removed_at IS NULL""",
    ),
)

# An import's staging, in the temp database (a file: an import of any size stays small in
# memory), appended to in event order (seq); duplicates and tombstones are settled at merge.
_UNSTAGE = (
    "DROP INDEX IF EXISTS temp.staging_external",
    "DROP INDEX IF EXISTS temp.staging_key",
    "DROP INDEX IF EXISTS temp.staging_removals_external",
    "DROP TABLE IF EXISTS temp.hits",
    "DELETE FROM staging",
    "DELETE FROM staging_removals",
)
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS staging (seq INTEGER PRIMARY KEY, signal_type TEXT NOT NULL,"
    " value BLOB NOT NULL, label TEXT, external_id TEXT, source TEXT)",
    "CREATE TEMP TABLE IF NOT EXISTS staging_removals (seq INTEGER NOT NULL,"
    " external_id TEXT NOT NULL)",
    *_UNSTAGE,
)
_CACHE_KIB = 64 * 1024
_REBUILD_MIN = 100_000  # staged rows for which an index rebuild can pay
_STAGE_ROW = "INSERT INTO staging VALUES (?, ?, ?, ?, ?, ?)"
# Page cache of an import, KiB (the sorter of its merge takes as much again): with the
# process itself, under 300 MB at any size.
_IMPORT_CACHE_KIB = 32 * 1024
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
            # 64 MiB of page cache (default 2 MiB): writes insert into indexes on random
            # 32-byte keys, which thrash a small cache.
            self._db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
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
            # The bank's change first in the log: a follower hides the bank before it has
            # worked through its entries' removals.
            db.execute(
                "UPDATE banks SET deleted_at = ?, updated_at = ? WHERE id = ?", (now, now, bank.id)
            )
            db.execute(
                "UPDATE entries SET removed_at = ? WHERE bank_id = ? AND removed_at IS NULL",
                (now, bank.id),
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
        events: Iterable[NewEntry | Tombstone | EntryBatch],
        chunk: int = 10_000,
        progress: Progress | None = None,
    ) -> WriteReport:
        report = WriteReport()
        now = records.now()
        with self._write() as db:
            b = self._bank(db, bank)
            db.execute(f"PRAGMA cache_size = -{_IMPORT_CACHE_KIB}")
            try:
                self._stage(db, events, chunk)
                self._merge(db, b.id, now, report)
            finally:
                db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            if progress is not None:
                self.advance(db, b.id, progress, report)
        return report

    @staticmethod
    def _stage(
        db: sqlite3.Connection, events: Iterable[NewEntry | Tombstone | EntryBatch], chunk: int
    ) -> None:
        """The events into temp tables (on disk: bounded memory), in order."""
        for statement in _STAGING:
            db.execute(statement)
        seq = 0
        part: list[NewEntry | Tombstone] = []
        for e in events:
            if isinstance(e, EntryBatch):
                seq = _stage_part(db, part, seq)
                part.clear()
                db.executemany(_STAGE_ROW, _batch_rows(e, seq))
                seq += len(e)
                continue
            part.append(e)
            if len(part) >= chunk:
                seq = _stage_part(db, part, seq)
                part.clear()
        _stage_part(db, part, seq)

    @staticmethod
    def _merge(db: sqlite3.Connection, bank_id: int, now: str, report: WriteReport) -> None:
        """What was staged, into the bank: added, revived, relabelled or unchanged (of rows
        with one value the first counts, the rest are duplicates); then the tombstones."""
        removals = db.execute("SELECT count(*) FROM staging_removals").fetchone()[0]
        if removals:
            _settle_removals(db)
        staged = db.execute("SELECT count(*) FROM staging").fetchone()[0]
        existing = _update_existing(db, bank_id, now, report)
        report.added = _insert_new(db, bank_id, now)
        report.duplicates += staged - existing - report.added
        if removals:
            db.execute("CREATE INDEX temp.staging_key ON staging (signal_type, value)")
            cur = db.execute(
                "UPDATE entries SET removed_at = ? WHERE bank_id = ? AND removed_at IS NULL"
                " AND external_id IN (SELECT external_id FROM staging_removals)"
                " AND NOT EXISTS (SELECT 1 FROM staging s"
                " WHERE s.signal_type = entries.signal_type AND s.value = entries.value)",
                (now, bank_id),
            )
            report.removed = max(cur.rowcount, 0)
        for statement in _UNSTAGE:
            db.execute(statement)

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
            rows = db.execute(records.CHANGES_SINCE.format(p="?"), (seq, limit)).fetchall()
            between = records.ENTRIES_BETWEEN.format(p="?")
            return records.changes_of(
                rows, seq, limit, lambda lo, hi: db.execute(between, (lo, hi)).fetchall()
            )

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


def _stage_part(db: sqlite3.Connection, part: list[NewEntry | Tombstone], seq: int) -> int:
    """Events one by one (entries and tombstones), numbered from seq; the next seq."""
    adds = [(seq + k, e.signal_type.value, e.value, e.label, e.external_id, e.source)
            for k, e in enumerate(part) if isinstance(e, NewEntry)]  # fmt: skip
    gone = [(seq + k, e.external_id) for k, e in enumerate(part) if isinstance(e, Tombstone)]
    db.executemany(_STAGE_ROW, adds)
    db.executemany("INSERT INTO staging_removals VALUES (?, ?)", gone)
    return seq + len(part)


def _batch_rows(batch: EntryBatch, seq: int) -> Iterator[tuple[object, ...]]:
    """A batch's staging rows, built in C (zip over columns), numbered from seq."""
    n = len(batch)
    width = batch.signal_type.nbytes
    blob = np.ascontiguousarray(batch.values).tobytes()
    return zip(
        range(seq, seq + n),
        itertools.repeat(batch.signal_type.value),
        [blob[i : i + width] for i in range(0, n * width, width)],
        batch.labels.to_pylist(),
        batch.external_ids.to_pylist(),
        itertools.repeat(batch.source),
    )


def _settle_removals(db: sqlite3.Connection) -> None:
    """Per external id the later event wins: entries before a tombstone of their id go;
    a tombstone followed by entries of its id removes the id's other values (an upstream
    record replaced by what it holds now)."""
    db.execute("CREATE INDEX temp.staging_external ON staging (external_id)")
    db.execute("CREATE INDEX temp.staging_removals_external ON staging_removals (external_id)")
    db.execute(
        "DELETE FROM staging WHERE external_id IS NOT NULL AND EXISTS (SELECT 1 FROM"
        " staging_removals r WHERE r.external_id = staging.external_id"
        " AND r.seq > staging.seq)"
    )


def _update_existing(db: sqlite3.Connection, bank_id: int, now: str, report: WriteReport) -> int:
    """Revives and relabels the bank's entries that staged values name (each by its first
    staged row); how many entries were named."""
    differs = (
        "(e.label IS NOT s.label OR e.external_id IS NOT s.external_id OR e.source IS NOT s.source)"
    )
    # CROSS JOIN: staging drives (SQLite has no statistics for a temp table and would
    # otherwise walk the whole bank by its bank_id index). With min(), SQLite takes the
    # other columns from the row holding the minimum: the first staged row of a value.
    db.execute(
        "CREATE TEMP TABLE hits AS SELECT e.id AS id, min(s.seq) AS seq, s.label AS label,"
        " s.external_id AS external_id, s.source AS source,"
        f" e.removed_at IS NOT NULL AS dead, {differs} AS differs"
        " FROM staging s CROSS JOIN entries e ON e.bank_id = ? AND e.signal_type = s.signal_type"
        " AND e.value = s.value GROUP BY e.id",
        (bank_id,),
    )
    report.revived, report.updated, existing = db.execute(
        "SELECT coalesce(sum(dead), 0), coalesce(sum(NOT dead AND differs), 0), count(*) FROM hits"
    ).fetchone()
    report.unchanged = existing - report.revived - report.updated
    db.execute(
        "UPDATE entries SET label = h.label, external_id = h.external_id, source = h.source,"
        " added_at = CASE WHEN entries.removed_at IS NULL THEN entries.added_at ELSE ? END,"
        " removed_at = NULL FROM hits h WHERE entries.id = h.id AND (h.dead OR h.differs)",
        (now,),
    )
    return int(existing)


def _insert_new(db: sqlite3.Connection, bank_id: int, now: str) -> int:
    """Staged values the bank lacks, first rows only, as new entries; how many. In key
    order (the unique index then grows at its end instead of at random pages), with the
    per-entry trigger set aside: one change-log row names the whole id range (SQLite gives
    one statement's rows consecutive ids, max(id) + 1 on), and takes as many sequence
    numbers as it holds entries."""
    (trigger,) = db.execute(
        "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'entries_added'"
    ).fetchone()
    (before,) = db.execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()
    # In key order the external ids come at random: an import as large as the table
    # rebuilds their index once (a sort) instead of inserting at random pages.
    (staged,) = db.execute("SELECT count(*) FROM staging").fetchone()
    (external,) = db.execute(
        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = 'entries_external'"
    ).fetchone()
    rebuild = staged >= _REBUILD_MIN and staged >= before
    if rebuild:
        db.execute("DROP INDEX entries_external")
    db.execute("DROP TRIGGER entries_added")  # restored below, in the same transaction
    cur = db.execute(
        "INSERT INTO entries (bank_id, signal_type, value, label, external_id, source,"
        " added_at) SELECT ?, signal_type, value, label, external_id, source, ? FROM staging"
        " WHERE true ORDER BY signal_type, value, seq ON CONFLICT DO NOTHING",
        (bank_id, now),
    )
    db.execute(trigger)
    if rebuild:
        db.execute(external)
    added = max(cur.rowcount, 0)
    if added:
        db.execute(
            "INSERT INTO changes (seq, kind, bank_id, entry_id, last_entry_id, at) VALUES"
            " ((SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'changes') + ?,"
            " 'add', ?, ?, ?, ?)",
            (added, bank_id, before + 1, before + added, now),
        )
    return added
