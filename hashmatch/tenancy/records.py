"""What both tenant stores (SQLite, PostgreSQL) read and write the same way: their columns,
rows to model objects and model objects to rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hashmatch.tenancy.model import ApiKey, Role, Tenant, TenantState

TENANT_COLUMNS = (
    "id, organisation, contact, intended_use, state, reason, applied_at, updated_at,"
    " rate_per_second, monthly_items"
)
KEY_COLUMNS = (
    "id, tenant_id, name, roles, salt, digest, created_at, expires_at, revoked_at,"
    " last_used_at, replaced_by"
)
# A key's columns then its tenant's, for one joined read (k: api_keys, t: tenants).
KEY_AND_TENANT_COLUMNS = ", ".join(
    [f"k.{c.strip()}" for c in KEY_COLUMNS.split(",")]
    + [f"t.{c.strip()}" for c in TENANT_COLUMNS.split(",")]
)
_KEY_WIDTH = len(KEY_COLUMNS.split(","))


def tenant(r: Sequence[Any]) -> Tenant:
    return Tenant(
        id=str(r[0]),
        organisation=str(r[1]),
        contact=str(r[2]),
        intended_use=str(r[3]),
        state=TenantState(r[4]),
        reason=str(r[5]),
        applied_at=str(r[6]),
        updated_at=str(r[7]),
        rate_per_second=float(r[8]),
        monthly_items=int(r[9]),
    )


def key(r: Sequence[Any]) -> ApiKey:
    return ApiKey(
        id=str(r[0]),
        tenant_id=str(r[1]),
        name=str(r[2]),
        roles=frozenset(Role(x) for x in str(r[3]).split(",") if x),
        salt=bytes(r[4]),
        digest=bytes(r[5]),
        created_at=str(r[6]),
        expires_at=r[7],
        revoked_at=r[8],
        last_used_at=r[9],
        replaced_by=r[10],
    )


def key_and_tenant(r: Sequence[Any]) -> tuple[ApiKey, Tenant]:
    """A row of KEY_AND_TENANT_COLUMNS."""
    return key(r[:_KEY_WIDTH]), tenant(r[_KEY_WIDTH:])


def tenant_row(t: Tenant) -> tuple[object, ...]:
    """A tenant as TENANT_COLUMNS values."""
    return (t.id, t.organisation, t.contact, t.intended_use, t.state.value, t.reason,
            t.applied_at, t.updated_at, t.rate_per_second, t.monthly_items)  # fmt: skip


def key_row(k: ApiKey) -> tuple[object, ...]:
    """A key as KEY_COLUMNS values (roles as a sorted, comma-separated list)."""
    return (k.id, k.tenant_id, k.name, ",".join(sorted(r.value for r in k.roles)), k.salt,
            k.digest, k.created_at, k.expires_at, k.revoked_at, k.last_used_at,
            k.replaced_by)  # fmt: skip
