"""Imports started from the console, with their progress.

The upload (a hash list, in memory, bounded) is fed to the core's one-transaction import
through a pipe (opened by the importer as /dev/fd/N, a path like any file's), so the
bytes the importer has read are known as it reads them: that is the progress bar. The
import itself is the core's (all of the file or nothing); a job is visible only to the
tenant that started it.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from hashmatch.banks.formats import Format
from hashmatch.banks.model import WriteReport
from hashmatch.core.banks import BankOps
from hashmatch.core.calls import CallRecorder
from hashmatch.core.slots import TenantSlots
from hashmatch.errors import HashmatchError, NotFound
from hashmatch.tenancy.model import Principal

KEEP_JOBS = 200
CHUNK = 1 << 16


@dataclass
class ImportJob:
    id: str
    owner: str  # the bank owner of the tenant that started it
    bank: str
    total: int
    read: int = 0
    report: WriteReport | None = None
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def state(self) -> str:
        if not self.finished.is_set():  # read to its end: the one transaction is merging
            return "merging" if self.read >= self.total else "running"
        return "failed" if self.error is not None else "done"

    def to_json(self) -> dict[str, object]:
        r = self.report
        return {
            "id": self.id,
            "bank": self.bank,
            "state": self.state,
            "read": self.total if self.finished.is_set() else min(self.read, self.total),
            "total": self.total,
            "error": self.error,
            "report": None if r is None else {
                "added": r.added, "revived": r.revived, "updated": r.updated,
                "unchanged": r.unchanged, "duplicates": r.duplicates,
                "errors": max(r.error_count, len(r.errors)),
            },
        }  # fmt: skip


class ImportJobs:
    def __init__(self, ops: BankOps, calls: CallRecorder) -> None:
        self.ops, self.calls = ops, calls
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._lock = threading.Lock()
        # Each running import holds its upload (up to max_upload_bytes) in memory.
        self.running = TenantSlots("console imports", per_tenant=2, total=4)

    def start(self, who: Principal, bank: str, data: bytes, fmt: Format) -> ImportJob:
        self.ops.check_writable(who, bank)  # refused before a thread starts
        self.running.acquire(who.bank_owner)  # released when the job's thread ends
        job = ImportJob(secrets.token_urlsafe(12), who.bank_owner, bank, len(data))
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        threading.Thread(
            target=self._run, args=(who, job, data, fmt), name="console-import", daemon=True
        ).start()
        return job

    def get(self, who: Principal, job_id: str) -> ImportJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (job.owner != who.bank_owner and not who.open):
            raise NotFound(f"no import {job_id!r}")
        return job

    def _run(self, who: Principal, job: ImportJob, data: bytes, fmt: Format) -> None:
        r, w = os.pipe()
        feeder = threading.Thread(target=self._feed, args=(w, data, job), daemon=True)
        feeder.start()
        try:
            with self.calls.call(who, "Console:ImportEntries") as call:
                job.report = self.ops.import_path(who, job.bank, Path(f"/dev/fd/{r}"), fmt)
                call.count_items(job.report.added + job.report.updated + job.report.revived)
        except HashmatchError as exc:
            job.error = exc.message
        except Exception as exc:
            job.error = f"the import failed ({type(exc).__name__})"
        finally:
            os.close(r)  # a feeder still writing gets EPIPE and stops
            feeder.join()
            self.running.release(job.owner)
            job.finished.set()

    @staticmethod
    def _feed(w: int, data: bytes, job: ImportJob) -> None:
        view = memoryview(data)
        try:
            while job.read < len(view):
                job.read += os.write(w, view[job.read : job.read + CHUNK])
        except BrokenPipeError:  # the importer stopped reading (a refused file)
            pass
        finally:
            os.close(w)
