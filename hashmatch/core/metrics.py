"""Prometheus metrics, on their own HTTP port, in a registry per server: one place counts
what every face answers (from the core's outcomes)."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from hashmatch.core.outcome import Outcome
from hashmatch.errors import ConfigError

_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("hashmatch_requests", "RPCs received", ["rpc"], registry=r)
        self.items = Counter("hashmatch_items", "Items received", ["rpc"], registry=r)
        self.results = Counter("hashmatch_item_results", "Per-item outcomes", ["code"], registry=r)
        self.matched = Counter("hashmatch_matched_items", "Items with a match", registry=r)
        self.batch_size = Histogram(
            "hashmatch_batch_size",
            "Items per engine batch",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        self.stage = Histogram(
            "hashmatch_stage_seconds",
            "Latency per stage",
            ["stage"],
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.backend = Gauge(
            "hashmatch_backend_info", "The hashing backend and image decoder in use (1)",
            ["backend", "device", "decoder"],
            registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge("hashmatch_queue_depth", "Items waiting to be hashed", registry=r)
        self.index_size = Gauge("hashmatch_index_entries", "Live entries in the index", registry=r)
        self.dropped = Counter(
            "hashmatch_dropped_items",
            "Items never hashed: caller gone, deadline passed, or queue full",
            ["reason"],
            registry=r,
        )
        self.streams = Gauge("hashmatch_open_streams", "Open MatchStream calls", registry=r)
        # Tenancy: who calls, who is refused, and signs of a list being probed (a tenant's
        # items vs matched items, bank names answered NOT_FOUND, throttling): alert on them.
        self.auth_refusals = Counter(
            "hashmatch_auth_refusals", "Calls refused before any work", ["code"], registry=r
        )
        self.tenant_requests = Counter(
            "hashmatch_tenant_requests", "Admitted calls per tenant", ["tenant", "rpc"], registry=r
        )
        self.tenant_items = Counter(
            "hashmatch_tenant_items", "Items matched per tenant", ["tenant"], registry=r
        )
        self.tenant_matched = Counter(
            "hashmatch_tenant_matched_items", "Items with a match per tenant", ["tenant"],
            registry=r,
        )  # fmt: skip
        self.tenant_throttled = Counter(
            "hashmatch_tenant_throttled",
            "Calls refused by a tenant's rate limit or monthly quota",
            ["tenant", "limit"],
            registry=r,
        )
        self.key_verifications = Counter(
            "hashmatch_key_verifications",
            "API key secrets checked with scrypt (first use of a key in this process)",
            registry=r,
        )
        self.tenant_probes = Counter(
            "hashmatch_tenant_probe_flags",
            "Times a tenant was flagged for near-identical hash queries (probing a list)",
            ["tenant"],
            registry=r,
        )
        self.tenant_not_found = Counter(
            "hashmatch_tenant_bank_not_found",
            "Bank names a tenant asked for that it cannot see (or that do not exist)",
            ["tenant"],
            registry=r,
        )

    def probe_flagged(self, tenant: str) -> None:
        self.tenant_probes.labels(tenant).inc()

    def watch(self, queue_depth: Callable[[], float], index_size: Callable[[], float]) -> None:
        self.queue_depth.set_function(queue_depth)
        self.index_size.set_function(index_size)

    @contextmanager
    def rpc(self, name: str, n_items: int) -> Iterator[None]:
        self.requests.labels(name).inc()
        self.items.labels(name).inc(n_items)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage.labels(f"rpc:{name}").observe(time.perf_counter() - t0)

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.stage.labels("hash_batch").observe(seconds)

    def on_drop(self, reason: str) -> None:
        self.dropped.labels(reason).inc()

    def count_outcomes(self, tenant: str | None, outcomes: Sequence[Outcome]) -> None:
        """Per-item results, overall and (for a tenant's calls) per tenant."""
        codes = Tally(o.code for o in outcomes)
        for code, n in codes.items():
            self.results.labels(code).inc(n)
        matched = sum(1 for o in outcomes if o.is_match)
        self.matched.inc(matched)
        if tenant is not None:
            self.tenant_items.labels(tenant).inc(len(outcomes))
            self.tenant_matched.labels(tenant).inc(matched)

    def count_video(self, tenant: str | None, frames: int, matched: bool) -> None:
        """A video's frames as a tenant's items (one item matched when the video did)."""
        self.matched.inc(1 if matched else 0)
        if tenant is not None:
            self.tenant_items.labels(tenant).inc(frames)
            self.tenant_matched.labels(tenant).inc(1 if matched else 0)

    def auth_refused(self, code: str) -> None:
        self.auth_refusals.labels(code).inc()

    def tenant_request(self, tenant: str, rpc: str) -> None:
        self.tenant_requests.labels(tenant, rpc).inc()

    def throttled(self, tenant: str, limit: str) -> None:
        self.tenant_throttled.labels(tenant, limit).inc()

    def bank_not_found(self, tenant: str) -> None:
        self.tenant_not_found.labels(tenant).inc()

    def stream_opened(self) -> None:
        self.streams.inc()

    def stream_closed(self) -> None:
        self.streams.dec()

    def serve(self, listen: str) -> tuple[Any, int]:
        """Start the /metrics HTTP server; returns (server, bound port)."""
        host, _, port = listen.rpartition(":")
        try:
            server, _thread = start_http_server(
                int(port), addr=host or "127.0.0.1", registry=self.registry
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot serve metrics on {listen!r}: {exc}") from None
        return server, int(server.server_port)
