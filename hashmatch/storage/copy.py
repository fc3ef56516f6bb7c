"""Moving an installation from its SQLite data dir into PostgreSQL: the shared stores
(banks with their entries, tombstones included, video entries, and the exchanges feeding
them with their checkpoints; tenants, API key digests and usage; the report outbox) copied
with their ids, so what refers to an entry by id elsewhere (feedback, flood state, a
tenant's false positives) still means the same entry.

One transaction per store on the target; the target must be empty (a fresh database, or
one `db upgrade` made): copying into a live installation would mix two id spaces. The
source is read only. The largest banks (as many as the partition policy grants, each of at
least its rows) are copied as a first load is made: into a table of their own, indexed
once by sorting, then attached as their partition; the rest into the shared partition.
The change log starts afresh on the target: every replica then builds its index from the
database once (snapshots carry the source's store id and are not used).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hashmatch.banks import entry_partitions
from hashmatch.banks.entry_partitions import DEFAULT_POLICY, SHARED, PartitionPolicy
from hashmatch.errors import AlreadyExists, BadParameter
from hashmatch.storage.datadir import DataDir
from hashmatch.storage.postgres import Database, open_pool, write_transaction

if TYPE_CHECKING:
    import psycopg

# (table, columns) in the order foreign keys need; the identity columns to move past.
_BANK_TABLES = (
    ("banks", "id, name, owner, visibility, kind, signal_types, pdq_threshold, min_quality,"
              " enabled, created_at, updated_at, deleted_at, distance_policy"),
    ("bank_shares", "bank_id, tenant, accepted_at"),
    ("entries", "id, bank_id, signal_type, value, label, external_id, source, added_at,"
                " removed_at"),
    ("vpdq_videos", "id, bank_id, label, external_id, frames, digest, n_frames, duration,"
                    " added_at, removed_at"),
    ("vpdq_frames", "video_id, entry_id"),
    ("exchanges", "id, name, type, bank_id, settings, paused, checkpoint, created_at,"
                  " last_run_at, last_success_at, last_error, last_error_at, upstream_time,"
                  " added, removed, skipped, errors"),
    ("exchange_feedback", "id, exchange_id, tenant, upstream_id, signal_type, value, verdict,"
                          " created_at, sent_at, attempts, last_error"),
)  # fmt: skip
_TENANT_TABLES = (
    ("tenants", "id, organisation, contact, intended_use, state, reason, applied_at,"
                " updated_at, rate_per_second, monthly_items"),
    ("api_keys", "id, tenant_id, name, roles, salt, digest, created_at, expires_at,"
                 " revoked_at, last_used_at, replaced_by"),
    ("usage", "tenant_id, month, items"),
)  # fmt: skip
_REPORT_TABLES = (
    ("reports", "id, idempotency_key, tenant, test, status, reason, endpoint_report_id,"
                " report, files, attempts, created_at, updated_at, claimed_until"),
)  # fmt: skip
_IDENTITIES = (
    ("banks", "id"),
    ("entries", "id"),
    ("vpdq_videos", "id"),
    ("exchanges", "id"),
    ("exchange_feedback", "id"),
    ("reports", "id"),
)


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"copied": self.rows}


def _rows(
    db: sqlite3.Connection, table: str, columns: str, where: str = "", args: Sequence[object] = ()
) -> Iterator[Sequence[object]]:
    cur = db.execute(f"SELECT {columns} FROM {table} {where} ORDER BY rowid", args)
    while rows := cur.fetchmany(10_000):
        yield from rows


def _copy_rows(
    db: psycopg.Connection,
    into: str,
    columns: str,
    rows: Iterable[Sequence[object]],
    extra: Sequence[object] = (),
) -> int:
    n = 0
    with db.cursor() as cur, cur.copy(f"COPY {into} ({columns}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row((*r, *extra))
            n += 1
    return n


def _copy_entries(
    db: psycopg.Connection, src: sqlite3.Connection, columns: str, policy: PartitionPolicy
) -> int:
    """Entries, with the largest banks' in partitions of their own (see the module)."""
    sizes = src.execute(
        "SELECT bank_id, count(*) AS n FROM entries GROUP BY bank_id HAVING n >= ?"
        " ORDER BY n DESC, bank_id",
        (policy.rows,),
    ).fetchall()
    room = max(0, policy.cap(db) - entry_partitions.own_partitions(db))
    own = [int(b) for b, _ in sizes[:room]]
    rest = f"WHERE bank_id NOT IN ({', '.join('?' * len(own))})" if own else ""
    shared = _rows(src, "entries", columns, rest, own)
    n = _copy_rows(db, "entries", f"{columns}, part", shared, (SHARED,))
    for bank_id in own:
        table = entry_partitions.new_table(db, bank_id)
        rows = _rows(src, "entries", columns, "WHERE bank_id = ?", (bank_id,))
        n += _copy_rows(db, table, f"{columns}, part", rows, (bank_id,))
        entry_partitions.attach(db, bank_id, unique_keys=True)
    return n


def _has_table(db: sqlite3.Connection, table: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return row.fetchone() is not None


def _copy_tables(
    source: Path,
    target: Database,
    lock: int,
    tables: Sequence[tuple[str, str]],
    empty_check: str,
    report: CopyReport,
    policy: PartitionPolicy = DEFAULT_POLICY,
) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        with write_transaction(target, lock) as db:
            row = db.execute(f"SELECT count(*) FROM {empty_check}").fetchone()
            if row is not None and row[0]:
                raise AlreadyExists(
                    f"the target already has {empty_check}: copy into an empty database"
                )
            for table, columns in tables:
                if not _has_table(src, table):
                    continue
                if table == "entries":
                    report.rows[table] = _copy_entries(db, src, columns, policy)
                else:
                    report.rows[table] = _copy_rows(db, table, columns, _rows(src, table, columns))
            for table, column in _IDENTITIES:
                if any(t == table for t, _ in tables):
                    db.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                        f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                    )
    finally:
        src.close()


def copy_to_postgres(
    source: DataDir, url: str, policy: PartitionPolicy = DEFAULT_POLICY
) -> CopyReport:
    """The data dir's banks, tenants and reports into the PostgreSQL database at url."""
    from hashmatch.banks import postgres_store as banks_pg
    from hashmatch.banks.sqlite_store import SCHEMA_VERSION
    from hashmatch.reports import postgres_tables as reports_pg
    from hashmatch.tenancy import postgres_store as tenants_pg

    if not source.banks.exists():
        raise BadParameter(f"{source.root}: no banks.sqlite3 to copy")
    with sqlite3.connect(f"file:{source.banks}?mode=ro", uri=True) as db:
        version = db.execute("SELECT version FROM schema_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise BadParameter(
            f"{source.banks}: schema version {version}, this hashmatch writes {SCHEMA_VERSION}:"
            f" run `hashmatch db upgrade --data-dir {source.root}` first"
        )
    # Opening the stores creates (or checks) the target's schema.
    banks_pg.PostgresBankStore(url).close()
    tenants_pg.PostgresTenantStore(url).close()
    reports_pg.PostgresOutboxTables(url).close()
    report = CopyReport()
    target = open_pool(url, 2)
    try:
        _copy_tables(source.banks, target, banks_pg.LOCK, _BANK_TABLES, "banks", report, policy)
        if source.tenants.exists():
            _copy_tables(source.tenants, target, tenants_pg.LOCK, _TENANT_TABLES, "tenants", report)
    finally:
        target.close()
    return report
