"""Bank store figures: a bulk import of N PDQ entries (one transaction), building the
matcher from the database, saving its snapshot, and opening from the snapshot.

    python bench/store_bench.py --n 1000000 --dir /tmp/hashmatch-store-bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dir", type=Path, default=Path("/tmp/hashmatch-store-bench"))
    args = p.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    store = SqliteBankStore(args.dir / "banks.sqlite3")
    store.create_bank("b", BankSettings())
    codes = np.random.default_rng(0).integers(0, 256, (args.n, 32), dtype=np.uint8)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    store.write_entries("b", (NewEntry(SignalType.PDQ, c.tobytes()) for c in codes))
    out["import_s"] = time.perf_counter() - t0
    cfg = MatcherConfig(snapshot_path=args.dir / "index.snapshot")
    t0 = time.perf_counter()
    m = BankMatcher.open(store, cfg)
    out["build_from_store_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m.save_snapshot()
    out["save_snapshot_s"] = time.perf_counter() - t0
    m.close()
    t0 = time.perf_counter()
    m = BankMatcher.open(store, cfg)
    out["open_from_snapshot_s"] = time.perf_counter() - t0
    m.close()
    store.close()
    print(json.dumps({"n": args.n, **out}))


if __name__ == "__main__":
    main()
