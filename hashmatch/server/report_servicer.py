"""ReportService over gRPC: proto in, the report outbox, proto out."""

from __future__ import annotations

import asyncio

import grpc

from hashmatch.core.calls import Call, CallRecorder
from hashmatch.errors import BadParameter
from hashmatch.proto import report_pb, report_rpc
from hashmatch.reports.model import Report, ReportFile
from hashmatch.reports.outbox import ReportOutbox, ReportRecord
from hashmatch.server.status import unary


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
    def __init__(self, outbox: ReportOutbox, calls: CallRecorder) -> None:
        self.outbox = outbox
        self.calls = calls  # read by the status wrappers

    @unary
    async def FileReport(
        self, request: report_pb.FileReportRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> report_pb.ReportState:
        if not request.idempotency_key:
            raise BadParameter("idempotency_key is required (a retry must not file twice)")
        report = report_from(request)
        owner = call.caller.report_owner
        return state_to(
            await asyncio.to_thread(self.outbox.file, report, request.idempotency_key, owner)
        )

    @unary
    async def GetReport(
        self, request: report_pb.GetReportRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> report_pb.ReportState:
        # Another tenant's report answers as a missing one.
        return state_to(
            await asyncio.to_thread(self.outbox.get, request.id, call.caller.reports_of)
        )

    @unary
    async def ListReports(
        self, request: report_pb.ListReportsRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> report_pb.ListReportsResponse:
        records = await asyncio.to_thread(self.outbox.records, call.caller.reports_of)
        return report_pb.ListReportsResponse(reports=[state_to(r) for r in records])

    @unary
    async def RetractReport(
        self, request: report_pb.RetractReportRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> report_pb.ReportState:
        return state_to(
            await asyncio.to_thread(self.outbox.retract, request.id, call.caller.reports_of)
        )
