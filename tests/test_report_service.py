"""ReportService end to end: `hashmatch serve` delivering to the fake CyberTipline."""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.proto import report_pb, report_rpc
from tests import server_harness
from tests.fake_cybertip import PASSWORD, USER, FakeCyberTip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCyberTip]:
    f = FakeCyberTip()
    yield f
    f.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeCyberTip
) -> Iterator[server_harness.ServerProcess]:
    tmp = tmp_path_factory.mktemp("reports")
    config = tmp / "c.toml"
    config.write_text(
        f'[reports]\ntest_endpoint = "{fake.url}"\ntest_username = "{USER}"\n'
        'test_password_env = "HM_TEST_NCMEC_PW"\nbackoff_s = 0.01\n'
    )
    os.environ["HM_TEST_NCMEC_PW"] = PASSWORD
    try:
        srv = server_harness.start(
            tmp / "data", "--config", str(config), "--rest-listen", "127.0.0.1:0"
        )
    finally:
        del os.environ["HM_TEST_NCMEC_PW"]
    yield srv
    assert srv.stop() == 0
    # Usage counts the filed reports (the outbox is the record of what was filed).
    out = io.StringIO()
    args = ["report", "usage", "--data-dir", str(tmp / "data"), "--from", "2000", "--to", "2100"]
    assert main(args, Streams(stdout=out)) == 0
    assert sum(json.loads(line)["reports_filed"] for line in out.getvalue().splitlines()) == 3
    # The password never reaches the data dir or the log.
    assert PASSWORD not in "".join(srv.log)
    for f in Path(tmp / "data").rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes()


@pytest.fixture(scope="module")
def stub(server: server_harness.ServerProcess) -> report_rpc.ReportServiceStub:
    return report_rpc.ReportServiceStub(server.channel())  # type: ignore[no-untyped-call]


def request(key: str, test: bool = True, **overrides: object) -> report_pb.FileReportRequest:
    fields: dict[str, object] = dict(
        idempotency_key=key,
        incident_type="Child Pornography (possession, manufacture, and distribution)",
        incident_time="2026-11-25T10:00:00Z",
        reporter_email="trust@example.org",
        reportee_name="user123",
        files=[report_pb.ReportFile(name="a.jpg", content=os.urandom(1000), classification="A1")],
        test=test,
    )
    fields.update(overrides)
    return report_pb.FileReportRequest(**fields)  # type: ignore[arg-type]


def test_file_report_through_the_service(
    stub: report_rpc.ReportServiceStub, fake: FakeCyberTip
) -> None:
    state = stub.FileReport(request("r-1"))
    assert state.status == "finished" and state.endpoint_report_id and state.test
    assert len(fake.finished()) == 1
    again = stub.FileReport(request("r-1"))  # the client retries: the same report, not a second
    assert again.id == state.id and len(fake.finished()) == 1
    assert stub.GetReport(report_pb.GetReportRequest(id=state.id)).status == "finished"
    assert [r.id for r in stub.ListReports(report_pb.ListReportsRequest()).reports] == [state.id]
    with pytest.raises(grpc.RpcError) as exc:
        stub.RetractReport(report_pb.RetractReportRequest(id=state.id))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_reports_are_refused(stub: report_rpc.ReportServiceStub) -> None:
    for bad in (
        request("r-2", test=False),  # no production endpoint configured
        request("r-3", incident_type="Something else"),
        request("r-4", files=[]),
        request(""),
    ):
        with pytest.raises(grpc.RpcError) as exc:
            stub.FileReport(bad)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetReport(report_pb.GetReportRequest(id=999))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


def test_photodna_style_report_over_rest(
    server: server_harness.ServerProcess, fake: FakeCyberTip
) -> None:
    body = {
        "OrgName": "Example Platform",
        "ReporterName": "Trust Safety",
        "ReporterEmail": "trust@example.org",
        "IncidentTime": "2026-11-25T10:00:00Z",
        "ReporteeName": "user999",
        "ReporteeIPAddress": "203.0.113.9",
        "ViolationContentCollection": [
            {"Name": "x.jpg", "Value": base64.b64encode(os.urandom(500)).decode(),
             "AdditionalMetadata": [{"Key": "viewedByEsp", "Value": "true"}]}
        ],
        "AdditionalMetadata": [{"Key": "IsTest", "Value": "true"}],
    }  # fmt: skip
    before = len(fake.finished())

    def post() -> dict[str, object]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{server.rest_port}/photodna/v1.0/Report",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "x-usr": "u", "x-pwd": "p"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    first = post()
    assert first["Status"] == {"Code": 3000, "Description": "OK", "Exception": None}
    assert first["ReportStatus"] == "finished" and first["CyberTipReportId"]
    again = post()  # the same request re-sent: the same report, filed once
    assert again["ReportId"] == first["ReportId"]
    assert len(fake.finished()) == before + 1
    (filed,) = [
        r for r in fake.finished() if r.xml.findtext("personOrUserReported/screenName") == "user999"
    ]
    assert filed.xml.findtext("reporter/reportingPerson/email") == "trust@example.org"


def test_a_concurrent_retry_with_the_same_key_files_once(
    stub: report_rpc.ReportServiceStub, fake: FakeCyberTip
) -> None:
    """The attack: two FileReport calls with one idempotency key while the first submit is
    still in flight. The key is reserved before the first network call; the second waits
    for the first delivery and answers with the same report."""
    import threading

    submits = fake.requests.count("/submit")
    release = threading.Event()
    fake.arrived.pop("/submit", None)
    fake.hold["/submit"] = release
    fake.hold_from["/submit"] = submits + 1
    answers: list[report_pb.ReportState] = []
    req = request("race-1")
    calls = [threading.Thread(target=lambda: answers.append(stub.FileReport(req, timeout=60)))
             for _ in range(2)]  # fmt: skip
    try:
        calls[0].start()
        assert fake.arrived.setdefault("/submit", threading.Event()).wait(20)
        calls[1].start()
        calls[1].join(1.0)  # the retry waits for the first delivery, sending nothing
        assert fake.requests.count("/submit") == submits + 1
    finally:
        release.set()
        for c in calls:
            c.join(60)
        del fake.hold["/submit"]
    assert len(answers) == 2 and answers[0].id == answers[1].id
    assert {a.status for a in answers} == {"finished"}
    assert fake.requests.count("/submit") == submits + 1  # filed with NCMEC once
