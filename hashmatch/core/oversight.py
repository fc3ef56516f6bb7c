"""The operator's oversight as every face sees it (the CLI's `quarantine`, `audit verify`,
`report usage`, `exchange`; the console): who may do each, in one place.

Flood quarantine, the audit chain and exchanges concern every tenant at once: operator
keys only. Usage is the operator's for every tenant, and a tenant admin's for its own
tenant only (another tenant's figures never show, not even its name).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from hashmatch.audit.log import AuditLog, VerifyReport, verify
from hashmatch.audit.usage import TenantUsage, aggregate_for_ncmec, matches_per_day, usage
from hashmatch.core.exchanges import ExchangeOps
from hashmatch.errors import BadParameter, NotFound
from hashmatch.exchanges.model import Exchange
from hashmatch.exchanges.sync import SyncReport
from hashmatch.reports.outbox import ReportOutbox
from hashmatch.storage.flood_store import FloodStore
from hashmatch.tenancy.model import Principal, Role

if TYPE_CHECKING:
    from hashmatch.core.runtime import Runtime

MAX_DAYS = 92  # the chart's span: one audit read per day


@dataclass(frozen=True)
class DailyMatches:
    """Matches per bank per day, for a chart."""

    days: list[str]
    banks: list[str]
    counts: dict[str, Counter[str]]  # day -> bank -> matched items

    @property
    def peak(self) -> int:
        return max((n for c in self.counts.values() for n in c.values()), default=0)


def check_span(start: str, end: str) -> tuple[date, date]:
    try:
        a, b = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise BadParameter("dates are YYYY-MM-DD") from None
    if not a < b or (b - a).days > MAX_DAYS:
        raise BadParameter(f"from must be before to, at most {MAX_DAYS} days apart")
    return a, b


class Oversight:
    """Blocking (store and audit reads): faces run these in threads."""

    @classmethod
    def of(cls, runtime: Runtime) -> Oversight:
        return cls(runtime.audit, runtime.flood_store, runtime.outbox, runtime.exchanges)

    def __init__(
        self, audit: AuditLog, flood: FloodStore, outbox: ReportOutbox, exchanges: ExchangeOps
    ) -> None:
        # The server's own audit tables: read here, never opened a second time.
        self.audit, self.flood, self.outbox, self.exchanges = audit, flood, outbox, exchanges

    # -- flood quarantine ----------------------------------------------------------------
    def quarantined(self, who: Principal) -> list[dict[str, Any]]:
        who.require(Role.OPERATOR)
        return self.flood.listing()

    def release(self, who: Principal, entry_id: int) -> bool:
        """Reviewed: the entry's matches count again (every server within a second)."""
        who.require(Role.OPERATOR)
        return self.flood.release(entry_id)

    # -- audit ---------------------------------------------------------------------------
    def verify_audit(self, who: Principal) -> VerifyReport:
        who.require(Role.OPERATOR)
        return verify(self.audit.tables, self.audit.files)

    # -- usage ---------------------------------------------------------------------------
    def _scope(self, who: Principal, tenant_id: str = "") -> str | None:
        """Whose usage: None, every tenant (the operator asking for no one in particular);
        else one tenant, a tenant admin's own (another's looks missing, as in tenancy)."""
        if Role.OPERATOR in who.roles:
            return tenant_id or None
        who.require(Role.TENANT_ADMIN)
        if tenant_id and tenant_id != who.tenant_id:
            raise NotFound(f"no tenant {tenant_id!r}")
        return who.tenant_id

    def usage(self, who: Principal, start: str, end: str, tenant_id: str = "") -> list[TenantUsage]:
        check_span(start, end)
        scope = self._scope(who, tenant_id)
        filed = self.outbox.tables.filed_by_tenant(start, end)
        return usage(self.audit.tables, start, end, filed, scope)

    def ncmec_aggregate(self, who: Principal, start: str, end: str) -> dict[str, Any]:
        who.require(Role.OPERATOR)
        return aggregate_for_ncmec(self.usage(who, start, end), start, end)

    def daily_matches(
        self, who: Principal, start: str, end: str, tenant_id: str = ""
    ) -> DailyMatches:
        a, b = check_span(start, end)
        scope = self._scope(who, tenant_id)
        per_day = matches_per_day(self.audit.tables, a.isoformat(), b.isoformat(), scope)
        days = [(a + timedelta(days=k)).isoformat() for k in range((b - a).days)]
        counts = {d: per_day.get(d, Counter()) for d in days}
        banks = {bank for c in counts.values() for bank in c}
        return DailyMatches(days, sorted(banks), counts)

    # -- exchanges -----------------------------------------------------------------------
    def exchange_list(self, who: Principal) -> list[Exchange]:
        who.require(Role.OPERATOR)
        return self.exchanges.list()

    def sync_now(self, who: Principal, name: str) -> SyncReport:
        who.require(Role.OPERATOR)
        return self.exchanges.sync(name)
