"""What every console response carries, and the CSRF checks of every form.

CSP: scripts, styles, images and form targets from this origin only, no inline script or
style, no framing. Forms carry the session's CSRF token in a hidden field, checked in
constant time; the request's Origin (or, without one, its Referer) must be this console's
own origin. Sign-in has no session yet: its token is a double-submit cookie.
"""

from __future__ import annotations

import hmac
from typing import TypeVar
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none';"
    " object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # a created key's secret must not sit in a cache
    "Cross-Origin-Opener-Policy": "same-origin",
}


R = TypeVar("R", bound=Response)


class Hardened:
    """The headers on every console response, also those no page made (404, 405, the
    static files): an ASGI wrapper of the console's app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)


def harden(response: R) -> R:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def same_origin(request: Request) -> bool:
    """The form was posted from a page of this console (Origin, else Referer)."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return hmac.compare_digest(origin.encode(), own.encode())


def token_ok(sent: object, expected: str) -> bool:
    return isinstance(sent, str) and bool(sent) and hmac.compare_digest(sent, expected)
