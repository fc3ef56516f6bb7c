"""`hashmatch db copy`: an installation moved from its SQLite data dir into PostgreSQL keeps
every bank, entry (ids and tombstones too), video entry, tenant and key, and the copy is
what a server over the new database matches."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from hashmatch.banks.entry_partitions import PartitionPolicy
from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.banks.postgres_store import PostgresBankStore
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.cli import main
from hashmatch.commands.common import ExitCode, Streams
from hashmatch.config import AuthConfig
from hashmatch.errors import AlreadyExists
from hashmatch.exchanges.model import (
    ExchangeSettings,
    ExchangeType,
    Progress,
    UpstreamFeedback,
    Verdict,
)
from hashmatch.storage.copy import copy_to_postgres
from hashmatch.storage.datadir import DataDir
from hashmatch.tenancy.model import Role, TenantAction
from hashmatch.tenancy.postgres_store import PostgresTenantStore
from hashmatch.tenancy.service import LOCAL_OPERATOR, Tenancy
from tests import postgres
from tests.banks_helpers import random_codes

RNG = np.random.default_rng(18)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), Streams(io.StringIO(""), out, err)), out.getvalue(), err.getvalue()


def test_copy_keeps_ids_tombstones_tenants_and_keys(
    pg_cluster: postgres.Cluster, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    src = data.open_banks()
    assert isinstance(src, SqliteBankStore)
    src.create_bank("a", BankSettings(pdq_threshold=20))
    src.create_bank("b", BankSettings(shared_with=frozenset({"acme"})))
    codes = random_codes(RNG, 50)
    src.write_entries("a", [NewEntry(SignalType.PDQ, c.tobytes(), f"L{k}", f"x{k}")
                            for k, c in enumerate(codes)])  # fmt: skip
    src.write_entries("b", [NewEntry(SignalType.MD5, bytes(range(16)), "m")])
    src.remove_entries("a", [(SignalType.PDQ, codes[0].tobytes())])
    before = src.entries_by_id(range(1, 200))
    feed = ExchangeSettings(environment="test-industry", credentials_env=("U", "P"),
                            feedback_upstream=True)  # fmt: skip
    src.add_exchange("ncmec", ExchangeType.NCMEC, "b", feed)
    src.import_entries("b", [], progress=Progress("ncmec", '{"from": 7}', 1234.0))
    verdict = UpstreamFeedback("9", SignalType.MD5, bytes(range(16)), Verdict.FALSE_POSITIVE)
    src.queue_feedback(src.get_bank("b").id, "acme", [verdict])
    src.close()
    tenancy = Tenancy(data.open_tenants(), AuthConfig())
    tenancy.apply("acme", "Acme", "a@acme.test", "uploads")
    tenancy.decide(LOCAL_OPERATOR, "acme", TenantAction.APPROVE)
    _, secret = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    tenancy.store.close()

    url = pg_cluster.new_database()
    code, out, err = run("db", "copy", "--from", f"sqlite:{data.root}", "--to", url)
    assert code == ExitCode.OK, err
    copied = json.loads(out)["copied"]
    assert copied["entries"] == 51 and copied["banks"] == 2 and copied["api_keys"] == 1

    dst = PostgresBankStore(url)
    after = dst.entries_by_id(list(before))
    assert after == before  # same ids, values, labels, tombstones
    assert dst.get_bank("a").pdq_threshold == 20 and dst.get_bank("b").shared_with == {"acme"}
    assert dst.count_entries("a")[SignalType.PDQ] == 49
    x = dst.get_exchange("ncmec")  # the exchange, where it had got to, its queued verdicts
    assert (x.bank, x.settings, x.checkpoint, x.status.upstream_time) == (
        "b", feed, '{"from": 7}', 1234.0
    )  # fmt: skip
    assert [q.feedback for q in dst.pending_feedback("ncmec")] == [verdict]
    live = dst.live_signals()
    assert len(live.signals[SignalType.PDQ][0]) == 49 and len(live.signals[SignalType.MD5][0]) == 1
    more = dst.write_entries("a", [NewEntry(SignalType.PDQ, random_codes(RNG, 1)[0].tobytes())])
    assert more.added == 1
    newest = max(e.id for e in dst.list_entries("a", limit=100))
    assert newest > max(before)  # new ids continue after the copied ones
    dst.close()
    copied_tenancy = Tenancy(PostgresTenantStore(url), AuthConfig())
    assert copied_tenancy.authenticate(secret).tenant_id == "acme"
    copied_tenancy.store.close()

    with pytest.raises(AlreadyExists):  # never into a live installation
        copy_to_postgres(data, url)
    code, out, _ = run("db", "upgrade", "--database-url", url)
    assert code == ExitCode.OK and json.loads(out)["banks_schema"] >= 1


def test_copy_gives_the_largest_banks_partitions_of_their_own(
    pg_cluster: postgres.Cluster, tmp_path: Path
) -> None:
    """As a first load would: the largest banks, up to the cap, in tables of their own,
    indexed once; the rest in the shared partition; every entry as it was, and each bank
    takes later imports and removals."""
    import psycopg

    data = DataDir(tmp_path / "data")
    src = data.open_banks()
    codes = random_codes(RNG, 12)
    sizes = {"big": 5, "bigger": 6, "small": 1}
    at = 0
    for name, n in sizes.items():
        src.create_bank(name, BankSettings())
        src.write_entries(name, [NewEntry(SignalType.PDQ, c.tobytes(), name, f"{name}{k}")
                                 for k, c in enumerate(codes[at : at + n])])  # fmt: skip
        at += n
    src.remove_entries("bigger", [(SignalType.PDQ, codes[5].tobytes())])  # a tombstone
    odd = NewEntry(SignalType.MD5, bytes(16), "a\tb\\c\nd\re \\N", None, "é\\x00")
    src.write_entries("small", [odd])  # COPY's special characters, NULLs
    ids = {name: src.get_bank(name).id for name in sizes}
    before = src.entries_by_id(range(1, 100))
    src.close()

    url = pg_cluster.new_database()
    policy = PartitionPolicy(rows=5, max_partitions=1)
    assert copy_to_postgres(data, url, policy).rows["entries"] == 13
    with psycopg.connect(url) as db:
        parts = {
            r[0]: r[1]
            for r in db.execute("SELECT part, count(*) FROM entries GROUP BY part ORDER BY part")
        }
        indexes = db.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s", (f"entries_{ids['bigger']}",)
        ).fetchone()
    assert parts == {0: 7, ids["bigger"]: 6}  # the largest alone (the cap is 1)
    assert indexes is not None and indexes[0] == 4  # primary, unique, external ids, live pages
    dst = PostgresBankStore(url, partitions=policy)
    try:
        assert dst.entries_by_id(list(before)) == before
        assert dst.count_entries("bigger")[SignalType.PDQ] == 5
        hits = dst.lookup(SignalType.PDQ, [codes[6].tobytes(), codes[0].tobytes()])
        found = dst.entries_by_id([i for h in hits for i in h])
        assert [[found[i].bank_id for i in h] for h in hits] == [[ids["bigger"]], [ids["big"]]]
        more = random_codes(RNG, 2)
        report = dst.import_entries(
            "bigger",
            [NewEntry(SignalType.PDQ, more[0].tobytes(), "new", "n0"),
             NewEntry(SignalType.PDQ, codes[7].tobytes(), "dup", "bigger2")],
        )  # fmt: skip
        assert (report.added, report.updated) == (1, 1)  # a new value; a relabel
        dst.remove_entries("bigger", [(SignalType.PDQ, codes[8].tobytes())])
        assert dst.count_entries("bigger")[SignalType.PDQ] == 5
        assert dst.write_entries("small", [NewEntry(SignalType.PDQ, more[1].tobytes())]).added == 1
    finally:
        dst.close()


def test_a_database_not_in_utf8_is_refused_with_what_to_do(pg_cluster: postgres.Cluster) -> None:
    """In SQL_ASCII the driver reads text back as bytes: every command would fail later,
    on its first read, with a traceback; `db upgrade` and `db copy` would say nothing."""
    import psycopg

    with psycopg.connect(pg_cluster.url(), autocommit=True) as db:
        db.execute("CREATE DATABASE ascii ENCODING 'SQL_ASCII' TEMPLATE template0")
    url = pg_cluster.url("ascii")
    for argv in (["db", "upgrade"], ["bank", "create", "known-bad"], ["bank", "list"]):
        code, _, err = run(*argv, "--database-url", url)
        assert code == ExitCode.USAGE, argv  # a configuration error, as a bad URL is
        assert "encoding is SQL_ASCII" in err and "createdb -E UTF8" in err, err
        assert "Traceback" not in err
    with psycopg.connect(url) as db:  # nothing was created there
        tables = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
