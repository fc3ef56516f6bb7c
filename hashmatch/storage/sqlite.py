"""What every hashmatch SQLite store shares: write transactions and versioned migrations.

Plain SQL, one `schema_version` row, migrations applied in order in one transaction; a
database newer than the code is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hashmatch.errors import BadParameter


@contextmanager
def write_transaction(
    db: sqlite3.Connection, lock: threading.RLock
) -> Iterator[sqlite3.Connection]:
    """One write transaction; BEGIN IMMEDIATE takes the write lock up front."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


@contextmanager
def read_transaction(db: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """One read transaction: every statement inside sees the same committed state."""
    with lock:
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")


def migrate(
    db: sqlite3.Connection,
    lock: threading.RLock,
    path: Path,
    migrations: Sequence[Sequence[str]],
    after: Callable[[sqlite3.Connection, int], None] | None = None,
) -> None:
    """migrations[v] brings the schema from v - 1 to v (index 0 unused); `after(db, v)`
    runs inside the same transaction, after version v."""
    latest = len(migrations) - 1
    with write_transaction(db, lock):
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
        if version > latest:
            raise BadParameter(
                f"{path}: schema version {version} is newer than this hashmatch ({latest});"
                " upgrade hashmatch"
            )
        for v in range(version + 1, latest + 1):
            for statement in migrations[v]:
                db.execute(statement)
            if after is not None:
                after(db, v)
            db.execute("UPDATE schema_version SET version = ?", (v,))
