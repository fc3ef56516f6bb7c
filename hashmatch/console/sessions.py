"""Console sessions, held in this process's memory only.

A session id is 256 random bits, sent as an HttpOnly, SameSite=Strict cookie; the server
keeps the key it was opened with (never written anywhere), its CSRF token and when it
was last used. Every request re-admits the key through the core's Admission, so a revoked
key, a suspended tenant or a lost role ends the session's powers at once, and a key
rotated anywhere ends its sessions (console/app.py); a session expires when idle, and
after a few hours however busy. Sign-in
always makes a new id (a session id planted before sign-in is worth nothing), sign-out
forgets it, and the console drops every session of a key it revokes or rotates.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_SESSIONS = 10_000  # a flood of sign-ins cannot grow the server's memory
MAX_PER_KEY = 20  # nor push out other keys' sessions
# nor one tenant's many keys other tenants' (or the operator's) sessions
MAX_PER_TENANT = 200


@dataclass
class Session:
    id: str
    key: str
    key_id: str
    csrf: str
    last_used: float
    opened: float
    flashes: list[str] = field(default_factory=list)
    tenant: str = ""


class SessionStore:
    def __init__(
        self, idle_s: float, max_s: float = 8 * 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s, self.max_s = idle_s, max_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, key: str, key_id: str, tenant: str = "") -> Session:
        now = self._clock()
        session = Session(
            secrets.token_urlsafe(32), key, key_id, secrets.token_urlsafe(32), now, now,
            tenant=tenant,
        )  # fmt: skip
        with self._lock:
            self._expire(now)
            mine = [s for s in self._sessions.values() if s.key_id == key_id]
            if len(mine) >= MAX_PER_KEY:  # one key's sign-ins push out its own sessions
                del self._sessions[min(mine, key=lambda s: s.last_used).id]
            ours = [s for s in self._sessions.values() if s.tenant == tenant]
            if len(ours) >= MAX_PER_TENANT:  # and one tenant's keys, its own
                del self._sessions[min(ours, key=lambda s: s.last_used).id]
            if len(self._sessions) >= MAX_SESSIONS:  # the least recently used goes
                oldest = min(self._sessions.values(), key=lambda s: s.last_used)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this id (its idle clock restarted), or None."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[session_id]
                return None
            session.last_used = now
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def close_key(self, key_id: str) -> int:
        """Every session opened with this key (revoked or rotated here)."""
        with self._lock:
            gone = [s for s in self._sessions.values() if s.key_id == key_id]
            for s in gone:
                del self._sessions[s.id]
        return len(gone)

    def _expired(self, session: Session, now: float) -> bool:
        """Idle too long, or open too long however busy (sign in again)."""
        return now - session.last_used > self.idle_s or now - session.opened > self.max_s

    def _expire(self, now: float) -> None:
        for s in [s for s in self._sessions.values() if self._expired(s, now)]:
            del self._sessions[s.id]
