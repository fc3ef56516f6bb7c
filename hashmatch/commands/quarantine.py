"""`hashmatch quarantine list|release`: entries flagged for matching a flood of content."""

from __future__ import annotations

import argparse

from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir


def register(q: argparse.ArgumentParser) -> None:
    actions = q.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="flagged entries, JSON lines")
    add_data_dir(p)
    p.set_defaults(run=_list)
    p = actions.add_parser("release", help="reviewed: report this entry's matches again")
    add_data_dir(p)
    p.add_argument("entry_id", type=int)
    p.set_defaults(run=_release)


def _list(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_flood()
    try:
        for row in store.listing():
            io.json_line(row)
    finally:
        store.close()
    return ExitCode.OK


def _release(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_flood()
    try:
        released = store.release(args.entry_id)
    finally:
        store.close()
    io.json_line({"entry_id": args.entry_id, "released": released})
    return ExitCode.OK if released else ExitCode.FAILURE
