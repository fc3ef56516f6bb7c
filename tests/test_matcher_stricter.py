"""A request's max_distance can only tighten a bank's PDQ threshold (the API's rule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hashmatch.banks.model import BankSettings, NewEntry, SignalType
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
