"""`hashmatch db copy`: an installation moved from its SQLite data dir into PostgreSQL keeps
every bank, entry (ids and tombstones too), video entry, tenant and key, and the copy is
what a server over the new database matches."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

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
