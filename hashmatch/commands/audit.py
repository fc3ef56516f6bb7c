"""`hashmatch audit verify|prune`: the hash-chained audit trail."""

from __future__ import annotations

import argparse

from hashmatch.commands.common import (
    ExitCode,
    Streams,
    add_audit_key_file,
    add_data_dir,
    data_dir,
)


def register(audit: argparse.ArgumentParser) -> None:
    actions = audit.add_subparsers(dest="action", required=True)
    p = actions.add_parser("verify", help="recompute the chain: exit 1 on any edit, gap or reorder")
    add_data_dir(p)
    add_audit_key_file(p)
    p.set_defaults(run=_verify)
    p = actions.add_parser("prune", help="retention: drop records older than --keep-days")
    add_data_dir(p)
    add_audit_key_file(p)
    p.add_argument("--keep-days", type=int, required=True)
    p.set_defaults(run=_prune)


def _verify(args: argparse.Namespace, io: Streams) -> ExitCode:
    from hashmatch.audit.log import verify

    data = data_dir(args)
    tables = data.open_audit_tables()
    try:
        result = verify(tables, data.audit_files)
    finally:
        tables.close()
    io.json_line(result.to_json())
    return ExitCode.OK if result.ok else ExitCode.FAILURE


def _prune(args: argparse.Namespace, io: Streams) -> ExitCode:
    from hashmatch.audit.log import prune

    data = data_dir(args)
    tables = data.open_audit_tables()
    try:
        io.json_line({"pruned": prune(tables, data.audit_files, args.keep_days)})
    finally:
        tables.close()
    return ExitCode.OK
