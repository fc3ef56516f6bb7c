"""Probe detection: a tenant walking a stored hash bit by bit.

Rebuilding a listed hash from the answers means many queries that are near-identical to
one another (one flipped bit each). Per tenant, the detector keeps its recent PDQ queries
and counts those within `radius` bits of an earlier one (but not equal: a client that
sends the same hash again probes nothing); past `max_near` in `window_s` the tenant is
flagged (a metric and an audit record) and its hash queries are refused for `cooldown_s`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hashmatch.config import ProbeConfig
from hashmatch.errors import Overloaded

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass
class _Tenant:
    recent: np.ndarray  # uint8[history, 32], a ring
    filled: int = 0
    at: int = 0
    near: deque[float] = field(default_factory=deque)  # times of near-identical queries
    blocked_until: float = 0.0


class ProbeDetector:
    def __init__(
        self,
        config: ProbeConfig,
        on_flag: Callable[[str, int], None] = lambda tenant, near: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self._on_flag, self._clock = config, on_flag, clock
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()

    def observe(self, tenant: str, codes: np.ndarray) -> None:
        """Counts a call's PDQ queries (uint8[n, 32]); Overloaded while the tenant is
        flagged. Blocking CPU work of microseconds a query: run it off the event loop."""
        now = self._clock()
        with self._lock:
            t = self._tenants.get(tenant)
            if t is None:
                history = np.zeros((self.config.history, 32), dtype=np.uint8)
                t = self._tenants[tenant] = _Tenant(history)
            if now < t.blocked_until:
                raise Overloaded(self._message(), t.blocked_until - now)
            for code in codes:
                if t.filled:
                    d = _POPCOUNT[np.bitwise_xor(t.recent[: t.filled], code)].sum(axis=1)
                    if ((d > 0) & (d <= self.config.radius)).any():
                        t.near.append(now)
                t.recent[t.at] = code
                t.at = (t.at + 1) % len(t.recent)
                t.filled = min(t.filled + 1, len(t.recent))
            while t.near and t.near[0] < now - self.config.window_s:
                t.near.popleft()
            flagged = len(t.near) > self.config.max_near
            if flagged:
                near = len(t.near)
                t.near.clear()
                t.blocked_until = now + self.config.cooldown_s
        if flagged:
            self._on_flag(tenant, near)
            raise Overloaded(self._message(), self.config.cooldown_s)

    def _message(self) -> str:
        return (
            "too many near-identical hash queries (this looks like probing a list);"
            f" hash queries are refused for {self.config.cooldown_s:.0f} s"
        )
