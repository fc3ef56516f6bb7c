"""What the exchange clients' tests share: fast retries, a settable clock, and a bank as
the store would hold it after a client's pages."""

from __future__ import annotations

from hashmatch.banks.model import NewEntry, Tombstone
from hashmatch.exchanges.http import HttpSettings
from hashmatch.exchanges.model import Page

FAST = HttpSettings(backoff_s=0.01, backoff_max_s=0.05)
Bank = dict[str, NewEntry]  # external id -> the entry


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def apply(bank: Bank, pages: list[Page]) -> Bank:
    """What a bank holds after the pages (the store's rule: the later event wins)."""
    for page in pages:
        for event in page.events:
            if isinstance(event, Tombstone):
                bank.pop(event.external_id, None)
            else:
                assert event.external_id is not None
                bank[event.external_id] = event
    return bank
