"""PostgreSQL's entries, partitioned by bank (LIST on bank_id, a table `entries_<bank id>`
each), so that a list's first load is a bulk load: COPY into a new table of its own, its
indexes built once by sorting, then ATTACH PARTITION. Maintaining four B-trees row by row
was most of an import's time; ATTACH takes SHARE UPDATE EXCLUSIVE on `entries`, so
readers and the matchers' lookups go on meanwhile.

A bank's partition is made by the first write that adds an entry to it, so "the bank has
a partition" means "the bank has held an entry", which is what makes a load a first one.
Every other write goes through `entries` (its statement triggers write the change log).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hashmatch.banks.copy_text import copy_text
from hashmatch.banks.model import EntryBatch, NewEntry, Tombstone, WriteReport

if TYPE_CHECKING:
    import psycopg

_SEQUENCE = "pg_get_serial_sequence('entries', 'id')"

# Schema 7: entries partitioned by bank. The primary key takes bank_id (a partitioned
# table's unique keys hold its partition key), so the video frames' foreign key to an
# entry's id goes (entries are tombstoned, never deleted). The rows move bank by bank in
# `carry_over`, run in the same transaction.
PARTITION_ENTRIES = (
    """ALTER TABLE entries RENAME TO entries_unpartitioned""",
    """ALTER TABLE vpdq_frames DROP CONSTRAINT IF EXISTS vpdq_frames_entry_id_fkey""",
    """ALTER TABLE entries_unpartitioned DROP CONSTRAINT entries_pkey""",
    """ALTER TABLE entries_unpartitioned
    DROP CONSTRAINT entries_signal_type_value_bank_id_key""",
    """DROP INDEX entries_external""",
    """DROP INDEX entries_bank_live""",
    """DROP TRIGGER entries_added ON entries_unpartitioned""",
    """DROP TRIGGER entries_updated ON entries_unpartitioned""",
    """CREATE SEQUENCE entries_ids""",
    """CREATE TABLE entries (
        id BIGINT NOT NULL DEFAULT nextval('entries_ids'),
        bank_id INTEGER NOT NULL,
        signal_type TEXT NOT NULL CHECK (signal_type IN ('pdq', 'md5', 'sha256')),
        value BYTEA NOT NULL,
        label TEXT,
        external_id TEXT,
        source TEXT,
        added_at TEXT NOT NULL,
        removed_at TEXT,
        PRIMARY KEY (id, bank_id),
        UNIQUE (signal_type, value, bank_id)
    ) PARTITION BY LIST (bank_id)""",
    """ALTER SEQUENCE entries_ids OWNED BY entries.id""",
    """CREATE INDEX entries_external ON entries (bank_id, external_id)""",
    """CREATE INDEX entries_bank_live ON entries (bank_id, id) INCLUDE (signal_type)
    WHERE removed_at IS NULL""",
    """CREATE TRIGGER entries_added AFTER INSERT ON entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hashmatch_entries_added()""",
    """CREATE TRIGGER entries_updated AFTER UPDATE ON entries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hashmatch_entries_updated()""",
)
PARTITIONED_SINCE = 7  # the schema version PARTITION_ENTRIES brings

_COLUMNS = "id, bank_id, signal_type, value, label, external_id, source, added_at, removed_at"


def partition(bank_id: int) -> str:
    return f"entries_{int(bank_id)}"


def carry_over(db: psycopg.Connection) -> None:
    """Schema 7's rows: each bank's entries into its partition, the id sequence past every
    id the old identity gave."""
    identity = "pg_get_serial_sequence('entries_unpartitioned', 'id')::regclass"
    last = db.execute(
        "SELECT greatest(coalesce(max(id), 0),"
        f" coalesce(pg_sequence_last_value({identity}), 0)) FROM entries_unpartitioned"
    ).fetchone()
    assert last is not None
    db.execute(f"SELECT setval({_SEQUENCE}, %s + 1, false)", (int(last[0]),))
    banks = db.execute("SELECT DISTINCT bank_id FROM entries_unpartitioned ORDER BY 1").fetchall()
    for (bank_id,) in banks:
        _new_table(db, bank_id)
        db.execute(
            f"INSERT INTO {partition(bank_id)} ({_COLUMNS}) SELECT {_COLUMNS}"
            " FROM entries_unpartitioned WHERE bank_id = %s ORDER BY id",
            (bank_id,),
        )
        _attach(db, bank_id)
    db.execute("DROP TABLE entries_unpartitioned")


def has_partition(db: psycopg.Connection, bank_id: int) -> bool:
    row = db.execute(
        "SELECT 1 FROM pg_inherits WHERE inhparent = 'entries'::regclass"
        " AND inhrelid = to_regclass(%s)",
        (partition(bank_id),),
    ).fetchone()
    return row is not None


def ensure_partition(db: psycopg.Connection, bank_id: int) -> None:
    """The bank's partition, empty if it is new (for a write through `entries`)."""
    if not has_partition(db, bank_id):
        _new_table(db, bank_id)
        _attach(db, bank_id)


def _new_table(db: psycopg.Connection, bank_id: int) -> None:
    # The CHECK lets ATTACH skip its scan proving every row belongs to the bank.
    db.execute(
        f"CREATE TABLE {partition(bank_id)} (LIKE entries INCLUDING DEFAULTS"
        f" INCLUDING CONSTRAINTS, CHECK (bank_id = {int(bank_id)}))"
    )


def _attach(db: psycopg.Connection, bank_id: int) -> None:
    """Builds the partition's indexes (those of `entries`) and makes it the bank's."""
    db.execute(
        f"ALTER TABLE entries ATTACH PARTITION {partition(bank_id)} FOR VALUES IN ({int(bank_id)})"
    )


