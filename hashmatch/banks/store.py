"""The BankStore contract: banks, entries with tombstones, and a monotonic change log.

Everything above the store (matcher, CLI, server) talks to this Protocol only, so the
embedded SQLite store can be swapped for PostgreSQL without touching them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from hashmatch.banks.model import (
    Bank,
    BankSettings,
    Change,
    Entry,
    EntryBatch,
    LiveState,
    NewEntry,
    SignalType,
    Tombstone,
    WriteReport,
)
from hashmatch.exchanges.model import Progress
from hashmatch.exchanges.store import ExchangeStore


class BankStore(ExchangeStore, Protocol):
    """Banks, their entries and change log, and the exchanges that feed them."""

    @property
    def store_id(self) -> str:
        """A random id fixed when the database was created (snapshots are checked against it)."""
        ...

    # banks
    def create_bank(self, name: str, settings: BankSettings) -> Bank: ...
    def get_bank(self, name: str) -> Bank: ...
    def list_banks(self) -> list[Bank]: ...
    def banks_by_id(self) -> dict[int, Bank]: ...
    def update_bank(self, name: str, settings: BankSettings) -> Bank: ...
    def set_share_accepted(self, name: str, tenant: str, accepted: bool) -> Bank:
        """The invited tenant accepts a share (it affects that tenant's results from then
        on) or leaves it (it goes back to an invitation). NotFound if not invited."""
        ...

    def delete_bank(self, name: str) -> None: ...

    # entries
    def write_entries(
        self,
        bank: str,
        entries: Iterable[NewEntry],
        remove_external_ids: Iterable[str] = (),
    ) -> WriteReport:
        """Add (or revive, or update the metadata of) entries and tombstone the entries with
        these external ids, all in one transaction: all of it lands or none of it.
        Idempotent: writing the same entries again changes nothing."""
        ...

    def import_entries(
        self,
        bank: str,
        events: Iterable[NewEntry | Tombstone | EntryBatch],
        chunk: int = 10_000,
        progress: Progress | None = None,
    ) -> WriteReport:
        """write_entries for a stream of any length, in bounded memory: staged in chunks
        and merged in one transaction (all or nothing); of entries with one value the
        first counts (the rest are duplicates), of an entry and a tombstone of its
        external id the later (so a tombstone then entries of its id leave exactly those
        entries under the id: a record replaced). Readers are not blocked meanwhile. `progress`: an
        exchange's checkpoint, committed in the same transaction (exchanges/sync.py).
        An EntryBatch is its rows' NewEntry events, in order. The new entries are logged
        as one range row of the change log; changes_since reads it as one change each."""
        ...

    def remove_entries(self, bank: str, values: Iterable[tuple[SignalType, bytes]]) -> int: ...
    def list_entries(self, bank: str, after_id: int = 0, limit: int = 1000) -> list[Entry]:
        """Live entries with id > after_id, by id (page with the last id seen)."""
        ...

    def count_entries(self, bank: str) -> dict[SignalType, int]: ...
    def entries_by_id(self, ids: Sequence[int]) -> dict[int, Entry]: ...
    def lookup(self, signal_type: SignalType, values: Sequence[bytes]) -> list[list[int]]:
        """Ids of live entries equal to each value (exact signals)."""
        ...

    # change log
    def current_sequence(self) -> int: ...
    def changes_since(self, seq: int, limit: int = 100_000) -> list[Change]: ...
    def live_signals(self) -> LiveState:
        """Every live entry, consistent with one change-log sequence number."""
        ...

    def wait_for_change(self, timeout: float) -> bool:
        """Blocks up to `timeout` seconds, returning early (True) when a change committed
        (where the database can say so); the follower then reads the log."""
        ...

    def schema_version(self) -> int:
        """The database's schema version (migrations run when the store opens)."""
        ...

    def close(self) -> None: ...
