"""The match debugger: an uploaded image (in memory only, as on every face) goes through
the same MatchService as MatchImages, with its dihedral hashes; pasted hashes go through
MatchHashes. The caller sees what it would see over gRPC: its banks, its distances."""

from __future__ import annotations

from starlette.responses import Response

from hashmatch.commands.match_hashes import parse_line
from hashmatch.console.app import Console, Ctx
from hashmatch.console.forms import upload
from hashmatch.matching.model import MatchOptions
from hashmatch.tenancy.model import Role

MAX_LINES = 100
VARIANTS = ("original", "rotated 90", "rotated 180", "rotated 270", "flipped x", "flipped y",
            "flipped +1 (transposed)", "flipped -1")  # fmt: skip


def register(console: Console) -> None:
    service = console.runtime.service

    async def page(ctx: Ctx) -> Response:
        return ctx.render("debug.html", outcome=None, hashes=None, variants=VARIANTS)

    async def image(ctx: Ctx) -> Response:
        assert ctx.form is not None  # a POST's form is read before any handler
        data = await upload(ctx.form, "image")
        (outcome,) = await service.match_images(
            ctx.call, [("console", data)], MatchOptions(dihedral=True)
        )
        return ctx.render("debug.html", outcome=outcome, hashes=None, variants=VARIANTS)

    async def hashes(ctx: Ctx) -> Response:
        lines = [ln.strip() for ln in ctx.field("hashes").splitlines() if ln.strip()]
        lines = lines[:MAX_LINES]
        outcomes = await service.match_hashes(
            ctx.call, [(ln, parse_line(ln)) for ln in lines], MatchOptions()
        )
        return ctx.render("debug.html", outcome=None, hashes=outcomes, pasted="\n".join(lines),
                          variants=VARIANTS)  # fmt: skip

    console.route("/debug", "Debugger", Role.MATCH, page)
    console.route("/debug/image", "MatchImages", Role.MATCH, image, "POST")
    console.route("/debug/hashes", "MatchHashes", Role.MATCH, hashes, "POST")
