"""Per-entry feedback on matches: confirmed or false positive.

A false positive is kept as the caller's verdict on the entry's id, never as a copy of the
entry's value: from then on the matcher reports that entry's matches for this caller as
suppressed (by "feedback") while nobody else is affected; confirming it again undoes it.
Verdicts are kept per (tenant, bank, entry) (hashmatch.storage.feedback_store) and exported,
counted per entry, for the list's source. Feedback is charged like a match (one item).
"""

from __future__ import annotations

import asyncio

from hashmatch.banks.store import BankStore
from hashmatch.core.calls import Call
from hashmatch.core.false_positives import FalsePositives
from hashmatch.core.service import MatchService
from hashmatch.errors import BadParameter, NotFound
from hashmatch.exchanges.model import UpstreamFeedback, upstream_id_of
from hashmatch.exchanges.model import Verdict as UpstreamVerdict
from hashmatch.storage.feedback_store import FeedbackStore, Verdict
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.model import Principal

MAX_NOTE = 1000
UPSTREAM_VERDICT = {
    Verdict.FALSE_POSITIVE: UpstreamVerdict.FALSE_POSITIVE,
    Verdict.CONFIRMED: UpstreamVerdict.TRUE_POSITIVE,
}


class FeedbackService:
    def __init__(
        self,
        banks: BankStore,
        store: FeedbackStore,
        false_positives: FalsePositives,
        images: MatchService,
    ) -> None:
        self.banks = banks
        self.access = BankAccess(banks)
        self.store = store
        self.false_positives = false_positives
        self.images = images  # the quota, charged as for a match

    async def give(
        self, call: Call, bank: str, entry_id: int, verdict: Verdict, note: str = ""
    ) -> None:
        """A verdict on an entry of a bank the caller can see (another tenant's private
        bank, or an id that is not in the bank: NotFound, the same answer)."""
        who = call.caller
        if len(note) > MAX_NOTE:
            raise BadParameter(f"note: at most {MAX_NOTE} characters")
        await self.images.charge(who, 1)
        call.count_items(1)
        await asyncio.to_thread(self._record, who, bank, entry_id, verdict, note)
        self.false_positives.noted(who, entry_id, verdict)

    def _record(
        self, who: Principal, bank: str, entry_id: int, verdict: Verdict, note: str
    ) -> None:
        source = self.access.readable(who, bank)
        entry = self.banks.entries_by_id([entry_id]).get(entry_id)
        if entry is None or entry.bank_id != source.id or entry.removed_at is not None:
            raise NotFound(f"no entry {entry_id} in bank {bank!r}")
        self.store.record(who.tenant_id, bank, entry_id, entry.external_id or "", verdict, note)
        if entry.external_id and "/" in entry.external_id:  # an exchange's entry
            upstream = UpstreamFeedback(
                upstream_id_of(entry.external_id), entry.signal_type, entry.value,
                UPSTREAM_VERDICT[verdict],
            )  # fmt: skip
            # Queued only where the bank's exchange takes feedback (opt-in); sent by its
            # next sync. Nothing of the caller's content: the exchange's own record.
            self.banks.queue_feedback(source.id, who.tenant_id, [upstream])
