"""One audit record per call, built from what the call answered (counts and ids only)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc

from hashmatch.audit.log import AuditEvent, AuditLog
from hashmatch.proto import pb
from hashmatch.server.context import current_caller


@dataclass
class CallTally:
    """What one call answered so far (a stream answers many times)."""

    items: int = 0
    matched: int = 0
    by_bank: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    tracking_id: str = ""

    def add_results(self, results: Iterable[pb.ItemResult]) -> None:
        for r in results:
            self.items += 1
            self.codes[pb.ItemCode.Name(r.status.code)] += 1
            if r.is_match:
                self.matched += 1
                # Banks that matched, once per item; no hashes of the caller's content.
                self.by_bank.update({m.bank for m in r.matches if not m.HasField("suppressed_by")})
            self.tracking_id = self.tracking_id or r.tracking_id.rsplit("-", 1)[0]

    def add_photodna(self, result: dict[str, Any]) -> None:
        """One PhotoDNA-shaped result (the REST face)."""
        self.items += 1
        self.codes[str(result["Status"]["Code"])] += 1
        if result.get("IsMatch"):
            self.matched += 1
            self.by_bank.update({f["Source"] for f in result["MatchDetails"]["MatchFlags"]})
        self.tracking_id = self.tracking_id or str(result.get("TrackingId", ""))

    def add_response(self, response: Any) -> None:
        if hasattr(response, "results"):
            self.add_results(response.results)
            self.tracking_id = getattr(response, "tracking_id", "") or self.tracking_id
        elif hasattr(response, "result") and isinstance(response.result, pb.ItemResult):
            self.add_results([response.result])
        else:
            self.items += 1


def caller_of(context: grpc.aio.ServicerContext) -> tuple[str, str]:
    """(tenant, key id) of the call, as the auth interceptor resolved it ("" in open mode)."""
    who = current_caller()
    if who is None or who.open:
        return "", ""
    return who.tenant_id, who.key_id


class Auditor:
    def __init__(self, log: AuditLog | None, bank_sequence: Any = None) -> None:
        self.log = log
        self._bank_sequence = bank_sequence or (lambda: -1)

    def record(self, rpc: str, caller: tuple[str, str], tally: CallTally, status: str) -> None:
        if self.log is None:
            return
        tenant, key_id = caller
        self.log.append(
            AuditEvent(
                rpc=rpc,
                tenant=tenant,
                key_id=key_id,
                items=tally.items,
                matched_items=tally.matched,
                matches_by_bank=dict(tally.by_bank),
                codes=dict(tally.codes),
                tracking_id=tally.tracking_id,
                bank_sequence=int(self._bank_sequence()),
                status=status,
            )
        )
