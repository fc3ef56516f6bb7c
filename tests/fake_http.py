"""A base for the fake exchange servers (fake_ncmec.py, fake_stopncii.py,
fake_threatexchange.py): a real HTTP server on loopback, a log of requests, and injectable
failures (429 with Retry-After, 500, a held request) per path."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Subclasses implement `route(request) -> Answer` (called under `self.lock`)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.fail_next: dict[str, list[int]] = {}  # path -> statuses to answer first
        self.retry_after_s = 0.0  # sent with every injected 429
        self.hold: dict[str, threading.Event] = {}  # path -> wait for this before answering
        self.hold_from: dict[str, int] = {}  # path -> hold only its Nth request and later
        self.arrived: dict[str, threading.Event] = {}
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go in two writes: with Nagle each keep-alive answer waits
            # for the client's delayed ACK (~40 ms on loopback).
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self)

            do_POST = do_PUT = do_DELETE = do_GET

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and left: expected in these tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        for event in self.hold.values():
            event.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]

    def route(self, request: Request) -> Answer:
        raise NotImplementedError

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        request = Request(h.command, url.path, parse_qs(url.query), h.headers, body)
        with self.lock:
            self.requests.append(request)
            nth = sum(r.path == url.path for r in self.requests)
            injected = self.fail_next.get(url.path)
            status = injected.pop(0) if injected else None
        self.arrived.setdefault(url.path, threading.Event()).set()
        if url.path in self.hold and nth >= self.hold_from.get(url.path, 1):
            self.hold[url.path].wait(60)
        if status is not None:
            headers = {"Retry-After": f"{self.retry_after_s:g}"} if status == 429 else {}
            answer = Answer(status, b"{}", headers=headers)
        else:
            with self.lock:
                answer = self.route(request)
        h.send_response(answer.status)
        h.send_header("Content-Type", answer.content_type)
        h.send_header("Content-Length", str(len(answer.body)))
        for k, v in answer.headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(answer.body)
