"""What both bank stores (SQLite, PostgreSQL) read and write the same way: rows to model
objects, settings to column values, the clock their timestamps come from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hashmatch.banks.model import (
    Bank,
    BankKind,
    BankSettings,
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
