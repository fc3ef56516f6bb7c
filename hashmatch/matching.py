"""Matching in domain terms: what a query is, what a match is, and the Matcher contract
that the bank index fulfils. Transports (gRPC, CLI) convert to and from these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hashmatch.errors import BadParameter
from hashmatch.signatures import Signature


@dataclass(frozen=True, slots=True)
class MatchOptions:
    banks: tuple[str, ...] = ()  # empty: every bank the caller may see
    max_distance: int | None = None  # only ever stricter than a bank's threshold
    dihedral: bool = False

    def __post_init__(self) -> None:
        if self.max_distance is not None and not 0 <= self.max_distance <= 256:
            raise BadParameter(f"max_distance must be in 0..256, got {self.max_distance}")


@dataclass(frozen=True, slots=True)
class MatchQuery:
    """One thing to look up: any of its signals may be absent."""

    pdq: bytes | None = None
    quality: int | None = None
    md5: bytes | None = None
    sha256: bytes | None = None
    pdq_dihedral: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, sig: Signature) -> MatchQuery:
        variants = tuple(h.value for h in sig.dihedral) if sig.dihedral else ()
        return cls(sig.pdq.value, sig.quality, sig.md5, sig.sha256, variants)


@dataclass(frozen=True, slots=True)
class Match:
    bank: str
    entry_id: int
    signal_type: str
    distance: int
    label: str = ""
    source: str = ""
    variant: str = "original"
    # The stored value: only filled for the bank's owner (lists must not leak).
    value: bytes = b""
    suppressed_by: int | None = None


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: tuple[Match, ...] = field(default_factory=tuple)

    @property
    def is_match(self) -> bool:
        return any(m.suppressed_by is None for m in self.matches)


class Matcher(Protocol):
    def match(
        self, queries: Sequence[MatchQuery], options: MatchOptions, tenant: str = ""
    ) -> list[MatchResult]:
        """One result per query, in order; batch-first."""
        ...
