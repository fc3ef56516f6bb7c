"""`hashmatch scan-rematch OLD --out FILE`: re-match a scan's stored hashes after a bank
update, without reading an image again."""

from __future__ import annotations

import argparse
from pathlib import Path

from hashmatch.commands.common import ExitCode, Streams
from hashmatch.commands.scan_matching import add_match_args, match_options, matchers, server_error

BATCH = 4096


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", type=Path)
    p.add_argument("--out", type=Path, required=True)
    add_match_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    import grpc

    from hashmatch.scan.output import ScanRow, read_rows, to_table, write_atomic
    from hashmatch.scan.runner import match_rows, match_video_rows

    table = read_rows(args.old)
    rows = [ScanRow(**{**r, "is_match": False, "matches": []}) for r in table.to_pylist()]
    options = match_options(args)
    try:
        with matchers(args) as (matcher, videos):
            for lo in range(0, len(rows), BATCH):
                match_rows(rows[lo : lo + BATCH], matcher, options)
                match_video_rows(rows[lo : lo + BATCH], videos, options)
    except grpc.RpcError as exc:
        return server_error(args, io, exc, "nothing was written")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(to_table(rows), args.out)
    io.json_line(
        {"rows": len(rows), "matched": sum(r.is_match for r in rows), "out": str(args.out)}
    )
    return ExitCode.OK
