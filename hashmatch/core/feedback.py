"""Per-entry feedback on matches: confirmed or false positive.

A false positive goes to the caller's own allow bank ("<tenant>:false-positives", or
"false-positives" for the operator), so the caller stops seeing it as a match within a
second (the matcher follows the change log) while other tenants are unaffected; confirming
it again takes it out. Verdicts are kept per (tenant, bank, entry) and exported, counted
per entry, for the list's source (hashmatch.storage.feedback_store).
"""

from __future__ import annotations

from hashmatch.banks.model import BankKind, BankSettings, NewEntry, Visibility
from hashmatch.banks.store import BankStore
from hashmatch.errors import NotFound
from hashmatch.storage.feedback_store import FeedbackStore, Verdict
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.model import Principal

ALLOW_SUFFIX = "false-positives"


def allow_bank_name(who: Principal) -> str:
    return ALLOW_SUFFIX if who.open or who.is_operator else f"{who.tenant_id}:{ALLOW_SUFFIX}"


def give_feedback(
    store: BankStore,
    access: BankAccess,
    feedback: FeedbackStore,
    who: Principal,
    bank: str,
    entry_id: int,
    verdict: Verdict,
    note: str = "",
) -> str:
    """Record a verdict on an entry the caller can see; returns the caller's allow bank."""
    source = access.readable(who, bank)  # another tenant's private bank: NotFound
    entry = store.entries_by_id([entry_id]).get(entry_id)
    if entry is None or entry.bank_id != source.id or entry.removed_at is not None:
        raise NotFound(f"no entry {entry_id} in bank {bank!r}")
    feedback.record(who.tenant_id, bank, entry_id, entry.external_id or "", verdict, note)
    allow = allow_bank_name(who)
    try:
        store.get_bank(allow)
    except NotFound:
        settings = BankSettings(
            owner=who.bank_owner, visibility=Visibility.PRIVATE, kind=BankKind.ALLOW,
            signal_types=source.signal_types, pdq_threshold=source.pdq_threshold,
        )  # fmt: skip
        store.create_bank(allow, settings)
    if verdict is Verdict.FALSE_POSITIVE:
        store.write_entries(
            allow,
            [NewEntry(entry.signal_type, entry.value, "false positive", f"{bank}:{entry_id}",
                      f"feedback on {bank}")],
        )  # fmt: skip
    else:
        store.remove_entries(allow, [(entry.signal_type, entry.value)])
    return allow
