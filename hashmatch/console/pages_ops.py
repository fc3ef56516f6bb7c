"""The operator's oversight pages: exchanges (status, lag, last errors, sync now), flood
quarantine (release), usage per tenant with a chart and NCMEC's aggregate, and audit
verification. Each handler is one call on the core's Oversight (the CLI's `exchange`,
`quarantine`, `report usage` and `audit verify` check the same)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from starlette.responses import JSONResponse, Response

from hashmatch.console.app import Console, Ctx
from hashmatch.core.admission import Open
from hashmatch.core.exchanges import describe
from hashmatch.core.oversight import DailyMatches, Oversight
from hashmatch.errors import BadParameter, NotFound
from hashmatch.tenancy.model import Role

CHART_W, CHART_H = 720, 220


def _span(ctx: Ctx) -> tuple[str, str]:
    today = datetime.now(UTC).date()
    start = ctx.query("from") or (today - timedelta(days=13)).isoformat()
    end = ctx.query("to") or (today + timedelta(days=1)).isoformat()
    return start, end


def chart(daily: DailyMatches) -> list[dict[str, object]]:
    """Bars per day, stacked by bank, as SVG rectangles (the page draws no script)."""
    peak = max(1, max((sum(c.values()) for c in daily.counts.values()), default=0))
    width = CHART_W / max(1, len(daily.days))
    bars = []
    for i, day in enumerate(daily.days):
        y = float(CHART_H)
        for k, bank in enumerate(daily.banks):
            n = daily.counts[day].get(bank, 0)
            if not n:
                continue
            h = n * (CHART_H - 10) / peak
            y -= h
            bars.append({"x": i * width + 2, "y": y, "w": max(1.0, width - 4), "h": h,
                         "series": k % 6, "title": f"{day}: {bank} {n}"})  # fmt: skip
    return bars


def register(console: Console) -> None:
    oversight = Oversight.of(console.runtime)

    async def exchanges(ctx: Ctx) -> Response:
        found = await asyncio.to_thread(oversight.exchange_list, ctx.who)
        return ctx.render("exchanges.html", exchanges=[(x, describe(x)) for x in found])

    async def sync(ctx: Ctx) -> Response:
        name = ctx.param("exchange")
        report = await asyncio.to_thread(oversight.sync_now, ctx.who, name)
        if report.error:
            return ctx.back("/exchanges", f"sync of {name} failed: {report.error}")
        if report.busy:
            return ctx.back("/exchanges", f"{name} is syncing elsewhere already")
        return ctx.back("/exchanges", f"{name} synced: {report.added:,} added,"
                        f" {report.removed:,} removed in {report.seconds:.1f} s")  # fmt: skip

    async def quarantine(ctx: Ctx) -> Response:
        rows = await asyncio.to_thread(oversight.quarantined, ctx.who)
        return ctx.render("quarantine.html", rows=rows)

    async def release(ctx: Ctx) -> Response:
        raw = ctx.param("entry")
        if not raw.isdigit():
            raise BadParameter("an entry id is a whole number")
        if not await asyncio.to_thread(oversight.release, ctx.who, int(raw)):
            raise NotFound(f"entry {raw} is not quarantined")
        return ctx.back("/quarantine", f"entry {raw} released")

    async def usage(ctx: Ctx) -> Response:
        start, end = _span(ctx)
        tenant = ctx.query("tenant")  # the operator's choice; a tenant admin's own only
        rows = await asyncio.to_thread(oversight.usage, ctx.who, start, end, tenant)
        daily = await asyncio.to_thread(oversight.daily_matches, ctx.who, start, end, tenant)
        return ctx.render("usage.html", rows=rows, start=start, end=end, daily=daily,
                          tenant=tenant, bars=chart(daily), chart_w=CHART_W,
                          chart_h=CHART_H)  # fmt: skip

    async def ncmec(ctx: Ctx) -> Response:
        start, end = _span(ctx)
        body = await asyncio.to_thread(oversight.ncmec_aggregate, ctx.who, start, end)
        name = f"ncmec-aggregate-{start}-{end}.json"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return JSONResponse(body, headers=headers)

    async def audit(ctx: Ctx) -> Response:
        return ctx.render("audit.html", result=None)

    async def verify(ctx: Ctx) -> Response:
        result = await asyncio.to_thread(oversight.verify_audit, ctx.who)
        return ctx.render("audit.html", result=result)

    r = console.route
    r("/exchanges", "ListExchanges", Role.OPERATOR, exchanges)
    r("/exchanges/{exchange}/sync", "SyncExchange", Role.OPERATOR, sync, "POST")
    r("/quarantine", "ListQuarantine", Role.OPERATOR, quarantine)
    r("/quarantine/{entry}/release", "ReleaseQuarantine", Role.OPERATOR, release, "POST")
    r("/usage", "Usage", Open.ANY_KEY, usage)
    r("/usage/ncmec", "NcmecAggregate", Role.OPERATOR, ncmec)
    r("/audit", "Audit", Role.OPERATOR, audit)
    r("/audit/verify", "VerifyAudit", Role.OPERATOR, verify, "POST")
