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

import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from hashmatch.errors import BadParameter, ConfigError, Unavailable

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


class Database:
    """A connection pool, and a breaker: after a connection failure, calls fail at once
    (Unavailable) for PROBE_EVERY_S, one call then probing, so a lost database costs
    callers that can do without it (matching from memory) nothing, not a timeout each."""

    PROBE_EVERY_S = 1.0
    PROBE_WAIT_S = 0.5

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._down_at: float | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.pool.close()

    def _admit(self) -> float | None:
        """The wait for a connection this call may spend: the pool's own while the
        database is up, a short one for the call that probes a database that was down."""
        with self._lock:
            if self._down_at is None:
                return None
            if time.monotonic() - self._down_at < self.PROBE_EVERY_S:
                raise Unavailable("the database is unreachable (retrying)")
            self._down_at = time.monotonic()  # this call probes; the others fail fast
            return self.PROBE_WAIT_S

    def _failed(self) -> None:
        with self._lock:
            self._down_at = time.monotonic()

    def _worked(self) -> None:
        if self._down_at is not None:
            with self._lock:
                self._down_at = None


def open_pool(url: str, max_size: int = 8) -> Database:
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        raise ConfigError(
            "a PostgreSQL database_url needs the driver: pip install 'hashmatch[postgres]'"
        ) from None
    # A caller waits at most `timeout` for a connection (then UNAVAILABLE); each is checked
    # as it leaves the pool, so connections a database restart broke are replaced unseen.
    # The pool's reconnection backoff doubles without bound until reconnect_timeout: kept
    # short, a new attempt starts with the next call instead, so a database that is back
    # is used again within seconds, however long it was away.
    pool = ConnectionPool(
        url, min_size=1, max_size=max_size, open=False, name="hashmatch", timeout=5.0,
        check=ConnectionPool.check_connection, reconnect_timeout=5.0,
    )  # fmt: skip
    try:
        pool.open(wait=True, timeout=30.0)
    except Exception as exc:
        pool.close()
        raise Unavailable(f"the database at {redacted(url)} is unreachable: {exc}") from exc
    return Database(pool)


def lock_id(name: str) -> int:
    """The advisory lock of one store (a stable signed 32-bit number of its name)."""
    return zlib.crc32(f"hashmatch:{name}".encode()) - (1 << 31)


@contextmanager
def connection(database: Database) -> Iterator[psycopg.Connection]:
    """A pooled connection in one transaction; a lost or unreachable database is
    Unavailable (UNAVAILABLE to callers: retry), never an internal error."""
    import psycopg

    wait = database._admit()
    try:
        with database.pool.connection(timeout=wait) as db, db.transaction():
            yield db
    except psycopg.OperationalError as exc:  # PoolTimeout included
        database._failed()
        raise Unavailable(f"the database is unreachable: {type(exc).__name__}") from exc
    database._worked()


@contextmanager
def write_transaction(pool: Database, lock: int) -> Iterator[psycopg.Connection]:
    """One write transaction holding the store's writer lock until it commits."""
    with connection(pool) as db:
        db.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        yield db


@contextmanager
def read_transaction(pool: Database, consistent: bool = False) -> Iterator[psycopg.Connection]:
    """A read; `consistent`: every statement inside sees one snapshot (REPEATABLE READ)."""
    with connection(pool) as db:
        if consistent:
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield db


def migrate(
    pool: Database,
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
        _check_encoding(db, where)
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


def _check_encoding(db: psycopg.Connection, where: str) -> None:
    """UTF8 only: in SQL_ASCII the server checks no text and the driver reads every text
    column back as bytes, so nothing stored there would read back as it was written."""
    row = db.execute("SHOW server_encoding").fetchone()
    encoding = row[0] if row else "unknown"
    if isinstance(encoding, bytes):  # SQL_ASCII's own answer comes back undecoded
        encoding = encoding.decode("ascii", "replace")
    if encoding != "UTF8":
        raise ConfigError(
            f"{where}: the database's encoding is {encoding}; hashmatch needs UTF8"
            " (createdb -E UTF8 -T template0 NAME)"
        )


def open_migrated(
    url: str,
    lock: int,
    what: str,
    migrations: Sequence[Sequence[str]],
    *,
    table: str = "schema_version",
    pool_size: int = 2,
    after: Callable[[psycopg.Connection, int], None] | None = None,
) -> Database:
    """A store's pool, its schema migrated first (closed again if that fails)."""
    database = open_pool(url, pool_size)
    try:
        migrate(database, lock, what, migrations, after, table)
    except BaseException:
        database.close()
        raise
    return database
