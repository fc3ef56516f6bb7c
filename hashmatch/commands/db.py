"""`hashmatch db upgrade`: the stores' schemas brought to this version (what every process
also does when it opens them); `hashmatch db copy --from sqlite:DIR --to postgresql://...`:
an installation moved from its SQLite data dir into PostgreSQL (storage/copy.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir
from hashmatch.errors import BadParameter
from hashmatch.storage.datadir import DataDir
from hashmatch.storage.postgres import is_postgres_url, redacted


def register(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True)
    up = actions.add_parser(
        "upgrade", help="run the stores' migrations; print the banks' schema version"
    )
    add_data_dir(up)
    up.set_defaults(run=_upgrade)
    cp = actions.add_parser("copy", help="copy banks and tenants from SQLite to PostgreSQL")
    cp.add_argument("--from", dest="source", required=True, metavar="sqlite:DIR")
    cp.add_argument("--to", dest="target", required=True, metavar="postgresql://...")
    cp.set_defaults(run=_copy)


def _upgrade(args: argparse.Namespace, io: Streams) -> ExitCode:
    data = data_dir(args)
    banks = data.open_banks()
    tenants = data.open_tenants()
    try:
        where = redacted(data.database_url) if data.database_url else str(data.root)
        io.json_line({"database": where, "banks_schema": banks.schema_version()})
    finally:
        tenants.close()
        banks.close()
    return ExitCode.OK


def _copy(args: argparse.Namespace, io: Streams) -> ExitCode:
    from hashmatch.storage.copy import copy_to_postgres

    scheme, _, path = str(args.source).partition(":")
    if scheme != "sqlite" or not path:
        raise BadParameter("--from: sqlite:DIR, the data dir to copy")
    if not is_postgres_url(args.target):
        raise BadParameter("--to: a postgresql:// URL")
    report = copy_to_postgres(DataDir(Path(path)), args.target)
    io.json_line({"to": redacted(args.target), **report.to_json()})
    return ExitCode.OK
