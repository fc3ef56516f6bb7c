"""Report delivery through the outbox against the fake CyberTipline, failures injected:
every report ends filed exactly once or marked failed, never lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashmatch.reports.cybertip import CyberTipClient, Endpoint
from hashmatch.reports.model import Report, ReportFile, ReportStatus
from hashmatch.reports.outbox import OutboxTables, ReportOutbox, ReportRecord, RetryPolicy
from hashmatch.reports.postgres_tables import PostgresOutboxTables
from hashmatch.reports.sqlite_tables import SqliteOutboxTables
from tests import postgres
from tests.fake_cybertip import PASSWORD, USER, FakeCyberTip

ROOT = Path(__file__).resolve().parents[1]


def make_report(n_files: int = 2) -> Report:
    files = tuple(
        ReportFile(f"upload-{k}.jpg", os.urandom(2048), "A1", upload_ip="203.0.113.7",
                   match_details="bank ncmec entry 42 distance 3")
        for k in range(n_files)
    )  # fmt: skip
    return Report(
        incident_type="Child Pornography (possession, manufacture, and distribution)",
        incident_time="2026-11-25T10:00:00Z",
        reporter_email="trust@example.org",
        reporter_first_name="Trust",
        reporter_last_name="Safety",
        reportee_name="user123",
        reportee_ip="203.0.113.7",
        files=files,
    )


@pytest.fixture()
def fake() -> Iterator[FakeCyberTip]:
    f = FakeCyberTip()
    yield f
    f.close()


def tables_at(where: str) -> OutboxTables:
    """The outbox's table in a PostgreSQL database (a URL) or a SQLite file (a path)."""
    if where.startswith("postgresql://"):
        return PostgresOutboxTables(where)
    return SqliteOutboxTables(Path(where))


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where an outbox keeps its reports: one database per test, on each store."""
    if request.param == "sqlite":
        return str(tmp_path / "r.sqlite3")
    url: str = request.getfixturevalue("pg_cluster").new_database()
    return url


def outbox(where: str, fake: FakeCyberTip, attempts: int = 5) -> ReportOutbox:
    client = CyberTipClient(Endpoint(fake.url, USER, PASSWORD, timeout_s=2.0))
    return ReportOutbox(tables_at(where), lambda test: client, RetryPolicy(attempts, 0.01, 0.05))


def test_happy_path_files_exactly_once(where: str, fake: FakeCyberTip) -> None:
    box = outbox(where, fake)
    report = make_report()
    rec, created = box.create(report, "key-1")
    assert created and rec.status is ReportStatus.QUEUED
    assert box.deliver(rec, report).status is ReportStatus.FINISHED
    (filed,) = fake.finished()
    assert len(filed.files) == 2 and filed.described == set(filed.files)
    assert fake.requests == ["/submit", "/upload", "/fileinfo", "/upload", "/fileinfo", "/finish"]
    again, created = box.create(report, "key-1")  # a client's retry: the same report
    assert not created and again.id == rec.id and again.status is ReportStatus.FINISHED


def test_transient_failures_are_retried(where: str, fake: FakeCyberTip) -> None:
    fake.fail_next = {"/submit": 1, "/upload": 2, "/finish": 1}
    fake.drop_next = {"/upload": 1, "/fileinfo": 1}  # the endpoint dies mid-upload, too
    box = outbox(where, fake, attempts=8)
    report = make_report()
    rec, _ = box.create(report, "k")
    assert box.deliver(rec, report).status is ReportStatus.FINISHED
    assert rec.attempts == 6 and len(fake.finished()) == 1


def test_timeouts_never_file_twice(where: str, fake: FakeCyberTip) -> None:
    # The first finish lands on the endpoint, but its answer comes after the client's 2 s
    # timeout; the retried finish is answered "already finished" (5102): filed once.
    release = threading.Event()
    fake.hold = {"/finish": release}
    threading.Timer(3.0, release.set).start()
    box = outbox(where, fake)
    report = make_report(1)
    rec, _ = box.create(report, "k")
    assert box.deliver(rec, report).status is ReportStatus.FINISHED
    assert len(fake.finished()) == 1 and fake.requests.count("/finish") == 2


def test_validation_failure_is_not_retried(where: str, fake: FakeCyberTip) -> None:
    box = outbox(where, fake)
    report = make_report()
    rec, _ = box.create(report, "k")
    bad = Report(**{**report.__dict__, "reporter_email": "x@y"})  # valid locally
    object.__setattr__(bad, "incident_type", report.incident_type)
    fake_reports = len(fake.reports)
    fake.fail_next = {}
    # The endpoint refuses the report (4100): failed at once, no retry.
    import hashmatch.reports.cybertip as ct

    original = ct.report_xml
    ct.report_xml = lambda r: (
        original(r).replace(b"<email>", b"<emailx>").replace(b"</email>", b"</emailx>")
    )
    try:
        assert box.deliver(rec, bad).status is ReportStatus.FAILED
    finally:
        ct.report_xml = original
    assert "4100" in rec.reason and rec.attempts == 1 and len(fake.reports) == fake_reports


def test_giving_up_retracts_the_opened_report(where: str, fake: FakeCyberTip) -> None:
    fake.fail_next = {"/upload": 100}
    box = outbox(where, fake, attempts=3)
    report = make_report()
    rec, _ = box.create(report, "k")
    assert box.deliver(rec, report).status is ReportStatus.FAILED
    assert "after 3 attempts" in rec.reason
    (opened,) = fake.reports.values()
    assert opened.retracted and not opened.finished


SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from hashmatch.reports.cybertip import CyberTipClient, Endpoint
    from hashmatch.reports.outbox import ReportOutbox, RetryPolicy
    from tests.test_reports import make_report, tables_at
    client = CyberTipClient(Endpoint(sys.argv[1], "esp-user", "esp-pass", timeout_s=60))
    box = ReportOutbox(tables_at(sys.argv[2]), lambda test: client, RetryPolicy(5, 0.01, 0.05))
    report = make_report()
    rec, _ = box.create(report, "killed")
    box.deliver(rec, report)
    """
)


