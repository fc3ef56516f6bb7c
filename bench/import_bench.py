"""Bank imports into SQLite and into PostgreSQL, same file, same run: rows/s and the
importing process's peak RSS, through the CLI a user runs (`hashmatch bank import`).

    python -m bench.import_bench --rows 1000000          # figures for bench/RESULTS.md
    python -m bench.import_bench --rows 10000000 --runs 1

Against an older importer in the same run (interleaved with this one's runs):

    git worktree add /tmp/old-import 83a17c0
    python -m bench.import_bench --rows 1000000 --old /tmp/old-import

PostgreSQL: a throwaway cluster (Debian's server binaries, as in the tests) on this machine,
fsync on. Each run imports into a new, empty bank of a new database / data dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    with path.open("w") as f:
        for lo in range(0, rows, 100_000):
            codes = rng.integers(0, 256, (min(100_000, rows - lo), 32), dtype=np.uint8)
            f.write("".join(f"{c.tobytes().hex()},A1,e{lo + k}\n" for k, c in enumerate(codes)))


def cli(root: Path, *argv: str) -> tuple[float, float]:
    """Runs `hashmatch ARGV` of the checkout at root: wall seconds and peak RSS (MB) of that
    process alone."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hashmatch", *argv], stdout=subprocess.DEVNULL, cwd=root, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return seconds, usage.ru_maxrss / 1024


def import_once(root: Path, work: Path, csv: Path, url: str) -> tuple[float, float]:
    data = Path(tempfile.mkdtemp(dir=work))
    where = ["--data-dir", str(data), *(["--database-url", url] if url else [])]
    cli(root, "bank", "create", "b", *where)
    return cli(root, "bank", "import", "b", str(csv), *where)


def parse_args(doc: str | None) -> argparse.Namespace:
    """--rows, --runs and --old, as this bench and copy_bench take them."""
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--old", type=Path, help="a checkout of an older hashmatch to run beside")
    return p.parse_args()


def main() -> None:
    args = parse_args(__doc__)
    roots = {"": Path(__file__).resolve().parent.parent}
    if args.old:
        roots[" (old)"] = args.old.resolve()
    from tests import postgres

    with tempfile.TemporaryDirectory(prefix="hashmatch-import-") as tmp:
        work = Path(tmp)
        csv = work / "list.csv"
        write_csv(csv, args.rows)
        print(f"{args.rows:,} PDQ rows, {csv.stat().st_size / 1e6:.0f} MB of CSV", flush=True)
        results: dict[str, list[tuple[float, float]]] = {}
        with postgres.cluster(fsync=True) as pg:
            for _ in range(args.runs):  # interleaved: the machine's noise hits all alike
                for tag, root in roots.items():
                    for store in ("sqlite", "postgresql"):
                        url = pg.new_database() if store == "postgresql" else ""
                        runs = results.setdefault(store + tag, [])
                        runs.append(import_once(root, work, csv, url))
                        print(store + tag, runs[-1], flush=True)
    print(f"\n| store | rows/s (median of {args.runs}) | range | peak RSS (max) |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        rates = [args.rows / s for s, _ in runs]
        print(
            f"| {name} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f}"
            f" | {max(r for _, r in runs):.0f} MB |"
        )


if __name__ == "__main__":
    main()
