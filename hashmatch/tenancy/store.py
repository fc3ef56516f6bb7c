"""The TenantStore contract: tenants, API key records (hashes only), monthly usage."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hashmatch.tenancy.model import ApiKey, Tenant, TenantState


class WouldBlock(Exception):
    """A quick read could not answer without waiting (a lock held, the database busy):
    the caller asks again on a thread of its own."""


class TenantStore(Protocol):
    # tenants
    def add_tenant(self, tenant: Tenant) -> Tenant:
        """AlreadyExists when the id is taken."""
        ...

    def get_tenant(self, tenant_id: str) -> Tenant:
        """NotFound when there is none."""
        ...

    def list_tenants(self, state: TenantState | None = None) -> list[Tenant]: ...
    def set_tenant_state(self, tenant_id: str, state: TenantState, reason: str) -> Tenant: ...
    def set_tenant_limits(
        self, tenant_id: str, rate_per_second: float | None, monthly_items: int | None
    ) -> Tenant: ...

    # keys
    def add_key(self, key: ApiKey) -> None: ...
    def key_and_tenant(self, key_id: str) -> tuple[ApiKey, Tenant] | None:
        """One read: the key record and its tenant, or None for an unknown id."""
        ...

    def get_key(self, key_id: str) -> ApiKey:
        """NotFound when there is none."""
        ...

    def list_keys(self, tenant_id: str | None = None) -> list[ApiKey]: ...
    def revoke_key(self, key_id: str, at: str) -> ApiKey: ...
    def retire_key(self, key_id: str, expires_at: str, replaced_by: str) -> ApiKey: ...
    def touch_keys(self, last_used: dict[str, str]) -> None:
        """Record last-used times (called lazily, a batch at a time)."""
        ...

    def has_keys(self) -> bool:
        """Whether any key was ever created (auth is then on for good)."""
        ...

    # usage
    def add_usage(self, tenant_id: str, month: str, items: int) -> int:
        """Adds to the tenant's item count of that month ('YYYY-MM'); returns the total."""
        ...

    def charge_usage(self, tenant_id: str, month: str, items: int, cap: int) -> int | None:
        """Adds items to the month's count only if the total stays within cap, atomically
        (replicas charge one shared count); the new total, or None when it would not."""
        ...

    def usage(self, tenant_id: str, month: str) -> int: ...
    def close(self) -> None: ...


@runtime_checkable
class QuickReads(Protocol):
    """Point reads that never wait, for the event loop: answered at once or WouldBlock.
    A store whose reads are a network round trip (PostgreSQL) does not offer them."""

    def key_and_tenant_now(self, key_id: str) -> tuple[ApiKey, Tenant] | None: ...
    def has_keys_now(self) -> bool: ...
