"""Webhooks on match: signed, retried, one event per matched item, no content hashes."""

from __future__ import annotations

import hmac
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hashmatch.client import Client
from hashmatch.core.webhooks import RetryPolicy, Target, WebhookNotifier, sign
from tests import server_harness
from tests.helpers import encode, synthetic_rgb

SECRET = "webhook-secret-for-tests"


class Receiver:
    """A review queue that fails its first POST (to exercise the retry) and checks HMACs."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.bad_signatures = 0
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # http.server calls it by this name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls += 1
                want = sign(SECRET.encode(), self.headers["X-Hashmatch-Timestamp"], body)
                if not hmac.compare_digest(want, self.headers["X-Hashmatch-Signature"]):
                    receiver.bad_signatures += 1
                if receiver.calls == 1:
                    self.send_response(503)
                else:
                    receiver.events.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_signed_webhook_per_matched_item(tmp_path: Path) -> None:
    receiver = Receiver()
    config = tmp_path / "c.toml"
    config.write_text(f'[webhooks]\nurls = {{ operator = "{receiver.url}" }}\nbackoff_s = 0.05\n')
    listed = encode(synthetic_rgb(100, 120, seed=41), "PNG")
    other = encode(synthetic_rgb(100, 120, seed=42), "PNG")
    srv = server_harness.start(
        tmp_path / "data",
        "--config",
        str(config),
        "--rest-listen",
        "127.0.0.1:0",
        env={"HASHMATCH_WEBHOOK_SECRET_OPERATOR": SECRET},
    )
    try:
        with Client(srv.target) as client:
            pdq = client.hash_images([listed])[0].pdq
            import io

            from hashmatch.cli import main
            from hashmatch.commands.common import Streams

            data = ["--data-dir", str(tmp_path / "data")]
            main(["bank", "create", "hooks", *data], Streams(stdout=io.StringIO()))
            main(["bank", "add", "hooks", pdq, *data], Streams(stdout=io.StringIO()))
            for _ in range(100):
                if client.match_images([listed])[0].is_match:
                    break
            receiver.events.clear()
            client.match_images([listed, other, listed], content_ids=["a", "b", "c"])
            # The REST face is the same core: its matches are webhooked too.
            rest = urllib.request.Request(
                f"http://127.0.0.1:{srv.rest_port}/photodna/v1.0/Match?ContentId=r",
                data=listed,
                headers={"Content-Type": "image/png"},
            )
            with urllib.request.urlopen(rest) as resp:
                assert json.loads(resp.read())["IsMatch"] is True
        end = time.monotonic() + 10
        wanted = ("a", "b", "c", "r")

        def ours() -> list[str]:  # the warm-up matches above send events too
            return sorted(
                str(e["content_id"]) for e in receiver.events if e["content_id"] in wanted
            )

        while len(ours()) < 3 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        assert srv.stop() == 0
        receiver.server.shutdown()
        receiver.server.server_close()
    assert receiver.bad_signatures == 0
    assert ours() == ["a", "c", "r"]
    event = receiver.events[0]
    assert event["tenant"] == "operator" and event["event"] == "match"
    assert event["matches"][0]["bank"] == "hooks"  # type: ignore[index]
    assert pdq not in json.dumps(receiver.events)  # no hashes of the content


def test_a_stalled_receiver_holds_up_only_its_own_tenant() -> None:
    """acme's receiver hangs until beta's event has arrived: with one delivery queue for
    everybody, beta's event would wait behind acme's and never come."""
    release = threading.Event()
    got: dict[str, list[dict[str, object]]] = {"acme": [], "beta": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # http.server calls it by this name
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if event["tenant"] == "acme":
                release.wait(30)
            got[str(event["tenant"])].append(event)
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    notifier = WebhookNotifier(
        {"acme": Target(url, b"a"), "beta": Target(url, b"b")}, timeout_s=60, queue_max=10
    )
    try:
        for k in range(3):
            notifier.notify("acme", {"content_id": f"a{k}"})
        notifier.notify("beta", {"content_id": "b0"})
        end = time.monotonic() + 20
        while not got["beta"] and time.monotonic() < end:
            time.sleep(0.02)
        assert [e["content_id"] for e in got["beta"]] == ["b0"]
        assert got["acme"] == []  # still held at its own receiver
        for k in range(10):  # 12 or 13 waiting for acme (one may be at its receiver)
            notifier.notify("acme", {"content_id": f"x{k}"})
        assert notifier.stats.dropped >= 2  # past its bound of 10: the excess is dropped
        release.set()
    finally:
        release.set()
        notifier.close(timeout_s=20)
        server.shutdown()
        server.server_close()
    assert notifier.stats.failed == 0


def test_retry_delays_double_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(attempts=8, backoff_s=1.0)
    assert [policy.delay(a, lambda: 0.5) for a in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert policy.delay(1, lambda: 0.0) == 0.5 and policy.delay(1, lambda: 1.0) == 1.5
    assert policy.delay(20, lambda: 0.5) == 60.0  # capped
