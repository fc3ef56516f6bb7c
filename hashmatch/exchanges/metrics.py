"""Per-exchange metrics, read from the store at scrape time: every replica reports the same
(the database's) figures, whichever of them ran the sync."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hashmatch.banks import records
from hashmatch.errors import HashmatchError
from hashmatch.exchanges.store import ExchangeStore


class ExchangeCollector(Collector):
    def __init__(self, store: ExchangeStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            exchanges = self.store.list_exchanges()
        except HashmatchError:  # the database is away: no exchange figures this scrape
            return
        labels = ["exchange"]
        success = GaugeMetricFamily(
            "hashmatch_exchange_last_success_timestamp_seconds",
            "When the exchange's last successful sync ended",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "hashmatch_exchange_lag_seconds",
            "Seconds since the last sync that read upstream to its end (how stale the bank may be)",
            labels=labels,
        )
        newest = GaugeMetricFamily(
            "hashmatch_exchange_newest_record_timestamp_seconds",
            "The newest upstream record applied (a quiet list does not move it)",
            labels=labels,
        )
        paused = GaugeMetricFamily("hashmatch_exchange_paused", "1: paused", labels=labels)
        pending = GaugeMetricFamily(
            "hashmatch_exchange_feedback_pending", "Verdicts waiting to go upstream", labels=labels
        )
        added = CounterMetricFamily(
            "hashmatch_exchange_entries_added", "Entries added or revived", labels=labels
        )
        removed = CounterMetricFamily(
            "hashmatch_exchange_entries_removed", "Entries removed", labels=labels
        )
        skipped = CounterMetricFamily(
            "hashmatch_exchange_records_skipped", "Malformed upstream records", labels=labels
        )
        errors = CounterMetricFamily("hashmatch_exchange_errors", "Failed syncs", labels=labels)
        now = time.time()
        for x in exchanges:
            s, name = x.status, [x.name]
            last = None if s.last_success_at is None else records.timestamp(s.last_success_at)
            if last is not None:
                success.add_metric(name, last)
                lag.add_metric(name, max(0.0, now - last))
            if s.upstream_time is not None:
                newest.add_metric(name, s.upstream_time)
            paused.add_metric(name, float(x.paused))
            pending.add_metric(name, s.feedback_pending)
            added.add_metric(name, s.added)
            removed.add_metric(name, s.removed)
            skipped.add_metric(name, s.skipped)
            errors.add_metric(name, s.errors)
        yield from (success, lag, newest, paused, pending, added, removed, skipped, errors)
