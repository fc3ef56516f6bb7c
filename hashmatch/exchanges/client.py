"""The one interface every exchange client implements (ncmec.py, stopncii.py,
threatexchange.py); sync.py drives it and knows nothing of the wire."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from hashmatch.exchanges.model import Page, UpstreamFeedback


class ExchangeClient(Protocol):
    skipped: int  # malformed upstream records passed over so far

    def fetch(self, checkpoint: str | None) -> Iterator[Page]:
        """Pages of changes after `checkpoint` (None: everything from the beginning), each
        bounded (about 1,000 upstream records), ending when upstream has nothing newer.
        Each page's checkpoint resumes after it. Raises UpstreamError."""
        ...

    def send_feedback(self, items: Sequence[UpstreamFeedback]) -> None:
        """Sends verdicts upstream where the exchange takes them (raises UpstreamError;
        an exchange that takes none does nothing)."""
        ...

    def close(self) -> None: ...
