"""PostgreSQL's entries in a few partitions (LIST on `part`): `entries_shared` (part 0)
holds every bank's entries except those of a few large lists, which each get a table of
their own (`entries_<bank id>`, part = the bank's id) on their first load. That load is a
bulk load: COPY into the new table, its indexes built once by sorting, then ATTACH
PARTITION. Maintaining four B-trees row by row was most of a big import's time; ATTACH
takes SHARE UPDATE EXCLUSIVE on `entries`, so readers and the matchers go on meanwhile.

Partitions are few on purpose. A statement that names no partition (an id lookup, the
change log's join, a matcher's load) plans and locks every partition and its indexes:
with a table per bank, 1,500 banks took ~330 ms to plan one id lookup and 6 such sessions
ran the server out of lock memory. With at most `max_partitions` own partitions, each
statement holds at most (max_partitions + 1) x 5 locks: by default the cap is derived from
the server's `max_locks_per_transaction` (the lock table holds that many per connection)
so that they fit with room for the transaction's other tables: 8 at PostgreSQL's default
of 64; an operator who raises that setting gets more.

Unique keys are each partition's own (a partitioned table's unique key must hold its
partition key): ids are unique by the one sequence, and a bank's entries all live in one
partition, so each partition's unique key on (signal_type, value, bank_id) keeps a bank's
values unique as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hashmatch.banks.model import EntryBatch, NewEntry, Tombstone, WriteReport
from hashmatch.banks.staged_events import Settled, copy_events, settle

if TYPE_CHECKING:
    import psycopg

SHARED = 0  # the part of every bank without a partition of its own

# Schema 7: the table of entries becomes the shared partition as it is: its indexes are
# adopted, not rebuilt (the two the parent declares match them; its unique keys stay its
# own). The video frames' foreign key to entries goes: it could name only one partition
# (entries are tombstoned, never deleted, so it guarded nothing the store does). `part`
# has no default: a new entry from a writer of schema 6 still running is refused (no
# partition takes a NULL part) instead of landing in the shared partition beside its list's
# own.
PARTITION_ENTRIES = (
    """ALTER TABLE vpdq_frames DROP CONSTRAINT IF EXISTS vpdq_frames_entry_id_fkey""",
    """ALTER TABLE entries RENAME TO entries_shared""",
    """ALTER INDEX entries_external RENAME TO entries_shared_external""",
    """ALTER INDEX entries_bank_live RENAME TO entries_shared_bank_live""",
    """DROP TRIGGER entries_added ON entries_shared""",
    """DROP TRIGGER entries_updated ON entries_shared""",
    """ALTER TABLE entries_shared ADD COLUMN part INTEGER NOT NULL DEFAULT 0
    CONSTRAINT entries_shared_part CHECK (part = 0)""",
    """CREATE SEQUENCE entries_ids""",
    """SELECT setval('entries_ids', greatest(
        (SELECT coalesce(max(id), 0) FROM entries_shared),
        coalesce(pg_sequence_last_value(pg_get_serial_sequence('entries_shared', 'id')), 0)
    ) + 1, false)""",
    """ALTER TABLE entries_shared ALTER id DROP IDENTITY""",
    # The same columns and NOT NULLs, no defaults but the id's (part has none).
    """CREATE TABLE entries (LIKE entries_shared) PARTITION BY LIST (part)""",
    """ALTER TABLE entries ALTER id SET DEFAULT nextval('entries_ids'),
    ADD CONSTRAINT entries_signal_type_check CHECK (signal_type IN ('pdq', 'md5', 'sha256'))""",
    """ALTER SEQUENCE entries_ids OWNED BY entries.id""",
    """CREATE INDEX entries_external ON entries (bank_id, external_id)""",
    """CREATE INDEX entries_bank_live ON entries (bank_id, id) INCLUDE (signal_type)
    WHERE removed_at IS NULL""",
    """ALTER TABLE entries ATTACH PARTITION entries_shared FOR VALUES IN (0)""",
    """CREATE TRIGGER entries_added AFTER INSERT ON entries REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hashmatch_entries_added()""",
    """CREATE TRIGGER entries_updated AFTER UPDATE ON entries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hashmatch_entries_updated()""",
    # The new column's statistics: adding it counts as no change, so autovacuum would not
    # soon look, and `part = 0 AND bank_id = ...` was estimated 200x too few rows.
    """ANALYZE entries_shared""",
)

_SEQUENCE = "pg_get_serial_sequence('entries', 'id')"


@dataclass(frozen=True)
class PartitionPolicy:
    """Which first loads get a partition of their own: those of at least `rows` entries,
    while fewer than `max_partitions` banks have one (None: as many as the server's lock
    table allows, `cap_for`). The rest go to the shared one."""

    rows: int = 100_000
    max_partitions: int | None = None

    def cap(self, db: psycopg.Connection) -> int:
        if self.max_partitions is not None:
            return self.max_partitions
        row = db.execute("SELECT current_setting('max_locks_per_transaction')::int").fetchone()
        assert row is not None
        return cap_for(int(row[0]))


DEFAULT_POLICY = PartitionPolicy()


def cap_for(max_locks_per_transaction: int) -> int:
    """Own partitions whose locks (5 a table: it and its 4 indexes), with the shared
    partition's and the parent's, fill about three quarters of one connection's share of
    the lock table: 8 at 64 (48 locks), 35 at 256 (183)."""
    return max(0, max_locks_per_transaction // 7 - 1)


def partition(bank_id: int) -> str:
    return f"entries_{int(bank_id)}"


def part_of(db: psycopg.Connection, bank_id: int) -> int:
    """The bank's part: its id if it has a partition of its own, else SHARED."""
    row = db.execute(
        "SELECT 1 FROM pg_inherits WHERE inhparent = 'entries'::regclass"
        " AND inhrelid = to_regclass(%s)",
        (partition(bank_id),),
    ).fetchone()
    return int(bank_id) if row is not None else SHARED


