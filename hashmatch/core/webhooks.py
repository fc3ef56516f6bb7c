"""Webhooks on match: a signed POST per matched item to the tenant's review queue.

Signature: `X-Hashmatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
with `X-Hashmatch-Timestamp` (seconds), so a receiver checks origin and freshness. Delivery
runs on a background thread with retries and backoff; the queue is bounded (a slow receiver
cannot grow memory): past it, events are dropped and counted. Events carry ids, labels and
distances, never the content's hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    attempts: int = 0


@dataclass(frozen=True)
class Target:
    url: str
    secret: bytes = field(repr=False)


class WebhookNotifier:
    def __init__(
        self,
        targets: dict[str, Target],
        attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        queue_max: int = 10_000,
    ) -> None:
        self.targets = targets
        self.attempts, self.backoff_s, self.timeout_s = attempts, backoff_s, timeout_s
        self.stats = WebhookStats()
        self._queue: queue.Queue[tuple[Target, bytes] | None] = queue.Queue(maxsize=queue_max)
        self._thread = threading.Thread(target=self._run, name="hashmatch-webhooks", daemon=True)
        self._thread.start()

    def notify(self, tenant: str, event: dict[str, Any]) -> None:
        target = self.targets.get(tenant)
        if target is None:
            return
        body = json.dumps({"tenant": tenant, **event}, sort_keys=True).encode()
        try:
            self._queue.put_nowait((target, body))
        except queue.Full:
            self.stats.dropped += 1

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            target, body = job
            delay = self.backoff_s
            for attempt in range(1, self.attempts + 1):
                self.stats.attempts += 1
                if self._post(target, body):
                    self.stats.delivered += 1
                    break
                if attempt == self.attempts:
                    self.stats.failed += 1
                    log.warning("webhook to %s failed after %d attempts", target.url, attempt)
                else:
                    time.sleep(delay)
                    delay *= 2

    def _post(self, target: Target, body: bytes) -> bool:
        ts = str(int(time.time()))
        req = urllib.request.Request(
            target.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Hashmatch-Timestamp": ts,
                "X-Hashmatch-Signature": sign(target.secret, ts, body),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                status: int = resp.status
                return 200 <= status < 300
        except (urllib.error.URLError, TimeoutError, OSError):
            return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to timeout_s), then stop."""
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)
