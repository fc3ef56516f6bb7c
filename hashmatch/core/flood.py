"""Flood quarantine: an entry that suddenly matches far more distinct content than usual.

A listed hash that matches thousands of different uploads in an hour is far more likely a
bad entry (a logo, a blank frame, a meme) than a real flood of abuse material; reporting
each of those hits would bury reviewers and NCMEC in false reports. Per entry, the monitor
counts distinct content (by MD5 of the upload, or the client's hash) in a sliding window;
past `max_distinct` it flags the entry (kept in flood.sqlite3, with an audit event) and, if
`suspend`, reports its matches as suppressed until an operator releases it
(`hashmatch quarantine release ENTRY_ID`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from hashmatch.config import FloodSettings
from hashmatch.matching.model import MatchResult, Suppressor
from hashmatch.storage.flood_store import FloodStore

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
        self._seen: dict[int, dict[bytes, float]] = {}  # entry -> content -> last seen
        self._lock = threading.Lock()
        self._suspended = store.suspended()
        self._refreshed = clock()

    def observe(
        self, contents: Sequence[bytes], results: Sequence[MatchResult]
    ) -> list[MatchResult]:
        """Count each result's entries against its content; return the results with the
        matches of suspended entries suppressed."""
        now = self._clock()
        if now - self._refreshed >= REFRESH_S:
            self._suspended = self.store.suspended()
            self._refreshed = now
        for content, result in zip(contents, results, strict=True):
            for m in result.matches:
                if m.suppressed_by is None and m.entry_id not in self._suspended:
                    self._count(m.entry_id, m.bank, content, now)
        return [self._apply(r) for r in results]

    def _count(self, entry_id: int, bank: str, content: bytes, now: float) -> None:
        with self._lock:
            seen = self._seen.setdefault(entry_id, {})
            seen[content] = now
            if len(seen) <= self.config.max_distinct:
                return
            horizon = now - self.config.window_s
            for key in [k for k, t in seen.items() if t < horizon]:
                del seen[key]
            if len(seen) <= self.config.max_distinct:
                return
            distinct = len(seen)
            del self._seen[entry_id]  # flagged: stop counting it
        self.store.flag(entry_id, bank, distinct, self.config.window_s, self.config.suspend)
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
