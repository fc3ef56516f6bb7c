"""Several `hashmatch serve` processes over one PostgreSQL database: each follows the shared
change log, so a change made through either replica, or by the CLI, is matched by both
within a second; each replica keeps its own index snapshot in its own data dir."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hashmatch.cli import main
from hashmatch.commands.common import ExitCode, Streams
from hashmatch.proto import bank_pb, bank_rpc, pb, rpc
from tests import postgres, server_harness
from tests.banks_helpers import flip_bits, random_codes

RNG = np.random.default_rng(2026)


def _within(predicate: Callable[[], bool], seconds: float) -> float:
    """How long predicate took to hold (fails past `seconds`)."""
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < seconds, "not seen in time"
        time.sleep(0.02)
    return time.monotonic() - t0


@pytest.fixture
def replicas(
    pg_cluster: postgres.Cluster, tmp_path: Path
) -> Iterator[tuple[str, list[server_harness.ServerProcess]]]:
    url = pg_cluster.new_database()
    servers = [
        server_harness.start(tmp_path / f"replica{k}", "--database-url", url, timeout=120)
        for k in range(2)
    ]
    try:
        yield url, servers
    finally:
        for s in servers:
            s.stop()


def _matches(server: server_harness.ServerProcess, code: bytes) -> bool:
    stub = rpc.MatchServiceStub(server.channel())  # type: ignore[no-untyped-call]
    resp = stub.MatchHashes(
        pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=code)])
    )
    return bool(resp.results[0].is_match)


def test_a_change_through_either_replica_or_the_cli_is_matched_by_both(
    replicas: tuple[str, list[server_harness.ServerProcess]], tmp_path: Path
) -> None:
    url, (a, b) = replicas
    assert "banks in postgresql://" in "".join(a.log)
    banks_a = bank_rpc.BankServiceStub(a.channel())  # type: ignore[no-untyped-call]
    banks_b = bank_rpc.BankServiceStub(b.channel())  # type: ignore[no-untyped-call]
    banks_a.CreateBank(bank_pb.CreateBankRequest(name="shared"))
    assert banks_b.GetBank(bank_pb.GetBankRequest(name="shared")).name == "shared"

    codes = random_codes(RNG, 3)
    near = [flip_bits(RNG, c, 10).tobytes() for c in codes]
    # Added through replica A: B matches it too (and A itself).
    banks_a.AddEntries(
        bank_pb.AddEntriesRequest(
            bank="shared", entries=[bank_pb.Entry(signal_type=pb.PDQ, value=codes[0].tobytes())]
        )
    )
    assert _within(lambda: _matches(b, near[0]), 1.0) < 1.0
    assert _matches(a, near[0])
    # Added through B: A matches it.
    banks_b.AddEntries(
        bank_pb.AddEntriesRequest(
            bank="shared", entries=[bank_pb.Entry(signal_type=pb.PDQ, value=codes[1].tobytes())]
        )
    )
    assert _within(lambda: _matches(a, near[1]), 1.0) < 1.0
    # Added by the CLI, on the same database: both.
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["bank", "add", "shared", codes[2].tobytes().hex(), "--database-url", url,
         "--data-dir", str(tmp_path / "cli")],
        Streams(io.StringIO(""), out, err),
    )  # fmt: skip
    assert code == ExitCode.OK, err.getvalue()
    for server in (a, b):
        assert _within(lambda s=server: _matches(s, near[2]), 1.0) < 1.0
    # Removed through A: gone on B.
    banks_a.RemoveEntries(
        bank_pb.RemoveEntriesRequest(
            bank="shared", values=[bank_pb.HashValue(signal_type=pb.PDQ, value=codes[0].tobytes())]
        )
    )
    _within(lambda: not _matches(b, near[0]), 1.0)
    # Nothing of the banks lives in the replicas' data dirs.
    assert not (a.data_dir / "banks.sqlite3").exists()
