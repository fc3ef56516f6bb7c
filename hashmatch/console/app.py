"""The console's request cycle: session, CSRF, admission, one call on the core, a page.

Every route names its audit name and its policy (a role, or any valid key), exactly as
the gRPC interceptor's table does; the request is admitted by the core's Admission with
the session's key (so a revoked key or a suspended tenant ends the session at once), the
role is checked on the resulting Principal, and the handler runs inside one audited
Call. Handlers are one call on the core plus rendering; errors become pages in one place.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hashmatch.console.errors import TITLES, status_for
from hashmatch.console.forms import read_form, text
from hashmatch.console.security import Hardened, harden, same_origin, token_ok
from hashmatch.console.sessions import Session, SessionStore
from hashmatch.core.admission import Open, Policy
from hashmatch.core.calls import Call
from hashmatch.core.runtime import Runtime
from hashmatch.errors import (
    BadParameter,
    ErrorCode,
    HashmatchError,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from hashmatch.tenancy.model import Principal, Role

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
PREFIX = "/console"
COOKIE = "hm_session"
SIGNIN_COOKIE = "hm_signin"  # the sign-in form's double-submit CSRF token
T = TypeVar("T")
FORMS_IN_FLIGHT = 2  # forms read at once may hold this many times max_upload_bytes


@dataclass
class Ctx:
    """One console request, admitted."""

    request: Request
    session: Session
    who: Principal
    call: Call
    console: Console = field(repr=False)
    form: FormData | None = None

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def field(self, name: str, default: str = "") -> str:
        """A posted form's text field."""
        return text(self.form, name, default) if self.form is not None else default

    def parsed(self, name: str, parse: Callable[[str], T], expected: str) -> T | None:
        """A posted field as `parse` reads it; None when left empty; a ValueError is a
        BadParameter naming the field and what it expects."""
        raw = self.field(name)
        if not raw:
            return None
        try:
            return parse(raw)
        except ValueError:
            raise BadParameter(f"{name}: {expected}") from None

    def number(self, name: str, kind: type[int] | type[float] = int) -> Any:
        """A posted number (int or float, as `kind`); None when the field is left empty."""
        return self.parsed(name, kind, "a whole number" if kind is int else "a number")

    def fields(self, name: str) -> list[str]:
        return [str(v) for v in self.form.getlist(name)] if self.form is not None else []

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return self.console.render(self.request, template, status, self.session, self.who,
                                   **values)  # fmt: skip

    def back(self, path: str, flash: str = "") -> RedirectResponse:
        """After a change: a message for the next page, and a redirect (303) there."""
        if flash:
            self.session.flashes.append(flash)
        return RedirectResponse(path if path.startswith(PREFIX + "/") else PREFIX + path, 303)


Handler = Callable[[Ctx], Awaitable[Response]]


def url(*parts: object) -> str:
    """A console path with each part escaped (bank names hold ':')."""
    return PREFIX + "".join("/" + quote(str(p), safe=":") for p in parts)


