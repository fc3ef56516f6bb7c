"""Several `hashmatch serve` processes over one PostgreSQL database: each follows the shared
change log, so a change made through either replica, or by the CLI, is matched by both
(within a second: bench/replica_bench.py measures it); each replica keeps its own index
snapshot in its own data dir."""

from __future__ import annotations

import io
import json
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


def _within(predicate: Callable[[], bool], seconds: float = 10.0) -> float:
    """How long predicate took to hold (fails past `seconds`: a bound for a loaded CI
    machine; the change-to-visible latency itself is measured in bench/replica_bench.py)."""
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
    _within(lambda: _matches(b, near[0]))
    _within(lambda: _matches(a, near[0]))
    # Added through B: A matches it.
    banks_b.AddEntries(
        bank_pb.AddEntriesRequest(
            bank="shared", entries=[bank_pb.Entry(signal_type=pb.PDQ, value=codes[1].tobytes())]
        )
    )
    _within(lambda: _matches(a, near[1]))
    # Added by the CLI, on the same database: both.
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["bank", "add", "shared", codes[2].tobytes().hex(), "--database-url", url,
         "--data-dir", str(tmp_path / "cli")],
        Streams(io.StringIO(""), out, err),
    )  # fmt: skip
    assert code == ExitCode.OK, err.getvalue()
    for server in (a, b):
        _within(lambda s=server: _matches(s, near[2]))
    # Removed through A: gone on B.
    banks_a.RemoveEntries(
        bank_pb.RemoveEntriesRequest(
            bank="shared", values=[bank_pb.HashValue(signal_type=pb.PDQ, value=codes[0].tobytes())]
        )
    )
    _within(lambda: not _matches(b, near[0]))
    # Nothing of the banks lives in the replicas' data dirs.
    assert not (a.data_dir / "banks.sqlite3").exists()


