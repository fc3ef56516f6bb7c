"""Flood quarantine: an entry that suddenly matches far more distinct content than usual.

A listed hash that matches thousands of different uploads in an hour is far more likely a
bad entry (a logo, a blank frame, a meme) than a real flood of abuse material; reporting
each of those hits would bury reviewers and NCMEC in false reports. Per entry, the monitor
counts distinct content (by MD5 of the upload, or the client's hash) in a sliding window;
past `max_distinct` it flags the entry (each tenant's contents count for at most a
`min_tenants`-th of it, so it takes several tenants: one tenant alone cannot quarantine an
entry for everyone) (kept in flood.sqlite3, with an audit event) and, if
`suspend`, reports its matches as suppressed until an operator releases it
(`hashmatch quarantine release ENTRY_ID`). Replicas of one database also count together:
each sends what it saw to the database once a REFRESH_S and flags on the shared count, so
traffic spread over N replicas is flagged as on one (up to REFRESH_S later).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

from hashmatch.config import FloodSettings
from hashmatch.errors import Unavailable
from hashmatch.matching.model import MatchResult, Suppressor
from hashmatch.storage.flood_store import FloodStore, SharedFloodCounts, Sighting

log = logging.getLogger(__name__)
QUARANTINE = "quarantine"  # the suppressor's bank name on a suspended entry's matches
# How often releases made elsewhere (the CLI, another server) are picked up, and a
# replica's sightings counted with the others'.
REFRESH_S = 1.0
MAX_SIGHTINGS = 100_000  # held between refreshes (a lost database: the rest are local)


def _digest(key: bytes, content: bytes) -> bytes:
    """What the database keeps of a content: enough to tell contents apart; keyed with a
    secret every replica holds (from the audit key), so whoever reads the database cannot
    test a candidate MD5 or hash against it."""
    return hashlib.blake2b(content, digest_size=12, key=key, person=b"hashmatch-flood").digest()


class FloodMonitor:
    def __init__(
        self,
        config: FloodSettings,
        store: FloodStore,
        on_flag: Callable[[int, str, int], None] = lambda entry, bank, n: None,
        clock: Callable[[], float] = time.monotonic,
        digest_key: bytes = b"",
    ) -> None:
        self.config, self.store, self._on_flag, self._clock = config, store, on_flag, clock
        self._digest_key = digest_key[:64]  # BLAKE2b's longest key
        # entry -> tenant -> content -> last seen
        self._seen: dict[int, dict[str, dict[bytes, float]]] = {}
        # One tenant's distinct contents count up to this much: alone it cannot flag an
        # entry (and so suppress everybody's matches) unless min_tenants is 1.
        self._per_tenant = -(-(config.max_distinct + 1) // config.min_tenants)
        self._lock = threading.Lock()
        self._suspended = store.suspended()
        self._refreshed = self._swept = clock()
        self._shared = store if isinstance(store, SharedFloodCounts) else None
        self._sightings: dict[Sighting, str] = {}  # -> bank; sent at the next refresh
        self._flagged_at: dict[int, float] = {}  # the shared count stays high a window long

    def observe(
        self, tenant: str, contents: Sequence[bytes], results: Sequence[MatchResult]
    ) -> list[MatchResult]:
        """Count each result's entries against its content, for this tenant; return the
        results with the matches of suspended entries suppressed."""
        now = self._clock()
        if now - self._refreshed >= REFRESH_S:
            self._refreshed = now
            if now - self._swept >= max(REFRESH_S, self.config.window_s / 4):
                self._sweep(now)
            with contextlib.suppress(Unavailable):  # a lost database: the last set read
                self._suspended = self.store.suspended()
                self._count_shared()
        for content, result in zip(contents, results, strict=True):
            for m in result.matches:
                if m.suppressed_by is None and m.entry_id not in self._suspended:
                    self._count(m.entry_id, m.bank, tenant, content, now)
        return [self._apply(r) for r in results]

    def _distinct(self, per_tenant: dict[str, dict[bytes, float]]) -> int:
        return sum(min(len(seen), self._per_tenant) for seen in per_tenant.values())

    def _sweep(self, now: float) -> None:
        """Contents seen last before the window go (each tenant's are kept oldest first),
        and entries left with none: memory follows the window's traffic, not all time's."""
        horizon = now - self.config.window_s
        with self._lock:
            for entry_id in list(self._seen):
                per_tenant = self._seen[entry_id]
                for tenant in list(per_tenant):
                    seen = per_tenant[tenant]
                    while seen and next(iter(seen.values())) < horizon:
                        del seen[next(iter(seen))]
                    if not seen:
                        del per_tenant[tenant]
                if not per_tenant:
                    del self._seen[entry_id]
            self._swept = now

    def _count(self, entry_id: int, bank: str, tenant: str, content: bytes, now: float) -> None:
        with self._lock:
            per_tenant = self._seen.setdefault(entry_id, {})
            seen = per_tenant.setdefault(tenant, {})
            seen.pop(content, None)  # to the end: the dict stays in order of last sight
            seen[content] = now
            if len(seen) > self._per_tenant:  # only the latest per_tenant can count
                del seen[next(iter(seen))]
            if self._shared is not None and len(self._sightings) < MAX_SIGHTINGS:
                self._sightings[(entry_id, tenant, _digest(self._digest_key, content))] = bank
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
        self._flag(entry_id, bank, distinct)

    def _count_shared(self) -> None:
        """This replica's sightings since the last time, counted with every other's."""
        if self._shared is None or not self._sightings:
            return
        with self._lock:
            sent, self._sightings = self._sightings, {}
        try:
            counts = self._shared.count_sightings(
                sorted(sent), self.config.window_s, self._per_tenant
            )  # sorted: replicas lock rows in one order
        except Unavailable:
            with self._lock:  # kept for the next try (bounded by MAX_SIGHTINGS)
                self._sightings = {**sent, **self._sightings}
            raise
        banks = {entry: bank for (entry, _, _), bank in sent.items()}
        now = self._clock()
        for entry_id, distinct in counts.items():
            if distinct <= self.config.max_distinct or entry_id in self._suspended:
                continue
            if now - self._flagged_at.get(entry_id, -math.inf) < self.config.window_s:
                continue  # flagged here already: the shared count stays high a window long
            with self._lock:
                self._seen.pop(entry_id, None)
            self._flag(entry_id, banks[entry_id], distinct)

    def _flag(self, entry_id: int, bank: str, distinct: int) -> None:
        self._flagged_at[entry_id] = self._clock()
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
