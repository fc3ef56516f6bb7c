"""`hashmatch` command line: thin over the engine (and, later, the service core)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from enum import IntEnum
from itertools import islice
from typing import TextIO

from hashmatch import __version__
from hashmatch.config import BackendChoice, EngineConfig, HashMode, PoolKind
from hashmatch.engine import Engine
from hashmatch.errors import HashmatchError, ItemError

# Bounded memory for long path lists: hash this many, print, go on.
CLI_BATCH = 64


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    DEPENDENCY = 3
    INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashmatch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hashmatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    h = sub.add_parser("hash", help="hash image files: one JSON line per input, in order")
    h.add_argument("files", nargs="+", metavar="FILE", help="image paths; '-' reads paths from stdin")
    h.add_argument("--dihedral", action="store_true", help="also the 8 dihedral PDQ hashes")
    h.add_argument("--workers", type=int, default=1, help="decode/hash on N cores")
    h.add_argument("--pool", choices=[p.value for p in PoolKind], default=PoolKind.THREAD.value)
    h.add_argument("--mode", choices=[m.value for m in HashMode], default=HashMode.EXACT.value)
    h.add_argument(
        "--backend", choices=[b.value for b in BackendChoice], default=BackendChoice.AUTO.value
    )
    h.add_argument("--max-pixels", type=int, default=EngineConfig.max_pixels)
    return parser


def _paths(files: Sequence[str], stdin: TextIO) -> Iterator[str]:
    for f in files:
        if f == "-":
            yield from (line.rstrip("\n") for line in stdin if line.strip())
        else:
            yield f


def _cmd_hash(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> ExitCode:
    config = EngineConfig(
        mode=HashMode(args.mode),
        dihedral=args.dihedral,
        workers=args.workers,
        pool=PoolKind(args.pool),
        backend=BackendChoice(args.backend),
        max_pixels=args.max_pixels,
    )
    paths = _paths(args.files, stdin)
    with Engine(config) as engine:
        while batch := list(islice(paths, CLI_BATCH)):
            for path, result in zip(batch, engine.hash_many(batch), strict=True):
                if isinstance(result, ItemError):
                    line = {"path": path, "error": {"code": result.code.value, "message": result.message}}
                else:
                    line = {"path": path, **result.to_json()}
                stdout.write(json.dumps(line) + "\n")
            stdout.flush()
    return ExitCode.OK


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        if args.command == "hash":
            return _cmd_hash(args, stdin, stdout)
    except HashmatchError as exc:
        print(f"hashmatch: {exc.message}", file=sys.stderr)
        return ExitCode.USAGE if exc.code == "BAD_PARAMETER" else ExitCode.FAILURE
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    parser.error(f"unknown command {args.command}")
    return ExitCode.USAGE  # not reached: parser.error exits


def entrypoint() -> None:
    sys.exit(main())
