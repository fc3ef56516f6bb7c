"""The durable report outbox: committed first, then delivered step by step (its table in
SQLite, reports/sqlite_tables.py, or PostgreSQL, reports/postgres_tables.py, behind
OutboxTables; on PostgreSQL every replica sees every report, and a claim (a lease row
update) lets exactly one deliver it at a time).

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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from hashmatch.errors import BadParameter, HashmatchError, NotFound
from hashmatch.reports.cybertip import CyberTipClient, DeliveryError
from hashmatch.reports.model import Report, ReportFile, ReportStatus

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


# A report's row as every OutboxTables reads it (files as JSON).
REPORT_COLUMNS = (
    "id, idempotency_key, tenant, test, status, reason, endpoint_report_id, files, attempts,"
    " created_at, updated_at"
)
ReportRow = tuple[int, str, str, int, str, str, str, str, int, str, str]


class OutboxTables(Protocol):
    """The reports table of one database; each method one transaction."""

    def insert(
        self, idempotency_key: str, tenant: str, test: bool, status: str, report: str,
        files: str, now: str,
    ) -> tuple[int, bool]:  # fmt: skip
        """The report's id: a new row, or the one with this (tenant, key); created?"""
        ...

    def row(self, report_id: int) -> ReportRow | None: ...
    def ids(self, tenant: str | None) -> list[int]: ...
    def update(self, rec: ReportRecord, lease_until: float) -> None:
        """The record's fields written; an existing claim renewed to lease_until."""
        ...

    def claim(self, report_id: int, now: float, until: float) -> bool:
        """Takes the delivery unless an unexpired claim (> now) holds it."""
        ...

    def release(self, report_id: int) -> None: ...
    def filed_by_tenant(self, start: str, end: str) -> dict[str, int]: ...
    def close(self) -> None: ...


class ReportOutbox:
    def __init__(
        self,
        tables: OutboxTables | Path,
        client_for: Callable[[bool], CyberTipClient],
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """tables: a database's OutboxTables, or the path of a SQLite file for them."""
        if isinstance(tables, Path):
            from hashmatch.reports.sqlite_tables import SqliteOutboxTables

            tables = SqliteOutboxTables(tables)
        self.tables = tables
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
        report_id, created = self.tables.insert(
            idempotency_key, tenant, report.test, ReportStatus.QUEUED.value, json.dumps(meta),
            json.dumps(files), now,
        )  # fmt: skip
        return self.get(int(report_id)), created

    def get(self, report_id: int, tenant: str | None = None) -> ReportRecord:
        row = self.tables.row(report_id)
        if row is None or (tenant is not None and row[2] != tenant):
            raise NotFound(f"no report {report_id}")
        return ReportRecord(
            row[0], row[1], row[2], bool(row[3]), ReportStatus(row[4]), row[5], row[6],
            json.loads(row[7]), row[8], row[9], row[10],
        )  # fmt: skip

    def records(self, tenant: str | None = None) -> list[ReportRecord]:
        return [self.get(i) for i in self.tables.ids(tenant)]

    def _update(self, rec: ReportRecord, **fields: Any) -> None:
        for k, v in fields.items():
            setattr(rec, k, v)
        rec.updated_at = _now()
        # Each step renews the deliverer's claim (a slow endpoint is no dead deliverer).
        self.tables.update(rec, time.time() + LEASE_S)

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
        return self.tables.claim(report_id, now, now + LEASE_S)

    def _release(self, report_id: int) -> None:
        self.tables.release(report_id)

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
        for listed in self.records():
            if listed.status in DONE or not self._claim(listed.id):
                continue
            try:
                rec = self.get(listed.id)  # as it is now: another may have just finished it
                if rec.status in DONE:
                    continue
                self._resume(rec)
            finally:
                self._release(listed.id)
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
        self.tables.close()
