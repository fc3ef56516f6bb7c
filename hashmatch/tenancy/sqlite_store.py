"""TenantStore in its own SQLite file beside the bank database (tenants.sqlite3).

A separate file keeps credentials apart from the banks (backups, permissions) and leaves
the bank schema alone. WAL, one connection behind a lock, versioned append-only
migrations, as the bank store does.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from hashmatch.errors import AlreadyExists, NotFound
from hashmatch.storage.sqlite import migrate, write_transaction
from hashmatch.tenancy import records
from hashmatch.tenancy.clock import now_iso
from hashmatch.tenancy.model import ApiKey, Tenant, TenantState
from hashmatch.tenancy.store import WouldBlock

SCHEMA_VERSION = 1

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (),
    (
        """CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            organisation TEXT NOT NULL,
            contact TEXT NOT NULL,
            intended_use TEXT NOT NULL,
            state TEXT NOT NULL
                CHECK (state IN ('applied', 'approved', 'rejected', 'suspended')),
            reason TEXT NOT NULL DEFAULT '',
            applied_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            rate_per_second REAL NOT NULL DEFAULT 0,
            monthly_items INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants (id),
            name TEXT NOT NULL DEFAULT '',
            roles TEXT NOT NULL,
            salt BLOB NOT NULL,
            digest BLOB NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT,
            last_used_at TEXT,
            replaced_by TEXT
        )""",
        """CREATE INDEX api_keys_tenant ON api_keys (tenant_id)""",
        """CREATE TABLE usage (
            tenant_id TEXT NOT NULL,
            month TEXT NOT NULL,
            items INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, month)
        )""",
    ),
)


_KEY_AND_TENANT = (
    f"SELECT {records.KEY_AND_TENANT_COLUMNS}"
    " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = ?"
)
_ANY_KEY = "SELECT 1 FROM api_keys LIMIT 1"


class SqliteTenantStore:
    def __init__(self, path: Path | str, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        if fresh:  # credentials: readable by the server's user only
            os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        # The event loop's own reader: no busy wait (timeout 0), its own lock never waited
        # for, so a held write or a checkpoint makes it answer WouldBlock, not stall.
        self._quick_lock = threading.Lock()
        self._quick = sqlite3.connect(
            self.path, timeout=0, isolation_level=None, check_same_thread=False
        )

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    def _migrate(self) -> None:
        migrate(self._db, self._lock, self.path, MIGRATIONS)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._quick_lock:
            self._quick.close()

    def _one_now(self, sql: str, args: tuple[object, ...]) -> Any:
        if not self._quick_lock.acquire(blocking=False):
            raise WouldBlock
        try:
            return self._quick.execute(sql, args).fetchone()
        except sqlite3.Error:
            raise WouldBlock from None
        finally:
            self._quick_lock.release()

    def _one(self, sql: str, args: tuple[object, ...]) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    # -- tenants -------------------------------------------------------------------------
    def add_tenant(self, tenant: Tenant) -> Tenant:
        t = tenant
        with self._write() as db:
            if db.execute("SELECT 1 FROM tenants WHERE id = ?", (t.id,)).fetchone():
                raise AlreadyExists(f"tenant {t.id!r} already exists")
            db.execute(
                f"INSERT INTO tenants ({records.TENANT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                records.tenant_row(t),
            )
        return t

    def get_tenant(self, tenant_id: str) -> Tenant:
        row = self._one(f"SELECT {records.TENANT_COLUMNS} FROM tenants WHERE id = ?", (tenant_id,))
        if row is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return records.tenant(row)

    def list_tenants(self, state: TenantState | None = None) -> list[Tenant]:
        with self._lock:
            if state is None:
                rows = self._db.execute(f"SELECT {records.TENANT_COLUMNS} FROM tenants ORDER BY id")
            else:
                rows = self._db.execute(
                    f"SELECT {records.TENANT_COLUMNS} FROM tenants WHERE state = ? ORDER BY id",
                    (state.value,),
                )
            return [records.tenant(r) for r in rows.fetchall()]

    def set_tenant_state(self, tenant_id: str, state: TenantState, reason: str) -> Tenant:
        with self._write() as db:
            cur = db.execute(
                "UPDATE tenants SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                (state.value, reason, now_iso(), tenant_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no tenant {tenant_id!r}")
        return self.get_tenant(tenant_id)

    def set_tenant_limits(
        self, tenant_id: str, rate_per_second: float | None, monthly_items: int | None
    ) -> Tenant:
        with self._write() as db:
            t = db.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,)).fetchone()
            if t is None:
                raise NotFound(f"no tenant {tenant_id!r}")
            if rate_per_second is not None:
                db.execute(
                    "UPDATE tenants SET rate_per_second = ? WHERE id = ?",
                    (rate_per_second, tenant_id),
                )
            if monthly_items is not None:
                db.execute(
                    "UPDATE tenants SET monthly_items = ? WHERE id = ?", (monthly_items, tenant_id)
                )
        return self.get_tenant(tenant_id)

    # -- keys ----------------------------------------------------------------------------
    def add_key(self, key: ApiKey) -> None:
        k = key
        with self._write() as db:
            db.execute(
                f"INSERT INTO api_keys ({records.KEY_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                records.key_row(k),
            )

    def key_and_tenant(self, key_id: str) -> tuple[ApiKey, Tenant] | None:
        row = self._one(_KEY_AND_TENANT, (key_id,))
        return None if row is None else records.key_and_tenant(row)

    def key_and_tenant_now(self, key_id: str) -> tuple[ApiKey, Tenant] | None:
        row = self._one_now(_KEY_AND_TENANT, (key_id,))
        return None if row is None else records.key_and_tenant(row)

    def get_key(self, key_id: str) -> ApiKey:
        row = self._one(f"SELECT {records.KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        if row is None:
            raise NotFound(f"no key {key_id!r}")
        return records.key(row)

    def list_keys(self, tenant_id: str | None = None) -> list[ApiKey]:
        with self._lock:
            if tenant_id is None:
                rows = self._db.execute(
                    f"SELECT {records.KEY_COLUMNS} FROM api_keys ORDER BY tenant_id, created_at"
                )
            else:
                rows = self._db.execute(
                    f"SELECT {records.KEY_COLUMNS}"
                    " FROM api_keys WHERE tenant_id = ? ORDER BY created_at",
                    (tenant_id,),
                )
            return [records.key(r) for r in rows.fetchall()]

    def revoke_key(self, key_id: str, at: str) -> ApiKey:
        with self._write() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                (at, key_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no key {key_id!r}")
        return self.get_key(key_id)

    def retire_key(self, key_id: str, expires_at: str, replaced_by: str) -> ApiKey:
        with self._write() as db:
            cur = db.execute(
                "UPDATE api_keys SET replaced_by = ?,"
                " expires_at = CASE WHEN expires_at IS NULL OR expires_at > ? THEN ?"
                " ELSE expires_at END WHERE id = ?",
                (replaced_by, expires_at, expires_at, key_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no key {key_id!r}")
        return self.get_key(key_id)

    def touch_keys(self, last_used: dict[str, str]) -> None:
        if not last_used:
            return
        with self._write() as db:
            db.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                [(at, kid) for kid, at in last_used.items()],
            )

    def has_keys(self) -> bool:
        return self._one(_ANY_KEY, ()) is not None

    def has_keys_now(self) -> bool:
        return self._one_now(_ANY_KEY, ()) is not None

    # -- usage ---------------------------------------------------------------------------
    def add_usage(self, tenant_id: str, month: str, items: int) -> int:
        with self._write() as db:
            db.execute(
                "INSERT INTO usage (tenant_id, month, items) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant_id, month) DO UPDATE SET items = items + excluded.items",
                (tenant_id, month, items),
            )
            row = db.execute(
                "SELECT items FROM usage WHERE tenant_id = ? AND month = ?", (tenant_id, month)
            ).fetchone()
        return int(row[0])

    def charge_usage(self, tenant_id: str, month: str, items: int, cap: int) -> int | None:
        with self._write() as db:  # BEGIN IMMEDIATE: no other writer between read and add
            row = db.execute(
                "SELECT items FROM usage WHERE tenant_id = ? AND month = ?", (tenant_id, month)
            ).fetchone()
            used = int(row[0]) if row else 0
            if used + items > cap:
                return None
            db.execute(
                "INSERT INTO usage (tenant_id, month, items) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant_id, month) DO UPDATE SET items = items + excluded.items",
                (tenant_id, month, items),
            )
        return used + items

    def usage(self, tenant_id: str, month: str) -> int:
        row = self._one(
            "SELECT items FROM usage WHERE tenant_id = ? AND month = ?", (tenant_id, month)
        )
        return int(row[0]) if row else 0
