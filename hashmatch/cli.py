"""The `hashmatch` command line: a thin layer over the core, one module per subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hashmatch import __version__
from hashmatch.commands import admin as admin_cmd
from hashmatch.commands import audit as audit_cmd
from hashmatch.commands import bank as bank_cmd
from hashmatch.commands import compare_video as compare_video_cmd
from hashmatch.commands import hash as hash_cmd
from hashmatch.commands import hash_video as hash_video_cmd
from hashmatch.commands import match as match_cmd
from hashmatch.commands import match_hashes as match_hashes_cmd
from hashmatch.commands import sandbox as sandbox_cmd
from hashmatch.commands import scan as scan_cmd
from hashmatch.commands import serve as serve_cmd
from hashmatch.commands import video_bank as video_bank_cmd
from hashmatch.commands.common import ExitCode, Streams
from hashmatch.errors import ErrorCode, HashmatchError

COMMANDS = (
    serve_cmd,
    hash_cmd,
    match_cmd,
    bank_cmd,
    match_hashes_cmd,
    scan_cmd,
    hash_video_cmd,
    compare_video_cmd,
    video_bank_cmd,
    audit_cmd,
    admin_cmd,
    sandbox_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashmatch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hashmatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, io: Streams | None = None) -> int:
    """Run one command; tests call this directly with their own streams."""
    args = build_parser().parse_args(argv)
    io = io or Streams()
    try:
        return int(args.run(args, io))
    except HashmatchError as exc:
        io.stderr.write(f"hashmatch: {exc.message}\n")
        return ExitCode.USAGE if exc.code is ErrorCode.BAD_PARAMETER else ExitCode.FAILURE
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def entrypoint() -> None:
    sys.exit(main())
