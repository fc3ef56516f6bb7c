"""Calls that each hold a whole list while they run (a console import keeps its upload in
memory, an export its temp file of the bank): at most a few at once per tenant and in all,
so a bank owner's own calls, each paid by one rate token, cannot fill the server's memory
or disk. Past them: RESOURCE_EXHAUSTED, retry shortly."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from hashmatch.errors import Overloaded


class TenantSlots:
    def __init__(self, what: str, per_tenant: int, total: int) -> None:
        self.what, self.per_tenant, self.total = what, per_tenant, total
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, tenant: str) -> None:
        with self._lock:
            if self._held[tenant] >= self.per_tenant:
                raise Overloaded(f"at most {self.per_tenant} {self.what} at once per tenant")
            if sum(self._held.values()) >= self.total:
                raise Overloaded(f"at most {self.total} {self.what} at once on this server")
            self._held[tenant] += 1

    def release(self, tenant: str) -> None:
        with self._lock:
            self._held[tenant] -= 1
            if self._held[tenant] <= 0:
                del self._held[tenant]

    @contextmanager
    def held(self, tenant: str) -> Iterator[None]:
        self.acquire(tenant)
        try:
            yield
        finally:
            self.release(tenant)
