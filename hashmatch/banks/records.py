"""What both bank stores (SQLite, PostgreSQL) read and write the same way: rows to model
objects, settings to column values, the clock their timestamps come from."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hashmatch.banks.model import (
    Bank,
    BankKind,
    BankSettings,
    Change,
    ChangeKind,
    DistancePolicy,
    Entry,
    SignalType,
    Visibility,
)

BANK_COLUMNS = (
    "id, name, owner, visibility, kind, signal_types, pdq_threshold, min_quality, enabled,"
    " created_at, updated_at, distance_policy"
)
ENTRY_COLUMNS = "id, bank_id, signal_type, value, label, external_id, source, added_at, removed_at"


def now(offset_s: float = 0.0) -> str:
    """UTC ISO 8601, sortable as text: what the stores write (`offset_s` from now)."""
    t = datetime.now(UTC) + timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def timestamp(iso: str) -> float:
    """Unix seconds of a time the stores wrote."""
    return datetime.fromisoformat(iso).timestamp()


def entry(row: Sequence[Any]) -> Entry:
    return Entry(
        id=row[0],
        bank_id=row[1],
        signal_type=SignalType(row[2]),
        value=bytes(row[3]),
        label=row[4],
        external_id=row[5],
        source=row[6],
        added_at=row[7],
        removed_at=row[8],
    )


def banks(rows: Iterable[Sequence[Any]], shares: Iterable[Sequence[Any]]) -> list[Bank]:
    """Banks from their rows (BANK_COLUMNS) and every share row (bank_id, tenant,
    accepted_at)."""
    shared: dict[int, set[str]] = {}
    accepted: dict[int, set[str]] = {}
    for bank_id, tenant, accepted_at in shares:
        shared.setdefault(bank_id, set()).add(tenant)
        if accepted_at is not None:
            accepted.setdefault(bank_id, set()).add(tenant)
    return [
        Bank(
            id=r[0],
            name=r[1],
            owner=r[2],
            visibility=Visibility(r[3]),
            shared_with=frozenset(shared.get(r[0], ())),
            accepted_by=frozenset(accepted.get(r[0], ())),
            kind=BankKind(r[4]),
            signal_types=frozenset(SignalType(s) for s in r[5].split(",") if s),
            pdq_threshold=r[6],
            min_quality=r[7],
            enabled=bool(r[8]),
            created_at=r[9],
            updated_at=r[10],
            distance_policy=DistancePolicy(r[11]),
        )
        for r in rows
    ]


def settings_columns(s: BankSettings) -> dict[str, object]:
    """The bank columns a settings change sets (shares are a table of their own)."""
    fields: dict[str, object] = {}
    if s.owner is not None:
        fields["owner"] = s.owner
    if s.visibility is not None:
        fields["visibility"] = s.visibility.value
    if s.kind is not None:
        fields["kind"] = s.kind.value
    if s.signal_types is not None:
        fields["signal_types"] = ",".join(sorted(t.value for t in s.signal_types))
    if s.pdq_threshold is not None:
        fields["pdq_threshold"] = s.pdq_threshold
    if s.min_quality is not None:
        fields["min_quality"] = s.min_quality
    if s.enabled is not None:
        fields["enabled"] = int(s.enabled)
    if s.distance_policy is not None:
        fields["distance_policy"] = s.distance_policy.value
    return fields


def change(seq: int, kind: str, bank_id: int, entry_id: int | None, e: Sequence[Any]) -> Change:
    """A change-log row with its entry's (signal_type, value, label, source) now, or
    Nones (a bank change, or an entry since purged)."""
    return Change(
        seq=seq,
        kind=ChangeKind(kind),
        bank_id=bank_id,
        entry_id=entry_id,
        signal_type=SignalType(e[0]) if e[0] is not None else None,
        value=bytes(e[1]) if e[1] is not None else None,
        label=e[2],
        source=e[3],
    )


# A range row of the change log (one import's new entries) logs entries first..last at
# sequence numbers seq - (last - id): its own seq is the last of them.
def range_window(seq: int, first: int, last: int, after: int, room: int) -> tuple[int, int]:
    """The ids of a range row's entries logged past sequence `after`, at most `room`."""
    lo = max(first, last - (seq - after) + 1)
    return lo, min(last, lo + room - 1)


def range_changes(
    seq: int,
    kind: str,
    bank_id: int,
    last: int,
    lo: int,
    hi: int,
    found: Iterable[Sequence[Any]],
) -> list[Change]:
    """One change per id lo..hi of a range row, as a row of its own would read; `found`:
    those entries' (id, signal_type, value, label, source)."""
    by_id = {int(r[0]): r[1:] for r in found}
    gone = (None, None, None, None)
    return [
        change(seq - (last - i), kind, bank_id, i, by_id.get(i, gone)) for i in range(lo, hi + 1)
    ]


# The change log past a sequence, each row with its entry as it is now (`changes_of`
# reads these rows), and a range row's entries; formatted with the driver's placeholder.
CHANGES_SINCE = (
    "SELECT c.seq, c.kind, c.bank_id, c.entry_id, c.last_entry_id, e.signal_type,"
    " e.value, e.label, e.source FROM changes c"
    " LEFT JOIN entries e ON e.id = c.entry_id AND c.last_entry_id IS NULL"
    " WHERE c.seq > {p} ORDER BY c.seq LIMIT {p}"
)
ENTRIES_BETWEEN = (
    "SELECT id, signal_type, value, label, source FROM entries WHERE id BETWEEN {p} AND {p}"
)


def changes_of(
    rows: Iterable[Sequence[Any]],
    after: int,
    limit: int,
    entries_between: Callable[[int, int], Iterable[Sequence[Any]]],
) -> list[Change]:
    """The change log's rows past `after` (seq, kind, bank_id, entry_id, last_entry_id,
    then the entry's signal_type, value, label, source) as changes, range rows expanded,
    at most `limit`; `entries_between(lo, hi)`: entries lo..hi as range_changes reads them."""
    out: list[Change] = []
    for r in rows:
        if len(out) >= limit:
            break
        if r[4] is None:
            out.append(change(r[0], r[1], r[2], r[3], r[5:]))
            continue
        lo, hi = range_window(r[0], r[3], r[4], after, limit - len(out))
        out.extend(range_changes(r[0], r[1], r[2], r[4], lo, hi, entries_between(lo, hi)))
    return out
