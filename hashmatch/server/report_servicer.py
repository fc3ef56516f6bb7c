"""ReportService over gRPC: proto in, the report outbox, proto out."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import grpc

from hashmatch.config import ReportsConfig
from hashmatch.core.auditing import Auditor
from hashmatch.errors import BadParameter
from hashmatch.proto import report_pb, report_rpc
from hashmatch.reports.cybertip import CyberTipClient, Endpoint
from hashmatch.reports.model import Report, ReportFile
from hashmatch.reports.outbox import DONE, ReportOutbox, ReportRecord, RetryPolicy
from hashmatch.server.context import caller
from hashmatch.server.status import unary


def client_factory(config: ReportsConfig) -> Callable[[bool], CyberTipClient]:
    """The endpoint per mode; credentials read once, from the environment."""
    clients: dict[bool, CyberTipClient] = {}
    if config.endpoint:
        password = os.environ.get(config.password_env, "")
        clients[False] = CyberTipClient(
            Endpoint(config.endpoint, config.username, password, config.timeout_s)
        )
    if config.test_endpoint:
        password = os.environ.get(config.test_password_env, "")
        clients[True] = CyberTipClient(
            Endpoint(config.test_endpoint, config.test_username, password, config.timeout_s)
        )

    def client_for(test: bool) -> CyberTipClient:
        if test not in clients:
            mode = "test_endpoint" if test else "endpoint"
            raise BadParameter(f"reporting is not configured: set [reports] {mode}")
        return clients[test]

    return client_for


def open_outbox(path: Path, config: ReportsConfig) -> ReportOutbox:
    return ReportOutbox(
        path, client_factory(config), RetryPolicy(config.attempts, config.backoff_s)
    )


def state_to(rec: ReportRecord) -> report_pb.ReportState:
    return report_pb.ReportState(
        id=rec.id,
        status=rec.status.value,
        reason=rec.reason,
        endpoint_report_id=rec.endpoint_report_id,
        attempts=rec.attempts,
        test=rec.test,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        file_names=[f["name"] for f in rec.files],
    )


def report_from(msg: report_pb.FileReportRequest) -> Report:
    return Report(
        incident_type=msg.incident_type,
        incident_time=msg.incident_time,
        reporter_email=msg.reporter_email,
        reporter_first_name=msg.reporter_first_name,
        reporter_last_name=msg.reporter_last_name,
        org_name=msg.org_name,
        reportee_name=msg.reportee_name,
        reportee_ip=msg.reportee_ip,
        platform=msg.platform,
        additional_info=msg.additional_info,
        files=tuple(
            ReportFile(f.name, f.content, f.classification, f.viewed_by_esp, f.publicly_available,
                       f.upload_ip, f.upload_time, f.match_details)
            for f in msg.files
        ),
        test=msg.test,
    )  # fmt: skip


class ReportServicer(report_rpc.ReportServiceServicer):
    def __init__(self, outbox: ReportOutbox, auditor: Auditor) -> None:
        self.outbox = outbox
        self.auditor = auditor

    @unary
    async def FileReport(
        self, request: report_pb.FileReportRequest, context: grpc.aio.ServicerContext
    ) -> report_pb.ReportState:
        if not request.idempotency_key:
            raise BadParameter("idempotency_key is required (a retry must not file twice)")
        report = report_from(request)
        self.outbox.client_for(report.test)  # reporting configured for this mode, or say so
        rec, created = await asyncio.to_thread(
            self.outbox.create, report, request.idempotency_key, caller().report_owner
        )
        if created or rec.status not in DONE:
            rec = await asyncio.to_thread(self.outbox.deliver, rec, report)
        return state_to(rec)

    @unary
    async def GetReport(
        self, request: report_pb.GetReportRequest, context: grpc.aio.ServicerContext
    ) -> report_pb.ReportState:
        # Another tenant's report answers as a missing one.
        return state_to(await asyncio.to_thread(self.outbox.get, request.id, caller().reports_of))

    @unary
    async def ListReports(
        self, request: report_pb.ListReportsRequest, context: grpc.aio.ServicerContext
    ) -> report_pb.ListReportsResponse:
        records = await asyncio.to_thread(self.outbox.records, caller().reports_of)
        return report_pb.ListReportsResponse(reports=[state_to(r) for r in records])

    @unary
    async def RetractReport(
        self, request: report_pb.RetractReportRequest, context: grpc.aio.ServicerContext
    ) -> report_pb.ReportState:
        return state_to(
            await asyncio.to_thread(self.outbox.retract, request.id, caller().reports_of)
        )
