"""Banks: the list, a bank's settings and counts, its entries paged by id, import with
progress, export, and accepting or leaving a share. Each handler is one call on the
core's BankOps (the same rules as BankService and `hashmatch bank`)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from typing import TypeVar

from starlette.responses import JSONResponse, Response, StreamingResponse

from hashmatch.banks.model import BankKind, BankSettings, DistancePolicy, Visibility
from hashmatch.console.app import Console, Ctx, url
from hashmatch.console.forms import upload
from hashmatch.console.imports import ImportJobs
from hashmatch.core.banks import BankOps, export_format, owns
from hashmatch.errors import BadParameter
from hashmatch.tenancy.model import Role

PAGE = 50
EXPORT_CHUNK = 1 << 20
E = TypeVar("E", bound=StrEnum)


def _choice(ctx: Ctx, name: str, kind: type[E]) -> E | None:
    return ctx.parsed(name, kind, f"one of {', '.join(k.value for k in kind)}")


def settings_of(ctx: Ctx) -> BankSettings:
    """The settings a bank form sends; fields left empty stay as they are."""
    shared = ctx.field("shared_with")
    enabled = ctx.field("enabled")
    return BankSettings(
        visibility=_choice(ctx, "visibility", Visibility),
        shared_with=frozenset(s.strip() for s in shared.split(",") if s.strip())
        if "shared_with" in ctx.fields("set")
        else None,
        kind=_choice(ctx, "kind", BankKind),
        pdq_threshold=ctx.number("pdq_threshold"),
        min_quality=ctx.number("min_quality"),
        enabled=None if not enabled else enabled == "yes",
        distance_policy=_choice(ctx, "distance_policy", DistancePolicy),
    )


def register(console: Console) -> None:
    rt = console.runtime
    ops = BankOps(rt.store, rt.access)
    jobs = ImportJobs(ops, rt.calls)

    async def banks(ctx: Ctx) -> Response:
        views = await asyncio.to_thread(ops.visible, ctx.who)
        return ctx.render("banks.html", views=views, owns=owns)

    async def create(ctx: Ctx) -> Response:
        name = ctx.field("name")
        bank = await asyncio.to_thread(ops.create, ctx.who, name, settings_of(ctx))
        return ctx.back(url("banks", bank.name), f"bank {name} created")

    async def bank(ctx: Ctx) -> Response:
        name = ctx.param("bank")
        view = await asyncio.to_thread(ops.get, ctx.who, name)
        entries, after, nxt = None, _int_q(ctx, "after"), 0
        if owns(ctx.who, view.bank):  # only the owner lists a bank's entries
            entries = await asyncio.to_thread(ops.entries, ctx.who, name, after, PAGE)
            nxt = entries[-1].id if len(entries) == PAGE else 0
        return ctx.render("bank.html", view=view, entries=entries, after=after, next_after=nxt,
                          owned=owns(ctx.who, view.bank), formats=["csv", "tsv", "jsonl", "te",
                          "ncmec"])  # fmt: skip

    async def update(ctx: Ctx) -> Response:
        name = ctx.param("bank")
        await asyncio.to_thread(ops.update, ctx.who, name, settings_of(ctx))
        return ctx.back(url("banks", name), "settings saved")

    async def share(ctx: Ctx) -> Response:
        name, accept = ctx.param("bank"), ctx.field("accept") == "yes"
        await asyncio.to_thread(ops.set_share, ctx.who, name, accept)
        word = "accepted" if accept else "left"
        return ctx.back(url("banks", name), f"share {word}")

    async def start_import(ctx: Ctx) -> Response:
        name = ctx.param("bank")
        fmt = export_format(ctx.field("format"))
        assert ctx.form is not None  # a POST's form is read before any handler
        data = await upload(ctx.form, "file")
        job = await asyncio.to_thread(jobs.start, ctx.who, name, data, fmt)
        ctx.call.count_items(1)
        return ctx.back(url("banks", name, "imports", job.id))

    async def import_page(ctx: Ctx) -> Response:
        job = jobs.get(ctx.who, ctx.param("job"))
        return ctx.render("import.html", job=job.to_json())

    async def import_status(ctx: Ctx) -> Response:
        return JSONResponse(jobs.get(ctx.who, ctx.param("job")).to_json())

    async def export(ctx: Ctx) -> Response:
        name, fmt = ctx.param("bank"), export_format(ctx.query("format"))
        # Written whole first (NCMEC XML is one document), then streamed; hashes only.
        owner = ctx.who.bank_owner
        ops.exports.acquire(owner)  # released when the response is sent, or fails
        spool = tempfile.TemporaryFile(mode="w+b", prefix="hashmatch-export-")  # noqa: SIM115
        try:
            await asyncio.to_thread(ops.export, ctx.who, name, fmt, spool)
        except BaseException:
            spool.close()
            ops.exports.release(owner)
            raise
        spool.seek(0)

        def chunks() -> Iterator[bytes]:
            try:
                with spool:
                    while data := spool.read(EXPORT_CHUNK):
                        yield data
            finally:
                ops.exports.release(owner)

        filename = name.replace(":", "_") + "." + ("xml" if fmt.value == "ncmec" else fmt.value)
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)

    r = console.route
    r("/banks", "ListBanks", Role.BANK_ADMIN, banks)
    r("/banks", "CreateBank", Role.BANK_ADMIN, create, "POST")
    r("/banks/{bank}", "GetBank", Role.BANK_ADMIN, bank)
    r("/banks/{bank}/settings", "UpdateBank", Role.BANK_ADMIN, update, "POST")
    r("/banks/{bank}/share", "SetShare", Role.BANK_ADMIN, share, "POST")
    r("/banks/{bank}/import", "ImportEntries", Role.BANK_ADMIN, start_import, "POST")
    r("/banks/{bank}/imports/{job}", "GetImport", Role.BANK_ADMIN, import_page)
    r("/banks/{bank}/imports/{job}/status", "GetImport", Role.BANK_ADMIN, import_status)
    r("/banks/{bank}/export", "ExportEntries", Role.BANK_ADMIN, export)


def _int_q(ctx: Ctx, name: str) -> int:
    raw = ctx.query(name, "0")
    if not raw.isdigit():
        raise BadParameter(f"{name}: a whole number")
    return int(raw)
