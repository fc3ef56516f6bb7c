"""Replicas over one PostgreSQL database, same run: a replica's cold start (from the
database alone, and from its snapshot plus the change-log tail), change-to-visible latency
on a second replica, MatchHashes through one replica and through two.

    python -m bench.replica_bench --entries 1000000     # figures for bench/RESULTS.md

PostgreSQL: a throwaway cluster (as in the tests), fsync on, on this machine; the replicas
are `hashmatch serve` subprocesses with data dirs of their own.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np

from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.banks.postgres_store import PostgresBankStore
from hashmatch.proto import bank_pb, bank_rpc, pb, rpc
from tests import postgres, server_harness


def started(
    data: Path, url: str, env: dict[str, str] | None = None
) -> tuple[server_harness.ServerProcess, float]:
    t0 = time.perf_counter()
    server = server_harness.start(data, "--database-url", url, timeout=600, env=env)
    return server, time.perf_counter() - t0


def change_to_visible(
    a: server_harness.ServerProcess, b: server_harness.ServerProcess, n: int
) -> list[float]:
    """Seconds from AddEntries returning on a to the entry matching on b, n times."""
    banks = bank_rpc.BankServiceStub(a.channel())  # type: ignore[no-untyped-call]
    match = rpc.MatchServiceStub(b.channel())  # type: ignore[no-untyped-call]
    rng = np.random.default_rng(5)
    out = []
    for _ in range(n):
        code = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
        entry = bank_pb.Entry(signal_type=pb.PDQ, value=code)
        banks.AddEntries(bank_pb.AddEntriesRequest(bank="bench", entries=[entry]))
        t0 = time.perf_counter()
        query = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.PDQ, value=code)])
        while not match.MatchHashes(query).results[0].is_match:
            time.sleep(0.005)
        out.append(time.perf_counter() - t0)
        time.sleep(0.05)
    return out


def match_rate(targets: list[str], seconds: float = 10.0) -> float:
    """Hashes/s of MatchHashes, 1,000 a call, 4 calls in flight spread over the targets."""
    channel = grpc.insecure_channel(
        "ipv4:" + ",".join(targets),
        options=[("grpc.lb_policy_name", "round_robin")],
    )
    stub = rpc.MatchServiceStub(channel)  # type: ignore[no-untyped-call]
    rng = np.random.default_rng(9)
    req = pb.MatchHashesRequest(
        hashes=[pb.HashQuery(signal_type=pb.PDQ, value=rng.integers(0, 256, 32, np.uint8)
                             .tobytes()) for _ in range(1000)]
    )  # fmt: skip
    stub.MatchHashes(req)
    done = 0
    end = time.perf_counter() + seconds

    def worker() -> int:
        n = 0
        while time.perf_counter() < end:
            stub.MatchHashes(req)
            n += 1000
        return n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        done = sum(pool.map(lambda _: worker(), range(4)))
    channel.close()
    return done / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--changes", type=int, default=50)
    args = p.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="hashmatch-replicas-") as tmp,
        postgres.cluster(fsync=True) as pg,
    ):
        work = Path(tmp)
        url = pg.new_database()
        store = PostgresBankStore(url)
        store.create_bank("bench", BankSettings())
        codes = np.random.default_rng(1).integers(0, 256, (args.entries, 32), dtype=np.uint8)
        t0 = time.perf_counter()
        store.write_entries("bench", (NewEntry(SignalType.PDQ, c.tobytes()) for c in codes))
        print(f"bank: {args.entries:,} PDQ entries written in {time.perf_counter() - t0:.1f} s")

        # Every replica publishes its snapshot to one shared URL (a file:// one here).
        shared = {"HASHMATCH_SERVER_SHARED_SNAPSHOT": (work / "shared.snapshot").as_uri()}
        a, cold_db = started(work / "a", url, shared)
        a.stop()  # SIGTERM: writes its snapshot, and publishes it
        tail = np.random.default_rng(2).integers(0, 256, (1000, 32), dtype=np.uint8)
        store.write_entries("bench", (NewEntry(SignalType.PDQ, c.tobytes()) for c in tail))
        a, cold_snapshot = started(work / "a", url, shared)
        c, cold_shared = started(work / "c", url, shared)  # a new replica: empty data dir
        c.stop()
        b, cold_db_b = started(work / "b", url)
        try:
            latency = sorted(change_to_visible(a, b, args.changes))
            one = match_rate([a.target])
            two = match_rate([a.target, b.target])
        finally:
            a.stop()
            b.stop()
            store.close()
    p50 = statistics.median(latency) * 1000
    p99 = latency[min(len(latency) - 1, int(len(latency) * 0.99))] * 1000
    print("\n| figure | value |\n|---|---|")
    print(f"| cold start, database alone ({args.entries:,} entries) | {cold_db:.1f} s"
          f" (second replica: {cold_db_b:.1f} s) |")  # fmt: skip
    print(f"| cold start, its snapshot + a 1,000-change tail | {cold_snapshot:.1f} s |")
    print(
        f"| a new replica (empty data dir): the shared snapshot + the tail | {cold_shared:.1f} s |"
    )
    print(f"| change on replica a to matchable on replica b ({args.changes} changes) |"
          f" p50 {p50:.0f} ms, p99 {p99:.0f} ms |")  # fmt: skip
    print(f"| MatchHashes, 1,000 a call, 4 in flight: one replica | {one:,.0f} hashes/s |")
    print(f"| the same, round_robin over two replicas (same machine) | {two:,.0f} hashes/s"
          f" ({two / one:.2f}x) |")  # fmt: skip


if __name__ == "__main__":
    main()
