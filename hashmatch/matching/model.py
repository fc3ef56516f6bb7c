"""Queries and matches in domain terms: what every face and the bank matcher speak.

An image is three lookups (its PDQ, with the dihedral variants when asked; its MD5; its
SHA-256); a client's hash is one. Matches name the bank and entry, never the stored value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hashmatch.banks.model import SignalType
from hashmatch.errors import BadParameter
from hashmatch.hashing.signature import DIHEDRAL_NAMES, Signature

# The integration sandbox's public bank (hashmatch.core.sandbox fills it; PhotoDNA's "Test"
# source): the `test` request option matches against it alone.
SANDBOX_BANK = "Test"
MAX_VARIANTS = len(DIHEDRAL_NAMES)


@dataclass(frozen=True, slots=True)
class MatchOptions:
    banks: tuple[str, ...] = ()  # empty: every bank the caller may see
    max_distance: int | None = None  # PDQ threshold override for this request
    dihedral: bool = False
    # Leave the caller's own hashes out of the answer (MatchImages / MatchStream).
    omit_signatures: bool = False

    def __post_init__(self) -> None:
        if self.max_distance is not None and not 0 <= self.max_distance <= 256:
            raise BadParameter(f"max_distance must be in 0..256, got {self.max_distance}")


@dataclass(frozen=True, slots=True)
class HashQuery:
    """One query: a signal type and its value; for PDQ optionally all 8 dihedral hashes
    (the original first) and the hash's quality."""

    signal_type: SignalType
    values: tuple[bytes, ...]
    quality: int | None = None

    def __post_init__(self) -> None:
        most = MAX_VARIANTS if self.signal_type is SignalType.PDQ else 1
        if not 1 <= len(self.values) <= most:
            raise BadParameter(f"a {self.signal_type.value} query has 1 to {most} values")
        if any(len(v) != self.signal_type.nbytes for v in self.values):
            raise BadParameter(
                f"a {self.signal_type.value} value is {self.signal_type.nbytes} bytes"
            )


@dataclass(frozen=True, slots=True)
class Suppressor:
    bank: str
    entry_id: int
    distance: int


@dataclass(frozen=True, slots=True)
class Match:
    bank: str
    entry_id: int
    signal_type: SignalType
    distance: int
    label: str | None
    dihedral: int = 0  # which of the query's hashes matched (0: the original)
    suppressed_by: Suppressor | None = None
    source: str | None = None  # the entry's source (the sandbox's say "Test")

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "bank": self.bank,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type.value,
            "distance": self.distance,
            "label": self.label,
        }
        if self.source is not None:
            out["source"] = self.source
        if self.dihedral:
            out["dihedral"] = self.dihedral
        if self.suppressed_by is not None:
            s = self.suppressed_by
            out["suppressed_by"] = {"bank": s.bank, "entry_id": s.entry_id, "distance": s.distance}
        return out


@dataclass(frozen=True, slots=True)
class MatchResult:
    matches: tuple[Match, ...]
    # Matches past the matcher's max_matches, left out (the farthest, in the order shown),
    # and whether any of those was unsuppressed (the item still matches).
    left_out: int = 0
    left_out_match: bool = False

    @property
    def is_match(self) -> bool:
        return self.left_out_match or any(m.suppressed_by is None for m in self.matches)


NO_MATCH = MatchResult(())


def image_queries(signature: Signature, dihedral: bool = False) -> list[HashQuery]:
    """The lookups of one hashed image: its PDQ (with the 8 dihedral hashes when the
    engine computed them and `dihedral`, and its quality), its MD5 and its SHA-256."""
    pdq = (signature.dihedral if dihedral else None) or (signature.pdq,)
    return [
        HashQuery(SignalType.PDQ, tuple(h.value for h in pdq), signature.quality),
        HashQuery(SignalType.MD5, (signature.md5,)),
        HashQuery(SignalType.SHA256, (signature.sha256,)),
    ]


def merge_results(results: Sequence[MatchResult]) -> MatchResult:
    """One image's results (one per lookup) as one, closest first."""
    matches = [m for r in results for m in r.matches]
    matches.sort(key=lambda m: (m.distance, m.bank, m.entry_id))
    left_out = sum(r.left_out for r in results)
    return MatchResult(tuple(matches), left_out, any(r.left_out_match for r in results))
