"""The matcher over a real SQLite file: thresholds per bank, allow lists, visibility,
dihedral queries, following the change log, and restarts from snapshots."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hashmatch.banks.model import (
    BankKind,
    BankSettings,
    ChangeKind,
    NewEntry,
    SignalType,
    Visibility,
)
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.errors import BadParameter, NotFound
from hashmatch.index.mih import MihConfig
from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig
from hashmatch.matching.follower import ChangeFollower
from hashmatch.matching.model import HashQuery
from tests.banks_helpers import brute_force, flip_bits, planted_queries, random_codes
from tests.conftest import BankOpener

RNG = np.random.default_rng(21)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteBankStore]:
    s = SqliteBankStore(tmp_path / "banks.sqlite3")
    yield s
    s.close()


def _pdq(code: np.ndarray) -> HashQuery:
    return HashQuery(SignalType.PDQ, (code.tobytes(),))


def _add(store: SqliteBankStore, bank: str, codes: np.ndarray, label: str | None = None) -> None:
    store.write_entries(bank, [NewEntry(SignalType.PDQ, c.tobytes(), label) for c in codes])


def _entry_ids(store: SqliteBankStore, codes: np.ndarray) -> np.ndarray:
    """The live entry id of each code (a write numbers its entries in value order)."""
    found = store.lookup(SignalType.PDQ, [c.tobytes() for c in codes])
    return np.array([i for [i] in found], np.int64)


def _ids(result: object) -> set[int]:
    return {m.entry_id for m in result.matches}  # type: ignore[attr-defined]


def test_per_bank_thresholds_at_the_boundary(store: SqliteBankStore, tmp_path: Path) -> None:
    store.create_bank("wide", BankSettings())  # 31
    store.create_bank("narrow", BankSettings(pdq_threshold=10))
    center = random_codes(RNG, 1)[0]
    for bank in ("wide", "narrow"):
        _add(store, bank, np.stack([flip_bits(RNG, center, d) for d in (10, 11, 31, 32)]))
    with BankMatcher.open(store, MatcherConfig()) as m:
        [res] = m.match([_pdq(center)])
        got = sorted((x.bank, x.distance) for x in res.matches)
        assert got == [("narrow", 10), ("wide", 10), ("wide", 11), ("wide", 31)]
        [res] = m.match([_pdq(center)], threshold=11)  # the request overrides both banks
        assert sorted((x.bank, x.distance) for x in res.matches) == [
            ("narrow", 10),
            ("narrow", 11),
            ("wide", 10),
            ("wide", 11),
        ]
        [res] = m.match([_pdq(center)], banks=["narrow"])
        assert {x.bank for x in res.matches} == {"narrow"}
        with pytest.raises(NotFound):
            m.match([_pdq(center)], banks=["nope"])
        with pytest.raises(BadParameter):
            m.match([_pdq(center)], threshold=-1)


def test_exact_against_brute_force_through_the_store(store: SqliteBankStore) -> None:
    store.create_bank("b", BankSettings())
    codes = random_codes(RNG, 20_000)
    _add(store, "b", codes)
    with BankMatcher.open(store) as m:
        q = planted_queries(RNG, codes, 120, max_flip=36)
        results = m.match([_pdq(c) for c in q])
        assert [_ids(r) for r in results] == brute_force(codes, _entry_ids(store, codes), q, 31)


def test_allow_list_suppresses_and_says_by_which_entry(store: SqliteBankStore) -> None:
    store.create_bank("csam", BankSettings())
    store.create_bank("fp", BankSettings(kind=BankKind.ALLOW, pdq_threshold=5))
    listed = random_codes(RNG, 1)[0]
    _add(store, "csam", listed[None, :], "A1")
    benign = flip_bits(RNG, listed, 20)  # a known false positive, 20 bits from the listed hash
    _add(store, "fp", benign[None, :])
    md5 = bytes(range(16))
    store.write_entries("csam", [NewEntry(SignalType.MD5, md5, "A2")])
    store.write_entries("fp", [NewEntry(SignalType.MD5, md5)])
    with BankMatcher.open(store) as m:
        near_benign = flip_bits(RNG, benign, 3)
        far = flip_bits(RNG, listed, 2)
        r_benign, r_far, r_md5 = m.match(
            [_pdq(near_benign), _pdq(far), HashQuery(SignalType.MD5, (md5,))]
        )
        [hit] = r_benign.matches
        assert hit.bank == "csam" and hit.suppressed_by is not None
        assert hit.suppressed_by.bank == "fp" and hit.suppressed_by.distance == 3
        assert not r_benign.is_match
        assert r_far.is_match and r_far.matches[0].suppressed_by is None
        assert r_md5.matches[0].suppressed_by is not None and not r_md5.is_match


def test_visibility_and_enabled(store: SqliteBankStore) -> None:
    code = random_codes(RNG, 1)
    store.create_bank("mine", BankSettings(owner="t1"))
    store.create_bank(
        "shared",
        BankSettings(owner="t2", visibility=Visibility.SHARED, shared_with=frozenset({"t1"})),
    )
    store.create_bank("public", BankSettings(owner="t3", visibility=Visibility.PUBLIC))
    store.create_bank("hidden", BankSettings(owner="t4"))
    store.create_bank("off", BankSettings(owner="t1", enabled=False))
    for b in ("mine", "shared", "public", "hidden", "off"):
        _add(store, b, code)
    with BankMatcher.open(store) as m:
        banks = lambda t: {x.bank for x in m.match([_pdq(code[0])], tenant=t)[0].matches}  # noqa: E731
        # A share changes the invited tenant's matching only once it accepted.
        assert banks("t1") == {"mine", "public"}
        store.set_share_accepted("shared", "t1", True)
        m.refresh()
        assert banks("t1") == {"mine", "shared", "public"}
        store.set_share_accepted("shared", "t1", False)
        m.refresh()
        assert banks("t1") == {"mine", "public"}
        assert banks("t5") == {"public"}
        assert banks(None) == {"mine", "shared", "public", "hidden"}
        with pytest.raises(NotFound):
            m.match([_pdq(code[0])], tenant="t5", banks=["hidden"])


def test_dihedral_variants_report_which_matched(store: SqliteBankStore) -> None:
    store.create_bank("b", BankSettings())
    listed = random_codes(RNG, 1)[0]
    _add(store, "b", listed[None, :])
    variants = random_codes(RNG, 8)
    variants[5] = flip_bits(RNG, listed, 4)
    variants[2] = flip_bits(RNG, listed, 9)
    with BankMatcher.open(store) as m:
        [r] = m.match([HashQuery(SignalType.PDQ, tuple(v.tobytes() for v in variants))])
        [hit] = r.matches
        assert (hit.dihedral, hit.distance) == (5, 4)
        assert hit.to_json()["dihedral"] == 5
        [r0] = m.match([_pdq(variants[0])])
        assert r0.matches == ()
    with pytest.raises(BadParameter):
        HashQuery(SignalType.PDQ, tuple(v.tobytes() for v in random_codes(RNG, 9)))


def test_min_quality(store: SqliteBankStore) -> None:
    store.create_bank("b", BankSettings(min_quality=50))
    code = random_codes(RNG, 1)
    _add(store, "b", code)
    with BankMatcher.open(store) as m:
        low, high, unknown = m.match(
            [
                HashQuery(SignalType.PDQ, (code[0].tobytes(),), quality=49),
                HashQuery(SignalType.PDQ, (code[0].tobytes(),), quality=50),
                _pdq(code[0]),
            ]
        )
        assert (len(low.matches), len(high.matches), len(unknown.matches)) == (0, 1, 1)


def test_refresh_applies_adds_removes_and_bank_changes(store: SqliteBankStore) -> None:
    store.create_bank("b", BankSettings())
    codes = random_codes(RNG, 3000)
    _add(store, "b", codes[:1000])
    with BankMatcher.open(store, MatcherConfig(mih=MihConfig(tail_max=300))) as m:
        _add(store, "b", codes[1000:])
        store.remove_entries("b", [(SignalType.PDQ, c.tobytes()) for c in codes[:500]])
        store.write_entries("b", [NewEntry(SignalType.SHA256, bytes(32))])
        assert m.refresh() > 0
        assert m.stats()["pdq"] == 2500 and m.stats()["sha256"] == 1
        q = planted_queries(RNG, codes, 90, max_flip=30)
        live_ids = _entry_ids(store, codes[500:])
        assert [_ids(r) for r in m.match([_pdq(c) for c in q])] == brute_force(
            codes[500:], live_ids, q, 31
        )
        store.update_bank("b", BankSettings(enabled=False))
        m.refresh()
        assert m.match([_pdq(codes[2000])])[0].matches == ()
        store.update_bank("b", BankSettings(enabled=True))
        store.delete_bank("b")
        m.refresh()
        assert m.stats()["pdq"] == 0


def test_a_deleted_bank_stops_matching_before_its_removals_are_applied(
    open_bank_store: BankOpener,
) -> None:
    """Deleting a large list is "stop matching it now": the bank's change comes first in
    the log, and a follower hides the bank before it works through the entries' removals
    (here a pass that stops after its first page of 10)."""
    store = open_bank_store()
    try:
        store.create_bank("big", BankSettings())
        store.create_bank("kept", BankSettings())
        codes = random_codes(RNG, 40)
        _add(store, "big", codes[:30])
        _add(store, "kept", codes[30:])
        with BankMatcher.open(store) as m:
            seq = m.sequence
            store.delete_bank("big")
            assert store.changes_since(seq, 1)[0].kind is ChangeKind.BANK
            pages = iter([store.changes_since(seq, 10)])
            real = store.changes_since
            try:
                store.changes_since = lambda *_: next(pages, [])  # type: ignore[method-assign]
                m.refresh(batch=10)
            finally:
                store.changes_since = real  # type: ignore[method-assign]
            assert m.stats()["pdq"] > 10  # most removals not applied yet
            found = m.match([_pdq(c) for c in (codes[5], codes[35])])
            assert [[x.bank for x in r.matches] for r in found] == [[], ["kept"]]
            m.refresh()
            assert m.stats()["pdq"] == 10
    finally:
        store.close()


def test_second_process_view_follows_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "banks.sqlite3"
    writer, reader = SqliteBankStore(path), SqliteBankStore(path)
    writer.create_bank("b", BankSettings())
    m = BankMatcher.open(reader, MatcherConfig())
    follower = ChangeFollower(m, poll_interval_s=0.05)
    follower.start()
    try:
        code = random_codes(RNG, 1)
        _add(writer, "b", code)
        t0 = time.monotonic()
        while not m.match([_pdq(code[0])])[0].matches:
            assert time.monotonic() - t0 < 1.0, "change not applied within a second"
            time.sleep(0.01)
        writer.remove_entries("b", [(SignalType.PDQ, code[0].tobytes())])
        t0 = time.monotonic()
        while m.match([_pdq(code[0])])[0].matches:
            assert time.monotonic() - t0 < 1.0, "removal not applied within a second"
            time.sleep(0.01)
    finally:
        follower.stop()
        m.close()
        writer.close()
        reader.close()


def test_restart_from_snapshot_then_catch_up(store: SqliteBankStore, tmp_path: Path) -> None:
    snap = tmp_path / "index.snapshot"
    cfg = MatcherConfig(snapshot_path=snap)
    store.create_bank("b", BankSettings())
    codes = random_codes(RNG, 5000)
    _add(store, "b", codes[:4000])
    store.write_entries("b", [NewEntry(SignalType.MD5, bytes(16))])
    with BankMatcher.open(store, cfg) as m:
        assert not m.loaded_from_snapshot
        m.save_snapshot()
    # changes after the snapshot: the restarted matcher applies them from the log
    _add(store, "b", codes[4000:])
    store.remove_entries("b", [(SignalType.PDQ, codes[0].tobytes())])
    q = planted_queries(RNG, codes, 90, max_flip=30)
    ids = _entry_ids(store, codes[1:])
    with BankMatcher.open(store, cfg) as m:
        assert m.loaded_from_snapshot and m.sequence == store.current_sequence()
        assert [_ids(r) for r in m.match([_pdq(c) for c in q])] == brute_force(
            codes[1:], ids, q, 31
        )
        assert m.match([HashQuery(SignalType.MD5, (bytes(16),))])[0].matches


def test_unusable_snapshots_fall_back_to_a_rebuild(store: SqliteBankStore, tmp_path: Path) -> None:
    snap = tmp_path / "index.snapshot"
    store.create_bank("b", BankSettings())
    code = random_codes(RNG, 1)
    _add(store, "b", code)
    with BankMatcher.open(store, MatcherConfig(snapshot_path=snap)) as m:
        m.save_snapshot()
    good = snap.read_bytes()
    # corrupt
    snap.write_bytes(good[:-10] + bytes(b ^ 0xFF for b in good[-10:]))
    with BankMatcher.open(store, MatcherConfig(snapshot_path=snap)) as m:
        assert not m.loaded_from_snapshot and m.match([_pdq(code[0])])[0].matches
    # another database's snapshot
    other = SqliteBankStore(tmp_path / "other.sqlite3")
    snap.write_bytes(good)
    with BankMatcher.open(other, MatcherConfig(snapshot_path=snap)) as m:
        assert not m.loaded_from_snapshot and m.stats()["pdq"] == 0
    other.close()
    # ahead of the database (e.g. the database restored from an older backup)
    import json

    head_len = int.from_bytes(good[8:16], "little")
    head = json.loads(good[16 : 16 + head_len])
    head["header"]["sequence"] += 1000
    new_head = json.dumps(head).encode()
    snap.write_bytes(
        good[:8] + len(new_head).to_bytes(8, "little") + new_head + good[16 + head_len :]
    )
    with BankMatcher.open(store, MatcherConfig(snapshot_path=snap)) as m:
        assert not m.loaded_from_snapshot and m.match([_pdq(code[0])])[0].matches


def test_queries_for_an_engine_signature(store: SqliteBankStore) -> None:
    from hashmatch.hashing.signature import PdqHash, Signature
    from hashmatch.matching.model import image_queries

    store.create_bank("b", BankSettings(min_quality=50))
    listed = random_codes(RNG, 1)[0]
    _add(store, "b", listed[None, :], "A1")
    store.write_entries("b", [NewEntry(SignalType.SHA256, bytes(range(32)), "A2")])
    variants = tuple(PdqHash(c.tobytes()) for c in random_codes(RNG, 8))
    variants = (*variants[:3], PdqHash(flip_bits(RNG, listed, 7).tobytes()), *variants[4:])
    sig = Signature(variants[0], 80, bytes(16), bytes(range(32)), 640, 480, variants)
    with BankMatcher.open(store) as m:
        pdq, md5, sha = m.match(image_queries(sig, dihedral=True))
        assert [(x.label, x.dihedral, x.distance) for x in pdq.matches] == [("A1", 3, 7)]
        assert md5.matches == () and sha.matches[0].label == "A2"


def test_a_separate_writer_process_is_followed(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    store = SqliteBankStore(data / "banks.sqlite3")
    store.create_bank("b", BankSettings())
    code = random_codes(RNG, 1)[0]
    m = BankMatcher.open(store, MatcherConfig())
    follower = ChangeFollower(m, poll_interval_s=0.05)
    follower.start()
    try:
        cmd = [sys.executable, "-m", "hashmatch", "bank", "add", "b", code.tobytes().hex()]
        subprocess.run([*cmd, "--data-dir", str(data)], check=True, capture_output=True)
        t0 = time.monotonic()
        while not m.match([_pdq(code)])[0].matches:
            assert time.monotonic() - t0 < 1.0, "another process's commit not seen within 1 s"
            time.sleep(0.01)
    finally:
        follower.stop()
        m.close()
        store.close()


def test_labels_come_from_memory_and_follow_relabels(store: SqliteBankStore) -> None:
    """A match reads no database: label and source are the catalog's, and a relabel
    (the same entry written again with a new label) reaches it through the change log."""
    store.create_bank("b", BankSettings())
    code = random_codes(RNG, 1)[0]
    store.write_entries("b", [NewEntry(SignalType.PDQ, code.tobytes(), "A1", "x1", "NCMEC")])
    with BankMatcher.open(store) as m:
        calls: list[object] = []
        real = store.entries_by_id
        store.entries_by_id = lambda ids: calls.append(ids) or real(ids)  # type: ignore[method-assign]
        (hit,) = m.match([_pdq(code)])[0].matches
        assert (hit.label, hit.source) == ("A1", "NCMEC") and calls == []
        report = store.write_entries("b", [NewEntry(SignalType.PDQ, code.tobytes(), "B2",
                                                    "x1", "NCMEC")])  # fmt: skip
        assert report.updated == 1
        m.refresh()
        (hit,) = m.match([_pdq(code)])[0].matches
        assert hit.label == "B2" and m.stats()["pdq"] == 1  # relabelled, not added twice
        assert m.match([_pdq(code)], threshold=0)[0].matches[0].entry_id == hit.entry_id


def test_follower_snapshots_after_changes_and_at_stop(
    store: SqliteBankStore, tmp_path: Path
) -> None:
    snap = tmp_path / "index.snapshot"
    store.create_bank("b", BankSettings())
    _add(store, "b", random_codes(RNG, 10))
    m = BankMatcher.open(store, MatcherConfig(snapshot_path=snap))
    follower = ChangeFollower(m, poll_interval_s=60, snapshot_every=50)
    follower.step()  # built from the store: the first pass writes a snapshot
    assert snap.exists() and m.snapshot_sequence == m.sequence
    first = snap.stat().st_mtime_ns
    _add(store, "b", random_codes(RNG, 20))
    follower.step()
    assert snap.stat().st_mtime_ns == first  # 20 changes: not yet due
    _add(store, "b", random_codes(RNG, 40))
    follower.step()
    assert m.snapshot_sequence == m.sequence == store.current_sequence()  # 60 >= 50
    _add(store, "b", random_codes(RNG, 3))
    follower.step()
    follower.stop()  # ahead of its snapshot: written at stop
    assert m.snapshot_sequence == store.current_sequence()
    m.close()
    with BankMatcher.open(store, MatcherConfig(snapshot_path=snap)) as again:
        assert again.loaded_from_snapshot and again.stats()["pdq"] == 73


def test_a_query_answers_at_most_max_matches_the_closest_shown_first(
    store: SqliteBankStore,
) -> None:
    """A bank of near-identical entries cannot make one item's answer unbounded: the
    closest max_matches in the order shown, the rest counted (and still a match)."""
    from hashmatch.core.outcome import Outcome
    from hashmatch.server.convert import item_result

    base = random_codes(RNG, 1)[0]
    store.create_bank("near", BankSettings())
    distances = [4 + k % 20 for k in range(150)]
    _add(store, "near", np.stack([flip_bits(RNG, base, d) for d in distances]))
    with BankMatcher.open(store, MatcherConfig(max_matches=100)) as m:
        (r,) = m.match([_pdq(base)])
        assert len(r.matches) == 100 and r.left_out == 50 and r.is_match
        assert [x.distance for x in r.matches] == sorted(distances)[:100]
        out = item_result(Outcome("c", "t", None, matches=r))
        assert out.matches_left_out == 50 and len(out.matches) == 100 and out.is_match
