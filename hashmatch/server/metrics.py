"""Prometheus metrics, on their own HTTP port, in a registry per server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from hashmatch.errors import ConfigError
from hashmatch.proto import pb

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
        self.queue_depth = Gauge("hashmatch_queue_depth", "Items waiting to be hashed", registry=r)
        self.index_size = Gauge("hashmatch_index_entries", "Live entries in the index", registry=r)
        self.dropped = Counter(
            "hashmatch_dropped_items",
            "Items never hashed: caller gone, deadline passed, or queue full",
            ["reason"],
            registry=r,
        )
        self.streams = Gauge("hashmatch_open_streams", "Open MatchStream calls", registry=r)

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

    def count_results(self, results: Iterable[pb.ItemResult]) -> None:
        for r in results:
            self.results.labels(pb.ItemCode.Name(r.status.code)).inc()
            if r.is_match:
                self.matched.inc()

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
