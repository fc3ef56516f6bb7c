"""MatchService over gRPC: proto in, the service core, proto out. Nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from hashmatch.core.auditing import Auditor
from hashmatch.core.metrics import Metrics
from hashmatch.core.service import HashmatchService, ImageOutcome, new_tracking_id
from hashmatch.core.webhooks import WebhookNotifier
from hashmatch.errors import BadParameter, ItemError
from hashmatch.matching.bank_matcher import HashQuery
from hashmatch.matching.model import MatchOptions
from hashmatch.proto import pb, rpc
from hashmatch.server import convert
from hashmatch.server.auth import caller
from hashmatch.server.status import streaming, unary
from hashmatch.tenancy.limits import TenantLimits
from hashmatch.tenancy.model import Principal

# A stream's items are hashed and matched in groups of up to this many, by a few workers.
STREAM_GROUP = 32
STREAM_WORKERS = 4


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return None
    return asyncio.get_running_loop().time() + remaining


class MatchServicer(rpc.MatchServiceServicer):
    def __init__(
        self,
        core: HashmatchService,
        metrics: Metrics,
        stream_window: int,
        auditor: Auditor,
        limits: TenantLimits,
        webhooks: WebhookNotifier | None = None,
    ) -> None:
        self.core = core
        self.metrics = metrics
        self.stream_window = stream_window
        self.auditor = auditor  # read by the status wrappers: one audit record per call
        self.limits = limits
        self.webhooks = webhooks

    async def _charge(self, who: Principal, n: int) -> None:
        """The tenant's monthly item quota (checked before any work)."""
        if who.limited:
            await asyncio.to_thread(self.limits.charge_items, who, n)

    def _count(self, who: Principal, results: list[pb.ItemResult]) -> None:
        self.metrics.count_results(results)
        if not who.open:
            self.metrics.tenant_results(who.tenant_id, results)
        if self.webhooks is not None:
            for r in results:
                if r.is_match:
                    self.webhooks.notify(who.tenant_id, match_event(r))

    @unary
    async def MatchImages(
        self, request: pb.MatchImagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.MatchImagesResponse:
        who = caller()
        options = convert.options_from(request.options)
        tracking = new_tracking_id()
        self.core.check_batch(len(request.images))
        await self._charge(who, len(request.images))
        with self.metrics.rpc("MatchImages", len(request.images)):
            outcomes = await self.core.match_images(
                [im.data for im in request.images],
                options,
                tenant=who.match_tenant,
                deadline=_deadline(context),
            )
        resp = pb.MatchImagesResponse(tracking_id=tracking)
        for k, (image, outcome) in enumerate(zip(request.images, outcomes, strict=True)):
            resp.results.append(
                convert.item_result(
                    image.content_id,
                    f"{tracking}-{k}",
                    outcome.result,
                    outcome.matches,
                    not request.options.omit_signatures,
                    options.dihedral,
                )
            )
        self._count(who, list(resp.results))
        return resp

    @unary
    async def HashImages(
        self, request: pb.HashImagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.HashImagesResponse:
        who = caller()
        tracking = new_tracking_id()
        self.core.check_batch(len(request.images))
        await self._charge(who, len(request.images))
        with self.metrics.rpc("HashImages", len(request.images)):
            results = await self.core.hash_images(
                [im.data for im in request.images],
                deadline=_deadline(context),
                dihedral=request.dihedral,
            )
        resp = pb.HashImagesResponse(tracking_id=tracking)
        for k, (image, result) in enumerate(zip(request.images, results, strict=True)):
            resp.results.append(
                convert.item_result(
                    image.content_id, f"{tracking}-{k}", result, None, True, request.dihedral
                )
            )
        self._count(who, list(resp.results))
        return resp

    @unary
    async def MatchHashes(
        self, request: pb.MatchHashesRequest, context: grpc.aio.ServicerContext
    ) -> pb.MatchHashesResponse:
        who = caller()
        options = convert.options_from(request.options)
        tracking = new_tracking_id()
        self.core.check_batch(len(request.hashes))
        await self._charge(who, len(request.hashes))
        parsed: list[HashQuery | ItemError] = []
        for h in request.hashes:
            try:
                parsed.append(convert.query_from(h))
            except BadParameter as exc:
                parsed.append(ItemError.from_exception(exc))
        queries = [q for q in parsed if isinstance(q, HashQuery)]
        with self.metrics.rpc("MatchHashes", len(request.hashes)):
            found = iter(
                await self.core.match_queries(queries, options, who.match_tenant) if queries else []
            )
        resp = pb.MatchHashesResponse(tracking_id=tracking)
        for k, (h, q) in enumerate(zip(request.hashes, parsed, strict=True)):
            item = pb.ItemResult(content_id=h.content_id, tracking_id=f"{tracking}-{k}")
            if isinstance(q, ItemError):
                item.status.CopyFrom(convert.error_status(q))
            else:
                result = next(found)
                item.status.CopyFrom(convert.OK_STATUS)
                item.matches.extend(convert.match_to(m) for m in result.matches)
                item.is_match = result.is_match
            resp.results.append(item)
        self._count(who, list(resp.results))
        return resp

    @streaming
    async def MatchStream(
        self,
        request_iterator: AsyncIterator[pb.MatchStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.MatchStreamResponse]:
        who = caller()
        tracking = new_tracking_id()
        # At most stream_window items of this stream in flight: past that, reading pauses
        # and HTTP/2 flow control pushes back on the client.
        window = asyncio.Semaphore(self.stream_window)
        inbox: asyncio.Queue[tuple[int, pb.MatchStreamRequest, MatchOptions] | None] = (
            asyncio.Queue()
        )
        out: asyncio.Queue[pb.MatchStreamResponse | BaseException | None] = asyncio.Queue()

        async def reader() -> None:
            options = MatchOptions()
            k = 0
            async for req in request_iterator:
                if req.HasField("options"):
                    options = convert.options_from(req.options)
                await window.acquire()
                inbox.put_nowait((k, req, options))
                k += 1

        async def worker() -> None:
            # Takes whatever has arrived (up to a batch) and hashes + matches it as one
            # group: per-item work on the event loop stays small.
            while (first := await inbox.get()) is not None:
                group = [first]
                while len(group) < STREAM_GROUP and not inbox.empty():
                    nxt = inbox.get_nowait()
                    if nxt is None:
                        inbox.put_nowait(None)  # let the other workers see the end too
                        break
                    group.append(nxt)
                for result in await self._stream_group(who, tracking, group):
                    window.release()
                    await out.put(pb.MatchStreamResponse(result=result))
            inbox.put_nowait(None)

        async def run() -> None:
            try:
                workers = [asyncio.create_task(worker()) for _ in range(STREAM_WORKERS)]
                try:
                    await reader()
                finally:
                    inbox.put_nowait(None)
                await asyncio.gather(*workers)
                await out.put(None)
            except Exception as exc:
                await out.put(exc)

        self.metrics.stream_opened()
        task = asyncio.get_running_loop().create_task(run())
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.metrics.stream_closed()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _stream_group(
        self,
        who: Principal,
        tracking: str,
        group: list[tuple[int, pb.MatchStreamRequest, MatchOptions]],
    ) -> list[pb.ItemResult]:
        results = []
        # Items of one group share options when the client did not change them midway.
        by_options: dict[MatchOptions, list[tuple[int, pb.MatchStreamRequest]]] = {}
        for k, req, options in group:
            by_options.setdefault(options, []).append((k, req))
        for options, items in by_options.items():
            try:
                # Quota per group (one store write per group); past it, each item of the
                # group says RESOURCE_EXHAUSTED and the stream stays open.
                await self._charge(who, len(items))
                outcomes = await self.core.match_images(
                    [req.image.data for _, req in items],
                    options,
                    tenant=who.match_tenant,
                    wait=True,
                )
            except Exception as exc:  # the group's failure is each item's answer
                err = ItemError.from_exception(exc)
                outcomes = [ImageOutcome(err) for _ in items]
            for (k, req), outcome in zip(items, outcomes, strict=True):
                results.append(
                    convert.item_result(
                        req.image.content_id,
                        f"{tracking}-{k}",
                        outcome.result,
                        outcome.matches,
                        not req.options.omit_signatures,
                        options.dihedral,
                    )
                )
        self._count(who, results)
        return results


def match_event(r: pb.ItemResult) -> dict[str, object]:
    """What a webhook says about a matched item: ids, labels, distances; no hashes."""
    return {
        "event": "match",
        "content_id": r.content_id,
        "tracking_id": r.tracking_id,
        "matches": [
            {"bank": m.bank, "entry_id": m.entry_id, "label": m.label, "source": m.source,
             "distance": m.distance, "variant": m.variant}
            for m in r.matches
            if not m.HasField("suppressed_by")
        ],
    }  # fmt: skip
