"""PostgreSQL's entries in few partitions: large lists' first loads as partitions of their
own (up to a cap), everything else in the shared one; what every statement locks stays
bounded however many banks there are."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from hashmatch.banks import model, postgres_store
from hashmatch.banks.entry_partitions import PartitionPolicy, cap_for
from hashmatch.banks.model import BankSettings, EntryBatch, SignalType
from hashmatch.banks.postgres_store import PostgresBankStore
from hashmatch.banks.records import CHANGES_SINCE
from tests import postgres

pytestmark = pytest.mark.usefixtures("pg_cluster")


def pdq(i: int) -> bytes:
    return i.to_bytes(32, "big")


def batch(values: list[bytes], prefix: str = "x") -> EntryBatch:
    n = len(values)
    return EntryBatch(
        SignalType.PDQ,
        np.frombuffer(b"".join(values), np.uint8).reshape(-1, 32),
        pa.array([f"L{i}" for i in range(n)], pa.string()),
        pa.array([f"{prefix}{i}" for i in range(n)], pa.string()),
        np.arange(1, n + 1),
    )


def partitions(url: str) -> dict[str, int]:
    """The partitions of entries and the rows in each."""
    import psycopg

    with psycopg.connect(url) as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'entries'::regclass"
            )
        ]
        return {n: db.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}  # type: ignore[index]


@pytest.fixture
def url(pg_cluster: postgres.Cluster) -> str:
    return pg_cluster.new_database()


@pytest.fixture
def store(url: str) -> Iterator[PostgresBankStore]:
    s = PostgresBankStore(url, pool_size=2, partitions=PartitionPolicy(rows=3, max_partitions=2))
    yield s
    s.close()


def test_large_first_loads_get_partitions_of_their_own_up_to_the_cap(
    store: PostgresBankStore, url: str
) -> None:
    ids = {n: store.create_bank(n, BankSettings()).id for n in "abcde"}
    assert store.import_entries("a", [batch([pdq(1), pdq(2), pdq(3)])]).added == 3
    assert store.import_entries("b", [batch([pdq(1), pdq(2)])]).added == 2  # too small
    assert store.import_entries("c", [batch([pdq(1), pdq(4), pdq(5), pdq(6)])]).added == 4
    assert store.import_entries("d", [batch([pdq(i) for i in range(1, 6)])]).added == 5  # cap
    store.import_entries("e", [model.Tombstone("nothing")])  # adds nothing, makes nothing
    assert partitions(url) == {
        "entries_shared": 2 + 5,
        f"entries_{ids['a']}": 3,
        f"entries_{ids['c']}": 4,
    }
    # A later import into a partitioned bank stays in its partition: its values stay
    # unique per bank, and the merge finds what is there.
    later = store.import_entries("a", [batch([pdq(3), pdq(7)], "y")])
    assert (later.added, later.updated) == (1, 1)
    assert partitions(url)[f"entries_{ids['a']}"] == 4
    # Every read sees every partition.
    [found] = store.lookup(SignalType.PDQ, [pdq(1)])
    assert len(found) == 4  # a, b, c, d
    got = store.entries_by_id(found)
    assert sorted(e.bank_id for e in got.values()) == sorted(ids[n] for n in "abcd")
    assert sum(store.count_entries(n)[SignalType.PDQ] for n in "abcde") == 3 + 2 + 4 + 5 + 1
    adds = [c for c in store.changes_since(0) if c.kind is model.ChangeKind.ADD]
    assert len(adds) == 16 and len({c.entry_id for c in adds}) == 15  # a relabel logs an add
    live = store.live_signals()
    assert len(live.signals[SignalType.PDQ][0]) == 15
    # Removal and a bank's deletion reach its partition.
    assert store.remove_entries("a", [(SignalType.PDQ, pdq(7))]) == 1
    store.delete_bank("c")
    assert len(store.live_signals().signals[SignalType.PDQ][0]) == 15 - 1 - 4


def test_a_first_load_of_its_own_settles_duplicates_and_tombstones_with_consecutive_ids(
    store: PostgresBankStore,
) -> None:
    store.create_bank("a", BankSettings())
    values = [pdq(1), pdq(2), pdq(1), pdq(3), pdq(4)]
    last = model.NewEntry(SignalType.PDQ, pdq(5), "N", "n")
    events = [batch(values), model.Tombstone("x3"), last]
    report = store.import_entries("a", events)
    assert (report.added, report.duplicates) == (4, 1)  # pdq(3) went with its tombstone
    adds = [c for c in store.changes_since(0) if c.kind is model.ChangeKind.ADD]
    assert [c.value for c in adds] == [pdq(1), pdq(2), pdq(4), pdq(5)]  # input order
    first = adds[0].entry_id
    assert [c.entry_id for c in adds] == list(range(first, first + 4))
    assert [e.id for e in store.list_entries("a")] == [c.entry_id for c in adds]
    # The sequence is past them: the next write takes new ids.
    store.write_entries("a", [model.NewEntry(SignalType.PDQ, pdq(6), "M")])
    assert max(e.id for e in store.list_entries("a")) > first + 3


def test_a_first_load_that_fails_leaves_no_partition_and_no_entries(
    store: PostgresBankStore, url: str
) -> None:
    store.create_bank("a", BankSettings())

    def events() -> Iterator[EntryBatch]:
        yield batch([pdq(1), pdq(2), pdq(3), pdq(4)])
        raise OSError("the feed went away")

    with pytest.raises(OSError):
        store.import_entries("a", events())
    assert partitions(url) == {"entries_shared": 0}
    assert store.count_entries("a")[SignalType.PDQ] == 0
    assert store.import_entries("a", [batch([pdq(1), pdq(2), pdq(3)])]).added == 3


def test_a_thousand_banks_keep_every_statement_s_locks_bounded(url: str) -> None:
    """Statements naming no bank (id lookups, the change log's join, exact lookups) plan
    and lock every partition: with a table per bank, a thousand banks exhausted the
    server's lock table. Here they stay at the cap's partitions."""
    import psycopg

    # The cap derived from the server's lock table (PostgreSQL's default 64: 8).
    store = PostgresBankStore(url, pool_size=8, partitions=PartitionPolicy(rows=2))
    try:
        for b in range(1000):
            store.create_bank(f"b{b}", BankSettings())
            store.import_entries(f"b{b}", [batch([pdq(b), pdq(100_000 + b)])])
        parts = partitions(url)
        assert len(parts) == 1 + 8 and sum(parts.values()) == 2000
        with psycopg.connect(url) as db:
            ids = [r[0] for r in db.execute("SELECT id FROM entries ORDER BY random() LIMIT 5")]
            for statement, args in [
                ("SELECT * FROM entries WHERE id = ANY(%s)", (ids,)),
                (CHANGES_SINCE.format(p="%s"), (0, 100)),
                ("SELECT id FROM entries WHERE signal_type = 'pdq' AND value = %s", (pdq(7),)),
            ]:
                db.execute(statement, args).fetchall()
                held = db.execute(
                    "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
                ).fetchone()
                assert held is not None and held[0] <= 9 * 5 + 5, statement
                db.rollback()
        # Many sessions at once, each through every partition.
        failures: list[BaseException] = []

        def read() -> None:
            try:
                for _ in range(20):
                    assert len(store.entries_by_id(ids)) == 5
                    assert len(store.lookup(SignalType.PDQ, [pdq(3)])[0]) == 1
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
    finally:
        store.close()


def test_the_default_cap_follows_the_server_s_lock_table() -> None:
    assert [cap_for(n) for n in (10, 64, 128, 256)] == [0, 8, 17, 35]
    for n in (64, 100, 256, 1024):  # every own partition's 5 locks, the shared and parent's
        assert (cap_for(n) + 1) * 5 + 3 <= 0.76 * n


def test_a_schema_6_database_becomes_the_shared_partition(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.setattr(postgres_store, "MIGRATIONS", postgres_store.MIGRATIONS[:7])
    old = PostgresBankStore(url, pool_size=2)
    bank = old.create_bank("old", BankSettings())
    with old._write() as db:  # as schema 6's store wrote, a tombstone among them
        for i in (1, 2, 3):
            db.execute(
                "INSERT INTO entries (bank_id, signal_type, value, added_at, removed_at)"
                " VALUES (%s, 'pdq', %s, 'then', %s)",
                (bank.id, pdq(i), "gone" if i == 2 else None),
            )
        before = dict(db.execute("SELECT id, value FROM entries WHERE removed_at IS NULL"))
    old.close()
    monkeypatch.undo()
    store = PostgresBankStore(url, pool_size=2, partitions=PartitionPolicy(rows=2))
    try:
        assert store.schema_version() == postgres_store.SCHEMA_VERSION
        assert {e.id: e.value for e in store.list_entries("old")} == before
        assert partitions(url) == {"entries_shared": 3}  # the tombstoned one too
        revived = store.import_entries("old", [batch([pdq(2)], "r")])
        assert revived.revived == 1
        store.create_bank("new", BankSettings())
        assert store.import_entries("new", [batch([pdq(1), pdq(9)])]).added == 2
        assert len(partitions(url)) == 2
        assert min(e.id for e in store.list_entries("new")) > max(before)
        with psycopg.connect(url) as db:
            fks = db.execute(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'vpdq_frames'::regclass"
                " AND contype = 'f' AND confrelid <> 'vpdq_videos'::regclass"
            ).fetchone()
            assert fks == (0,)
            # A writer of schema 6 still running names no part: refused, not misplaced.
            with pytest.raises(psycopg.errors.IntegrityError, match="no partition"):
                db.execute(
                    "INSERT INTO entries (bank_id, signal_type, value, added_at)"
                    " VALUES (%s, 'pdq', %s, 'then')",
                    (bank.id, pdq(9)),
                )
    finally:
        store.close()
