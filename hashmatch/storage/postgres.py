"""What every hashmatch PostgreSQL store shares: a connection pool, write transactions that
take the store's writer lock, and versioned migrations (as storage/sqlite.py does for
SQLite: one `schema_version` row, migrations in order in one transaction, a database newer
than the code refused).

The writer lock is a transaction-scoped advisory lock: writers of one store commit one at a
time, so the change log's sequence order is its commit order, as on SQLite, and a follower
reading `seq > last` can never step over a change still being committed. Readers never take
it: they see the last commit, as WAL readers do.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from hashmatch.errors import BadParameter, ConfigError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).split(":", 1)[0] in ("postgresql", "postgres")


def redacted(url: str) -> str:
    """The URL as it may be shown: without its password (logs, status lines)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_pool(url: str, max_size: int = 8) -> ConnectionPool:
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        raise ConfigError(
            "a PostgreSQL database_url needs the driver: pip install 'hashmatch[postgres]'"
        ) from None
    pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, name="hashmatch")
    pool.open(wait=True, timeout=30.0)
    return pool


def lock_id(name: str) -> int:
    """The advisory lock of one store (a stable signed 32-bit number of its name)."""
    return zlib.crc32(f"hashmatch:{name}".encode()) - (1 << 31)


@contextmanager
def write_transaction(pool: ConnectionPool, lock: int) -> Iterator[psycopg.Connection]:
    """One write transaction holding the store's writer lock until it commits."""
    with pool.connection() as db, db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        yield db


@contextmanager
def read_transaction(
    pool: ConnectionPool, consistent: bool = False
) -> Iterator[psycopg.Connection]:
    """A read; `consistent`: every statement inside sees one snapshot (REPEATABLE READ)."""
    with pool.connection() as db, db.transaction():
        if consistent:
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield db


def migrate(
    pool: ConnectionPool,
    lock: int,
    where: str,
    migrations: Sequence[Sequence[str]],
    after: Callable[[psycopg.Connection, int], None] | None = None,
    table: str = "schema_version",
) -> None:
    """migrations[v] brings the schema from v - 1 to v (index 0 unused); `after(db, v)`
    runs inside the same transaction. Replicas starting at once wait on the lock. Stores
    sharing a database keep their versions in tables of their own (`table`)."""
    latest = len(migrations) - 1
    with write_transaction(pool, lock) as db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
        row = db.execute(f"SELECT version FROM {table}").fetchone()
        version = row[0] if row else 0
        if row is None:
            db.execute(f"INSERT INTO {table} (version) VALUES (0)")
        if version > latest:
            raise BadParameter(
                f"{where}: schema version {version} is newer than this hashmatch ({latest});"
                " upgrade hashmatch"
            )
        for v in range(version + 1, latest + 1):
            for statement in migrations[v]:
                db.execute(statement)
            if after is not None:
                after(db, v)
            db.execute(f"UPDATE {table} SET version = %s", (v,))
