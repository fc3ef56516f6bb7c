"""The ExchangeStore contract: configured exchanges, their checkpoints and status, and the
queue of verdicts waiting to go upstream. Both bank stores implement it (the tables live
beside the banks, so a page's checkpoint commits with its entries: see
BankStore.import_entries(progress=...))."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from hashmatch.exchanges.model import (
    Exchange,
    ExchangeSettings,
    ExchangeType,
    QueuedFeedback,
    UpstreamFeedback,
)


class ExchangeStore(Protocol):
    def add_exchange(
        self, name: str, type: ExchangeType, bank: str, settings: ExchangeSettings
    ) -> Exchange:
        """AlreadyExists for a taken name or a bank another exchange feeds already."""
        ...

    def get_exchange(self, name: str) -> Exchange: ...
    def list_exchanges(self) -> list[Exchange]: ...
    def set_exchange_paused(self, name: str, paused: bool) -> Exchange: ...
    def reset_checkpoint(self, name: str) -> Exchange:
        """The next sync reads everything again from the beginning (`sync --full`)."""
        ...

    def remove_exchange(self, name: str) -> None:
        """The exchange goes; its bank and entries stay (an ordinary bank from then on)."""
        ...

    def sync_lock(self, name: str) -> AbstractContextManager[bool]:
        """Held while one process syncs the exchange (True), or not got because another
        one is (False). Released when the holder ends, however it ends (kill -9 too)."""
        ...

    def record_run(self, name: str, *, error: str | None, skipped: int = 0) -> None:
        """A sync ended: successfully (error None) or not."""
        ...

    # verdicts for upstream
    def queue_feedback(self, bank_id: int, tenant: str, items: Sequence[UpstreamFeedback]) -> int:
        """Queues verdicts on entries of the bank for its exchange, if that exchange takes
        feedback; returns how many were queued (0: no such exchange, or feedback off)."""
        ...

    def pending_feedback(self, name: str, limit: int = 100) -> list[QueuedFeedback]: ...
    def feedback_sent(self, ids: Sequence[int], error: str | None) -> None:
        """Delivered (error None), or one more failed attempt."""
        ...
