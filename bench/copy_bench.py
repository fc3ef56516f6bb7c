"""`hashmatch db copy` of an SQLite data dir into PostgreSQL: entries/s and the copying
process's peak RSS, through the CLI, against an older checkout in the same run.

    python -m bench.copy_bench --rows 1000000
    git worktree add /tmp/old-copy 2ffe029
    python -m bench.copy_bench --rows 1000000 --old /tmp/old-copy

One bank of --rows PDQ entries plus 20 small ones, imported once into an SQLite data dir;
each run copies it into a new, empty database of a throwaway cluster (fsync on).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.import_bench import cli, parse_args, write_csv


def main() -> None:
    args = parse_args(__doc__)
    here = Path(__file__).resolve().parent.parent
    roots = {"new": here, **({"old": args.old.resolve()} if args.old else {})}
    from tests import postgres

    with tempfile.TemporaryDirectory(prefix="hashmatch-copy-") as tmp:
        work = Path(tmp)
        csv, small = work / "list.csv", work / "small.csv"
        write_csv(csv, args.rows)
        write_csv(small, 100)
        data = work / "data"
        cli(here, "bank", "create", "big", "--data-dir", str(data))
        cli(here, "bank", "import", "big", str(csv), "--data-dir", str(data))
        for b in range(20):
            cli(here, "bank", "create", f"s{b}", "--data-dir", str(data))
            cli(here, "bank", "import", f"s{b}", str(small), "--data-dir", str(data))
        total = args.rows + 20 * 100
        print(f"{total:,} entries in {data}", flush=True)
        results: dict[str, list[tuple[float, float]]] = {}
        with postgres.cluster(fsync=True) as pg:
            for _ in range(args.runs):  # interleaved: the machine's noise hits all alike
                for tag, root in roots.items():
                    url = pg.new_database()
                    runs = results.setdefault(tag, [])
                    runs.append(cli(root, "db", "copy", "--from", f"sqlite:{data}", "--to", url))
                    print(tag, runs[-1], flush=True)
    print(f"\n| checkout | entries/s (median of {args.runs}) | range | peak RSS (max) |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        rates = [total / s for s, _ in runs]
        print(
            f"| {name} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f}"
            f" | {max(r for _, r in runs):.0f} MB |"
        )


if __name__ == "__main__":
    main()
