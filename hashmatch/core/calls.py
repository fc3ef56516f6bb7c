"""Calls as the core sees them: who made one, what it answered, and its audit record.

Every face opens one Call per request (a stream is one call) through CallRecorder.call;
the service adds each item's outcome as it answers, and when the call ends one audit
record is written with the tally and how the call ended. Records hold counts and ids:
no image bytes and no hashes of the caller's content.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hashmatch.audit.log import AuditEvent, AuditLog
from hashmatch.core.outcome import Outcome
from hashmatch.errors import HashmatchError
from hashmatch.tenancy.model import ANONYMOUS, Principal


def new_tracking_id() -> str:
    return uuid.uuid4().hex


@dataclass
class CallTally:
    """What one call answered so far (a stream answers many times)."""

    items: int = 0
    matched: int = 0
    by_bank: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)

    def add(self, outcomes: Iterable[Outcome]) -> None:
        for o in outcomes:
            self.items += 1
            self.codes[o.code] += 1
            if o.is_match and o.matches is not None:
                self.matched += 1
                # Banks that matched, once per item; no hashes of the caller's content.
                self.by_bank.update({m.bank for m in o.matches.matches if not m.suppressed_by})


@dataclass
class Call:
    caller: Principal
    rpc: str
    tracking_id: str = field(default_factory=new_tracking_id)
    tally: CallTally = field(default_factory=CallTally)
    # How a call that answered ended, where that was not OK (a face that answers a
    # call-level error in its body, as PhotoDNA does).
    status: str | None = None
    _items: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def item_ids(self, n: int) -> list[str]:
        """Tracking ids for the call's next n items: "<call>-<k>"."""
        return [f"{self.tracking_id}-{next(self._items)}" for _ in range(n)]

    def count_items(self, n: int) -> None:
        """For calls whose items are not per-item outcomes (bank writes, a video)."""
        self.tally.items += n


def status_of(exc: BaseException | None) -> str:
    """How a call ended, for the audit: OK, an ErrorCode value, CANCELLED or INTERNAL."""
    if exc is None:
        return "OK"
    if isinstance(exc, HashmatchError):
        return exc.code.value
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    return "INTERNAL"


class CallRecorder:
    """Opens calls and writes one audit record per call (none without an audit log)."""

    def __init__(
        self,
        log: AuditLog | None,
        bank_sequence: Callable[[], int] = lambda: -1,
        on_not_found: Callable[[str], None] = lambda tenant: None,
    ) -> None:
        self.log = log
        self._bank_sequence = bank_sequence
        # A tenant's NOT_FOUND answers: asking for banks it cannot see is how another
        # tenant's bank names would be probed (a metric to alert on).
        self._on_not_found = on_not_found

    @contextmanager
    def call(self, caller: Principal, rpc: str) -> Iterator[Call]:
        call = Call(caller, rpc)
        try:
            yield call
        except BaseException as exc:
            self.record(call, status_of(exc))
            raise
        self.record(call, call.status or "OK")

    def record(self, call: Call, status: str) -> None:
        who = call.caller
        if status == "NOT_FOUND" and who.limited:
            self._on_not_found(who.tenant_id)
        if self.log is None:
            return
        tenant, key_id = ("", "") if who.open else (who.tenant_id, who.key_id)
        t = call.tally
        self.log.append(
            AuditEvent(
                rpc=call.rpc,
                tenant=tenant,
                key_id=key_id,
                items=t.items,
                matched_items=t.matched,
                matches_by_bank=dict(t.by_bank),
                codes=dict(t.codes),
                tracking_id=call.tracking_id,
                bank_sequence=int(self._bank_sequence()),
                status=status,
            )
        )

    def refused(self, rpc: str, exc: BaseException) -> None:
        """A call refused before any work (no key, a wrong role): no tenant is known."""
        self.record(Call(ANONYMOUS, rpc), status_of(exc))