def has_held_entries(db: psycopg.Connection, bank_id: int, part: int) -> bool:
    """Whether the bank holds any entry, live or tombstoned (a first load's test)."""
    row = db.execute(
        "SELECT 1 FROM entries WHERE part = %s AND bank_id = %s LIMIT 1", (part, bank_id)
    ).fetchone()
    return row is not None


def own_partitions(db: psycopg.Connection) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'entries'::regclass"
    ).fetchone()
    assert row is not None
    return int(row[0]) - 1  # the shared one


def first_load(
    db: psycopg.Connection,
    bank_id: int,
    events: Iterable[NewEntry | Tombstone | EntryBatch],
    now: str,
    report: WriteReport,
    policy: PartitionPolicy,
) -> None:
    """A bank's first entries (it has held none): COPY'd into a new table, ids given in
    input order from the sequence, settled by the rules every import follows
    (staged_events.py), then made the bank's own partition if the
    policy grants one, else moved into the shared one; logged as one range row. The
    caller holds the writer lock: nobody else takes ids or makes partitions."""
    from psycopg import sql

    table = new_table(db, bank_id)
    row = db.execute(f"SELECT nextval({_SEQUENCE})").fetchone()
    assert row is not None
    base = int(row[0])
    defaults = sql.SQL(
        "ALTER TABLE {} ALTER bank_id SET DEFAULT {}, ALTER part SET DEFAULT {},"
        " ALTER added_at SET DEFAULT {}"
    )
    db.execute(
        defaults.format(
            sql.Identifier(table), sql.Literal(bank_id), sql.Literal(bank_id), sql.Literal(now)
        )
    )
    n, removals = copy_events(db, table, "id", base, events)
    if n:
        db.execute(f"SELECT setval({_SEQUENCE}, %s)", (base + n - 1,))
    own = n >= policy.rows and own_partitions(db) < policy.cap(db)
    if own and not removals and _unique_keys(db, table, savepoint=True):
        gone = Settled()
    else:
        gone = settle(db, table, "id", removals)
        if gone.total:
            _renumber(db, table, base)
        if own:
            _unique_keys(db, table)
    report.duplicates += gone.duplicates
    report.added = n - gone.total
    if own:
        db.execute(
            f"ALTER TABLE {table} ALTER bank_id DROP DEFAULT, ALTER part DROP DEFAULT,"
            " ALTER added_at DROP DEFAULT"
        )
        attach(db, bank_id)
    else:
        _into_shared(db, table)
    if report.added:
        log_range(db, bank_id, base, base + report.added - 1, now)


