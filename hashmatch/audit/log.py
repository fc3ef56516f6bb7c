"""A keyed, hash-chained audit log in its own SQLite file (one writer at a time).

Each record carries a MAC of itself and the record before it: hash = HMAC-SHA256(key,
prev_hash || timestamp || canonical JSON of the record), with a key kept outside the
database (`audit.key` beside it by default, 0600), so whoever can write the database but
not read the key cannot re-chain edited records. After every commit the writer signs the
head (last sequence number and hash) into `audit.head`, numbered monotonically, so
deleting the last records (truncation) is caught as well. `verify` recomputes the chain
from the (signed) retention anchor: an edited byte, a deleted record, two records swapped
or a cut tail are all detected. Records hold counts, codes and ids: no image bytes and no
hashes of the caller's content. (Records written before the chain was keyed are checked
with the unkeyed SHA-256 they were written with; the first keyed record chains to them.)

Writes are queued and committed by a background thread every `flush_interval_s` in one
transaction, so a busy server pays microseconds per call; `close()` flushes what is queued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hashmatch.errors import InternalError
from hashmatch.storage.sqlite import migrate, write_transaction

GENESIS = "0" * 64
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


def chain_hash(key: bytes | None, prev: str, ts: str, record: str) -> str:
    """The record's link: keyed (HMAC) from the key's first use on, SHA-256 before."""
    body = f"{prev}\n{ts}\n{record}".encode()
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _mac(key: bytes, kind: str, seq: int, digest: str) -> str:
    return hmac.new(key, f"{kind}\n{seq}\n{digest}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditFiles:
    """The database, its key and its signed head (both beside it unless said)."""

    db: Path
    key: Path | None = None
    head: Path | None = None

    @property
    def key_path(self) -> Path:
        return self.key or self.db.with_suffix(".key")

    @property
    def head_path(self) -> Path:
        return self.head or self.db.with_suffix(".head")

    def load_key(self, create: bool) -> bytes:
        """The chain key; made (0600) on a first write, required for verifying."""
        path = self.key_path
        if not path.exists():
            if not create:
                raise InternalError(f"no audit key at {path}: the chain cannot be checked")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        key = path.read_bytes()
        if len(key) < 32:
            raise InternalError(f"{path}: an audit key is 32 bytes or more")
        return key

    def write_head(self, key: bytes, seq: int, digest: str) -> None:
        """Signed, atomically replaced; never moved back (a lower seq is ignored)."""
        current = self.read_head()
        if current is not None and current[0] > seq:
            return
        body = json.dumps({"seq": seq, "hash": digest, "mac": _mac(key, "head", seq, digest)})
        fd, tmp = tempfile.mkstemp(prefix="audit.head.", dir=self.head_path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.head_path)

    def read_head(self) -> tuple[int, str, str] | None:
        try:
            head = json.loads(self.head_path.read_text())
            return int(head["seq"]), str(head["hash"]), str(head["mac"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return (-1, "", "")  # unreadable: verify says so


def _canonical(event: AuditEvent) -> str:
    return json.dumps(event.to_json(), sort_keys=True, separators=(",", ":"))


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    migrate(db, threading.RLock(), path, MIGRATIONS)
    return db


def _keyed_from(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM audit_meta WHERE key = 'keyed_from'").fetchone()
    return int(row[0]) if row else 1


MAX_WRITE = 1024  # events in one transaction


class AuditLog:
    def __init__(self, files: AuditFiles | Path, flush_interval_s: float = 0.05) -> None:
        self.files = files if isinstance(files, AuditFiles) else AuditFiles(files)
        self.path = self.files.db
        self._db = _connect(self.path)
        self._key = self.files.load_key(create=True)
        self._lock = threading.RLock()
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue()
        self._interval = flush_interval_s
        self._thread = threading.Thread(target=self._run, name="hashmatch-audit", daemon=True)
        self._thread.start()

    def append(self, event: AuditEvent) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        """Events gathered for up to one flush interval, then written in one transaction
        with one signed head: one fsync per interval under load, not one per call."""
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=self._interval)
            except queue.Empty:
                continue
            batch: list[AuditEvent] = []
            until = time.monotonic() + self._interval
            item: AuditEvent | None = first
            while True:
                if item is None:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= MAX_WRITE:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

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
                digest = chain_hash(self._key, prev, ts, record)
                db.execute(
                    "INSERT INTO audit (seq, ts, record, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
                    (seq, ts, record, prev, digest),
                )
                prev = digest
        self.files.write_head(self._key, seq, prev)

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


def verify(files: AuditFiles | Path) -> VerifyReport:
    """Recompute the chain from the anchor and compare its end with the signed head: any
    edit, deletion, reordering or cut tail shows."""
    files = files if isinstance(files, AuditFiles) else AuditFiles(files)
    report = VerifyReport()
    key = files.load_key(create=False)
    db = _connect(files.db)

    def problem(text: str) -> None:
        report.ok = False
        report.problems.append(text)

    # The head first: it is written after its records commit, so every record it names
    # is in the database when it is read after it (a server may be appending meanwhile).
    head = files.read_head()
    head_link = ""
    try:
        keyed_from = _keyed_from(db)
        anchor = db.execute("SELECT seq, hash, mac FROM audit_anchor").fetchone()
        seq, prev = (anchor[0], anchor[1]) if anchor is not None else (0, GENESIS)
        if anchor is not None and anchor[2] != _mac(key, "anchor", anchor[0], anchor[1]):
            problem("the retention anchor is not signed by this installation's key (edited)")
        for row_seq, ts, record, prev_hash, digest in db.execute(
            "SELECT seq, ts, record, prev_hash, hash FROM audit ORDER BY seq"
        ):
            report.records += 1
            link = key if row_seq >= keyed_from else None
            if row_seq != seq + 1:
                problem(f"record {row_seq}: expected sequence {seq + 1} (records deleted?)")
            elif prev_hash != prev:
                problem(f"record {row_seq}: does not follow record {seq} (reordered or edited?)")
            elif chain_hash(link, prev, ts, record) != digest:
                problem(f"record {row_seq}: content does not match its hash (edited)")
            seq, prev = row_seq, digest
            if head is not None and row_seq == head[0]:
                head_link = digest
        if head is not None:
            head_seq, head_hash, head_mac = head
            if head_mac != _mac(key, "head", head_seq, head_hash):
                problem("the signed head is not this installation's (edited or replaced)")
            elif head_seq > seq:
                problem(f"records {seq + 1}..{head_seq} are missing (the log was cut)")
            elif head_link != head_hash and head_seq > (anchor[0] if anchor else 0):
                problem(f"record {head_seq}: is not the one the head signed (edited)")
        elif report.records:
            problem(f"no signed head at {files.head_path} (deleted?)")
    finally:
        db.close()
    return report


def prune(files: AuditFiles | Path, keep_days: int, now: datetime | None = None) -> int:
    """Retention: drop records older than keep_days; the signed anchor keeps the chain
    checkable."""
    files = files if isinstance(files, AuditFiles) else AuditFiles(files)
    key = files.load_key(create=False)
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=keep_days)).isoformat()
    db = _connect(files.db)
    try:
        with write_transaction(db, threading.RLock()):
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
                (*last, _mac(key, "anchor", last[0], last[1])),
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
