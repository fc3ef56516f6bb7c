"""What an exchange is, what its client hands over, and how upstream records become entries.

An upstream record (an NCMEC image, a StopNCII hash, a ThreatExchange descriptor) becomes one
entry per fingerprint hashmatch holds, with external id `"<upstream id>/<signal type>"`, label
its classification or category, source `"<exchange>/<member>"`. A record is always written as
"tombstones for every signal type, then the fingerprints it has now": an update that drops a
fingerprint removes it, and a deletion is the tombstones alone (the bank store's rule: of an
entry and a tombstone of its external id, the later wins).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from hashmatch.banks.model import NewEntry, SignalType, Tombstone, check_bank_name
from hashmatch.errors import BadParameter


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


FUTURE_SLACK_S = 2 * 86400  # upstream clocks run ahead a little, never by days


def plausible_time(t: int | None) -> int | None:
    """An upstream timestamp, or None where it cannot be one (negative, or days ahead of
    this clock): such a record is malformed, never a checkpoint or a lag."""
    if t is None or t < 0 or t > time.time() + FUTURE_SLACK_S:
        return None
    return t


def check_exchange_name(name: str) -> str:
    try:
        return check_bank_name(name)
    except BadParameter:
        raise BadParameter(
            f"exchange name {name!r}: 1-128 characters, letters, digits, '_', '.', ':', '-'"
        ) from None


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


@dataclass(frozen=True)
class ExchangeSettings:
    """How to reach an exchange. Credentials are never here: only the names of the
    environment variables (or secrets-file keys) that hold them."""

    environment: str = ""  # a named upstream environment (ncmec: industry, ngo, ...)
    url: str = ""  # overrides the environment's base URL (proxies, tests)
    credentials_env: tuple[str, ...] = ()
    privacy_groups: tuple[str, ...] = ()  # threatexchange
    feedback_upstream: bool = False  # tenants' verdicts go back to the exchange

    def to_json(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "url": self.url,
            "credentials_env": list(self.credentials_env),
            "privacy_groups": list(self.privacy_groups),
            "feedback_upstream": self.feedback_upstream,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ExchangeSettings:
        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            assert isinstance(value, list)
            return tuple(str(v) for v in value)

        return cls(
            environment=str(data.get("environment") or ""),
            url=str(data.get("url") or ""),
            credentials_env=strings("credentials_env"),
            privacy_groups=strings("privacy_groups"),
            feedback_upstream=bool(data.get("feedback_upstream")),
        )


@dataclass(frozen=True)
class ExchangeStatus:
    """What the last runs did (times are ISO 8601 UTC, as the stores write them)."""

    last_run_at: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    upstream_time: float | None = None  # newest upstream timestamp applied (Unix s)
    added: int = 0  # entries added or revived, over all runs
    removed: int = 0
    skipped: int = 0  # malformed upstream records passed over
    errors: int = 0  # failed runs
    feedback_pending: int = 0
    feedback_error: str | None = None  # why the newest waiting verdict failed, if it did


@dataclass(frozen=True)
class Exchange:
    name: str
    type: ExchangeType
    bank: str
    settings: ExchangeSettings
    paused: bool = False
    checkpoint: str | None = None
    created_at: str = ""
    status: ExchangeStatus = field(default_factory=ExchangeStatus)

    def to_json(self) -> dict[str, object]:
        s = self.status
        return {
            "name": self.name,
            "type": self.type.value,
            "bank": self.bank,
            **self.settings.to_json(),
            "paused": self.paused,
            "created_at": self.created_at,
            "last_run_at": s.last_run_at,
            "last_success_at": s.last_success_at,
            "last_error": s.last_error,
            "last_error_at": s.last_error_at,
            "upstream_time": s.upstream_time,
            "added": s.added,
            "removed": s.removed,
            "skipped": s.skipped,
            "errors": s.errors,
            "feedback_pending": s.feedback_pending,
            "feedback_error": s.feedback_error,
        }


@dataclass(frozen=True)
class Progress:
    """A page's checkpoint, written by the bank store in the transaction of its entries."""

    exchange: str
    checkpoint: str
    upstream_time: float | None = None


@dataclass(frozen=True)
class QueuedFeedback:
    id: int
    exchange: str
    tenant: str
    feedback: UpstreamFeedback
    attempts: int = 0
