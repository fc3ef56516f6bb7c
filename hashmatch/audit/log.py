"""A keyed, hash-chained audit log: one chain per installation (SQLite's file, or one
PostgreSQL table that every replica appends to).

Each record carries a MAC of itself and the record before it: hash = HMAC-SHA256(key,
prev_hash || timestamp || canonical JSON of the record), with a key kept outside the
database (`audit.key` in the data dir by default, 0600; on PostgreSQL every replica is given
the same one, `[storage] audit_key_file`), so whoever can write the database but not read
the key cannot re-chain edited records. After every commit the writer signs the head (last
sequence number and hash) into `audit.head` in its data dir, numbered monotonically (and, on
PostgreSQL, into the database in the same transaction), so deleting the last records
(truncation) is caught as well. `verify` recomputes the chain from the (signed) retention
anchor: an edited byte, a deleted record, two records swapped or a cut tail are all
detected. Records hold counts, codes and ids: no image bytes and no hashes of the caller's
content. (Records written before the chain was keyed are checked with the unkeyed SHA-256
they were written with; the first keyed record chains to them.)

Writes are queued and committed by a background thread every `flush_interval_s` in one
transaction, so a busy server pays microseconds per call; `close()` flushes what is queued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hashmatch.audit.sqlite_tables import SqliteAuditTables
from hashmatch.audit.tables import GENESIS, AuditTables, Row, Signed
from hashmatch.errors import ConfigError, HashmatchError, InternalError

log = logging.getLogger(__name__)
__all__ = ["GENESIS", "AuditEvent", "AuditFiles", "AuditLog", "prune", "records", "verify"]


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


def _fingerprint(key: bytes) -> str:
    """Names the key without revealing it: replicas given different keys are caught."""
    return hmac.new(key, b"hashmatch audit key", hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class AuditFiles:
    """The chain's key and this process's signed head (files apart from the database)."""

    key: Path
    head: Path

    @classmethod
    def beside(cls, db: Path) -> AuditFiles:
        return cls(db.with_suffix(".key"), db.with_suffix(".head"))

    def load_key(self, create: bool) -> bytes:
        """The chain key; made (0600) on a first write, required for verifying."""
        path = self.key
        if not path.exists():
            if not create:
                raise InternalError(f"no audit key at {path}: the chain cannot be checked")
            path.parent.mkdir(parents=True, exist_ok=True)
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
        fd, tmp = tempfile.mkstemp(prefix="audit.head.", dir=self.head.parent)
        with os.fdopen(fd, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.head)

    def read_head(self) -> Signed | None:
        try:
            head = json.loads(self.head.read_text())
            return int(head["seq"]), str(head["hash"]), str(head["mac"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return (-1, "", "")  # unreadable: verify says so


def _canonical(event: AuditEvent) -> str:
    return json.dumps(event.to_json(), sort_keys=True, separators=(",", ":"))


def open_sqlite(db: Path) -> tuple[SqliteAuditTables, AuditFiles]:
    """The embedded chain: its SQLite file, with its key and head beside it."""
    return SqliteAuditTables(db), AuditFiles.beside(db)


MAX_WRITE = 1024  # events in one transaction


class AuditLog:
    def __init__(
        self, tables: AuditTables, files: AuditFiles, flush_interval_s: float = 0.05
    ) -> None:
        self.tables, self.files = tables, files
        self._key = files.load_key(create=True)
        if tables.claim_key(_fingerprint(self._key)) != _fingerprint(self._key):
            raise ConfigError(
                f"the audit key at {files.key} is not the one this audit chain is signed"
                " with: give every replica the same key ([storage] audit_key_file)"
            )
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue()
        self._interval = flush_interval_s
        self._thread = threading.Thread(target=self._run, name="hashmatch-audit", daemon=True)
        self._thread.start()

    def append(self, event: AuditEvent) -> None:
        self._queue.put(event)

    def derived_key(self, purpose: str) -> bytes:
        """A secret for another use, from the chain's key (so every replica holds it)."""
        return hmac.new(self._key, f"hashmatch {purpose}".encode(), hashlib.sha256).digest()

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
                self._write_retrying(batch)

    def _write_retrying(self, events: list[AuditEvent]) -> None:
        """A lost database keeps the events queued here (retried), never drops them."""
        delay = 0.1
        while True:
            try:
                self._write(events)
                return
            except HashmatchError as exc:
                log.warning("audit write failed (%s); retrying in %.1f s", exc.message, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _write(self, events: list[AuditEvent]) -> None:
        key = self._key

        def links(seq: int, prev: str) -> list[Row]:
            rows = []
            for event in events:
                seq += 1
                ts = datetime.now(UTC).isoformat(timespec="microseconds")
                record = _canonical(event)
                digest = chain_hash(key, prev, ts, record)
                rows.append((seq, ts, record, prev, digest))
                prev = digest
            return rows

        seq, digest = self.tables.append(links, lambda s, h: _mac(key, "head", s, h))
        self.files.write_head(key, seq, digest)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self.tables.close()


@dataclass
class VerifyReport:
    records: int = 0
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)  # the signed heads the chain was held to
    notes: list[str] = field(default_factory=list)  # what this check could not see

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "ok": self.ok, "problems": self.problems,
                "heads": self.heads, "notes": self.notes}  # fmt: skip


