"""The `hashmatch` command line: a thin layer over the core, one module per subcommand.

Only the module of the command asked for is imported, so `hashmatch bank list` does not
load the hashing kernels, PyAV or pyarrow; each module imports what it needs to run
inside its run function.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from hashmatch import __version__
from hashmatch.commands.common import ExitCode, Streams
from hashmatch.errors import ErrorCode, HashmatchError

# name -> (module under hashmatch.commands, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the gRPC matching server"),
    "hash": ("hash", "hash image files: one JSON line per input, in order"),
    "match": ("match", "match image or video files against a server's banks"),
    "bank": ("bank", "manage signature banks"),
    "match-hashes": ("match_hashes", "match hashes read from stdin against the banks"),
    "scan": ("scan", "hash and match every image under SOURCE into Parquet"),
    "scan-rematch": ("scan_rematch", "re-match a scan's stored hashes (no re-hashing)"),
    "scan-diff": ("scan_diff", "rows matching in NEW that did not match in OLD"),
    "hash-video": ("hash_video", "vPDQ-hash video files: one JSON line per video"),
    "compare-video": ("compare_video", "vPDQ-match two videos (or vPDQ hash files)"),
    "video-bank": ("video_bank", "manage a bank's video (vpdq) entries"),
    "exchange": ("exchange", "hash exchanges feeding banks: NCMEC, StopNCII, ThreatExchange"),
    "audit": ("audit", "the hash-chained audit trail"),
    "feedback": ("feedback", "per-entry match feedback, for the lists' sources"),
    "quarantine": ("quarantine", "entries flagged for matching a flood of content"),
    "report": ("report", "reports read from the audit trail"),
    "admin": ("admin", "tenants and API keys (on the data dir)"),
    "db": ("db", "the stores' schemas; copy an installation from SQLite to PostgreSQL"),
    "sandbox": ("sandbox", "the integration sandbox (benign test images)"),
    "loadtest": ("loadtest", "load a running server with your images: throughput, latency"),
}


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv (its first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command listed; only `command`'s arguments loaded (all with None: for tests
    and documentation that need the whole tree)."""
    parser = argparse.ArgumentParser(prog="hashmatch", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"hashmatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if command is None or name == command:
            importlib.import_module(f"hashmatch.commands.{module}").register(p)
    return parser


def main(argv: Sequence[str] | None = None, io: Streams | None = None) -> int:
    """Run one command; tests call this directly with their own streams."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    io = io or Streams()
    try:
        return int(args.run(args, io))
    except HashmatchError as exc:
        io.stderr.write(f"hashmatch: {exc.message}\n")
        return ExitCode.USAGE if exc.code is ErrorCode.BAD_PARAMETER else ExitCode.FAILURE
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def entrypoint() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`hashmatch bank entries b | head`): stop quietly. Python
        # would flush stdout again at exit and complain, so point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ExitCode.BROKEN_PIPE
    sys.exit(code)
