"""ReportService end to end: `hashmatch serve` delivering to the fake CyberTipline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from hashmatch.proto import report_pb, report_rpc
from tests import server_harness
from tests.fake_cybertip import PASSWORD, USER, FakeCyberTip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCyberTip]:
    f = FakeCyberTip()
    yield f
    f.close()


@pytest.fixture(scope="module")
def stub(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeCyberTip
) -> Iterator[report_rpc.ReportServiceStub]:
    tmp = tmp_path_factory.mktemp("reports")
    config = tmp / "c.toml"
    config.write_text(
        f'[reports]\ntest_endpoint = "{fake.url}"\ntest_username = "{USER}"\n'
        'test_password_env = "HM_TEST_NCMEC_PW"\nbackoff_s = 0.01\n'
    )
    os.environ["HM_TEST_NCMEC_PW"] = PASSWORD
    try:
        srv = server_harness.start(tmp / "data", "--config", str(config))
    finally:
        del os.environ["HM_TEST_NCMEC_PW"]
    yield report_rpc.ReportServiceStub(srv.channel())  # type: ignore[no-untyped-call]
    assert srv.stop() == 0
    # The password never reaches the data dir or the log.
    assert PASSWORD not in "".join(srv.log)
    for f in Path(tmp / "data").rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes()


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
