"""Flood quarantine: an entry that suddenly matches far more distinct content than usual.

A listed hash that matches thousands of different uploads in an hour is far more likely a
bad entry (a logo, a blank frame, a meme) than a real flood of abuse material; reporting
each of those hits would bury reviewers and NCMEC in false reports. Per entry, the monitor
counts distinct content (by MD5 of the upload, or the client's hash) in a sliding window;
past `max_distinct` it flags the entry (each tenant's contents count for at most a
`min_tenants`-th of it, so it takes several tenants: one tenant alone cannot quarantine an
entry for everyone) (kept in flood.sqlite3, with an audit event) and, if
`suspend`, reports its matches as suppressed until an operator releases it
(`hashmatch quarantine release ENTRY_ID`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

from hashmatch.config import FloodSettings
from hashmatch.errors import Unavailable
from hashmatch.matching.model import MatchResult, Suppressor
from hashmatch.storage.flood_store import FloodStore

log = logging.getLogger(__name__)
QUARANTINE = "quarantine"  # the suppressor's bank name on a suspended entry's matches
# How often releases made elsewhere (the CLI, another server) are picked up.
REFRESH_S = 1.0


class FloodMonitor:
    def __init__(
        self,
        config: FloodSettings,
        store: FloodStore,
        on_flag: Callable[[int, str, int], None] = lambda entry, bank, n: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.store, self._on_flag, self._clock = config, store, on_flag, clock
        # entry -> tenant -> content -> last seen
        self._seen: dict[int, dict[str, dict[bytes, float]]] = {}
        # One tenant's distinct contents count up to this much: alone it cannot flag an
        # entry (and so suppress everybody's matches) unless min_tenants is 1.
        self._per_tenant = -(-(config.max_distinct + 1) // config.min_tenants)
        self._lock = threading.Lock()
        self._suspended = store.suspended()
        self._refreshed = clock()

    def observe(
        self, tenant: str, contents: Sequence[bytes], results: Sequence[MatchResult]
    ) -> list[MatchResult]:
        """Count each result's entries against its content, for this tenant; return the
        results with the matches of suspended entries suppressed."""
        now = self._clock()
        if now - self._refreshed >= REFRESH_S:
            with contextlib.suppress(Unavailable):  # a lost database: the last set read
                self._suspended = self.store.suspended()
            self._refreshed = now
        for content, result in zip(contents, results, strict=True):
            for m in result.matches:
                if m.suppressed_by is None and m.entry_id not in self._suspended:
                    self._count(m.entry_id, m.bank, tenant, content, now)
        return [self._apply(r) for r in results]

    def _distinct(self, per_tenant: dict[str, dict[bytes, float]]) -> int:
        return sum(min(len(seen), self._per_tenant) for seen in per_tenant.values())

    def _count(self, entry_id: int, bank: str, tenant: str, content: bytes, now: float) -> None:
        with self._lock:
            per_tenant = self._seen.setdefault(entry_id, {})
            per_tenant.setdefault(tenant, {})[content] = now
            if self._distinct(per_tenant) <= self.config.max_distinct:
                return
            horizon = now - self.config.window_s
            for seen in per_tenant.values():
                for key in [k for k, t in seen.items() if t < horizon]:
                    del seen[key]
            distinct = self._distinct(per_tenant)
            if distinct <= self.config.max_distinct:
                return
            del self._seen[entry_id]  # flagged: stop counting it
        try:
            self.store.flag(entry_id, bank, distinct, self.config.window_s, self.config.suspend)
        except Unavailable:  # suspended here now; the record waits for the database
            log.warning("flood flag of entry %d not stored: the database is unreachable", entry_id)
        if self.config.suspend:
            self._suspended = self._suspended | {entry_id}
        self._on_flag(entry_id, bank, distinct)

    def _apply(self, result: MatchResult) -> MatchResult:
        if not any(m.entry_id in self._suspended for m in result.matches):
            return result
        return MatchResult(
            tuple(
                dataclasses.replace(m, suppressed_by=Suppressor(QUARANTINE, m.entry_id, 0))
                if m.entry_id in self._suspended and m.suppressed_by is None
                else m
                for m in result.matches
            )
        )
