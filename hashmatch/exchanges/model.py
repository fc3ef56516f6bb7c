"""What an exchange is, what its client hands over, and how upstream records become entries.

An upstream record (an NCMEC image, a StopNCII hash, a ThreatExchange descriptor) becomes one
entry per fingerprint hashmatch holds, with external id `"<upstream id>/<signal type>"`, label
its classification or category, source `"<exchange>/<member>"`. A record is always written as
"tombstones for every signal type, then the fingerprints it has now": an update that drops a
fingerprint removes it, and a deletion is the tombstones alone (the bank store's rule: of an
entry and a tombstone of its external id, the later wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from hashmatch.banks.model import NewEntry, SignalType, Tombstone


class ExchangeType(StrEnum):
    NCMEC = "ncmec"
    STOPNCII = "stopncii"
    THREATEXCHANGE = "threatexchange"


class Verdict(StrEnum):
    FALSE_POSITIVE = "false_positive"
    TRUE_POSITIVE = "true_positive"


@dataclass(frozen=True)
class Page:
    """A bounded batch from upstream, applied in ONE transaction together with `checkpoint`,
    so a sync killed at any moment resumes exactly after the last committed page."""

    events: list[NewEntry | Tombstone]
    checkpoint: str  # opaque to everything but the client (JSON text): where to resume
    upstream_time: float | None = None  # newest upstream timestamp (Unix s) in the page


@dataclass(frozen=True)
class UpstreamFeedback:
    """A tenant's verdict on a match, as the exchange hears it: the upstream record and
    fingerprint, never anything of the platform's content."""

    upstream_id: str
    signal_type: SignalType
    value: bytes
    verdict: Verdict


class UpstreamError(Exception):
    """An exchange call failed. `retry`: trying again later can help (429, 5xx, network)."""

    def __init__(self, message: str, *, retry: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retry, self.status = retry, status


@dataclass(frozen=True, repr=False)
class Credentials:
    """Secret values, in the order the exchange type names them; never printed."""

    values: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return f"Credentials(<{len(self.values)} hidden>)"


def external_id(upstream_id: str, signal_type: SignalType) -> str:
    return f"{upstream_id}/{signal_type.value}"


def upstream_id_of(external: str) -> str:
    return external.rsplit("/", 1)[0]


def source_of(exchange: str, member: str | None) -> str:
    return f"{exchange}/{member}" if member else exchange


def record_events(
    upstream_id: str,
    fingerprints: Iterable[tuple[SignalType, bytes]],
    *,
    label: str | None,
    source: str,
) -> list[NewEntry | Tombstone]:
    """An upstream record as it is now (no fingerprints: deleted upstream)."""
    events: list[NewEntry | Tombstone] = [
        Tombstone(external_id(upstream_id, st)) for st in SignalType
    ]
    for st, value in fingerprints:
        events.append(NewEntry(st, value, label, external_id(upstream_id, st), source))
    return events
