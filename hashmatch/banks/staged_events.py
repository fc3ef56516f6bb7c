"""An import's events COPY'd into a table in order, then settled by the import's rules:
entries a later tombstone of their external id removes go, then duplicates among the rest
(the first stays). PostgreSQL's staging (postgres_store.py) and a first load straight into
a new table (entry_partitions.py) both go through here, so the two cannot disagree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hashmatch.banks.copy_text import copy_text
from hashmatch.banks.model import EntryBatch, NewEntry, Tombstone

if TYPE_CHECKING:
    import psycopg

Removals = list[tuple[int, str]]  # (the order the next entry would take, external id)


@dataclass
class Settled:
    """How many staged entries went, and why."""

    removed: int = 0
    duplicates: int = 0

    @property
    def total(self) -> int:
        return self.removed + self.duplicates


def copy_events(
    db: psycopg.Connection,
    table: str,
    order: str,
    start: int,
    events: Iterable[NewEntry | Tombstone | EntryBatch],
) -> tuple[int, Removals]:
    """The events' entries into table (streamed: bounded memory), column `order` numbered
    start, start + 1, ... in input order; how many, and the tombstones."""
    removals: Removals = []
    n = 0
    columns = f"{order}, signal_type, value, label, external_id, source"
    with db.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for e in events:
            if isinstance(e, EntryBatch):
                copy.write(copy_text(e, start + n))
                n += len(e)
            elif isinstance(e, Tombstone):
                removals.append((start + n, e.external_id))
            else:
                copy.write_row(
                    (start + n, e.signal_type.value, e.value, e.label, e.external_id, e.source)
                )
                n += 1
    return n, removals


def settle(db: psycopg.Connection, table: str, order: str, removals: Removals) -> Settled:
    """The import's rules over what copy_events wrote. Per external id the later event
    wins: entries before a tombstone of their id go; a tombstone followed by entries of
    its id removes the id's other values (an upstream record replaced by what it holds
    now). The tombstones stay in `<table>_removals` for the rest of the transaction."""
    gone = Settled()
    if removals:
        db.execute(
            f"CREATE TEMP TABLE {table}_removals (at BIGINT NOT NULL,"
            " external_id TEXT NOT NULL) ON COMMIT DROP"
        )
        with db.cursor() as cur, cur.copy(f"COPY {table}_removals FROM STDIN") as copy:
            for r in removals:
                copy.write_row(r)
        db.execute(f"ANALYZE {table}_removals")
        cur = db.execute(
            f"DELETE FROM {table} t WHERE t.external_id IS NOT NULL AND EXISTS (SELECT 1"
            f" FROM {table}_removals r WHERE r.external_id = t.external_id"
            f" AND r.at > t.{order})"
        )
        gone.removed = max(cur.rowcount, 0)
    # Then duplicates among what is left, found by hashing (a sort of every staged value
    # costs several times as much); usually there are none to delete.
    cur = db.execute(
        f"DELETE FROM {table} t USING (SELECT signal_type, value, min({order}) AS keep"
        f" FROM {table} GROUP BY signal_type, value HAVING count(*) > 1) d"
        f" WHERE t.signal_type = d.signal_type AND t.value = d.value AND t.{order} <> d.keep"
    )
    gone.duplicates = max(cur.rowcount, 0)
    return gone