def verify(tables: AuditTables, files: AuditFiles) -> VerifyReport:
    """Recompute the chain from the anchor and compare its end with every signed head
    (the database's, on PostgreSQL, and this data dir's): any edit, deletion,
    reordering or cut tail shows."""
    report = VerifyReport()
    key = files.load_key(create=False)

    def problem(text: str) -> None:
        report.ok = False
        report.problems.append(text)

    # The local head first: it is written after its records commit, so every record it
    # names is in the view read after it (a server may be appending meanwhile).
    local = files.read_head()
    with tables.view() as chain:
        heads = [(h, w) for h, w in ((chain.head, "the database's signed head"),
                                     (local, f"the signed head at {files.head}")) if h]  # fmt: skip
        links: dict[int, str] = {}
        anchor = chain.anchor
        seq, prev = (anchor[0], anchor[1]) if anchor is not None else (0, GENESIS)
        if anchor is not None and anchor[2] != _mac(key, "anchor", anchor[0], anchor[1]):
            problem("the retention anchor is not signed by this installation's key (edited)")
        wanted = {h[0] for h, _ in heads}
        for row_seq, ts, record, prev_hash, digest in chain.rows:
            report.records += 1
            link = key if row_seq >= chain.keyed_from else None
            if row_seq != seq + 1:
                problem(f"record {row_seq}: expected sequence {seq + 1} (records deleted?)")
            elif prev_hash != prev:
                problem(f"record {row_seq}: does not follow record {seq} (reordered or edited?)")
            elif chain_hash(link, prev, ts, record) != digest:
                problem(f"record {row_seq}: content does not match its hash (edited)")
            seq, prev = row_seq, digest
            if row_seq in wanted:
                links[row_seq] = digest
    start = anchor[0] if anchor else 0
    report.heads = [f"{where}, record {h[0]}" for h, where in heads]
    if tables.shared and local is None:
        report.notes.append(
            f"no head of this data dir ({files.head}): a cut tail with an older database"
            " head put back would pass here; verify in each replica's data dir too"
        )
    for (head_seq, head_hash, head_mac), where in heads:
        if head_mac != _mac(key, "head", head_seq, head_hash):
            problem(f"{where} is not this installation's (edited or replaced)")
        elif head_seq > seq:
            problem(f"records {seq + 1}..{head_seq} are missing (the log was cut)")
        elif head_seq > start and links.get(head_seq) != head_hash:
            problem(f"record {head_seq}: is not the one {where} signed (edited)")
    if not heads and report.records:
        problem(f"no signed head at {files.head} (deleted?)")
    return report


def prune(
    tables: AuditTables, files: AuditFiles, keep_days: int, now: datetime | None = None
) -> int:
    """Retention: drop records older than keep_days; the signed anchor keeps the chain
    checkable."""
    key = files.load_key(create=False)
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=keep_days)).isoformat()
    return tables.prune(cutoff, lambda s, h: _mac(key, "anchor", s, h))


def records(
    tables: AuditTables, start: str = "", end: str = "9999"
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(timestamp, record) in order, start <= ts < end (ISO strings)."""
    for ts, record in tables.records(start, end):
        yield ts, json.loads(record)
