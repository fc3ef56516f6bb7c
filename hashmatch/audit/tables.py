"""Where the audit chain is kept: the AuditTables contract, SQLite's or PostgreSQL's.

The chain's rules (links, MACs, the signed head, what verify checks) live in log.py once;
a store only keeps rows, appends under its writer lock and reads one consistent view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

GENESIS = "0" * 64

# (seq, ts, record, prev_hash, hash)
Row = tuple[int, str, str, str, str]
# A signed point of the chain: (seq, hash, mac).
Signed = tuple[int, str, str]
# Given the last (seq, hash), the rows that follow it.
Links = Callable[[int, str], list[Row]]
# The MAC of a head or an anchor at (seq, hash).
Signer = Callable[[int, str], str]


@dataclass
class ChainView:
    """What verify reads, as of one moment."""

    anchor: Signed | None
    keyed_from: int
    head: Signed | None  # the head kept with the rows (shared stores), else None
    rows: Iterator[Row]


class AuditTables(Protocol):
    # Several processes write one chain (replicas): the signed head is kept in the
    # database, in the same transaction as the rows it names.
    shared: bool

    def append(self, links: Links, sign_head: Signer) -> tuple[int, str]:
        """Under the writer lock: the rows `links` gives for the chain's end, appended;
        returns the new end."""
        ...

    def claim_key(self, fingerprint: str) -> str:
        """The fingerprint of the key that signs this chain (this one, if none yet)."""
        ...

    def view(self) -> AbstractContextManager[ChainView]: ...

    def prune(self, cutoff: str, sign_anchor: Signer) -> int:
        """Drops rows older than `cutoff`; the last dropped becomes the signed anchor."""
        ...

    def records(self, start: str, end: str) -> Iterator[tuple[str, str]]:
        """(ts, canonical record) in order, start <= ts < end."""
        ...

    def close(self) -> None: ...
