"""Sign-in with an API key (exchanged for a session cookie) and sign-out.

The key is admitted by the core's Admission exactly as a gRPC call's; a new session id is
made on every sign-in (any session cookie the browser brought is dropped: session
fixation), and the form is protected by a double-submit token and the Origin check.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hashmatch.console.app import COOKIE, PREFIX, SIGNIN_COOKIE, Console, Ctx
from hashmatch.console.errors import TITLES
from hashmatch.console.forms import read_form, text
from hashmatch.console.security import harden, same_origin, token_ok
from hashmatch.core.admission import Open
from hashmatch.errors import HashmatchError, PermissionDenied
from hashmatch.tenancy.model import split_key

MAX_SIGNIN_BYTES = 4096


def register(console: Console) -> None:
    async def signin_page(request: Request) -> Response:
        token = secrets.token_urlsafe(32)
        note = request.query_params.get("note", "")[:300]
        if not hmac.compare_digest(request.query_params.get("sig", ""), console.note_mac(note)):
            note = ""  # not this server's
        response = console.render(request, "signin.html", 200, signin_token=token, note=note)
        _cookie(console, request, response, SIGNIN_COOKIE, token, max_age=3600)
        return response

    async def signin(request: Request) -> Response:
        def refuse(status: int, message: str) -> Response:
            fresh = secrets.token_urlsafe(32)  # the form again, with a token of its own
            response = console.render(request, "signin.html", status, title=TITLES.get(status),
                                      error=message, signin_token=fresh)  # fmt: skip
            _cookie(console, request, response, SIGNIN_COOKIE, fresh, max_age=3600)
            return response

        token = request.cookies.get(SIGNIN_COOKIE, "")
        try:
            form = await read_form(request, MAX_SIGNIN_BYTES)
        except HashmatchError as exc:
            return refuse(400, exc.message)
        if not token or not same_origin(request) or not token_ok(form.get("csrf"), token):
            console.runtime.calls.refused("Console:SignIn", PermissionDenied("CSRF check failed"))
            return refuse(403, "the sign-in form expired: reload the page and try again")
        key = text(form, "key")
        peer = request.client.host if request.client else ""
        try:
            who = await console.runtime.admission.admit_async(
                key or None, Open.ANY_KEY, "Console:SignIn", peer
            )
            if who.open:
                raise PermissionDenied(
                    "this server has no API keys yet: create the first with"
                    " `hashmatch admin bootstrap`"
                )
            key_id = split_key(key)[0]
        except HashmatchError as exc:
            return refuse(401 if exc.code.value == "UNAUTHENTICATED" else 403, exc.message)
        old = request.cookies.get(COOKIE)
        if old:
            console.sessions.close(old)  # never carried over: a new id at every sign-in
        session = console.sessions.open(key, key_id, who.tenant_id)
        with console.runtime.calls.call(who, "Console:SignIn"):
            pass
        response = harden(RedirectResponse(PREFIX + "/", 303))
        _cookie(console, request, response, COOKIE, session.id, max_age=None)
        response.delete_cookie(SIGNIN_COOKIE, path=PREFIX + "/signin")
        return response

    async def signout(ctx: Ctx) -> Response:
        ctx.console.sessions.close(ctx.session.id)
        return ctx.console.to_signin("signed out")

    async def home(ctx: Ctx) -> Response:
        return ctx.render("home.html")

    from starlette.routing import Route

    console.routes.append(Route("/signin", signin_page, methods=["GET"]))
    console.routes.append(Route("/signin", signin, methods=["POST"]))
    console.route("/signout", "SignOut", Open.ANY_KEY, signout, "POST")
    console.route("/", "Home", Open.ANY_KEY, home)


def _cookie(
    console: Console,
    request: Request,
    response: Response,
    name: str,
    value: str,
    max_age: int | None,
) -> None:
    """HttpOnly, SameSite=Strict, scoped to the console; Secure over HTTPS (or when
    configured, behind a TLS-terminating proxy). A session cookie lasts until the browser
    closes; the server ends it sooner when idle."""
    secure = request.url.scheme == "https" or console.config.secure_cookies
    path = PREFIX + "/signin" if name == SIGNIN_COOKIE else PREFIX
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure,
                        httponly=True, samesite="strict")  # fmt: skip
