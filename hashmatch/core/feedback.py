"""Per-entry feedback on matches: confirmed or false positive.

A false positive goes to the caller's own allow bank ("<tenant>:false-positives", or
"false-positives" for the operator), so the caller stops seeing it as a match within a
second (the matcher follows the change log) while other tenants are unaffected; confirming
it again takes it out. Verdicts are kept per (tenant, bank, entry) and exported, counted
per entry, for the list's source (e.g. NCMEC's hash-sharing feedback).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from hashmatch.banks.model import BankKind, BankSettings, NewEntry, Visibility
from hashmatch.banks.store import BankStore
from hashmatch.errors import NotFound
from hashmatch.storage.sqlite import migrate, write_transaction
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.model import Principal

ALLOW_SUFFIX = "false-positives"
FEEDBACK_FILE = "feedback.sqlite3"
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE feedback (
            tenant TEXT NOT NULL,
            bank TEXT NOT NULL,
            entry_id INTEGER NOT NULL,
            external_id TEXT NOT NULL,
            verdict TEXT NOT NULL,
            note TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, bank, entry_id)
        )""",
    ),
)


_UPSERT = """
INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, bank, entry_id) DO UPDATE SET
    verdict = excluded.verdict, note = excluded.note, updated_at = excluded.updated_at
"""
_EXPORT = """
SELECT entry_id, external_id, SUM(verdict = 'confirmed'), SUM(verdict = 'false_positive')
FROM feedback WHERE bank = ? GROUP BY entry_id, external_id ORDER BY entry_id
"""


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._lock = threading.RLock()
        migrate(self._db, self._lock, path, MIGRATIONS)

    def record(
        self, tenant: str, bank: str, entry_id: int, external_id: str, verdict: Verdict, note: str
    ) -> None:
        row = (
            tenant,
            bank,
            entry_id,
            external_id,
            verdict.value,
            note,
            datetime.now(UTC).isoformat(),
        )
        with write_transaction(self._db, self._lock) as db:
            db.execute(_UPSERT, row)

    def export(self, bank: str) -> list[dict[str, Any]]:
        """Per entry of the bank: how many tenants confirmed it, how many called it wrong."""
        keys = ("entry_id", "external_id", "confirmed", "false_positive")
        return [
            {"bank": bank, **dict(zip(keys, r, strict=True))}
            for r in self._db.execute(_EXPORT, (bank,)).fetchall()
        ]

    def close(self) -> None:
        self._db.close()


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
