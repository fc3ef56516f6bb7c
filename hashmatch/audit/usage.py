"""Usage reports per tenant, read from the audit trail (the one record of every call)."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hashmatch.audit.log import records
from hashmatch.audit.tables import AuditTables

# Every face's matching calls (the console's debugger is charged like any other).
IMAGE_RPCS = {"MatchImages", "MatchStream", "HashImages", "REST:Match", "Console:MatchImages"}
HASH_RPCS = {"MatchHashes", "REST:MatchHash", "Console:MatchHashes"}


@dataclass
class TenantUsage:
    tenant: str
    calls: int = 0
    images: int = 0
    hashes: int = 0
    matched_items: int = 0
    matches_by_bank: Counter[str] = field(default_factory=Counter)
    reports_filed: int = 0
    errors: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "calls": self.calls,
            "images": self.images,
            "hashes": self.hashes,
            "matched_items": self.matched_items,
            "matches_by_bank": dict(sorted(self.matches_by_bank.items())),
            "reports_filed": self.reports_filed,
            "errors": self.errors,
        }


def usage(
    tables: AuditTables, start: str, end: str, filed: Mapping[str, int] | None = None
) -> list[TenantUsage]:
    """Calls from the audit trail; `filed`: reports finished per tenant in the same span
    (the outbox's filed_by_tenant)."""
    per: dict[str, TenantUsage] = defaultdict(lambda: TenantUsage(""))
    for _, rec in records(tables, start, end):
        tenant = rec.get("tenant", "")
        u = per[tenant]
        u.tenant = tenant
        u.calls += 1
        if rec["rpc"] in IMAGE_RPCS:
            u.images += rec["items"]
        elif rec["rpc"] in HASH_RPCS:
            u.hashes += rec["items"]
        u.matched_items += rec.get("matched_items", 0)
        u.matches_by_bank.update(rec.get("matches_by_bank", {}))
        u.errors += sum(n for code, n in rec.get("codes", {}).items() if code != "OK")
    for tenant, n in (filed or {}).items():
        per[tenant].tenant = tenant
        per[tenant].reports_filed = n
    return sorted(per.values(), key=lambda u: u.tenant)


def to_csv(rows: list[TenantUsage]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "tenant",
            "calls",
            "images",
            "hashes",
            "matched_items",
            "reports_filed",
            "errors",
            "bank",
            "bank_matches",
        ]
    )
    for u in rows:
        banks = sorted(u.matches_by_bank.items()) or [("", 0)]
        for bank, n in banks:
            w.writerow(
                [
                    u.tenant,
                    u.calls,
                    u.images,
                    u.hashes,
                    u.matched_items,
                    u.reports_filed,
                    u.errors,
                    bank,
                    n,
                ]
            )
    return out.getvalue()


def aggregate_for_ncmec(rows: list[TenantUsage], start: str, end: str) -> dict[str, Any]:
    """The aggregate count a PhotoDNA-style service sends NCMEC: matches per customer and
    list for the period, no content and no hashes."""
    return {
        "period": {"from": start, "to": end},
        "customers": [
            {"customer": u.tenant or "(operator)", "images_checked": u.images + u.hashes,
             "matched": u.matched_items, "matches_by_list": dict(sorted(u.matches_by_bank.items())),
             "reports_filed": u.reports_filed}
            for u in rows
        ],
    }  # fmt: skip