def test_keys_made_once_hold_on_every_replica(
    replicas: tuple[str, list[server_harness.ServerProcess]], tmp_path: Path
) -> None:
    """Tenants and keys live in the database: a key the CLI made works on both replicas,
    no key works on neither, and a key revoked through one is refused by the other."""
    import grpc

    from hashmatch.proto import admin_pb, admin_rpc

    url, (a, b) = replicas
    out, err = io.StringIO(), io.StringIO()
    argv = ["admin", "bootstrap", "--database-url", url, "--data-dir", str(tmp_path / "cli")]
    assert main(argv, Streams(io.StringIO(""), out, err)) == ExitCode.OK, err.getvalue()
    operator = (tmp_path / "cli" / "operator.key").read_text().strip()
    md = (("authorization", f"Bearer {operator}"),)
    query = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=bytes(32))])
    for server in (a, b):
        stub = rpc.MatchServiceStub(server.channel())  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as refused:
            stub.MatchHashes(query)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert len(stub.MatchHashes(query, metadata=md).results) == 1
    admin_a = admin_rpc.AdminServiceStub(a.channel())  # type: ignore[no-untyped-call]
    made = admin_a.CreateKey(
        admin_pb.CreateKeyRequest(tenant_id="operator", roles=["match"], name="m"), metadata=md
    )
    matcher_md = (("authorization", f"Bearer {made.secret}"),)
    stub_b = rpc.MatchServiceStub(b.channel())  # type: ignore[no-untyped-call]
    assert len(stub_b.MatchHashes(query, metadata=matcher_md).results) == 1
    admin_a.RevokeKey(admin_pb.RevokeKeyRequest(key_id=made.key.id), metadata=md)
    with pytest.raises(grpc.RpcError) as revoked:
        stub_b.MatchHashes(query, metadata=matcher_md)
    assert revoked.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_database_outage_is_unavailable_not_fatal_and_heals(
    pg_cluster: postgres.Cluster, tmp_path: Path
) -> None:
    """The database stops under a running replica: matching goes on from memory (with a key
    verified before), calls that need the database are UNAVAILABLE, health turns
    NOT_SERVING while it lasts; once the database is back: SERVING, writes and the change
    log again, nothing committed lost."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    url = pg_cluster.new_database()
    cli = ["--database-url", url, "--data-dir", str(tmp_path / "cli")]
    codes = random_codes(RNG, 2)
    for argv in (["bank", "create", "b"], ["bank", "add", "b", codes[0].tobytes().hex()],
                 ["admin", "bootstrap"]):  # fmt: skip
        assert main([*argv, *cli], Streams(io.StringIO(""), io.StringIO(), io.StringIO())) == 0
    md = (("authorization", f"Bearer {(tmp_path / 'cli' / 'operator.key').read_text().strip()}"),)
    server = server_harness.start(tmp_path / "r", "--database-url", url, timeout=120)
    match = rpc.MatchServiceStub(server.channel())  # type: ignore[no-untyped-call]
    banks = bank_rpc.BankServiceStub(server.channel())  # type: ignore[no-untyped-call]
    health = health_pb2_grpc.HealthStub(server.channel())

    def matched(code: np.ndarray) -> bool:
        q = pb.HashQuery(signal_type=pb.PDQ, value=flip_bits(RNG, code, 5).tobytes())
        resp = match.MatchHashes(pb.MatchHashesRequest(hashes=[q]), metadata=md)
        return bool(resp.results[0].is_match)

    def serving() -> bool:
        status = health.Check(health_pb2.HealthCheckRequest(service="")).status
        return bool(status == health_pb2.HealthCheckResponse.SERVING)

    try:
        _within(lambda: matched(codes[0]))
        pg_cluster.stop()
        try:
            assert matched(codes[0])  # from the in-memory index, the key known already
            with pytest.raises(grpc.RpcError) as down:
                banks.ListBanks(bank_pb.ListBanksRequest(), metadata=md)
            assert down.value.code() is grpc.StatusCode.UNAVAILABLE
            _within(lambda: not serving(), 20.0)
            assert matched(codes[0])  # NOT_SERVING, and still answering what it can
        finally:
            pg_cluster.start()
        _within(serving, 20.0)
        banks.AddEntries(
            bank_pb.AddEntriesRequest(
                bank="b", entries=[bank_pb.Entry(signal_type=pb.PDQ, value=codes[1].tobytes())]
            ),
            metadata=md,
        )
        _within(lambda: matched(codes[1]))
        assert matched(codes[0])
    finally:
        server.stop()


def test_a_round_robin_client_sees_no_failed_call_while_a_replica_is_killed(
    replicas: tuple[str, list[server_harness.ServerProcess]],
) -> None:
    """The client's own channel spreads calls over both replicas and retries UNAVAILABLE:
    SIGKILL one mid-traffic and every call still gets its answer."""
    import signal
    import threading

    from hashmatch.client import Client

    _, (a, b) = replicas
    bank_rpc.BankServiceStub(a.channel()).CreateBank(  # type: ignore[no-untyped-call]
        bank_pb.CreateBankRequest(name="rr")
    )
    code = random_codes(RNG, 1)[0]
    bank_rpc.BankServiceStub(a.channel()).AddEntries(  # type: ignore[no-untyped-call]
        bank_pb.AddEntriesRequest(
            bank="rr", entries=[bank_pb.Entry(signal_type=pb.PDQ, value=code.tobytes())]
        )
    )
    for s in (a, b):
        _within(lambda s=s: _matches(s, code.tobytes()))
    client = Client(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}")
    answered, failed = [], []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                out = client.match_hashes([code.tobytes().hex()] * 50)
                answered.append(all(o.is_match for o in out))
            except Exception as exc:  # any failed call fails the test
                failed.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for th in threads:
        th.start()
    _within(lambda: len(answered) >= 40)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    after = len(answered)
    _within(lambda: len(answered) >= after + 100)
    stop.set()
    for th in threads:
        th.join()
    client.close()
    assert failed == [] and all(answered)


def test_a_new_replica_starts_from_the_shared_snapshot_plus_the_tail(
    pg_cluster: postgres.Cluster, tmp_path: Path
) -> None:
    """[server] shared_snapshot: a replica publishes its snapshot there; a new replica (an
    empty data dir) starts from it and applies only the change log's tail; a shared
    snapshot that is not one is refused and the replica builds from the database."""
    url = pg_cluster.new_database()
    shared = tmp_path / "shared" / "index.snapshot"
    shared.parent.mkdir()
    env = {"HASHMATCH_SERVER_SHARED_SNAPSHOT": shared.as_uri()}
    quiet = Streams(stdout=io.StringIO())
    codes = random_codes(RNG, 300)
    main(["bank", "create", "b", "--database-url", url], quiet)
    bank_file = tmp_path / "b.csv"
    bank_file.write_text("".join(f"{c.tobytes().hex()}\n" for c in codes[:200]))
    main(["bank", "import", "b", str(bank_file), "--database-url", url], quiet)
    first = server_harness.start(tmp_path / "a", "--database-url", url, env=env, timeout=120)
    assert first.stop() == 0  # its snapshot, written at shutdown, published
    assert shared.exists()
    # Changes after the snapshot: the tail a new replica applies on top of it.
    for c in codes[200:]:
        main(["bank", "add", "b", c.tobytes().hex(), "--database-url", url], quiet)
    fresh = server_harness.start(tmp_path / "b", "--database-url", url, env=env, timeout=120)
    try:
        log = "".join(fresh.log)
        assert "index snapshot fetched from" in log and "loaded from its snapshot" in log
        assert all(_matches(fresh, c.tobytes()) for c in codes[::30])
        assert _matches(fresh, codes[-1].tobytes())  # from the tail
    finally:
        fresh.stop()
    shared.write_bytes(b"not a snapshot")
    broken = server_harness.start(tmp_path / "c", "--database-url", url, env=env, timeout=120)
    try:
        assert "built from the banks" in "".join(broken.log)
        assert _matches(broken, codes[-1].tobytes())
    finally:
        broken.stop()


def test_a_tenant_rate_and_the_audit_chain_are_one_across_replicas(
    pg_cluster: postgres.Cluster, tmp_path: Path
) -> None:
    """A tenant's calls spread over two replicas are admitted at its rate once (each
    replica alone would admit its own burst), and both replicas' audit records form one
    chain that verifies from either replica's data dir."""
    import grpc

    url = pg_cluster.new_database()
    cli = ["--database-url", url, "--data-dir", str(tmp_path / "cli")]
    quiet = Streams(io.StringIO(""), io.StringIO(), io.StringIO())
    for argv in (["tenant", "apply", "acme", "--organisation", "Acme", "--contact", "t@acme",
                  "--intended-use", "scanning"], ["tenant", "approve", "acme", "--reason", "ok"],
                 ["bootstrap"]):  # fmt: skip
        assert main(["admin", *argv, *cli], quiet) == 0
    out = io.StringIO()
    assert main(["admin", "key", "create", "acme", "--role", "match", *cli],
                Streams(stdout=out)) == 0  # fmt: skip
    md = (("authorization", f"Bearer {json.loads(out.getvalue().splitlines()[-1])['secret']}"),)
    env = {"HASHMATCH_AUTH_RATE_PER_SECOND": "1", "HASHMATCH_AUTH_BURST": "10"}
    servers = [
        server_harness.start(tmp_path / f"r{k}", "--database-url", url, env=env, timeout=120)
        for k in range(2)
    ]
    try:
        stubs = [rpc.MatchServiceStub(s.channel()) for s in servers]  # type: ignore[no-untyped-call]
        query = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=bytes(32))])
        ok, t0 = 0, time.monotonic()
        for k in range(40):
            try:
                stubs[k % 2].MatchHashes(query, metadata=md)
                ok += 1
            except grpc.RpcError as exc:
                assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        elapsed = time.monotonic() - t0
        # One bucket of 10, refilled at 1/s; two buckets of their own would admit 20.
        assert 9 <= ok <= 10 + elapsed + 1, (ok, elapsed)
    finally:
        for s in servers:
            assert s.stop() == 0
    key = server_harness._shared_audit_key(("--database-url", url))[1]
    for s in servers:
        out = io.StringIO()
        argv = ["audit", "verify", "--database-url", url, "--data-dir", str(s.data_dir),
                "--audit-key-file", key]  # fmt: skip
        assert main(argv, Streams(stdout=out)) == 0, out.getvalue()
        assert json.loads(out.getvalue())["records"] >= 40
