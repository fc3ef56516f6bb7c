"""Bulk import and export of one bank: a file in, a report out; all or nothing.

The whole file is parsed first (bad rows become row errors, good rows are kept), then
written in ONE store transaction: a killed import leaves the bank as it was, a finished
one leaves it complete. Writing is idempotent, so importing a file twice equals once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from hashmatch.banks.formats import Format, Record, Removal, RowErrorCode, read, write
from hashmatch.banks.model import Entry, NewEntry, RowError, SignalType, WriteReport
from hashmatch.banks.store import BankStore


def import_file(
    store: BankStore,
    bank: str,
    path: Path,
    fmt: Format,
    default_type: SignalType = SignalType.PDQ,
) -> WriteReport:
    b = store.get_bank(bank)  # NotFound before reading anything
    entries: list[NewEntry] = []
    removals: list[tuple[int, str]] = []  # (position in `entries` when seen, external id)
    errors: list[RowError] = []
    first_row: dict[tuple[SignalType, bytes], int] = {}
    with open(path, "rb") as f:
        for item in read(f, fmt, default_type):
            if isinstance(item, RowError):
                errors.append(item)
            elif isinstance(item, Removal):
                removals.append((len(entries), item.external_id))
            elif isinstance(item, Record):
                e = item.entry
                if e.signal_type not in b.signal_types:
                    errors.append(
                        RowError(
                            item.row,
                            RowErrorCode.SIGNAL_NOT_ENABLED,
                            f"bank {bank!r} does not hold {e.signal_type.value} signals",
                        )
                    )
                    continue
                key = (e.signal_type, e.value)
                if key in first_row:
                    errors.append(
                        RowError(
                            item.row,
                            RowErrorCode.DUPLICATE,
                            f"same {e.signal_type.value} value as row {first_row[key]}",
                        )
                    )
                    continue
                first_row[key] = item.row
                entries.append(e)
    # Per external id the last event in the file wins (an update may follow a tombstone).
    last_add: dict[str, int] = {}
    for i, e in enumerate(entries):
        if e.external_id is not None:
            last_add[e.external_id] = i
    removal_at = {ext: i for i, ext in removals}
    entries = [
        e
        for i, e in enumerate(entries)
        if e.external_id is None or removal_at.get(e.external_id, -1) <= i
    ]
    kept_removals = [ext for ext, i in removal_at.items() if last_add.get(ext, -1) < i]
    report = store.write_entries(bank, entries, kept_removals)
    report.errors = errors
    return report


def iter_entries(store: BankStore, bank: str, page: int = 10_000) -> Iterator[Entry]:
    after = 0
    while rows := store.list_entries(bank, after_id=after, limit=page):
        yield from rows
        after = rows[-1].id


def export_bank(store: BankStore, bank: str, fmt: Format, out: TextIO) -> int:
    return write(out, fmt, iter_entries(store, bank))
