"""A batch of items through a Matcher: the one place that flattens items into queries,
matches them in one call and puts the answers back per item (service, scan, faces)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeVar

from hashmatch.hashing.signature import Signature
from hashmatch.matching.model import (
    HashQuery,
    MatchOptions,
    MatchResult,
    image_queries,
    merge_results,
)
from hashmatch.matching.protocol import Matcher

_Skip = TypeVar("_Skip")


def match_signatures(
    matcher: Matcher,
    signatures: Sequence[Signature],
    options: MatchOptions,
    tenant: str | None,
    *,
    stricter_only: bool = True,
    suppressed: Collection[int] = (),
) -> list[MatchResult]:
    """One merged result per hashed image, in order."""
    per_image = [image_queries(sig, options.dihedral) for sig in signatures]
    flat = [q for qs in per_image for q in qs]
    if not flat:
        return [MatchResult(()) for _ in signatures]
    found = matcher.match(
        flat, tenant, options.banks, options.max_distance,
        stricter_only=stricter_only, suppressed=suppressed,
    )  # fmt: skip
    merged: list[MatchResult] = []
    pos = 0
    for qs in per_image:
        merged.append(merge_results(found[pos : pos + len(qs)]))
        pos += len(qs)
    return merged


def match_parsed(
    matcher: Matcher,
    parsed: Sequence[HashQuery | _Skip],
    options: MatchOptions,
    tenant: str | None,
    *,
    stricter_only: bool = True,
    suppressed: Collection[int] = (),
) -> list[MatchResult | _Skip]:
    """Client hashes as parsed by a face (a query, or the item's error, kept in place):
    the queries matched in one call, each answer where its item was."""
    queries = [p for p in parsed if isinstance(p, HashQuery)]
    answers: list[MatchResult] = []
    if queries:
        answers = matcher.match(
            queries, tenant, options.banks, options.max_distance,
            stricter_only=stricter_only, suppressed=suppressed,
        )  # fmt: skip
    found = iter(answers)
    return [next(found) if isinstance(p, HashQuery) else p for p in parsed]
