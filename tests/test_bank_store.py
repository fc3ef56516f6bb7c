"""The bank store contract, on SQLite and on PostgreSQL: banks, entries, tombstones,
change log, migrations."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pytest

from hashmatch.banks.model import (
    BankKind,
    BankSettings,
    ChangeKind,
    EntryBatch,
    NewEntry,
    SignalType,
    Tombstone,
    Visibility,
)
from hashmatch.banks.postgres_store import PostgresBankStore
from hashmatch.banks.sqlite_store import SCHEMA_VERSION, SqliteBankStore
from hashmatch.banks.store import BankStore
from hashmatch.errors import AlreadyExists, BadParameter, NotFound
from hashmatch.matching.bank_matcher import BankMatcher
from tests import postgres
from tests.conftest import BankOpener


def pdq(i: int) -> bytes:
    return i.to_bytes(32, "big")


@pytest.fixture
def store(open_bank_store: BankOpener) -> Iterator[BankStore]:
    s = open_bank_store()
    yield s
    s.close()


def test_sqlite_file_settings_wal_foreign_keys_version(tmp_path: Path) -> None:
    store = SqliteBankStore(tmp_path / "banks.sqlite3")
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    assert store.schema_version() == SCHEMA_VERSION
    # foreign keys are enforced on the store's connection
    with pytest.raises(sqlite3.IntegrityError), store._write() as w:
        w.execute(
            "INSERT INTO entries (bank_id, signal_type, value, added_at)"
            " VALUES (999, 'md5', x'00', 'now')"
        )
    store.close()


def test_reopen_keeps_data_and_store_id(open_bank_store: BankOpener) -> None:
    a = open_bank_store()
    assert a.schema_version() >= 1
    a.create_bank("x", BankSettings())
    sid = a.store_id
    a.close()
    b = open_bank_store()
    assert b.store_id == sid and [k.name for k in b.list_banks()] == ["x"]
    b.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite3"
    SqliteBankStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(BadParameter, match="newer"):
        SqliteBankStore(path)


def test_newer_schema_is_refused_on_postgres(pg_cluster: postgres.Cluster) -> None:
    import psycopg

    from hashmatch.banks import postgres_store

    url = pg_cluster.new_database()
    postgres_store.PostgresBankStore(url).close()
    with psycopg.connect(url) as db:
        db.execute("UPDATE schema_version SET version = %s", (postgres_store.SCHEMA_VERSION + 1,))
    with pytest.raises(BadParameter, match="newer"):
        postgres_store.PostgresBankStore(url)


def test_bank_crud(store: BankStore) -> None:
    b = store.create_bank(
        "ncmec",
        BankSettings(
            owner="t1",
            visibility=Visibility.SHARED,
            shared_with=frozenset({"t2"}),
            pdq_threshold=28,
            signal_types=frozenset({SignalType.PDQ, SignalType.MD5}),
        ),
    )
    assert b.pdq_threshold == 28 and b.shared_with == {"t2"} and b.enabled
    assert b.visible_to("t1") and b.visible_to("t2") and not b.visible_to("t3")
    assert b.visible_to(None)
    with pytest.raises(AlreadyExists):
        store.create_bank("ncmec", BankSettings())
    for bad in ("bad name!", "acme:", "x" * 129, ":x"):
        with pytest.raises(BadParameter):
            store.create_bank(bad, BankSettings())
    with pytest.raises(BadParameter) as long:  # echoed in part, not all 5,000 characters
        store.create_bank("x!" * 2500, BankSettings())
    assert len(long.value.message) < 300 and "5000 characters" in long.value.message
    for good in ("a", "x" * 128):
        assert store.create_bank(good, BankSettings()).name == good
        store.delete_bank(good)
    with pytest.raises(BadParameter):
        BankSettings(pdq_threshold=-1)
    u = store.update_bank("ncmec", BankSettings(enabled=False, kind=BankKind.ALLOW))
    assert not u.enabled and u.kind is BankKind.ALLOW and u.pdq_threshold == 28
    assert u.updated_at >= b.updated_at
    store.delete_bank("ncmec")
    with pytest.raises(NotFound):
        store.get_bank("ncmec")
    assert store.list_banks() == []
    store.create_bank("ncmec", BankSettings())  # the name is free again


def test_write_entries_is_idempotent_and_tombstones_revive(store: BankStore) -> None:
    store.create_bank("b", BankSettings())
    entries = [NewEntry(SignalType.PDQ, pdq(i), "A1", f"x{i}") for i in range(100)]
    r1 = store.write_entries("b", entries)
    assert (r1.added, r1.unchanged) == (100, 0)
    r2 = store.write_entries("b", entries)
    assert (r2.added, r2.unchanged, r2.updated) == (0, 100, 0)
    r3 = store.write_entries("b", [NewEntry(SignalType.PDQ, pdq(1), "B2", "x1")])
    assert r3.updated == 1
    assert store.remove_entries("b", [(SignalType.PDQ, pdq(1)), (SignalType.PDQ, pdq(2))]) == 2
    assert store.remove_entries("b", [(SignalType.PDQ, pdq(1))]) == 0
    assert store.count_entries("b")[SignalType.PDQ] == 98
    r4 = store.write_entries("b", entries[:3])
    assert (r4.revived, r4.unchanged) == (2, 1)
    r5 = store.write_entries("b", [], remove_external_ids=["x5", "x6", "nope"])
    assert r5.removed == 2
    assert store.count_entries("b")[SignalType.PDQ] == 98


def test_an_import_into_a_held_bank_counts_each_kind_apart(store: BankStore) -> None:
    # A bank's first load takes a shorter path than later ones; both count alike.
    store.create_bank("b", BankSettings())
    first = store.import_entries(
        "b",
        [_batch([pdq(1), pdq(2), pdq(1)], ["A", "B", "again"]), Tombstone("nobody")],
    )
    assert (first.added, first.duplicates, first.removed) == (2, 1, 0)
    assert store.remove_entries("b", [(SignalType.PDQ, pdq(2))]) == 1
    events = [
        _batch([pdq(1), pdq(2), pdq(3), pdq(3), pdq(4)], ["A", "B", "C", "C2", "D"]),
        NewEntry(SignalType.PDQ, pdq(1), "A", "x1"),  # a duplicate of the batch's first
    ]
    later = store.import_entries("b", events)
    # pdq(1) as before (A, x0): unchanged; pdq(2) revived; pdq(3) and pdq(4) new.
    assert (later.added, later.revived, later.unchanged, later.duplicates) == (2, 1, 1, 2)
    assert store.count_entries("b")[SignalType.PDQ] == 4
    labels = {e.value: e.label for e in store.list_entries("b")}
    assert labels == {pdq(1): "A", pdq(2): "B", pdq(3): "C", pdq(4): "D"}


def test_list_entries_pages_by_id(store: BankStore) -> None:
    store.create_bank("b", BankSettings())
    store.write_entries("b", [NewEntry(SignalType.MD5, i.to_bytes(16, "big")) for i in range(25)])
    seen, after = [], 0
    while page := store.list_entries("b", after_id=after, limit=10):
        seen.extend(e.id for e in page)
        after = page[-1].id
    assert len(seen) == 25 and seen == sorted(seen)


def test_change_log_is_monotonic_and_complete(store: BankStore) -> None:
    start = store.current_sequence()
    store.create_bank("b", BankSettings())
    store.write_entries("b", [NewEntry(SignalType.PDQ, pdq(i)) for i in range(5)])
    store.remove_entries("b", [(SignalType.PDQ, pdq(0))])
    store.write_entries("b", [NewEntry(SignalType.PDQ, pdq(0))])  # revive
    store.delete_bank("b")
    changes = store.changes_since(start)
    seqs = [c.seq for c in changes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = [c.kind for c in changes]
    assert kinds.count(ChangeKind.ADD) == 6
    assert kinds.count(ChangeKind.REMOVE) == 6  # one removal + five by the bank's deletion
    assert kinds[0] is ChangeKind.BANK  # made
    # Deleted: the bank's change before its entries' removals (followers hide it first).
    assert kinds[-6:] == [ChangeKind.BANK] + [ChangeKind.REMOVE] * 5
    assert all(c.value is not None for c in changes if c.kind is not ChangeKind.BANK)
    assert store.changes_since(seqs[-1]) == []
    assert store.changes_since(start, limit=3) == changes[:3]


def test_live_signals_is_one_consistent_read(store: BankStore) -> None:
    store.create_bank("b", BankSettings())
    store.write_entries(
        "b",
        [NewEntry(SignalType.PDQ, pdq(i)) for i in range(10)]
        + [NewEntry(SignalType.SHA256, pdq(i)) for i in range(3)],
    )
    store.remove_entries("b", [(SignalType.PDQ, pdq(4))])
    live = store.live_signals()
    assert live.sequence == store.current_sequence()
    ids, values = live.signals[SignalType.PDQ]
    assert ids.shape == (9,) and values.shape == (9, 32)
    assert [bytes(v) for v in values] == [pdq(i) for i in range(10) if i != 4]
    assert live.signals[SignalType.SHA256][0].shape == (3,)
    assert live.signals[SignalType.MD5][1].shape == (0, 16)
    # What matches report of each live entry, in the same read: 12 entries, all of "b".
    assert live.ids.tolist() == sorted([*ids.tolist(), *live.signals[SignalType.SHA256][0]])
    assert set(live.bank_ids.tolist()) == {store.get_bank("b").id}


def test_lookup_and_entries_by_id(store: BankStore) -> None:
    store.create_bank("a", BankSettings())
    store.create_bank("b", BankSettings())
    v = bytes(range(16))
    store.write_entries("a", [NewEntry(SignalType.MD5, v, "A1")])
    store.write_entries("b", [NewEntry(SignalType.MD5, v, "B1")])
    [ids] = store.lookup(SignalType.MD5, [v])
    assert len(ids) == 2
    got = store.entries_by_id([*ids, 12345])
    assert {e.label for e in got.values()} == {"A1", "B1"}


def test_two_connections_see_each_others_commits(open_bank_store: BankOpener) -> None:
    a, b = open_bank_store(), open_bank_store()
    a.create_bank("x", BankSettings())
    a.write_entries("x", [NewEntry(SignalType.PDQ, pdq(1))])
    assert b.count_entries("x")[SignalType.PDQ] == 1
    assert b.current_sequence() == a.current_sequence()
    a.close()
    b.close()


def test_a_follower_is_woken_by_a_commit_where_the_database_can(
    open_bank_store: BankOpener,
) -> None:
    """PostgreSQL NOTIFYs each committed bank write: a waiting follower wakes with True
    (not at its timeout); SQLite cannot, so its wait is the poll interval, False."""
    import threading

    a, b = open_bank_store(), open_bank_store()
    a.create_bank("x", BankSettings())
    if not isinstance(a, PostgresBankStore):
        assert a.wait_for_change(0.01) is False
        a.close()
        b.close()
        return
    assert a.wait_for_change(0.01) is False  # LISTENing now; nothing since
    writer = threading.Timer(0.2, lambda: b.write_entries("x", [NewEntry(SignalType.PDQ, pdq(7))]))
    writer.start()
    assert a.wait_for_change(30.0) is True
    writer.join()
    assert [c.entry_id is not None for c in a.changes_since(0)][-1]
    a.close()
    b.close()


def test_a_tombstone_then_entries_of_its_id_replace_the_record(store: BankStore) -> None:
    """An upstream record replaced: its values not given again go, the others stay; an
    entry before a tombstone of its id is not added."""
    store.create_bank("b", BankSettings())
    store.write_entries("b", [NewEntry(SignalType.PDQ, pdq(k), "A1", "rec") for k in (1, 2)])
    report = store.import_entries(
        "b",
        [
            NewEntry(SignalType.PDQ, pdq(9), None, "gone"),
            Tombstone("rec"),
            NewEntry(SignalType.PDQ, pdq(3), "A2", "rec"),
            NewEntry(SignalType.PDQ, pdq(1), "A2", "rec"),
            Tombstone("gone"),
        ],
    )
    live = {e.value: e.label for e in store.list_entries("b")}
    assert live == {pdq(1): "A2", pdq(3): "A2"}
    assert (report.added, report.updated, report.removed) == (1, 1, 1)


def _batch(values: list[bytes], labels: list[str | None]) -> EntryBatch:
    return EntryBatch(
        SignalType.PDQ,
        np.frombuffer(b"".join(values), np.uint8).reshape(-1, 32),
        pa.array(labels, pa.string()),
        pa.array([f"x{i}" for i in range(len(values))], pa.string()),
        np.arange(1, len(values) + 1),
    )


def test_an_import_is_one_range_row_read_as_one_change_per_entry(store: BankStore) -> None:
    store.create_bank("b", BankSettings())
    with BankMatcher.open(store) as follower:
        start = store.current_sequence()
        values = [pdq(i) for i in range(1, 8)]
        report = store.import_entries(
            "b",
            [
                _batch(values[:4], ["A", None, "C", "D"]),
                NewEntry(SignalType.PDQ, values[0], "dup"),  # a duplicate: the first counts
                _batch(values[4:], ["E", "F", "G"]),
            ],
        )
        assert (report.added, report.duplicates) == (7, 1)
        changes = store.changes_since(start)
        # One sequence number per entry, as if each had a row of its own.
        assert [c.seq for c in changes] == list(range(start + 1, start + 8))
        assert store.current_sequence() == changes[-1].seq
        assert all(c.kind is ChangeKind.ADD for c in changes)
        listed = {e.id: (e.value, e.label) for e in store.list_entries("b")}
        assert {c.entry_id: (c.value, c.label) for c in changes} == listed
        assert sorted(listed.values(), key=lambda v: v[0]) == list(
            zip(values, ["A", None, "C", "D", "E", "F", "G"], strict=True)
        )
        # Paged through with a limit, a range reads the same, from where a page ended.
        paged, seq = [], start
        while page := store.changes_since(seq, limit=3):
            paged += page
            seq = page[-1].seq
        assert paged == changes
        store.remove_entries("b", [(SignalType.PDQ, values[2])])
        [removal] = store.changes_since(changes[-1].seq)
        assert removal.kind is ChangeKind.REMOVE and removal.value == values[2]
        # A follower applies the range as per-entry changes, as a fresh read does.
        follower.refresh()
        assert follower.sequence == store.current_sequence() == store.live_signals().sequence
        assert follower.stats()["pdq"] == 6


def test_a_first_load_settles_duplicates_and_tombstones_as_later_imports_do(
    store: BankStore,
) -> None:
    """An entry before a tombstone of its id goes, then the first of a value stays, and
    what is left is logged as consecutive changes naming exactly the bank's entries."""
    store.create_bank("b", BankSettings())
    start = store.current_sequence()
    report = store.import_entries(
        "b",
        [
            NewEntry(SignalType.PDQ, pdq(1), "A", "r1"),
            NewEntry(SignalType.PDQ, pdq(2), "B", "r2"),
            NewEntry(SignalType.PDQ, pdq(1), "again", "r9"),
            Tombstone("r1"),
            _batch([pdq(3), pdq(4)], ["C", "D"]),
            NewEntry(SignalType.PDQ, pdq(3), "C2", "r3"),  # a duplicate: the first stays
            NewEntry(SignalType.MD5, bytes(16), "M", "r1"),  # after the tombstone: stays
        ],
    )
    # pdq(1) of r1 goes with its tombstone, so pdq(1) of r9 is no duplicate.
    assert (report.added, report.duplicates, report.removed) == (5, 1, 0)
    live = {e.value: e.label for e in store.list_entries("b")}
    assert live == {pdq(1): "again", pdq(2): "B", pdq(3): "C", pdq(4): "D", bytes(16): "M"}
    changes = store.changes_since(start)
    assert [c.seq for c in changes] == list(range(start + 1, start + 6))
    assert {c.entry_id: c.value for c in changes} == {
        e.id: e.value for e in store.list_entries("b")
    }
    # The next import into the bank takes the merge path, and sees the first load's entries.
    later = store.import_entries("b", [_batch([pdq(2), pdq(5)], ["B", "E"])])
    assert (later.added, later.updated, later.unchanged) == (1, 1, 0)  # pdq(2)'s id: x0 now


