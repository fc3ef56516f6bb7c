"""Matching requests in domain terms, over the bank matcher (hashmatch.matching.bank_matcher).

An image is three lookups (its PDQ, with the dihedral variants when asked; its MD5; its
SHA-256); the transports deal in images and client hashes, this module in queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hashmatch.errors import BadParameter
from hashmatch.hashing.signature import Signature
from hashmatch.matching.bank_matcher import HashQuery, MatchResult, queries_for

# The integration sandbox's public bank (hashmatch.core.sandbox fills it; PhotoDNA's "Test"
# source): the `test` request option matches against it alone.
SANDBOX_BANK = "Test"


@dataclass(frozen=True, slots=True)
class MatchOptions:
    banks: tuple[str, ...] = ()  # empty: every bank the caller may see
    max_distance: int | None = None  # PDQ threshold override for this request
    dihedral: bool = False

    def __post_init__(self) -> None:
        if self.max_distance is not None and not 0 <= self.max_distance <= 256:
            raise BadParameter(f"max_distance must be in 0..256, got {self.max_distance}")


class Matcher(Protocol):
    def match(
        self,
        queries: Sequence[HashQuery],
        tenant: str | None = None,
        banks: Sequence[str] = (),
        threshold: int | None = None,
        *,
        stricter_only: bool = False,
    ) -> list[MatchResult]: ...


def image_queries(sig: Signature, dihedral: bool) -> list[HashQuery]:
    """The lookups of one hashed image: PDQ (all 8 variants only if asked), MD5, SHA-256."""
    return queries_for(sig, dihedral)


def merge_results(results: Sequence[MatchResult]) -> MatchResult:
    """One image's results (one per lookup) as one, closest first."""
    matches = [m for r in results for m in r.matches]
    matches.sort(key=lambda m: (m.distance, m.bank, m.entry_id))
    return MatchResult(tuple(matches))
