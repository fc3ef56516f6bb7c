"""BankService over gRPC: proto in, the bank store and importer, proto out."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from hashmatch.banks.formats import Format
from hashmatch.banks.model import (
    Bank,
    BankKind,
    BankSettings,
    DistancePolicy,
    Entry,
    NewEntry,
    SignalType,
    Visibility,
    WriteReport,
    checked_value,
)
from hashmatch.banks.store import BankStore
from hashmatch.core.banks import BankOps, BankView, ShareState, export_format
from hashmatch.core.calls import Call, CallRecorder
from hashmatch.core.feedback import FeedbackService
from hashmatch.errors import BadParameter, TooLarge
from hashmatch.proto import bank_pb, bank_rpc
from hashmatch.proto.convert import SIGNAL_TO_PROTO, signal_from
from hashmatch.server.status import streaming, unary
from hashmatch.storage.feedback_store import Verdict
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.model import Principal

VISIBILITY = {
    bank_pb.PRIVATE: Visibility.PRIVATE,
    bank_pb.SHARED: Visibility.SHARED,
    bank_pb.PUBLIC: Visibility.PUBLIC,
}
KIND = {bank_pb.BLOCK: BankKind.BLOCK, bank_pb.ALLOW: BankKind.ALLOW}
DISTANCE = {
    bank_pb.EXACT: DistancePolicy.EXACT,
    bank_pb.BUCKETED: DistancePolicy.BUCKETED,
    bank_pb.HIDDEN: DistancePolicy.HIDDEN,
}
MAX_IMPORT_BYTES = 4 * 1024 * 1024 * 1024
EXPORT_CHUNK = 1 << 20
SHARE_STATE = {ShareState.INVITED: bank_pb.INVITED, ShareState.ACCEPTED: bank_pb.ACCEPTED}


def settings_from(msg: bank_pb.BankSettings) -> BankSettings:
    return BankSettings(
        owner=msg.owner if msg.HasField("owner") else None,
        visibility=VISIBILITY.get(msg.visibility),
        shared_with=frozenset(msg.shared_with) if msg.set_shared_with else None,
        kind=KIND.get(msg.kind),
        signal_types=frozenset(signal_from(s) for s in msg.signal_types) or None,
        pdq_threshold=msg.pdq_threshold if msg.HasField("pdq_threshold") else None,
        min_quality=msg.min_quality if msg.HasField("min_quality") else None,
        enabled=msg.enabled if msg.HasField("enabled") else None,
        distance_policy=DISTANCE.get(msg.distance_policy),
    )


def bank_to(b: Bank, counts: dict[SignalType, int] | None = None) -> bank_pb.Bank:
    return bank_pb.Bank(
        name=b.name,
        owner=b.owner,
        visibility={v: k for k, v in VISIBILITY.items()}[b.visibility],
        shared_with=sorted(b.shared_with),
        kind={v: k for k, v in KIND.items()}[b.kind],
        signal_types=sorted(SIGNAL_TO_PROTO[s] for s in b.signal_types),
        pdq_threshold=b.pdq_threshold,
        min_quality=b.min_quality,
        enabled=b.enabled,
        created_at=b.created_at,
        updated_at=b.updated_at,
        counts={s.value: n for s, n in (counts or {}).items()},
        accepted_by=sorted(b.accepted_by),
        distance_policy={v: k for k, v in DISTANCE.items()}[b.distance_policy],
    )


def entry_to(e: Entry) -> bank_pb.Entry:
    return bank_pb.Entry(
        id=e.id,
        signal_type=SIGNAL_TO_PROTO[e.signal_type],
        value=e.value,
        label=e.label or "",
        external_id=e.external_id or "",
        source=e.source or "",
        added_at=e.added_at,
    )


def report_to(r: WriteReport) -> bank_pb.WriteReport:
    return bank_pb.WriteReport(
        added=r.added,
        revived=r.revived,
        updated=r.updated,
        unchanged=r.unchanged,
        removed=r.removed,
        errors=[bank_pb.RowError(row=e.row, code=e.code, message=e.message) for e in r.errors],
        duplicates=r.duplicates,
        error_count=max(r.error_count, len(r.errors)),
    )


def view_to(v: BankView) -> bank_pb.Bank:
    msg = bank_to(v.bank, v.counts)
    if v.share_state is not ShareState.NONE:
        msg.share_state = SHARE_STATE[v.share_state]
    return msg


class BankServicer(bank_rpc.BankServiceServicer):
    """Store calls run in threads: SQLite work stays off the event loop. Every call goes
    through BankAccess first: other tenants' banks look exactly like missing ones."""

    def __init__(
        self, store: BankStore, access: BankAccess, calls: CallRecorder, feedback: FeedbackService
    ) -> None:
        self.store = store
        self.ops = BankOps(store, access)
        self.calls = calls  # read by the status wrappers
        self.feedback = feedback

    @unary
    async def SendFeedback(
        self, request: bank_pb.FeedbackRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.FeedbackResponse:
        verdicts = {
            bank_pb.CONFIRMED: Verdict.CONFIRMED,
            bank_pb.FALSE_POSITIVE: Verdict.FALSE_POSITIVE,
        }
        if request.verdict not in verdicts:
            raise BadParameter("verdict must be CONFIRMED or FALSE_POSITIVE")
        verdict = verdicts[request.verdict]
        await self.feedback.give(call, request.bank, request.entry_id, verdict, request.note)
        return bank_pb.FeedbackResponse()

    @unary
    async def AcceptShare(
        self, request: bank_pb.ShareRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.Bank:
        return await self._share(call.caller, request.bank, accepted=True)

    @unary
    async def LeaveShare(
        self, request: bank_pb.ShareRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.Bank:
        return await self._share(call.caller, request.bank, accepted=False)

    async def _share(self, who: Principal, name: str, accepted: bool) -> bank_pb.Bank:
        return view_to(await asyncio.to_thread(self.ops.set_share, who, name, accepted))

    @unary
    async def CreateBank(
        self, request: bank_pb.CreateBankRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.Bank:
        settings = settings_from(request.settings)
        bank = await asyncio.to_thread(self.ops.create, call.caller, request.name, settings)
        return bank_to(bank)

    @unary
    async def GetBank(
        self, request: bank_pb.GetBankRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.Bank:
        return view_to(await asyncio.to_thread(self.ops.get, call.caller, request.name))

    @unary
    async def ListBanks(
        self, request: bank_pb.ListBanksRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.ListBanksResponse:
        views = await asyncio.to_thread(self.ops.visible, call.caller)
        return bank_pb.ListBanksResponse(banks=[view_to(v) for v in views])

    @unary
    async def UpdateBank(
        self, request: bank_pb.UpdateBankRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.Bank:
        settings = settings_from(request.settings)
        bank = await asyncio.to_thread(self.ops.update, call.caller, request.name, settings)
        return bank_to(bank)

    @unary
    async def DeleteBank(
        self, request: bank_pb.DeleteBankRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.DeleteBankResponse:
        await asyncio.to_thread(self.ops.delete, call.caller, request.name)
        return bank_pb.DeleteBankResponse()

    @unary
    async def AddEntries(
        self, request: bank_pb.AddEntriesRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.WriteReport:
        await asyncio.to_thread(self.ops.check_writable, call.caller, request.bank)
        entries = [
            NewEntry(
                signal_from(e.signal_type),
                e.value,
                e.label or None,
                e.external_id or None,
                e.source or None,
            )
            for e in request.entries
        ]
        report = await asyncio.to_thread(self.store.write_entries, request.bank, entries)
        return report_to(report)

    @unary
    async def RemoveEntries(
        self, request: bank_pb.RemoveEntriesRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.RemoveEntriesResponse:
        await asyncio.to_thread(self.ops.check_writable, call.caller, request.bank)
        values = []
        for v in request.values:
            signal = signal_from(v.signal_type)
            values.append((signal, checked_value(signal, v.value)))  # a typo is no "0 removed"
        removed = await asyncio.to_thread(self.store.remove_entries, request.bank, values)
        return bank_pb.RemoveEntriesResponse(removed=removed)

    @unary
    async def ListEntries(
        self, request: bank_pb.ListEntriesRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> bank_pb.ListEntriesResponse:
        limit = request.limit or 1000
        rows = await asyncio.to_thread(
            self.ops.entries, call.caller, request.bank, request.after_id, limit
        )
        nxt = rows[-1].id if len(rows) == limit else 0
        return bank_pb.ListEntriesResponse(entries=[entry_to(e) for e in rows], next_after_id=nxt)

    @unary
    async def ImportEntries(
        self,
        request_iterator: AsyncIterator[bank_pb.ImportChunk],
        context: grpc.aio.ServicerContext,
        call: Call,
    ) -> bank_pb.WriteReport:
        # Hash lists (never images) are spooled to a private temp file, then imported in
        # one transaction: a stream cut short imports nothing.
        bank, fmt, named, size = "", Format.CSV, "", 0
        who = call.caller
        with tempfile.NamedTemporaryFile(prefix="hashmatch-import-") as spool:
            async for chunk in request_iterator:
                if not bank:
                    bank, fmt, named = chunk.bank, export_format(chunk.format), chunk.format
                    await asyncio.to_thread(self.ops.check_writable, who, bank)
                elif chunk.bank not in ("", bank) or chunk.format not in ("", named):
                    # The first chunk's bank was the one checked: never import elsewhere.
                    raise BadParameter(
                        "an import names its bank and format in the first ImportChunk;"
                        " a later one named others"
                    )
                size += len(chunk.data)
                if size > MAX_IMPORT_BYTES:
                    raise TooLarge(f"an import is at most {MAX_IMPORT_BYTES} bytes")
                spool.write(chunk.data)
            spool.flush()
            if not bank:
                raise BadParameter("the first ImportChunk must name the bank")
            path = Path(spool.name)
            report = await asyncio.to_thread(self.ops.import_path, who, bank, path, fmt)
        return report_to(report)

    @streaming
    async def ExportEntries(
        self, request: bank_pb.ExportRequest, context: grpc.aio.ServicerContext, call: Call
    ) -> AsyncIterator[bank_pb.ExportChunk]:
        fmt = export_format(request.format)
        who = call.caller
        await asyncio.to_thread(self.ops.check_writable, who, request.bank)
        with (
            self.ops.exports.held(who.bank_owner),
            tempfile.TemporaryFile(mode="w+b", prefix="hashmatch-export-") as spool,
        ):
            # Written whole first (NCMEC XML is one document), then streamed in chunks.
            report = await asyncio.to_thread(self.ops.export, who, request.bank, fmt, spool)
            if not report.lossless:  # said where a client can read it, before the data
                context.set_trailing_metadata((("hashmatch-export-left-out", report.describe()),))
            spool.seek(0)
            while data := spool.read(EXPORT_CHUNK):
                yield bank_pb.ExportChunk(data=data)
