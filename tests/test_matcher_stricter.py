"""A request's max_distance can only tighten a bank's PDQ threshold (the API's rule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashmatch.banks.model import (
    BankKind,
    BankSettings,
    DistancePolicy,
    NewEntry,
    SignalType,
    Visibility,
)
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.matching.bank_matcher import BankMatcher
from hashmatch.matching.model import HashQuery
from tests.banks_helpers import flip_bits, random_codes


def test_override_replaces_but_stricter_only_never_loosens(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    base = random_codes(rng, 1)[0]
    store = SqliteBankStore(tmp_path / "b.sqlite3")
    store.create_bank("loose", BankSettings(pdq_threshold=31))
    store.create_bank("tight", BankSettings(pdq_threshold=10))
    at = {d: flip_bits(rng, base, d).tobytes() for d in (8, 15, 25)}
    for bank in ("loose", "tight"):
        store.write_entries(bank, [NewEntry(SignalType.PDQ, v, f"d{d}") for d, v in at.items()])
    with BankMatcher.open(store) as matcher:
        q = [HashQuery(SignalType.PDQ, (base.tobytes(),))]

        def found(**kw: object) -> set[tuple[str, int]]:
            (r,) = matcher.match(q, None, (), **kw)  # type: ignore[arg-type]
            return {(m.bank, m.distance) for m in r.matches}

        assert found() == {("loose", 8), ("loose", 15), ("loose", 25), ("tight", 8)}
        # An operator's override replaces every threshold (looser for "tight").
        assert found(threshold=20) == {("loose", 8), ("loose", 15), ("tight", 8), ("tight", 15)}
        # The API's max_distance: min(bank, request).
        assert found(threshold=20, stricter_only=True) == {
            ("loose", 8),
            ("loose", 15),
            ("tight", 8),
        }
        assert found(threshold=60, stricter_only=True) == found()
    store.close()


def test_another_tenant_s_max_distance_is_rounded_down_to_the_policy_s_edges(
    tmp_path: Path,
) -> None:
    """Which thresholds match must tell a caller that does not own the bank no more than
    the distance it is shown: bucketed rounds a request down to 0, 8, 16, 24 or 31,
    hidden to 0, exact not at all; the owner's request is taken as it is."""
    rng = np.random.default_rng(6)
    base = random_codes(rng, 1)[0]
    store = SqliteBankStore(tmp_path / "b.sqlite3")
    for policy in DistancePolicy:
        store.create_bank(f"acme:{policy.value}", BankSettings(
            owner="acme", visibility=Visibility.PUBLIC, pdq_threshold=31, distance_policy=policy,
        ))  # fmt: skip
        store.write_entries(f"acme:{policy.value}", [
            NewEntry(SignalType.PDQ, flip_bits(rng, base, 13).tobytes())
        ])  # fmt: skip
    with BankMatcher.open(store) as matcher:
        q = [HashQuery(SignalType.PDQ, (base.tobytes(),))]

        def matching_at(tenant: str, policy: DistancePolicy) -> list[int]:
            bank = f"acme:{policy.value}"
            return [
                t
                for t in range(32)
                if matcher.match(q, tenant, (bank,), t, stricter_only=True)[0].matches
            ]

        assert matching_at("mallory", DistancePolicy.EXACT) == list(range(13, 32))
        assert matching_at("mallory", DistancePolicy.BUCKETED) == list(range(16, 32))
        assert matching_at("mallory", DistancePolicy.HIDDEN) == [31]  # the bank's own only
        for policy in DistancePolicy:
            assert matching_at("acme", policy) == list(range(13, 32))
    store.close()


def test_which_allow_entry_suppresses_follows_the_distances_shown(tmp_path: Path) -> None:
    """The suppressor reported is the closest allow entry by the distances the caller is
    shown: by the exact ones, a foreign entry at 13 (shown 16) beating the caller's own at
    14 would say it is under 14."""
    rng = np.random.default_rng(7)
    base = random_codes(rng, 1)[0]
    store = SqliteBankStore(tmp_path / "b.sqlite3")
    store.create_bank("block", BankSettings(owner="acme"))
    store.write_entries("block", [NewEntry(SignalType.PDQ, base.tobytes())])
    allow = {"acme:fp": ("acme", 14), "op:fp": ("", 13)}
    for name, (owner, d) in allow.items():
        store.create_bank(name, BankSettings(owner=owner, kind=BankKind.ALLOW,
                                             visibility=Visibility.PUBLIC))  # fmt: skip
        store.write_entries(name, [NewEntry(SignalType.PDQ, flip_bits(rng, base, d).tobytes())])
    with BankMatcher.open(store) as matcher:
        (r,) = matcher.match([HashQuery(SignalType.PDQ, (base.tobytes(),))], "acme")
        by = r.matches[0].suppressed_by
        assert by is not None and (by.bank, by.distance) == ("acme:fp", 14)
    store.close()
