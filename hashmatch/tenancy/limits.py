"""Per-tenant limits: a token bucket of requests per second, and items per month.

The buckets live in the server process (each server enforces its own share); monthly
item counts live in the tenant store, so they survive restarts and add up across servers.
Both answer Overloaded (RESOURCE_EXHAUSTED) with how long to wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hashmatch.config import AuthConfig
from hashmatch.errors import Overloaded
from hashmatch.tenancy.clock import seconds_to_next_month, this_month
from hashmatch.tenancy.model import Principal
from hashmatch.tenancy.store import TenantStore


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    at: float

    def refill(self, now: float) -> float:
        """The tokens there now."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens

    def take(self, now: float, n: float = 1.0) -> float:
        """0 when taken; else the seconds until n tokens will be there (nothing taken)."""
        self.refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


class TenantLimits:
    def __init__(
        self,
        store: TenantStore,
        config: AuthConfig,
        clock: Callable[[], float] = time.monotonic,
        on_throttle: Callable[[str, str], None] = lambda tenant, limit: None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.on_throttle = on_throttle
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        # Calls without a key (ApplyTenant) share one tenant's worth.
        self._public = TokenBucket(config.rate_per_second, config.burst, config.burst, clock())

    def check_rate(self, caller: Principal) -> None:
        if not caller.limited:
            return
        rate = caller.rate_per_second
        burst = max(self.config.burst * rate / self.config.rate_per_second, 1.0)
        now = self.clock()
        with self._lock:
            b = self._buckets.get(caller.tenant_id)
            if b is None or b.rate != rate:
                b = self._buckets[caller.tenant_id] = TokenBucket(rate, burst, burst, now)
            wait = b.take(now)
        if wait:
            self.on_throttle(caller.tenant_id, "rate")
            raise Overloaded(
                f"rate limit: {rate:g} requests/s for tenant {caller.tenant_id!r}", wait
            )

    def check_public(self) -> None:
        now = self.clock()
        with self._lock:
            wait = self._public.take(now)
        if wait:
            self.on_throttle("", "rate")
            raise Overloaded("rate limit for unauthenticated calls", wait)

    def charge_items(self, caller: Principal, n: int) -> None:
        """Counts n items against the tenant's month (blocking: a store write)."""
        if not caller.limited or n <= 0:
            return
        month = this_month()
        if self.store.charge_usage(caller.tenant_id, month, n, caller.monthly_items) is None:
            self.on_throttle(caller.tenant_id, "monthly_items")
            used = self.store.usage(caller.tenant_id, month)
            raise Overloaded(
                f"monthly quota: {used} of {caller.monthly_items} items used this month",
                seconds_to_next_month(),
            )

    def refund_items(self, caller: Principal, n: int) -> None:
        """Gives back n items charged ahead and not used (a stream's prepaid credit)."""
        if caller.limited and n > 0:
            self.store.add_usage(caller.tenant_id, this_month(), -n)
