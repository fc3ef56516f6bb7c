"""Usage reports per tenant, read from the audit trail (the one record of every call)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hashmatch.audit.tables import AuditTables

# Every face's matching calls (the console's debugger is charged like any other).
IMAGE_RPCS = {"MatchImages", "MatchStream", "HashImages", "REST:Match", "Console:MatchImages"}
HASH_RPCS = {"MatchHashes", "REST:MatchHash", "Console:MatchHashes"}
# Their items are frames (hashed here, or a client's vPDQ), as their quota is charged.
VIDEO_RPCS = {"MatchVideo", "MatchVideoHashes", "HashVideo"}


@dataclass
class TenantUsage:
    tenant: str
    calls: int = 0
    images: int = 0
    hashes: int = 0
    video_frames: int = 0
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
            "video_frames": self.video_frames,
            "matched_items": self.matched_items,
            "matches_by_bank": dict(sorted(self.matches_by_bank.items())),
            "reports_filed": self.reports_filed,
            "errors": self.errors,
        }


def tenant_records(
    tables: AuditTables, start: str, end: str, tenant: str | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(timestamp, record) in order; with `tenant`, its records only, the others passed
    over before parsing (a canonical record names its tenant as "tenant":"<id>")."""
    mark = f'"tenant":{json.dumps(tenant)}' if tenant is not None else None
    for ts, raw in tables.records(start, end):
        if mark is not None and mark not in raw:
            continue
        rec = json.loads(raw)
        if tenant is None or rec.get("tenant", "") == tenant:
            yield ts, rec


def usage(
    tables: AuditTables,
    start: str,
    end: str,
    filed: Mapping[str, int] | None = None,
    tenant: str | None = None,
) -> list[TenantUsage]:
    """Calls from the audit trail (every tenant's, or `tenant`'s); `filed`: reports
    finished per tenant in the same span (the outbox's filed_by_tenant)."""
    per: dict[str, TenantUsage] = defaultdict(lambda: TenantUsage(""))
    for _, rec in tenant_records(tables, start, end, tenant):
        tenant_id = rec.get("tenant", "")
        u = per[tenant_id]
        u.tenant = tenant_id
        u.calls += 1
        if rec["rpc"] in IMAGE_RPCS:
            u.images += rec["items"]
        elif rec["rpc"] in HASH_RPCS:
            u.hashes += rec["items"]
        elif rec["rpc"] in VIDEO_RPCS:
            u.video_frames += rec["items"]
        u.matched_items += rec.get("matched_items", 0)
        u.matches_by_bank.update(rec.get("matches_by_bank", {}))
        u.errors += sum(n for code, n in rec.get("codes", {}).items() if code != "OK")
    for tenant_id, n in (filed or {}).items():
        if tenant is None or tenant_id == tenant:
            per[tenant_id].tenant = tenant_id
            per[tenant_id].reports_filed = n
    return sorted(per.values(), key=lambda u: u.tenant)


def matches_per_day(
    tables: AuditTables, start: str, end: str, tenant: str | None = None
) -> dict[str, Counter[str]]:
    """Matched items per bank per day (UTC, 'YYYY-MM-DD'), in one pass over the span."""
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for ts, rec in tenant_records(tables, start, end, tenant):
        days[ts[:10]].update(rec.get("matches_by_bank", {}))
    return days


def to_csv(rows: list[TenantUsage]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "tenant",
            "calls",
            "images",
            "hashes",
            "video_frames",
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
                    u.video_frames,
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