@pytest.mark.parametrize(
    ("step", "outcome"),
    [
        ("/submit", ReportStatus.FAILED),
        ("/upload", ReportStatus.FAILED),
        ("/fileinfo", ReportStatus.FINISHED),
        ("/finish", ReportStatus.FINISHED),
    ],
)
def test_sigkill_between_steps(
    where: str, fake: FakeCyberTip, step: str, outcome: ReportStatus
) -> None:
    release = threading.Event()
    fake.hold = {step: release}
    if step == "/fileinfo":  # die on the second file's fileinfo: both files are uploaded
        fake.hold_from = {"/fileinfo": 2}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, fake.url, where], cwd=ROOT)
    held = fake.arrived.setdefault(step, threading.Event())
    deadline = time.monotonic() + 120
    while not (held.is_set() and fake.requests.count(step) >= fake.hold_from.get(step, 1)):
        assert proc.poll() is None and time.monotonic() < deadline, fake.requests
        held.wait(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    release.set()  # the endpoint completes the step it had received
    fake.hold = {}
    box = outbox(where, fake)
    (rec,) = box.resume()
    assert rec.status is outcome, rec.reason
    filed = fake.finished()
    assert len(filed) == (1 if outcome is ReportStatus.FINISHED else 0)
    if outcome is ReportStatus.FAILED:
        assert "submitted again" in rec.reason
        assert all(r.retracted or not r.files for r in fake.reports.values())


def test_replicas_share_one_outbox_and_one_delivers(
    pg_cluster: postgres.Cluster, fake: FakeCyberTip
) -> None:
    """Two replicas' outboxes on one PostgreSQL: a report filed through one is seen by the
    other, a retry with its key through the other is the same report, and when both
    resume it at once exactly one delivers: filed once."""
    url = pg_cluster.new_database()
    a, b = outbox(url, fake), outbox(url, fake)
    report = make_report()
    rec, created = a.create(report, "shared-key", "acme")
    assert created and b.get(rec.id, "acme").idempotency_key == "shared-key"
    again, created = b.create(report, "shared-key", "acme")
    assert not created and again.id == rec.id
    # Delivered by a up to the finish, then a died: describing and finishing need no
    # content, so either replica can resume it.
    client, rec = a.client_for(False), a.get(rec.id)
    while rec.status is not ReportStatus.UPLOADED:
        a._step(client, rec, report)
    resumed: list[list[ReportRecord]] = []
    threads = [threading.Thread(target=lambda box=box: resumed.append(box.resume()))
               for box in (a, b)]  # fmt: skip
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(len(r) for r in resumed) == [0, 1]  # one resumed it, the other saw it done
    assert len(fake.finished()) == 1 and fake.requests.count("/finish") == 1
    assert a.get(rec.id).status is ReportStatus.FINISHED is b.get(rec.id).status
    a.close()
    b.close()