def new_table(db: psycopg.Connection, bank_id: int) -> str:
    """The bank's table, to be its partition: entries' columns, no index yet."""
    table = partition(bank_id)
    db.execute(
        f"CREATE TABLE {table} (LIKE entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
        f" CONSTRAINT {table}_part CHECK (part = {int(bank_id)}))"  # ATTACH skips its scan
    )
    return table


def attach(db: psycopg.Connection, bank_id: int, unique_keys: bool = False) -> None:
    """The bank's filled table made its partition (ATTACH builds the parent's indexes on
    it by sorting), with its unique keys first where they are not built yet."""
    table = partition(bank_id)
    if unique_keys:
        _unique_keys(db, table)
    db.execute(f"ALTER TABLE entries ATTACH PARTITION {table} FOR VALUES IN ({int(bank_id)})")
    # The bank's next import plans its joins on these statistics (without them, nested
    # loops over every entry: minutes at 300k entries).
    db.execute(f"ANALYZE {table}")


def _unique_keys(db: psycopg.Connection, table: str, savepoint: bool = False) -> bool:
    """The new partition's unique keys, built by sorting; the value first, as every lookup
    names it: its leading bytes then make the sort's abbreviated keys (led by the signal
    type, the same for every row, the build took twice as long). A list usually holds each
    value once: in a savepoint, the unique index's build is the check (False: it failed),
    and only a list that fails it pays for finding its duplicates."""
    from psycopg import errors

    unique = f"ALTER TABLE {table} ADD PRIMARY KEY (id), ADD UNIQUE (value, signal_type, bank_id)"
    if not savepoint:
        db.execute(unique)
        return True
    try:
        with db.transaction():
            db.execute(unique)
    except errors.UniqueViolation:
        return False
    return True


def _renumber(db: psycopg.Connection, table: str, base: int) -> None:
    """Ids base, base + 1, ... again, in the same order, after rows went: the change log's
    range row names consecutive ids."""
    db.execute(
        f"UPDATE {table} t SET id = r.new_id FROM (SELECT id,"
        f" %s - 1 + row_number() OVER (ORDER BY id) AS new_id FROM {table}) r"
        " WHERE t.id = r.id AND t.id <> r.new_id",
        (base,),
    )


def _into_shared(db: psycopg.Connection, table: str) -> None:
    """The settled rows into the shared partition (in key order: its unique index then
    grows at its end instead of at random pages), their ids kept; the range row logs them."""
    db.execute("SELECT set_config('hashmatch.range_logged', 'on', true)")
    db.execute(
        "INSERT INTO entries (id, bank_id, signal_type, value, label, external_id, source,"
        f" added_at, part) SELECT id, bank_id, signal_type, value, label, external_id, source,"
        f" added_at, {SHARED} FROM {table} ORDER BY signal_type, value"
    )
    db.execute("SELECT set_config('hashmatch.range_logged', 'off', true)")
    db.execute(f"DROP TABLE {table}")


def log_range(db: psycopg.Connection, bank_id: int, first: int, last: int, now: str) -> None:
    """New entries first..last as one change-log row taking last - first + 1 sequence
    numbers (records.range_changes expands it)."""
    db.execute(
        "INSERT INTO changes (seq, kind, bank_id, entry_id, last_entry_id, at)"
        " OVERRIDING SYSTEM VALUE SELECT setval(s, nextval(s) + %(n)s - 1), 'add', %(bank)s,"
        " %(first)s, %(last)s, %(now)s FROM pg_get_serial_sequence('changes', 'seq') AS s",
        {"n": last - first + 1, "bank": bank_id, "first": first, "last": last, "now": now},
    )
