"""What the service answers for one item, before any face shapes it (proto, PhotoDNA
JSON, CLI lines): its ids, its hashing result or typed error, and its matches."""

from __future__ import annotations

from dataclasses import dataclass

from hashmatch.errors import ItemError
from hashmatch.hashing.signature import Signature
from hashmatch.matching.model import MatchResult


@dataclass(frozen=True, slots=True)
class Outcome:
    content_id: str
    tracking_id: str
    # The image's hashes; None for a client's hash (nothing was hashed), or the item's error.
    result: Signature | ItemError | None
    matches: MatchResult | None = None  # None: not matched (a hash-only call, an error)

    @property
    def error(self) -> ItemError | None:
        return self.result if isinstance(self.result, ItemError) else None

    @property
    def signature(self) -> Signature | None:
        return self.result if isinstance(self.result, Signature) else None

    @property
    def code(self) -> str:
        """ "OK" or the item's ErrorCode value: what metrics and the audit count."""
        err = self.error
        return "OK" if err is None else err.code.value

    @property
    def is_match(self) -> bool:
        return self.matches is not None and self.matches.is_match
