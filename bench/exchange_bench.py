"""A sync from the fake NCMEC hash-sharing API (tests/fake_ncmec.py, on loopback, in this
process) into an empty bank, then an incremental sync of changes (new records, changed
fingerprints, deletions): entries/s and the syncing process's peak RSS, through the CLI a
user runs (`hashmatch exchange sync`); then a running server's time from an upstream change
to a match.

    python -m bench.exchange_bench --entries 1000000 --changes 10000
    python -m bench.exchange_bench --entries 1000000 --changes 10000 --postgres

The fake shares the machine's cores with the syncing process (its XML is generated per
page): the figures are what both cost together.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hashmatch.client import Client
from tests import server_harness
from tests.fake_ncmec import PASSWORD, USER, FakeNcmec, bulk_hashes

ENV = {"NCMEC_USER": USER, "NCMEC_PASSWORD": PASSWORD}


def cli(where: list[str], *argv: str) -> tuple[float, float, str]:
    """`hashmatch ARGV`: wall seconds, peak RSS (MB) of that process alone, stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hashmatch", *argv, *where],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **ENV},
    )  # fmt: skip
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, (argv, out)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, out


def changes(fake: FakeNcmec, entries: int, n: int, ts: int) -> None:
    """n changes, past the safety lag: a third new records, a third new fingerprints,
    a third deletions (of the bulk records)."""
    third = n // 3
    for k in range(n - 2 * third):
        pdq, md5 = bulk_hashes(entries + k)
        fake.add(f"new-{k}", ts, pdq=pdq, md5=md5)
    for k in range(third):
        fake.update(str(k), ts, pdq=bulk_hashes(10 * entries + k)[0])
        fake.delete(str(entries - 1 - k), ts)


def time_to_match(fake: FakeNcmec, work: Path, where: list[str], samples: int) -> list[float]:
    config = work / "hashmatch.toml"
    config.write_text("[exchanges]\ninterval_s = 1.0\n")
    data, database = Path(where[1]), where[2:]  # ["--data-dir", DIR, ("--database-url", URL)]
    srv = server_harness.start(data, "--config", str(config), *database, env=ENV, timeout=600)
    waits = []
    try:
        with Client(srv.target) as client:
            for k in range(samples):
                pdq = bulk_hashes(50 * 10**6 + k)[0]
                # Stamped as NCMEC's safety lag passes it (the client reads windows ending
                # 60 s before now, and a record is seen once a window ends past it): what
                # remains is the schedule, the fetch, the commit and the follower.
                fake.add(f"probe-{k}", int(time.time()) - 60, pdq=pdq)
                t0 = time.monotonic()
                while not client.match_hashes([pdq])[0].is_match:
                    assert time.monotonic() - t0 < 60, "not matchable within a minute"
                    time.sleep(0.01)
                waits.append(time.monotonic() - t0)
    finally:
        srv.stop()
    return waits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--changes", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="hashmatch-exchange-") as tmp:
        work = Path(tmp)
        if args.postgres:
            from tests import postgres

            with postgres.cluster(fsync=True) as pg:
                run(args, work, ["--data-dir", str(work / "data"), "--database-url",
                                 pg.new_database()])  # fmt: skip
        else:
            run(args, work, ["--data-dir", str(work / "data")])


def run(args: argparse.Namespace, work: Path, where: list[str]) -> None:
    store = "PostgreSQL" if args.postgres else "SQLite"
    with FakeNcmec() as fake:
        now = int(time.time())
        # One a second, ending a day ago: all of it older than NCMEC's safety lag.
        fake.add_many(args.entries, ts=now - args.entries - 86400, step=1)
        cli(where, "exchange", "add", "ncmec", "--type", "ncmec", "--url", fake.base_url,
            "--credentials-env", "NCMEC_USER,NCMEC_PASSWORD", "--no-sync")  # fmt: skip
        seconds, rss, out = cli(where, "exchange", "sync", "ncmec")
        full = json.loads(out)
        rows = full["added"]
        assert rows == 2 * args.entries, full  # a PDQ and an MD5 a record
        print(f"first sync ({store}): {args.entries:,} records -> {rows:,} entries in"
              f" {seconds:.1f} s = {rows / seconds:,.0f} entries/s"
              f" ({args.entries / seconds:,.0f} records/s), peak RSS {rss:.0f} MB,"
              f" {full['pages']} pages", flush=True)  # fmt: skip
        # Stamped after the first sync's last window (it ended 60 s before the sync did);
        # read once NCMEC's safety lag has passed them.
        stamp = int(time.time()) - 59
        changes(fake, args.entries, args.changes, stamp)
        time.sleep(max(0.0, stamp + 62 - time.time()))
        seconds, rss, out = cli(where, "exchange", "sync", "ncmec")
        inc = json.loads(out)
        print(f"incremental sync: {args.changes:,} changes (added {inc['added']:,}, removed"
              f" {inc['removed']:,}) in {seconds:.2f} s = {args.changes / seconds:,.0f}"
              f" changes/s, peak RSS {rss:.0f} MB", flush=True)  # fmt: skip
        waits = sorted(time_to_match(fake, work, where, args.samples))
        print(f"upstream change past NCMEC's 60 s lag to matchable (server syncing every 1 s,"
              f" {len(waits)} changes):"
              f" p50 {waits[len(waits) // 2]:.2f} s, max {waits[-1]:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