def first_load(
    db: psycopg.Connection,
    bank_id: int,
    events: Iterable[NewEntry | Tombstone | EntryBatch],
    now: str,
    report: WriteReport,
) -> None:
    """A bank's first entries (it has no partition) COPY'd into its new partition, ids
    given in input order from the sequence, then de-duplicated (the first of a value
    stays) and tombstoned as an import's staging is, the indexes built, attached, and
    logged as one range row. The caller holds the writer lock: nobody else takes ids."""
    from psycopg import errors, sql

    table = partition(bank_id)
    row = db.execute(f"SELECT nextval({_SEQUENCE})").fetchone()
    assert row is not None
    base = int(row[0])
    _new_table(db, bank_id)
    defaults = sql.SQL("ALTER TABLE {} ALTER bank_id SET DEFAULT {}, ALTER added_at SET DEFAULT {}")
    db.execute(defaults.format(sql.Identifier(table), sql.Literal(int(bank_id)), sql.Literal(now)))
    n, removals = _copy_in(db, table, base, events)
    if n == 0:
        db.execute(f"DROP TABLE {table}")
        return
    db.execute(f"SELECT setval({_SEQUENCE}, %s)", (base + n - 1,))
    db.execute(f"ALTER TABLE {table} ALTER bank_id DROP DEFAULT, ALTER added_at DROP DEFAULT")
    gone = 0
    attached = False
    if not removals:
        # A list usually holds each value once: the unique index's build is the check,
        # and only a list that fails it pays for finding its duplicates.
        try:
            with db.transaction():
                _attach(db, bank_id)
            attached = True
        except errors.UniqueViolation:
            pass
    if not attached:
        gone = _settle(db, table, removals, report)
        if gone:
            _renumber(db, table, base)
        _attach(db, bank_id)
    # The bank's next import plans its joins on these statistics (without them, nested
    # loops over every entry: minutes at 300k entries).
    db.execute(f"ANALYZE {table}")
    report.added = n - gone
    if report.added:
        log_range(db, bank_id, base, base + report.added - 1, now)


def _copy_in(
    db: psycopg.Connection,
    table: str,
    base: int,
    events: Iterable[NewEntry | Tombstone | EntryBatch],
) -> tuple[int, list[tuple[int, str]]]:
    """The events' entries into table, ids base, base + 1, ...; the tombstones as (the id
    the next entry would take, external id)."""
    removals: list[tuple[int, str]] = []
    n = 0
    with (
        db.cursor() as cur,
        cur.copy(
            f"COPY {table} (id, signal_type, value, label, external_id, source) FROM STDIN"
        ) as copy,
    ):
        for e in events:
            if isinstance(e, EntryBatch):
                copy.write(copy_text(e, base + n))
                n += len(e)
            elif isinstance(e, Tombstone):
                removals.append((base + n, e.external_id))
            else:
                copy.write_row(
                    (base + n, e.signal_type.value, e.value, e.label, e.external_id, e.source)
                )
                n += 1
    return n, removals


def _settle(
    db: psycopg.Connection,
    table: str,
    removals: list[tuple[int, str]],
    report: WriteReport,
) -> int:
    """The rules of an import's staging: entries a later tombstone of their external id
    removes go, then duplicates among the rest (the first stays; counted). How many
    went."""
    gone = 0
    if removals:
        db.execute(
            "CREATE TEMP TABLE first_load_removals (at_id BIGINT NOT NULL,"
            " external_id TEXT NOT NULL) ON COMMIT DROP"
        )
        with db.cursor() as c, c.copy("COPY first_load_removals FROM STDIN") as cp:
            for r in removals:
                cp.write_row(r)
        db.execute("ANALYZE first_load_removals")
        cur = db.execute(
            f"DELETE FROM {table} t WHERE t.external_id IS NOT NULL AND EXISTS (SELECT 1"
            " FROM first_load_removals r WHERE r.external_id = t.external_id"
            " AND r.at_id > t.id)"
        )
        gone += max(cur.rowcount, 0)
    cur = db.execute(
        f"DELETE FROM {table} t USING (SELECT signal_type, value, min(id) AS keep"
        f" FROM {table} GROUP BY signal_type, value HAVING count(*) > 1) d"
        " WHERE t.signal_type = d.signal_type AND t.value = d.value AND t.id <> d.keep"
    )
    duplicates = max(cur.rowcount, 0)
    report.duplicates += duplicates
    return gone + duplicates


def _renumber(db: psycopg.Connection, table: str, base: int) -> None:
    """Ids base, base + 1, ... again, in the same order, after rows went: the change log's
    range row names consecutive ids."""
    db.execute(
        f"UPDATE {table} t SET id = r.new_id FROM (SELECT id,"
        f" %s - 1 + row_number() OVER (ORDER BY id) AS new_id FROM {table}) r"
        " WHERE t.id = r.id AND t.id <> r.new_id",
        (base,),
    )


def log_range(db: psycopg.Connection, bank_id: int, first: int, last: int, now: str) -> None:
    """New entries first..last as one change-log row taking last - first + 1 sequence
    numbers (records.range_changes expands it)."""
    db.execute(
        "INSERT INTO changes (seq, kind, bank_id, entry_id, last_entry_id, at)"
        " OVERRIDING SYSTEM VALUE SELECT setval(s, nextval(s) + %(n)s - 1), 'add', %(bank)s,"
        " %(first)s, %(last)s, %(now)s FROM pg_get_serial_sequence('changes', 'seq') AS s",
        {"n": last - first + 1, "bank": bank_id, "first": first, "last": last, "now": now},
    )
