"""Webhooks on match: signed, retried, one event per matched item, no content hashes."""

from __future__ import annotations

import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hashmatch.client import Client
from hashmatch.core.webhooks import sign
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
        end = time.monotonic() + 10

        def ours() -> list[str]:  # the warm-up matches above send events too
            return sorted(
                str(e["content_id"]) for e in receiver.events if e["content_id"] in ("a", "b", "c")
            )

        while len(ours()) < 2 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        assert srv.stop() == 0
        receiver.server.shutdown()
        receiver.server.server_close()
    assert receiver.bad_signatures == 0
    assert ours() == ["a", "c"]
    event = receiver.events[0]
    assert event["tenant"] == "operator" and event["event"] == "match"
    assert event["matches"][0]["bank"] == "hooks"  # type: ignore[index]
    assert pdq not in json.dumps(receiver.events)  # no hashes of the content
