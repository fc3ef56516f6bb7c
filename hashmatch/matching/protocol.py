"""The matching contract: the local bank matcher and a remote server's MatchHashes
(hashmatch.client.remote_matcher) both keep it, so a bulk scan matches either way."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from hashmatch.matching.model import HashQuery, MatchResult


class Matcher(Protocol):
    def match(
        self,
        queries: Sequence[HashQuery],
        tenant: str | None = None,
        banks: Sequence[str] = (),
        threshold: int | None = None,
        *,
        stricter_only: bool = False,
        suppressed: Collection[int] = (),
    ) -> list[MatchResult]:
        """One result per query, in order. tenant None: every bank (the operator's local
        view); threshold overrides the banks' PDQ thresholds (with stricter_only, as for
        API callers, it can only lower them; for a bank the caller does not own, rounded
        down as Bank.threshold_for says); banks limits the search to these names;
        matches of the `suppressed` entries (the caller's false positives) are reported
        suppressed, by "feedback"."""
        ...
