"""Bulk import and export of one bank: a file in, a report out; all or nothing.

The file is read as a stream (bad rows become row errors, good rows go on) into the store's
import, which stages it in bounded memory and merges it in ONE transaction: a killed import
leaves the bank as it was, a finished one leaves it complete, and readers are not held up
meanwhile. Writing is idempotent, so importing a file twice equals once; a value repeated
in the file counts as a duplicate, not an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np

from hashmatch.banks.formats import Format, Item, Record, Removal, read, write
from hashmatch.banks.model import (
    MAX_ROW_ERRORS,
    Bank,
    Entry,
    EntryBatch,
    ExportReport,
    NewEntry,
    RowError,
    RowErrorCode,
    SignalType,
    Tombstone,
    WriteReport,
)
from hashmatch.banks.store import BankStore
from hashmatch.banks.te_format import Checksums


def import_file(
    store: BankStore,
    bank: str,
    path: Path,
    fmt: Format,
    default_type: SignalType = SignalType.PDQ,
) -> WriteReport:
    b = store.get_bank(bank)  # NotFound before reading anything
    errors = WriteReport()  # the row errors, gathered while the store reads the stream
    with open(path, "rb") as f:
        report = store.import_entries(bank, _events(_items(f, fmt, default_type), b, errors))
    report.errors, report.error_count = errors.errors, errors.error_count
    return report


def _items(f: BinaryIO, fmt: Format, default: SignalType) -> Iterator[Item | EntryBatch]:
    """The file's items; csv and tsv with their plain rows in batches."""
    if fmt in (Format.CSV, Format.TSV):
        from hashmatch.banks import fast_csv  # pyarrow: loaded by imports only

        return fast_csv.read_delimited(f, "," if fmt is Format.CSV else "\t", default)
    return read(f, fmt, default)


def _events(
    items: Iterator[Item | EntryBatch], bank: Bank, errors: WriteReport
) -> Iterator[NewEntry | Tombstone | EntryBatch]:
    for item in items:
        if isinstance(item, EntryBatch):
            if item.signal_type in bank.signal_types:
                yield item
            else:
                _not_enabled(bank, item.signal_type, item.rows, errors)
        elif isinstance(item, RowError):
            errors.add_error(item)
        elif isinstance(item, Removal):
            yield Tombstone(item.external_id)
        elif isinstance(item, Record):
            if item.entry.signal_type not in bank.signal_types:
                _not_enabled(bank, item.entry.signal_type, [item.row], errors)
                continue
            yield item.entry


def _not_enabled(
    bank: Bank, st: SignalType, rows: Sequence[int] | np.ndarray, errors: WriteReport
) -> None:
    """Row errors for rows of a signal type the bank does not hold (counted past the
    ones kept)."""
    kept = max(0, min(len(rows), MAX_ROW_ERRORS - len(errors.errors)))
    for row in rows[:kept]:
        errors.add_error(
            RowError(
                int(row),
                RowErrorCode.SIGNAL_NOT_ENABLED,
                f"bank {bank.name!r} does not hold {st.value} signals",
            )
        )
    errors.error_count += len(rows) - kept


def iter_entries(store: BankStore, bank: str, page: int = 10_000) -> Iterator[Entry]:
    after = 0
    while rows := store.list_entries(bank, after_id=after, limit=page):
        yield from rows
        after = rows[-1].id


def export_bank(
    store: BankStore,
    bank: str,
    fmt: Format,
    out: TextIO,
    checksums: Checksums = Checksums.DROP,
) -> ExportReport:
    return write(out, fmt, iter_entries(store, bank), checksums)
