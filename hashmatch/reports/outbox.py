"""The durable report outbox (SQLite): committed first, then delivered step by step.

Each step's outcome (the endpoint's report id, each file's id, fileinfo sent, finished) is
committed before the next step starts, so a restarted process knows exactly where it was:
- before every file is uploaded, the file content (kept in memory only, never on disk) is
  gone: the opened report is retracted and marked failed ("resubmit");
- after: fileinfo and finish are (re)sent; a finish that had landed answers "already
  finished" (5102), so a report is filed at most once.
Idempotency keys make a client's retried CreateReport return the first report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hashmatch.errors import BadParameter, HashmatchError, NotFound
from hashmatch.reports.cybertip import CyberTipClient, DeliveryError
from hashmatch.reports.model import Report, ReportFile, ReportStatus
from hashmatch.storage.sqlite import migrate, write_transaction

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
# A claim lasts this long unless renewed by a step (a dead deliverer's claim expires).
LEASE_S = 120.0
log = logging.getLogger(__name__)
DONE = (ReportStatus.FINISHED, ReportStatus.RETRACTED, ReportStatus.FAILED)
_FILE_FIELDS = [f for f in ReportFile.__dataclass_fields__ if f != "content"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0


@dataclass
class ReportRecord:
    id: int
    idempotency_key: str
    tenant: str
    test: bool
    status: ReportStatus
    reason: str
    endpoint_report_id: str
    files: list[dict[str, Any]]
    attempts: int
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class ReportOutbox:
    def __init__(
        self,
        path: Path,
        client_for: Callable[[bool], CyberTipClient],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")  # a filed report must not be forgotten
        self._lock = threading.RLock()
        migrate(self._db, self._lock, path, MIGRATIONS)
        self.client_for = client_for
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    # -- records ---------------------------------------------------------------------------
    def create(
        self, report: Report, idempotency_key: str, tenant: str = ""
    ) -> tuple[ReportRecord, bool]:
        """Commit the report (metadata only: no file content). Returns (record, created)."""
        report.validate()
        meta = {k: v for k, v in asdict(report).items() if k != "files"}
        files = [
            {
                **{k: v for k, v in asdict(f).items() if k != "content"},
                "md5": hashlib.md5(f.content).hexdigest(),
                "size": len(f.content),
                "file_id": "",
                "described": False,
            }
            for f in report.files
        ]
        now = _now()
        # One transaction: the key is reserved by whoever commits first, in any process.
        with write_transaction(self._db, self._lock) as db:
            cur = db.execute(
                "INSERT INTO reports (idempotency_key, tenant, test, status, report, files,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant, idempotency_key) DO NOTHING",
                (idempotency_key, tenant, int(report.test), ReportStatus.QUEUED.value,
                 json.dumps(meta), json.dumps(files), now, now),
            )  # fmt: skip
            created = cur.rowcount == 1
            (report_id,) = db.execute(
                "SELECT id FROM reports WHERE tenant = ? AND idempotency_key = ?",
                (tenant, idempotency_key),
            ).fetchone()
        return self.get(int(report_id)), created

    def get(self, report_id: int, tenant: str | None = None) -> ReportRecord:
        row = self._db.execute(
            "SELECT id, idempotency_key, tenant, test, status, reason, endpoint_report_id, files,"
            " attempts, created_at, updated_at FROM reports WHERE id = ?",
            (report_id,),
        ).fetchone()
        if row is None or (tenant is not None and row[2] != tenant):
            raise NotFound(f"no report {report_id}")
        return ReportRecord(
            row[0], row[1], row[2], bool(row[3]), ReportStatus(row[4]), row[5], row[6],
            json.loads(row[7]), row[8], row[9], row[10],
        )  # fmt: skip

    def records(self, tenant: str | None = None) -> list[ReportRecord]:
        ids = self._db.execute(
            "SELECT id FROM reports WHERE ? IS NULL OR tenant = ? ORDER BY id", (tenant, tenant)
        ).fetchall()
        return [self.get(r[0]) for r in ids]

    def _update(self, rec: ReportRecord, **fields: Any) -> None:
        for k, v in fields.items():
            setattr(rec, k, v)
        rec.updated_at = _now()
        with self._lock:
            # Each step renews the deliverer's claim (a slow endpoint is no dead deliverer).
            self._db.execute(
                "UPDATE reports SET status = ?, reason = ?, endpoint_report_id = ?, files = ?,"
                " attempts = ?, updated_at = ?, claimed_until = CASE WHEN claimed_until IS"
                " NULL THEN NULL ELSE ? END WHERE id = ?",
                (rec.status.value, rec.reason, rec.endpoint_report_id, json.dumps(rec.files),
                 rec.attempts, rec.updated_at, time.time() + LEASE_S, rec.id),
            )  # fmt: skip

    # -- delivery --------------------------------------------------------------------------
    def file(
        self, report: Report, idempotency_key: str, tenant: str = "", wait_s: float = 300.0
    ) -> ReportRecord:
        """File a report: committed, then delivered. A retry with the same key returns the
        first report: while the first is being delivered it waits for that delivery (up to
        wait_s, then answers with the report as it stands), and it delivers what is left
        only when nobody else is, so nothing is filed twice."""
        self.client_for(report.test)  # reporting configured for this mode, or say so
        rec, _ = self.create(report, idempotency_key, tenant)
        deadline = time.monotonic() + wait_s
        while rec.status not in DONE:
            if self._claim(rec.id):
                try:
                    return self.deliver(self.get(rec.id), report)
                finally:
                    self._release(rec.id)
            if time.monotonic() >= deadline:
                break
            self._sleep(0.05)
            rec = self.get(rec.id)
        return rec

    def _claim(self, report_id: int) -> bool:
        """Take the report's delivery, unless someone holds an unexpired claim on it."""
        now = time.time()
        with write_transaction(self._db, self._lock) as db:
            cur = db.execute(
                "UPDATE reports SET claimed_until = ? WHERE id = ?"
                " AND (claimed_until IS NULL OR claimed_until < ?)",
                (now + LEASE_S, report_id, now),
            )
        return cur.rowcount == 1

    def _release(self, report_id: int) -> None:
        with write_transaction(self._db, self._lock) as db:
            db.execute("UPDATE reports SET claimed_until = NULL WHERE id = ?", (report_id,))

    def deliver(self, record: ReportRecord, report: Report | None) -> ReportRecord:
        """Run the remaining steps, with retries and backoff, while the content is in memory
        (report None: no content held, only the steps after the uploads can run)."""
        client = self.client_for(record.test)
        delay = self.retry.backoff_s
        while record.status not in DONE:
            try:
                self._step(client, record, report)
            except DeliveryError as exc:
                self._update(record, attempts=record.attempts + 1, reason=str(exc))
                if not exc.retry or record.attempts >= self.retry.attempts:
                    self._fail(client, record, f"{exc} (after {record.attempts} attempts)")
                    break
                self._sleep(delay)
                delay = min(delay * 2, self.retry.max_backoff_s)
        return record

    def _step(self, client: CyberTipClient, rec: ReportRecord, report: Report | None) -> None:
        if rec.status is ReportStatus.UPLOADED:
            client.finish(rec.endpoint_report_id)
            self._update(rec, status=ReportStatus.FINISHED, reason="")
            return
        uploaded = all(m["file_id"] for m in rec.files)
        if report is None and (rec.status is ReportStatus.QUEUED or not uploaded):
            raise DeliveryError("the file content is no longer held", retry=False)
        if rec.status is ReportStatus.QUEUED:
            assert report is not None  # narrowed above
            report_id = client.submit(report)
            self._update(rec, status=ReportStatus.SUBMITTED, endpoint_report_id=report_id)
            return
        for k, meta in enumerate(rec.files):
            if not meta["file_id"]:
                assert report is not None  # narrowed above
                meta["file_id"] = client.upload(rec.endpoint_report_id, report.files[k])
                self._update(rec)
            if not meta["described"]:
                # Metadata only: describing a file needs no content, even after a restart.
                described = ReportFile(**{f: meta[f] for f in _FILE_FIELDS}, content=b"")
                client.fileinfo(rec.endpoint_report_id, meta["file_id"], described, meta["md5"])
                meta["described"] = True
                self._update(rec)
        self._update(rec, status=ReportStatus.UPLOADED)

    def _fail(self, client: CyberTipClient, rec: ReportRecord, reason: str) -> None:
        if rec.endpoint_report_id:
            try:
                client.retract(rec.endpoint_report_id)
            except DeliveryError as exc:  # unfinished reports expire on the endpoint anyway
                reason += f"; retract failed: {exc}"
        self._update(rec, status=ReportStatus.FAILED, reason=reason)

    def retract(self, report_id: int, tenant: str | None = None) -> ReportRecord:
        rec = self.get(report_id, tenant)
        if rec.status is ReportStatus.FINISHED:
            raise BadParameter(
                f"report {report_id} is filed: a finished report cannot be retracted"
            )
        if rec.status not in DONE:
            if rec.endpoint_report_id:
                self.client_for(rec.test).retract(rec.endpoint_report_id)
            self._update(rec, status=ReportStatus.RETRACTED, reason="retracted by the reporter")
        return rec

    def resume(self) -> list[ReportRecord]:
        """After a restart: finish what can be finished, fail what lost its content (each
        under a claim: another process may be delivering it)."""
        out = []
        for rec in self.records():
            if rec.status in DONE or not self._claim(rec.id):
                continue
            try:
                self._resume(rec)
            finally:
                self._release(rec.id)
            out.append(rec)
        return out

    def _resume(self, rec: ReportRecord) -> None:
        try:
            client = self.client_for(rec.test)
        except HashmatchError as exc:  # reporting switched off since: leave it queued
            log.warning("report %d not resumed: %s", rec.id, exc.message)
            return
        uploaded = all(m["file_id"] for m in rec.files)
        if rec.status is ReportStatus.UPLOADED or (
            rec.status is ReportStatus.SUBMITTED and uploaded
        ):
            self.deliver(rec, None)  # describing and finishing need no content
        else:
            reason = (
                "interrupted before every file was uploaded; the file content is never "
                "stored, so the report must be submitted again"
            )
            self._fail(client, rec, reason)

    def close(self) -> None:
        self._db.close()