class Console:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.config = runtime.config.console
        self.sessions = SessionStore(self.config.idle_s, self.config.max_session_s)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.templates.globals["url"] = url
        self.templates.globals["Role"] = Role
        self.routes: list[Route] = []
        self._reading: set[str] = set()  # sessions whose form is being read
        # Signs the sign-in page's notes: only this server's own are shown (a link with
        # any text of an attacker's on the real sign-in page is a phishing page).
        self._note_key = secrets.token_bytes(32)
        self._bytes_reading = 0  # what those forms may take (the event loop's alone)

    # -- pages ---------------------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        session: Session | None = None,
        who: Principal | None = None,
        **values: Any,
    ) -> HTMLResponse:
        flashes = []
        if session is not None:
            flashes, session.flashes = session.flashes, []
        html = self.templates.get_template(template).render(
            who=who, csrf=session.csrf if session else "", flashes=flashes, **values
        )
        return harden(HTMLResponse(html, status))

    def error_page(
        self, request: Request, exc: HashmatchError, session: Session | None, who: Principal | None
    ) -> Response:
        status = status_for(exc.code)
        return self.render(request, "error.html", status, session, who,
                           title=TITLES.get(status, "Error"), message=exc.message)  # fmt: skip

    def note_mac(self, note: str) -> str:
        return hmac.new(self._note_key, note.encode(), "sha256").hexdigest()[:32]

    def to_signin(self, note: str = "") -> Response:
        query = f"?note={quote(note)}&sig={self.note_mac(note)}" if note else ""
        target = PREFIX + "/signin" + query
        response = RedirectResponse(target, 303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return harden(response)

    # -- the request cycle ---------------------------------------------------------------
    def route(
        self, path: str, rpc: str, policy: Policy, handler: Handler, method: str = "GET"
    ) -> None:
        """A console route: `rpc` is its audit name ("Console:<rpc>")."""

        async def endpoint(request: Request) -> Response:
            return await self._serve(request, f"Console:{rpc}", policy, handler)

        self.routes.append(Route(path, endpoint, methods=[method]))

    async def _serve(
        self, request: Request, rpc: str, policy: Policy, handler: Handler
    ) -> Response:
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            self.runtime.calls.refused(rpc, Unauthenticated("no console session"))
            if request.method == "GET":
                return self.to_signin()
            return self.render(request, "error.html", 403, title=TITLES[403],
                               message="no session: sign in again")  # fmt: skip
        # The key first (revoked, throttled, another's role): no body is read for a
        # caller that would be refused.
        who = await self._admit(request, session, rpc)
        if not isinstance(who, Principal):
            return who
        return await self._handle(request, rpc, policy, handler, session, who)

    async def _handle(
        self,
        request: Request,
        rpc: str,
        policy: Policy,
        handler: Handler,
        session: Session,
        who: Principal,
    ) -> Response:
        form = None
        try:
            with self.runtime.calls.call(who, rpc) as call:
                if isinstance(policy, Role):
                    who.require(policy)  # the same check Admission makes for gRPC
                if request.method == "POST":
                    form = await self._read_form(request, session)
                ctx = Ctx(request, session, who, call, self, form)
                return harden(await handler(ctx))
        except HashmatchError as exc:
            return self.error_page(request, exc, session, who)
        except Exception:
            log.exception("console: unexpected error in %s", rpc)
            return self.render(request, "error.html", 500, session, who, title=TITLES[500],
                               message="internal error (logged on the server)")  # fmt: skip
        finally:
            if form is not None:
                await form.close()  # uploads are held in memory: freed with the request

    async def _read_form(self, request: Request, session: Session) -> FormData:
        """The posted form, within the memory every form in flight may hold together (one
        at a time per session), its CSRF token and origin checked."""
        limit = self.config.max_upload_bytes
        want = min(int(request.headers.get("content-length") or limit), limit)
        if session.id in self._reading or self._bytes_reading + want > FORMS_IN_FLIGHT * limit:
            raise Overloaded("the console is reading other forms: try again in a moment", 1.0)
        self._reading.add(session.id)
        self._bytes_reading += want
        try:
            form = await read_form(request, limit)
        finally:
            self._reading.discard(session.id)
            self._bytes_reading -= want
        if not same_origin(request) or not token_ok(form.get("csrf"), session.csrf):
            await form.close()
            raise PermissionDenied(
                "the form's security token did not match: reload the page and try again"
            )
        return form

    async def _admit(self, request: Request, session: Session, rpc: str) -> Principal | Response:
        """The session's key, admitted now as any gRPC call is: a key revoked, expired or
        of a tenant no longer approved ends the session."""
        peer = request.client.host if request.client else ""
        try:
            who = await self.runtime.admission.admit_async(session.key, Open.ANY_KEY, rpc, peer)
        except HashmatchError as exc:
            if exc.code in (ErrorCode.UNAUTHENTICATED, ErrorCode.PERMISSION_DENIED):
                self.sessions.close(session.id)
                return self.to_signin(exc.message)
            return self.error_page(request, exc, session, None)
        if who.open:  # keys were all removed: nobody may hold a session
            self.sessions.close(session.id)
            return self.to_signin("this server has no API keys")
        if await asyncio.to_thread(self._rotated, session.key_id):
            # The old key works on over its overlap for API clients; a console session
            # opened with it ends at once.
            self.sessions.close(session.id)
            return self.to_signin("your key was rotated: sign in with the new one")
        return who

    def _rotated(self, key_id: str) -> bool:
        try:
            return self.runtime.tenants.get_key(key_id).replaced_by is not None
        except Unavailable:  # a lost database: as admission, go on with what was known
            return False


def build(runtime: Runtime) -> tuple[Console, Starlette]:
    from hashmatch.console import pages_admin, pages_banks, pages_debug, pages_ops, signin

    console = Console(runtime)
    signin.register(console)
    pages_admin.register(console)
    pages_banks.register(console)
    pages_ops.register(console)
    pages_debug.register(console)
    routes = [
        *console.routes,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return console, Starlette(routes=routes)


def mount(runtime: Runtime) -> Mount:
    """The console under /console, for the REST app."""
    return Mount(PREFIX, app=Hardened(build(runtime)[1]))
