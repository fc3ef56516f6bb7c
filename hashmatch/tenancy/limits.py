"""Per-tenant limits: a token bucket of requests per second, and items per month.

One server keeps its buckets in memory. Replicas of one database share them: each leases a
tenth of a second's worth of a tenant's tokens at a time from the bucket in the database
(one statement, the database's clock), so N replicas together admit what one would, give
or take the leases a replica holds unused (at most LEASE_S of the rate each, lapsing after
LEASE_TTL_S). While the database is unreachable each replica falls back to a bucket of its
own (so up to N times the rate until it is back). Monthly item counts live in the tenant
store, so they survive restarts and add up across servers; each server charges them a block
ahead (QUOTA_BLOCK), so a count may read up to a block - 1 high per server while it runs.
Both answer Overloaded
(RESOURCE_EXHAUSTED) with how long to wait.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, overload, runtime_checkable

from hashmatch.config import AuthConfig
from hashmatch.errors import Overloaded, Unavailable
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


log = logging.getLogger(__name__)
LEASE_S = 0.1  # a lease is this much of the rate (at least one token)
LEASE_TTL_S = 1.0  # leased tokens not used by then lapse (the tenant may be elsewhere)
PUBLIC = ""  # the bucket of calls without a key (no tenant id is empty)


@runtime_checkable
class SharedBuckets(Protocol):
    """Rate buckets every replica shares (the PostgreSQL tenant store)."""

    def lease_tokens(
        self, bucket: str, rate: float, burst: float, want: float
    ) -> tuple[float, float]:
        """(whole tokens granted, up to want; seconds until one is there when none)."""
        ...


# Items charged ahead per store write: a replica holds at most QUOTA_BLOCK - 1 of a
# tenant's items charged and unused (given back at shutdown; a crash loses them).
QUOTA_BLOCK = 32


@dataclass
class Credit:
    month: str
    items: int


@dataclass
class Lease:
    tokens: float
    until: float


class TenantLimits:
    def __init__(
        self,
        store: TenantStore,
        config: AuthConfig,
        clock: Callable[[], float] = time.monotonic,
        on_throttle: Callable[[str, str], None] = lambda tenant, limit: None,
        shared: SharedBuckets | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.on_throttle = on_throttle
        self.shared = shared
        self._buckets: dict[str, TokenBucket] = {}
        self._leases: dict[str, Lease] = {}
        self._empty_until: dict[str, float] = {}
        self._credit: dict[str, Credit] = {}
        self._refilling: set[str] = set()
        self._lock = threading.Lock()
        self._fallback_logged = False

    def check_rate(self, caller: Principal, wait: bool = True) -> bool:
        """Takes one request's token, or raises Overloaded. wait=False: never a store
        call (the event loop's); False then where one would be needed (nothing taken)."""
        if not caller.limited:
            return True
        rate = caller.rate_per_second
        burst = max(self.config.burst * rate / self.config.rate_per_second, 1.0)
        wait_s = self._take(caller.tenant_id, rate, burst, wait)
        if wait_s is None:
            return False
        if wait_s:
            self.on_throttle(caller.tenant_id, "rate")
            raise Overloaded(
                f"rate limit: {rate:g} requests/s for tenant {caller.tenant_id!r}", wait_s
            )
        return True

    def check_public(self) -> None:
        """Calls without a key (ApplyTenant) share one tenant's worth."""
        wait = self._take(PUBLIC, self.config.rate_per_second, self.config.burst)
        if wait:
            self.on_throttle("", "rate")
            raise Overloaded("rate limit for unauthenticated calls", wait)

    @overload
    def _take(self, bucket: str, rate: float, burst: float) -> float: ...
    @overload
    def _take(self, bucket: str, rate: float, burst: float, wait: bool) -> float | None: ...
    def _take(self, bucket: str, rate: float, burst: float, wait: bool = True) -> float | None:
        """0 when a token was taken for `bucket`; else the seconds to wait. wait=False:
        None (nothing taken) where the shared buckets would have to be asked."""
        if self.shared is None:
            return self._take_local(bucket, rate, burst)
        now = self.clock()
        with self._lock:
            lease = self._leases.get(bucket)
            if lease is not None and lease.tokens >= 1 and now < lease.until:
                lease.tokens -= 1
                return 0.0
            empty_until = self._empty_until.get(bucket, 0.0)
            if now < empty_until:  # refused here until then: a throttled tenant's calls
                return empty_until - now  # cost the database nothing
        if not wait:
            return None
        want = max(1.0, min(math.floor(burst), math.floor(rate * LEASE_S)))
        try:
            granted, refill_s = self.shared.lease_tokens(bucket, rate, burst, want)
        except Unavailable:
            if not self._fallback_logged:
                log.warning("rate limits: the database is unreachable, each replica counts alone")
                self._fallback_logged = True
            return self._take_local(bucket, rate, burst)
        self._fallback_logged = False
        if granted < 1:
            refill_s = max(refill_s, 1e-3)
            with self._lock:
                self._empty_until[bucket] = now + refill_s
            return refill_s
        with self._lock:
            self._leases[bucket] = Lease(granted - 1, now + LEASE_TTL_S)
        return 0.0

    def _take_local(self, bucket: str, rate: float, burst: float) -> float:
        now = self.clock()
        with self._lock:
            b = self._buckets.get(bucket)
            if b is None or b.rate != rate:
                b = self._buckets[bucket] = TokenBucket(rate, burst, burst, now)
            return b.take(now)

    def charge_items(self, caller: Principal, n: int, wait: bool = True) -> bool:
        """Counts n items against the tenant's month, or raises Overloaded. Items are
        charged QUOTA_BLOCK at a time ahead (one store write a block, not a call) while a
        block fits the quota, exactly otherwise; what is held ahead is spent before the
        store is asked for the rest, so a server refuses only items truly over the quota.
        wait=False: only from what was charged ahead, never a store write, and False
        (nothing charged) where one is needed."""
        if not caller.limited or n <= 0:
            return True
        tenant, month = caller.tenant_id, this_month()
        with self._lock:
            held = self._credit.get(tenant)
            if held is not None and held.month == month and held.items >= n:
                held.items -= n
                return True
            if not wait:
                return False
            have = 0
            if held is not None and held.month == month:
                have, held.items = held.items, 0
            # One block bought at a time per tenant: concurrent callers short of credit
            # charge exactly, so a server never holds more than QUOTA_BLOCK - 1.
            refill = tenant not in self._refilling
            if refill:
                self._refilling.add(tenant)
        try:
            self._give_back(tenant, month)  # a past month's credit
            self._charge_store(caller, month, n - have, refill)
        except BaseException:
            self._hold(tenant, month, have)
            raise
        finally:
            if refill:
                with self._lock:
                    self._refilling.discard(tenant)
        return True

    def _charge_store(self, caller: Principal, month: str, need: int, refill: bool) -> None:
        if need <= 0:
            return
        store, tenant, cap = self.store, caller.tenant_id, caller.monthly_items
        ahead = max(need, QUOTA_BLOCK) if refill else need
        if ahead > need and store.charge_usage(tenant, month, ahead, cap) is not None:
            self._hold(tenant, month, ahead - need)
            return
        if store.charge_usage(tenant, month, need, cap) is None:
            self.on_throttle(tenant, "monthly_items")
            used = store.usage(tenant, month)
            raise Overloaded(
                f"monthly quota: {used} of {cap} items used this month",
                seconds_to_next_month(),
            )

    def _hold(self, tenant: str, month: str, items: int) -> None:
        if items <= 0:
            return
        with self._lock:
            held = self._credit.setdefault(tenant, Credit(month, 0))
            if held.month == month:
                held.items += items
                return
        self.store.add_usage(tenant, month, -items)  # a month already given back

    def _give_back(self, tenant: str, month: str | None = None) -> None:
        """What was charged ahead for the tenant and not used, given back to its month
        (all of it, or only a past month's); kept where the store cannot take it."""
        with self._lock:
            held = self._credit.get(tenant)
            if held is None or held.month == month:
                return
            del self._credit[tenant]
        if not held.items:
            return
        try:
            self.store.add_usage(tenant, held.month, -held.items)
        except BaseException:
            with self._lock:
                self._credit.setdefault(tenant, held)
            raise

    def flush(self) -> None:
        """Every tenant's unused items charged ahead given back (at shutdown); one that
        the store cannot take stays counted (high, never low) and is logged."""
        with self._lock:
            tenants = list(self._credit)
        for tenant in tenants:
            try:
                self._give_back(tenant)
            except Exception as exc:
                log.warning("quota: %s's items charged ahead not given back: %s", tenant, exc)
