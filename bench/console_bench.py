"""The console's pages on a 1M-entry installation: a bank of N PDQ entries (one
transaction), a real server, a signed-in operator, and each page fetched several times
over HTTP (median, p90, max in ms; the server renders the whole page each time).

    python -m bench.console_bench --n 1000000 --repeat 15
    python -m bench.console_bench --n 1000000 --repeat 15 --proposed-indexes

A bank's page lists one page of entries by id and counts them per signal type; on the
SQLite store as it is both read every live entry of the bank (no index leads by
(bank_id, id), so the page is sorted, and the count reads every row) on a store before
schema 6; --proposed-indexes adds the two partial indexes schema 6 made to the bench's own
database before the server starts (a no-op on schema 6 and later).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.storage.datadir import DataDir
from tests import server_harness
from tests.console_setup import sign_in
from tests.tenancy_setup import admin, tenant

TARGET_MS = 200.0
PROPOSED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS entries_bank_page ON entries (bank_id, id)"
    " WHERE removed_at IS NULL",
    "CREATE INDEX IF NOT EXISTS entries_bank_count ON entries (bank_id, signal_type)"
    " WHERE removed_at IS NULL",
)


def add_proposed_indexes(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for sql in PROPOSED_INDEXES:
            conn.execute(sql)
        conn.commit()


def build(data: Path, n: int) -> int:
    """The installation: tenants, and one bank of n entries. Returns a mid-bank id."""
    admin(data, "bootstrap")
    for i in range(20):
        tenant(data, f"t{i:02d}", "approve")
    for i in range(5):
        tenant(data, f"applicant{i}")
    store = DataDir(data).open_banks()
    try:
        store.create_bank("big", BankSettings())
        rng = np.random.default_rng(0)
        codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        store.write_entries(
            "big",
            (NewEntry(SignalType.PDQ, c.tobytes(), f"label-{i % 7}", f"ext-{i}")
             for i, c in enumerate(codes)),
        )  # fmt: skip
        page = store.list_entries("big", 0, 1)
        return page[0].id + n // 2
    finally:
        store.close()


def timed(c: httpx.Client, path: str, repeat: int) -> dict[str, float]:
    c.get(path).raise_for_status()  # warm
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = c.get(path)
        ms.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    ms.sort()
    p90 = ms[int(0.9 * (len(ms) - 1))]
    return {"median_ms": round(statistics.median(ms), 1), "p90_ms": round(p90, 1),
            "max_ms": round(ms[-1], 1)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--proposed-indexes", action="store_true", help="see the module's doc")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="hashmatch-console-bench-") as tmp:
        data = Path(tmp) / "data"
        t0 = time.perf_counter()
        mid = build(data, args.n)
        if args.proposed_indexes:
            add_proposed_indexes(DataDir(data).banks)
        built_s = time.perf_counter() - t0
        srv = server_harness.start(data, "--rest-listen", "127.0.0.1:0", timeout=600)
        try:
            base = f"http://127.0.0.1:{srv.rest_port}"
            with httpx.Client(base_url=base, headers={"Origin": base}, timeout=60) as c:
                key = (data / "operator.key").read_text().strip()
                assert sign_in(c, key).status_code == 303
                pages = ["/console/", "/console/applications", "/console/tenants",
                         "/console/tenants/t00", "/console/banks", "/console/banks/big",
                         f"/console/banks/big?after={mid}", "/console/exchanges",
                         "/console/quarantine", "/console/usage", "/console/audit",
                         "/console/debug"]  # fmt: skip
                results = {path: timed(c, path, args.repeat) for path in pages}
        finally:
            srv.stop()
    worst = max(r["median_ms"] for r in results.values())
    out = {"n": args.n, "proposed_indexes": args.proposed_indexes,
           "build_s": round(built_s, 1), "pages": results, "worst_median_ms": worst,
           "under_target": worst < TARGET_MS}  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
