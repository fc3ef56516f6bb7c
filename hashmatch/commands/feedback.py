"""`hashmatch feedback export --bank NAME`: per entry, how many callers confirmed it and
how many called it a false positive, for the list's source."""

from __future__ import annotations

import argparse

from hashmatch.commands.common import ExitCode, Streams, add_data_dir, data_dir


def register(fb: argparse.ArgumentParser) -> None:
    actions = fb.add_subparsers(dest="action", required=True)
    p = actions.add_parser("export", help="JSON lines per entry: confirmed / false positive")
    add_data_dir(p)
    p.add_argument("--bank", required=True)
    p.set_defaults(run=_export)


def _export(args: argparse.Namespace, io: Streams) -> ExitCode:
    store = data_dir(args).open_feedback()
    try:
        for row in store.export(args.bank):
            io.json_line(row)
    finally:
        store.close()
    return ExitCode.OK