def test_a_batch_s_source_is_stored_as_given(store: BankStore) -> None:
    """COPY's text format has tabs between fields and newlines between rows: a source
    holding either must not split or add a row."""
    store.create_bank("b", BankSettings())
    source = "feed\t1\n2\\x"
    batch = dataclasses.replace(_batch([pdq(1), pdq(2)], ["A\tB", "C\nD"]), source=source)
    assert store.import_entries("b", [batch]).added == 2
    got = {e.value: (e.label, e.source) for e in store.list_entries("b")}
    assert got == {pdq(1): ("A\tB", source), pdq(2): ("C\nD", source)}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_database_from_before_range_rows_is_carried_forward(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashmatch.banks import postgres_store, sqlite_store

    if kind == "sqlite":
        module: ModuleType = sqlite_store
        path = tmp_path / "b.sqlite3"
        open_store: Callable[[], BankStore] = lambda: SqliteBankStore(path)  # noqa: E731
        mark = "?"
    else:
        module = postgres_store
        url = request.getfixturevalue("pg_cluster").new_database()
        open_store = lambda: PostgresBankStore(url, pool_size=2)  # noqa: E731
        mark = "%s"
    # Before the last migration; on PostgreSQL before entries were partitioned (schema 6),
    # whose writers named no partition.
    before = -1 if kind == "sqlite" else 7
    monkeypatch.setattr(module, "MIGRATIONS", module.MIGRATIONS[:before])
    old = open_store()
    bank = old.create_bank("b", BankSettings())
    with old._write() as db:  # type: ignore[attr-defined]  # as the importer before wrote
        for i in (1, 2):
            db.execute(
                "INSERT INTO entries (bank_id, signal_type, value, label, added_at)"
                f" VALUES ({mark}, 'pdq', {mark}, 'old', 'then')",
                (bank.id, pdq(i)),
            )
    old.close()
    monkeypatch.undo()
    store = open_store()
    try:
        assert store.schema_version() == module.SCHEMA_VERSION
        store.import_entries("b", [_batch([pdq(3), pdq(4)], ["new", "new"])])
        adds = [c for c in store.changes_since(0) if c.kind is ChangeKind.ADD]
        assert [(c.value, c.label) for c in adds] == [
            (pdq(1), "old"),
            (pdq(2), "old"),
            (pdq(3), "new"),
            (pdq(4), "new"),
        ]
    finally:
        store.close()


def test_an_import_as_large_as_the_bank_rebuilds_the_external_id_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashmatch.banks import sqlite_store

    monkeypatch.setattr(sqlite_store, "_REBUILD_MIN", 2)
    store = SqliteBankStore(tmp_path / "b.sqlite3")
    try:
        index = "SELECT sql FROM sqlite_schema WHERE name = 'entries_external'"
        before = store._db.execute(index).fetchall()
        store.create_bank("b", BankSettings())
        store.import_entries("b", [_batch([pdq(i) for i in range(1, 6)], ["L"] * 5)])
        assert store._db.execute(index).fetchall() == before
        report = store.import_entries("b", [Tombstone("x3")])
        assert report.removed == 1
        assert pdq(4) not in {e.value for e in store.list_entries("b")}
    finally:
        store.close()


@pytest.mark.parametrize("migrations", ["latest", "before"])
def test_the_update_trigger_plans_its_join_for_each_update(
    migrations: str, pg_cluster: postgres.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PL/pgSQL keeps a statement's first plan: the change log's join of an UPDATE's old and
    new rows, planned for a one-row relabel, stayed a nested loop for every later UPDATE
    on that connection (a bank's deletion of 20,000 entries took 27 s). The plans the
    server takes for the trigger, read through auto_explain, must follow the rows."""
    import psycopg

    from hashmatch.banks import postgres_store

    if migrations == "before":  # the check itself sees the fault it guards against
        monkeypatch.setattr(postgres_store, "MIGRATIONS", postgres_store.MIGRATIONS[:-1])
    url = pg_cluster.new_database()
    store = PostgresBankStore(url, pool_size=1)
    store.create_bank("b", BankSettings())
    store.import_entries("b", [_batch([pdq(i) for i in range(2000)], ["L"] * 2000)])
    store.close()
    plans: list[str] = []
    with psycopg.connect(url, autocommit=True) as db:
        db.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
        db.execute("LOAD 'auto_explain'")
        for setting in ("log_min_duration = 0", "log_nested_statements = on"):
            db.execute(f"SET auto_explain.{setting}")
        db.execute("SET auto_explain.log_level = 'notice'")
        ids = [r[0] for r in db.execute("SELECT id FROM entries ORDER BY id LIMIT 6")]
        for i in ids:
            db.execute("UPDATE entries SET label = 'one' WHERE id = %s", (i,))
        plans.clear()
        db.execute("UPDATE entries SET label = 'all'")
    [trigger] = [p for p in plans if "INSERT INTO changes" in p]
    if migrations == "before":
        assert "Nested Loop" in trigger
    else:
        assert "Nested Loop" not in trigger and "Join" in trigger  # hash or merge
