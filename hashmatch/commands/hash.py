"""`hashmatch hash FILE...`: one JSON line per input, in order."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import TextIO

from hashmatch.commands.common import DECODER_ARGUMENT, ExitCode, Streams
from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig, HashMode, PoolKind
from hashmatch.errors import ItemError

# Bounded memory for long path lists: hash this many, print, go on.
BATCH = 64


def register(h: argparse.ArgumentParser) -> None:
    h.add_argument("files", nargs="+", metavar="FILE", help="image paths; '-': paths on stdin")
    h.add_argument("--dihedral", action="store_true", help="also the 8 dihedral PDQ hashes")
    h.add_argument("--workers", type=int, default=1, help="decode/hash on N cores")
    h.add_argument("--pool", choices=[p.value for p in PoolKind], default=PoolKind.THREAD.value)
    h.add_argument("--mode", choices=[m.value for m in HashMode], default=HashMode.EXACT.value)
    h.add_argument(
        "--backend", choices=[b.value for b in BackendChoice], default=BackendChoice.AUTO.value
    )
    h.add_argument("--decoder", **DECODER_ARGUMENT)
    h.add_argument("--max-pixels", type=int, default=EngineConfig.max_pixels)
    h.set_defaults(run=run)


def iter_paths(files: Sequence[str], stdin: TextIO) -> Iterator[str]:
    """FILE arguments in order, '-' standing for the paths on stdin, one a line."""
    for f in files:
        if f == "-":
            yield from (line.rstrip("\n") for line in stdin if line.strip())
        else:
            yield f


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    config = EngineConfig(
        mode=HashMode(args.mode),
        dihedral=args.dihedral,
        workers=args.workers,
        pool=PoolKind(args.pool),
        backend=BackendChoice(args.backend),
        decoder=DecoderChoice(args.decoder),
        max_pixels=args.max_pixels,
    )
    from hashmatch.hashing.engine import Engine  # the kernels load here

    paths = iter_paths(args.files, io.stdin)
    with Engine(config) as engine:
        while batch := list(islice(paths, BATCH)):
            for path, result in zip(batch, engine.hash_many(batch), strict=True):
                if isinstance(result, ItemError):
                    err = {"code": result.code.value, "message": result.message}
                    io.json_line({"path": path, "error": err})
                else:
                    io.json_line({"path": path, **result.to_json()})
            io.stdout.flush()
    return ExitCode.OK
