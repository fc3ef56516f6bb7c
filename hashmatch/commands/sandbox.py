"""`hashmatch sandbox export DIR`: the integration sandbox's benign sample images.

The `test-hit-*` images are in the public "Test" bank (created at the server's first
start): sent to the server they match with source "Test". The `test-miss-*` ones match
nothing. manifest.json says which is which.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hashmatch.commands.common import ExitCode, Streams
from hashmatch.core.sandbox import export


def register(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser("export", help="write the sample images and manifest.json to DIR")
    e.add_argument("folder", type=Path, metavar="DIR")
    e.set_defaults(run=run_export)


def run_export(args: argparse.Namespace, io: Streams) -> ExitCode:
    for row in export(args.folder):
        io.json_line({**row, "path": str(args.folder / str(row["file"]))})
    return ExitCode.OK
