"""Per tenant, the entry ids it called false positives (feedback), held in memory so the
matcher can report those entries' matches for that tenant as suppressed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hashmatch.errors import Unavailable
from hashmatch.storage.feedback_store import FeedbackStore, Verdict
from hashmatch.tenancy.model import Principal

# How often verdicts recorded elsewhere (another server on the same data) are picked up.
REFRESH_S = 1.0


class FalsePositives:
    """Per tenant, the entry ids it called false positives, in memory for the matcher."""

    def __init__(self, store: FeedbackStore, clock: Callable[[], float] = time.monotonic):
        self.store, self._clock = store, clock
        self._lock = threading.Lock()
        self._by_tenant = store.false_positives()
        self._loaded = clock()

    def of(self, who: Principal) -> frozenset[int]:
        now = self._clock()
        if now - self._loaded >= REFRESH_S:
            try:
                fresh = self.store.false_positives()
            except Unavailable:  # a lost database: the verdicts last read hold
                fresh = self._by_tenant
            with self._lock:
                self._by_tenant, self._loaded = fresh, now
        return self._by_tenant.get(who.tenant_id, frozenset())

    def noted(self, who: Principal, entry_id: int, verdict: Verdict) -> None:
        """This server's own verdict: in effect for the caller's next call."""
        with self._lock:
            held = set(self._by_tenant.get(who.tenant_id, ()))
            if verdict is Verdict.FALSE_POSITIVE:
                held.add(entry_id)
            else:
                held.discard(entry_id)
            self._by_tenant = {**self._by_tenant, who.tenant_id: frozenset(held)}
