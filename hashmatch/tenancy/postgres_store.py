"""TenantStore on PostgreSQL: tenants, API key digests and monthly usage in the same
database as the banks (tables of their own, their own migrations), so every replica
authenticates against one set of keys and charges one usage count: a quota holds across
replicas (charge_usage is one conditional statement)."""

from __future__ import annotations

from typing import Any

from hashmatch.errors import AlreadyExists, NotFound
from hashmatch.storage.postgres import (
    connection,
    lock_id,
    open_migrated,
    read_transaction,
    write_transaction,
)
from hashmatch.tenancy import records
from hashmatch.tenancy.clock import now_iso
from hashmatch.tenancy.model import ApiKey, Tenant, TenantState

SCHEMA_VERSION = 2
LOCK = lock_id("tenants")

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
            rate_per_second DOUBLE PRECISION NOT NULL DEFAULT 0,
            monthly_items BIGINT NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants (id),
            name TEXT NOT NULL DEFAULT '',
            roles TEXT NOT NULL,
            salt BYTEA NOT NULL,
            digest BYTEA NOT NULL,
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
            items BIGINT NOT NULL,
            PRIMARY KEY (tenant_id, month)
        )""",
    ),
    (
        # Request-rate buckets shared by every replica (tenancy/limits.py leases from them).
        """CREATE TABLE rate_buckets (
            bucket TEXT PRIMARY KEY,
            tokens DOUBLE PRECISION NOT NULL,
            at TIMESTAMPTZ NOT NULL,
            granted DOUBLE PRECISION NOT NULL
        )""",
    ),
)
# Tokens there now: refilled by the database's clock (replicas' clocks may disagree).
_REFILLED = "least(%(burst)s, b.tokens + %(rate)s * extract(epoch FROM clock_timestamp() - b.at))"
_GRANT = "CASE WHEN {t} >= 1 THEN floor(least(%(want)s, {t})) ELSE 0 END"


class PostgresTenantStore:
    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = url
        self._pool = open_migrated(
            url,
            LOCK,
            "the tenants tables",
            MIGRATIONS,
            table="tenants_schema_version",
            pool_size=pool_size,
        )

    def close(self) -> None:
        self._pool.close()

    def _one(self, sql: str, args: tuple[object, ...]) -> Any:
        with read_transaction(self._pool) as db:
            return db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        with read_transaction(self._pool) as db:
            return db.execute(sql, args).fetchall()

    # -- tenants -------------------------------------------------------------------------
    def add_tenant(self, tenant: Tenant) -> Tenant:
        t = tenant
        with write_transaction(self._pool, LOCK) as db:
            cur = db.execute(
                f"INSERT INTO tenants ({records.TENANT_COLUMNS}) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                records.tenant_row(t),
            )
            if cur.rowcount == 0:
                raise AlreadyExists(f"tenant {t.id!r} already exists")
        return t

    def get_tenant(self, tenant_id: str) -> Tenant:
        row = self._one(f"SELECT {records.TENANT_COLUMNS} FROM tenants WHERE id = %s", (tenant_id,))
        if row is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return records.tenant(row)

    def list_tenants(self, state: TenantState | None = None) -> list[Tenant]:
        if state is None:
            rows = self._all(
                f'SELECT {records.TENANT_COLUMNS} FROM tenants ORDER BY id COLLATE "C"', ()
            )
        else:
            rows = self._all(
                f"SELECT {records.TENANT_COLUMNS}"
                ' FROM tenants WHERE state = %s ORDER BY id COLLATE "C"',
                (state.value,),
            )
        return [records.tenant(r) for r in rows]

    def set_tenant_state(self, tenant_id: str, state: TenantState, reason: str) -> Tenant:
        with write_transaction(self._pool, LOCK) as db:
            cur = db.execute(
                "UPDATE tenants SET state = %s, reason = %s, updated_at = %s WHERE id = %s",
                (state.value, reason, now_iso(), tenant_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no tenant {tenant_id!r}")
        return self.get_tenant(tenant_id)

    def set_tenant_limits(
        self, tenant_id: str, rate_per_second: float | None, monthly_items: int | None
    ) -> Tenant:
        with write_transaction(self._pool, LOCK) as db:
            cur = db.execute(
                "UPDATE tenants SET rate_per_second = coalesce(%s, rate_per_second),"
                " monthly_items = coalesce(%s, monthly_items) WHERE id = %s",
                (rate_per_second, monthly_items, tenant_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no tenant {tenant_id!r}")
        return self.get_tenant(tenant_id)

    # -- keys ----------------------------------------------------------------------------
    def add_key(self, key: ApiKey) -> None:
        k = key
        with write_transaction(self._pool, LOCK) as db:
            db.execute(
                f"INSERT INTO api_keys ({records.KEY_COLUMNS}) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                records.key_row(k),
            )

    def key_and_tenant(self, key_id: str) -> tuple[ApiKey, Tenant] | None:
        row = self._one(
            f"SELECT {records.KEY_AND_TENANT_COLUMNS}"
            " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
            " WHERE k.id = %s",
            (key_id,),
        )
        if row is None:
            return None
        return records.key_and_tenant(row)

    def get_key(self, key_id: str) -> ApiKey:
        row = self._one(f"SELECT {records.KEY_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
        if row is None:
            raise NotFound(f"no key {key_id!r}")
        return records.key(row)

    def list_keys(self, tenant_id: str | None = None) -> list[ApiKey]:
        if tenant_id is None:
            rows = self._all(
                f"SELECT {records.KEY_COLUMNS}"
                ' FROM api_keys ORDER BY tenant_id COLLATE "C", created_at',
                (),
            )
        else:
            rows = self._all(
                f"SELECT {records.KEY_COLUMNS}"
                " FROM api_keys WHERE tenant_id = %s ORDER BY created_at",
                (tenant_id,),
            )
        return [records.key(r) for r in rows]

    def revoke_key(self, key_id: str, at: str) -> ApiKey:
        with write_transaction(self._pool, LOCK) as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s) WHERE id = %s",
                (at, key_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no key {key_id!r}")
        return self.get_key(key_id)

    def retire_key(self, key_id: str, expires_at: str, replaced_by: str) -> ApiKey:
        with write_transaction(self._pool, LOCK) as db:
            cur = db.execute(
                "UPDATE api_keys SET replaced_by = %s,"
                " expires_at = CASE WHEN expires_at IS NULL OR expires_at > %s THEN %s"
                " ELSE expires_at END WHERE id = %s",
                (replaced_by, expires_at, expires_at, key_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no key {key_id!r}")
        return self.get_key(key_id)

    def touch_keys(self, last_used: dict[str, str]) -> None:
        if not last_used:
            return
        # Not under the writer lock: last-used times are advisory, written lazily.
        with connection(self._pool) as db, db.cursor() as cur:
            cur.executemany(
                "UPDATE api_keys SET last_used_at = %s WHERE id = %s",
                [(at, kid) for kid, at in sorted(last_used.items())],
            )

    def has_keys(self) -> bool:
        return self._one("SELECT 1 FROM api_keys LIMIT 1", ()) is not None

    # -- usage ---------------------------------------------------------------------------
    def add_usage(self, tenant_id: str, month: str, items: int) -> int:
        row = self._usage_upsert(tenant_id, month, items, None)
        assert row is not None
        return row

    def charge_usage(self, tenant_id: str, month: str, items: int, cap: int) -> int | None:
        return self._usage_upsert(tenant_id, month, items, cap)

    def _usage_upsert(self, tenant_id: str, month: str, items: int, cap: int | None) -> int | None:
        # One statement: concurrent charges from any replica serialize on the row.
        with connection(self._pool) as db:
            row = db.execute(
                "INSERT INTO usage AS u (tenant_id, month, items) SELECT %(t)s, %(m)s, %(n)s"
                " WHERE %(cap)s::bigint IS NULL OR %(n)s <= %(cap)s::bigint"
                " ON CONFLICT (tenant_id, month) DO UPDATE SET items = u.items + excluded.items"
                " WHERE %(cap)s::bigint IS NULL OR u.items + excluded.items <= %(cap)s::bigint"
                " RETURNING items",
                {"t": tenant_id, "m": month, "n": items, "cap": cap},
            ).fetchone()
        return None if row is None else int(row[0])

    def lease_tokens(
        self, bucket: str, rate: float, burst: float, want: float
    ) -> tuple[float, float]:
        """Up to `want` whole tokens from a bucket every replica shares, in one statement
        (the row lock orders replicas): (granted, seconds until one is there)."""
        grant_new, grant = _GRANT.format(t="%(burst)s"), _GRANT.format(t=_REFILLED)
        with connection(self._pool) as db:
            row = db.execute(
                "INSERT INTO rate_buckets AS b (bucket, tokens, at, granted)"
                f" VALUES (%(b)s, %(burst)s - {grant_new}, clock_timestamp(), {grant_new})"
                f" ON CONFLICT (bucket) DO UPDATE SET tokens = {_REFILLED} - {grant},"
                f" granted = {grant}, at = clock_timestamp()"
                " RETURNING granted, tokens",
                {"b": bucket, "rate": rate, "burst": burst, "want": want},
            ).fetchone()
        assert row is not None  # an upsert returns its row
        granted, left = float(row[0]), float(row[1])
        return granted, 0.0 if granted else (1.0 - left) / rate

    def usage(self, tenant_id: str, month: str) -> int:
        row = self._one(
            "SELECT items FROM usage WHERE tenant_id = %s AND month = %s", (tenant_id, month)
        )
        return int(row[0]) if row else 0
