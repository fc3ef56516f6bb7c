"""Banks as every face sees them (gRPC BankService, the console): who may see, change,
list, import and export a bank, in one place.

A tenant sees its own banks, banks shared with it and public ones (BankAccess); a bank it
cannot see answers exactly as a missing one. Listing entries, importing and exporting are
the owner's only: a tenant never reads a list it may only match against. Who else a bank
is shared with is its owner's business; an invited tenant sees whether it accepted.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

from hashmatch.banks.formats import Format
from hashmatch.banks.importer import export_bank, import_file
from hashmatch.banks.model import (
    Bank,
    BankKind,
    BankSettings,
    Entry,
    ExportReport,
    SignalType,
    WriteReport,
)
from hashmatch.banks.store import BankStore
from hashmatch.core.slots import TenantSlots
from hashmatch.errors import BadParameter
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.model import Principal

MAX_PAGE = 10_000


class ShareState(StrEnum):
    NONE = ""  # the caller's own bank, a public one, or the local operator
    INVITED = "invited"
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class BankView:
    """A bank as one caller may see it: other tenants' invitations left out."""

    bank: Bank
    share_state: ShareState = ShareState.NONE
    counts: dict[SignalType, int] | None = None


def view_of(who: Principal, bank: Bank, counts: dict[SignalType, int] | None = None) -> BankView:
    if who.open or bank.owner == who.bank_owner:
        return BankView(bank, ShareState.NONE, counts)
    state = ShareState.NONE
    if who.bank_owner in bank.shared_with:
        accepted = who.bank_owner in bank.accepted_by
        state = ShareState.ACCEPTED if accepted else ShareState.INVITED
    hidden = dataclasses.replace(bank, shared_with=frozenset(), accepted_by=frozenset())
    return BankView(hidden, state, counts)


def silences_more(bank: Bank, change: BankSettings) -> bool:
    """Whether a change lets the bank take matches from a tenant that accepted its share:
    a block bank made an allow bank (or back: its matches were the point), or an allow
    bank made to match more (a looser threshold, a lower quality floor, more signal
    types, switched on)."""
    kind = change.kind or bank.kind
    if kind is not bank.kind:
        return True
    if kind is not BankKind.ALLOW:
        return False
    looser = change.pdq_threshold is not None and change.pdq_threshold > bank.pdq_threshold
    lower = change.min_quality is not None and change.min_quality < bank.min_quality
    more = change.signal_types is not None and not change.signal_types <= bank.signal_types
    on = change.enabled is True and not bank.enabled
    return looser or lower or more or on


def owns(who: Principal, bank: Bank) -> bool:
    return who.open or bank.owner == who.bank_owner


def export_format(name: str) -> Format:
    try:
        return Format(name or Format.CSV.value)
    except ValueError:
        choices = ", ".join(f.value for f in Format)
        raise BadParameter(f"format {name!r} is not one of {choices}") from None


class BankOps:
    """Blocking (store reads and writes): faces run these in threads."""

    def __init__(self, store: BankStore, access: BankAccess) -> None:
        self.store, self.access = store, access
        # An export holds a temp file of the whole bank until its reader has it all: the
        # faces hold one of these for as long (a reader that never reads would fill $TMPDIR).
        self.exports = TenantSlots("exports", per_tenant=2, total=8)

    def create(self, who: Principal, name: str, settings: BankSettings) -> Bank:
        settings = self.access.settings_for(who, name, settings, creating=True)
        return self.store.create_bank(name, settings)

    def get(self, who: Principal, name: str) -> BankView:
        bank = self.access.readable(who, name)
        return view_of(who, bank, self.store.count_entries(name))

    def visible(self, who: Principal) -> list[BankView]:
        return [view_of(who, b) for b in self.access.visible(who, self.store.list_banks())]

    def update(self, who: Principal, name: str, settings: BankSettings) -> Bank:
        before = self.access.owned(who, name)
        settings = self.access.settings_for(who, name, settings, creating=False)
        if before.accepted_by and silences_more(before, settings):
            # Consent was to the bank as it was: asked again before the change applies.
            for tenant in sorted(before.accepted_by):
                self.store.set_share_accepted(name, tenant, False)
        return self.store.update_bank(name, settings)

    def delete(self, who: Principal, name: str) -> None:
        self.access.owned(who, name)
        self.store.delete_bank(name)

    def set_share(self, who: Principal, name: str, accepted: bool) -> BankView:
        self.access.readable(who, name)  # another's private bank: NotFound
        return view_of(who, self.store.set_share_accepted(name, who.bank_owner, accepted))

    def entries(self, who: Principal, name: str, after_id: int, limit: int) -> list[Entry]:
        """One page by id (keyset: the last id seen), owner only."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadParameter(f"limit must be in 1..{MAX_PAGE}")
        self.access.owned(who, name)
        return self.store.list_entries(name, after_id, limit)

    def check_writable(self, who: Principal, name: str) -> Bank:
        """Before an import's bytes are read: the caller owns the bank."""
        return self.access.owned(who, name)

    def import_path(self, who: Principal, name: str, path: Path, fmt: Format) -> WriteReport:
        """One transaction: all of the file or nothing."""
        self.access.owned(who, name)
        return import_file(self.store, name, path, fmt)

    def export(self, who: Principal, name: str, fmt: Format, spool: IO[bytes]) -> ExportReport:
        """The whole bank written to `spool` (UTF-8), owner only; the spool stays open."""
        self.access.owned(who, name)
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
        report = export_bank(self.store, name, fmt, text)
        text.flush()
        text.detach()
        return report
