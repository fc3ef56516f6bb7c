"""Webhooks on match: a signed POST per matched item to the tenant's review queue.

Signature: `X-Hashmatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
with `X-Hashmatch-Timestamp` (seconds), so a receiver checks origin and freshness. Each
target has its own bounded queue and delivery thread, so a slow or failing receiver holds
up only its own tenant's events; retries back off exponentially with jitter. Past the
queue's bound, events are dropped and counted (a receiver cannot grow the server's
memory). Events carry ids, labels and distances, never the content's hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from hashmatch.config import WebhooksConfig
from hashmatch.errors import ConfigError
from hashmatch.hashing.signature import DIHEDRAL_NAMES
from hashmatch.matching.model import Match

log = logging.getLogger(__name__)

MAX_DELAY_S = 60.0


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


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before retry `attempt` (1-based): doubling, +-50% jitter, capped, so
        receivers that failed together are not retried together."""
        base = min(MAX_DELAY_S, self.backoff_s * 2 ** (attempt - 1))
        return float(base * (0.5 + rand()))


class _Lane:
    """One target's queue and delivery thread."""

    def __init__(self, target: Target, policy: RetryPolicy, queue_max: int, stats: WebhookStats):
        self.target, self.policy, self.stats = target, policy, stats
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_max)
        self._http = httpx.Client(timeout=policy.timeout_s)
        self._closing = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hashmatch-webhook", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (body := self.queue.get()) is not None:
            self._deliver(body)
        self._http.close()

    def _deliver(self, body: bytes) -> None:
        for attempt in range(1, self.policy.attempts + 1):
            self.stats.attempts += 1
            if self._post(body):
                self.stats.delivered += 1
                return
            if attempt < self.policy.attempts and not self._closing.wait(
                self.policy.delay(attempt)
            ):
                continue
            break
        self.stats.failed += 1
        log.warning("webhook to %s failed after %d attempts", self.target.url, attempt)

    def _post(self, body: bytes) -> bool:
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Hashmatch-Timestamp": ts,
            "X-Hashmatch-Signature": sign(self.target.secret, ts, body),
        }
        try:
            resp = self._http.post(self.target.url, content=body, headers=headers)
        except httpx.HTTPError:
            return False
        return resp.is_success

    def close(self, deadline: float) -> None:
        try:
            self.queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            self._closing.set()  # stop waiting between retries; what is queued is dropped
            return
        self.thread.join(max(0.0, deadline - time.monotonic()))
        self._closing.set()


class WebhookNotifier:
    def __init__(
        self,
        targets: dict[str, Target],
        attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        queue_max: int = 10_000,
    ) -> None:
        self.stats = WebhookStats()
        policy = RetryPolicy(attempts, backoff_s, timeout_s)
        self._lanes = {t: _Lane(target, policy, queue_max, self.stats)
                       for t, target in targets.items()}  # fmt: skip

    @property
    def tenants(self) -> frozenset[str]:
        return frozenset(self._lanes)

    def notify(self, tenant: str, event: dict[str, Any]) -> None:
        lane = self._lanes.get(tenant)
        if lane is None:
            return
        body = json.dumps({"tenant": tenant, **event}, sort_keys=True).encode()
        try:
            lane.queue.put_nowait(body)
        except queue.Full:
            self.stats.dropped += 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to timeout_s in all), then stop."""
        deadline = time.monotonic() + timeout_s
        for lane in self._lanes.values():
            lane.close(deadline)


def match_event(content_id: str, tracking_id: str, matches: Sequence[Match]) -> dict[str, Any]:
    """What a webhook says about a matched item: ids, labels, distances; no hashes."""
    return {
        "event": "match",
        "content_id": content_id,
        "tracking_id": tracking_id,
        "matches": [
            {"bank": m.bank, "entry_id": m.entry_id, "label": m.label or "",
             "source": m.source or "", "distance": m.distance,
             "variant": DIHEDRAL_NAMES[m.dihedral]}
            for m in matches
            if m.suppressed_by is None
        ],
    }  # fmt: skip


def open_webhooks(config: WebhooksConfig, environ: Mapping[str, str]) -> WebhookNotifier | None:
    """The notifier for the tenants with a webhook URL; each secret from the environment
    variable the config names (never from the file)."""
    if not config.urls:
        return None
    targets = {}
    for tenant, url in config.urls.items():
        env = config.secret_env_prefix + tenant.upper().replace("-", "_")
        secret = environ.get(env, "")
        if not secret:
            raise ConfigError(f"webhook for tenant {tenant!r}: set its secret in ${env}")
        targets[tenant] = Target(url, secret.encode())
    return WebhookNotifier(
        targets, config.attempts, config.backoff_s, config.timeout_s, config.queue_max
    )
