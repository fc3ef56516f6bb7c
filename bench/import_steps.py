"""Where an import's time goes, step by step, in this process (import_bench times the
whole CLI): the CSV read alone, then each store's staging and merge steps.

    python -m bench.import_steps --rows 1000000

PostgreSQL: a throwaway cluster as in import_bench (fsync on); statements over 50 ms are
listed with their time.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.import_bench import write_csv
from hashmatch.banks import entry_partitions, fast_csv, postgres_store, sqlite_store
from hashmatch.banks.formats import Format
from hashmatch.banks.importer import import_file
from hashmatch.banks.model import BankSettings, EntryBatch, SignalType


def timed(owner: Any, name: str, static: bool = True) -> None:
    """Prints the time of each call of owner.name."""
    f: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(f)
    def g(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            print(f"  {name}: {time.perf_counter() - t0:.2f} s", flush=True)

    setattr(owner, name, staticmethod(g) if static else g)


def read_only(csv: Path) -> None:
    t0 = time.perf_counter()
    with csv.open("rb") as f:
        n = sum(len(b) for b in fast_csv.read_delimited(f, ",", SignalType.PDQ)
                if isinstance(b, EntryBatch))  # fmt: skip
    print(f"csv read into batches: {time.perf_counter() - t0:.2f} s ({n:,} rows)")


def traced_statements() -> None:
    import psycopg

    execute = psycopg.Connection.execute

    def slow_ones(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(self, query, *args, **kwargs)
        finally:
            if (dt := time.perf_counter() - t0) > 0.05:
                print(f"    {dt:.2f} s {str(query)[:90]}", flush=True)

    psycopg.Connection.execute = slow_ones  # type: ignore[method-assign]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args()
    from tests import postgres

    timed(sqlite_store.SqliteBankStore, "_stage")
    for name in ("_update_existing", "_insert_new"):
        timed(sqlite_store, name, static=False)
    timed(postgres_store.PostgresBankStore, "_stage")
    timed(postgres_store, "_insert_new", static=False)
    timed(postgres_store, "first_load", static=False)
    timed(entry_partitions, "copy_events", static=False)
    traced_statements()
    with tempfile.TemporaryDirectory(prefix="hashmatch-steps-") as tmp:
        csv = Path(tmp) / "list.csv"
        write_csv(csv, args.rows)
        read_only(csv)
        with postgres.cluster(fsync=True) as pg:
            stores = {
                "sqlite": lambda: sqlite_store.SqliteBankStore(Path(tmp) / "banks.sqlite3"),
                "postgresql": lambda: postgres_store.PostgresBankStore(pg.new_database()),
            }
            for name, open_store in stores.items():
                store = open_store()
                store.create_bank("b", BankSettings())
                print(f"{name}:")
                t0 = time.perf_counter()
                import_file(store, "b", csv, Format.CSV)
                print(f"  import: {time.perf_counter() - t0:.2f} s")
                store.close()


if __name__ == "__main__":
    main()
