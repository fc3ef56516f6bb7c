"""The data dir: every file hashmatch keeps, named once, and the stores opened over them.

Every command and the server open their stores here, so another database has one place to
plug into. Imports of the stores are deferred to the methods that open them: a command
that needs one store does not load the others (or the index's compiled kernels).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hashmatch.errors import ConfigError

if TYPE_CHECKING:
    from hashmatch.audit.log import AuditFiles, AuditLog
    from hashmatch.audit.tables import AuditTables
    from hashmatch.banks.store import BankStore
    from hashmatch.config import ReportsConfig
    from hashmatch.reports.outbox import OutboxTables, ReportOutbox
    from hashmatch.storage.feedback_store import FeedbackStore
    from hashmatch.storage.flood_store import FloodStore
    from hashmatch.tenancy.store import TenantStore
    from hashmatch.video.store import VideoStore

DEFAULT_DATA_DIR = Path("hashmatch-data")


@dataclass(frozen=True)
class DataDir:
    """The folder and every file in it are the service user's alone (0700 / 0600),
    whichever command creates them first: they hold hashes, key digests, the audit and
    reporters' details."""

    root: Path
    # A PostgreSQL URL: banks, video entries, tenants, keys and the report outbox there;
    # the rest still here.
    database_url: str = ""
    # The audit chain's key, where not the data dir's audit.key: on PostgreSQL every
    # replica appends to one chain, so each is given the same key (a mounted secret).
    audit_key_file: Path | None = None

    def private(self, path: Path) -> Path:
        """`path` in the data dir, made (or tightened) private before anything opens it;
        SQLite gives its -wal and -shm files the database file's mode."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        # Created only if absent: closing a descriptor of a database this process has
        # open would drop SQLite's POSIX locks on it (and leave its reader stale).
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        for side in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if side.exists():
                os.chmod(side, 0o600)
        return path

    # -- the files -----------------------------------------------------------------------
    @property
    def banks(self) -> Path:
        """Banks, entries, their change log and video entries."""
        return self.root / "banks.sqlite3"

    @property
    def snapshot(self) -> Path:
        """The bank matcher's index snapshot (a cache: rebuilt from the banks if absent)."""
        return self.root / "index.snapshot"

    @property
    def tenants(self) -> Path:
        """Tenants and API key hashes, apart from the banks."""
        return self.root / "tenants.sqlite3"

    @property
    def operator_key(self) -> Path:
        """Written by `hashmatch admin bootstrap` (mode 0600)."""
        return self.root / "operator.key"

    @property
    def audit(self) -> Path:
        return self.root / "audit.sqlite3"

    @property
    def audit_files(self) -> AuditFiles:
        """The audit chain's key (apart from the database, so the database alone cannot
        be re-chained) and the head this process signed last (audit.head)."""
        from hashmatch.audit.log import AuditFiles

        key = self.audit_key_file or self.audit.with_suffix(".key")
        return AuditFiles(key, self.audit.with_suffix(".head"))

    @property
    def reports(self) -> Path:
        """The report outbox (metadata only, never file content)."""
        return self.root / "reports.sqlite3"

    @property
    def feedback(self) -> Path:
        return self.root / "feedback.sqlite3"

    @property
    def flood(self) -> Path:
        return self.root / "flood.sqlite3"

    # -- the stores ----------------------------------------------------------------------
    def open_banks(self) -> BankStore:
        if self.database_url:
            from hashmatch.banks.postgres_store import PostgresBankStore

            return PostgresBankStore(self.database_url)
        from hashmatch.banks.sqlite_store import SqliteBankStore

        return SqliteBankStore(self.private(self.banks))

    def open_videos(self, banks: BankStore) -> VideoStore:
        from hashmatch.video.store import VideoStore

        if self.database_url:
            from hashmatch.video.postgres_tables import PostgresVideoTables

            return VideoStore(PostgresVideoTables(self.database_url), banks)
        from hashmatch.video.sqlite_tables import SqliteVideoTables

        return VideoStore(SqliteVideoTables(self.private(self.banks)), banks)

    def open_tenants(self) -> TenantStore:
        if self.database_url:
            from hashmatch.tenancy.postgres_store import PostgresTenantStore

            return PostgresTenantStore(self.database_url)
        from hashmatch.tenancy.sqlite_store import SqliteTenantStore

        return SqliteTenantStore(self.private(self.tenants))

    def open_audit_tables(self) -> AuditTables:
        if self.database_url:
            from hashmatch.audit.postgres_tables import PostgresAuditTables

            return PostgresAuditTables(self.database_url)
        from hashmatch.audit.sqlite_tables import SqliteAuditTables

        return SqliteAuditTables(self.private(self.audit))

    def open_audit(self) -> AuditLog:
        from hashmatch.audit.log import AuditLog

        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.audit_key_file is not None and not self.audit_key_file.exists():
            # A key named is one that was shared: a replica never makes a key of its own.
            raise ConfigError(f"audit_key_file {self.audit_key_file} does not exist")
        tables = self.open_audit_tables()
        try:
            return AuditLog(tables, self.audit_files)
        except BaseException:
            tables.close()
            raise

    def open_outbox(self, config: ReportsConfig) -> ReportOutbox:
        from hashmatch.reports.cybertip import client_factory
        from hashmatch.reports.outbox import ReportOutbox, RetryPolicy

        retry = RetryPolicy(config.attempts, config.backoff_s)
        return ReportOutbox(self.open_outbox_tables(), client_factory(config), retry)

    def open_outbox_tables(self) -> OutboxTables:
        if self.database_url:
            from hashmatch.reports.postgres_tables import PostgresOutboxTables

            return PostgresOutboxTables(self.database_url)
        from hashmatch.reports.sqlite_tables import SqliteOutboxTables

        return SqliteOutboxTables(self.private(self.reports))

    def open_feedback(self) -> FeedbackStore:
        from hashmatch.storage.feedback_store import SqliteFeedbackStore

        if self.database_url:
            from hashmatch.storage.postgres_feedback import PostgresFeedbackStore

            return PostgresFeedbackStore(self.database_url)
        return SqliteFeedbackStore(self.private(self.feedback))

    def open_flood(self) -> FloodStore:
        from hashmatch.storage.flood_store import SqliteFloodStore

        if self.database_url:
            from hashmatch.storage.postgres_flood import PostgresFloodStore

            return PostgresFloodStore(self.database_url)
        return SqliteFloodStore(self.private(self.flood))
