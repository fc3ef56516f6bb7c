"""`hashmatch scan SOURCE --out DIR`: hash and match every image (and video) under SOURCE
into Parquet shards, resumably."""

from __future__ import annotations

import argparse
from pathlib import Path

from hashmatch.commands.common import DECODER_ARGUMENT, ExitCode, Streams
from hashmatch.commands.scan_matching import add_match_args, match_options, matchers, server_error
from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig, HashMode


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a directory, a file of paths/URIs, or an fsspec URI prefix")
    p.add_argument("--out", type=Path, required=True, help="output folder of Parquet shards")
    add_match_args(p)
    p.add_argument("--hash-only", action="store_true", help="hash, match nothing")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--mode", choices=[m.value for m in HashMode], default=HashMode.EXACT.value)
    p.add_argument("--backend", choices=[b.value for b in BackendChoice], default="auto")
    p.add_argument("--decoder", **DECODER_ARGUMENT)
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--restart", action="store_true", help="discard an earlier run in --out")
    p.add_argument("--ray", action="store_true", help="hash shards as Ray tasks (ray.init())")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    import grpc

    from hashmatch.scan.runner import Progress, ScanConfig, run_scan

    config = ScanConfig(
        source=args.source,
        out=args.out,
        engine=EngineConfig(
            mode=HashMode(args.mode),
            workers=args.workers,
            backend=BackendChoice(args.backend),
            decoder=DecoderChoice(args.decoder),
        ),
        shard_size=args.shard_size,
        hash_only=args.hash_only,
        options=match_options(args),
    )
    progress = Progress(io.stderr)
    try:
        if args.hash_only:
            summary = run_scan(config, None, progress, args.restart, args.ray)
        else:
            with matchers(args) as (matcher, videos):
                summary = run_scan(config, matcher, progress, args.restart, args.ray, videos)
    except grpc.RpcError as exc:  # the server refused (a key, a quota) or went away
        return server_error(args, io, exc, "the scan stopped; the same command resumes it")
    io.json_line({"summary": summary.to_json(), "out": str(args.out)})
    return ExitCode.OK
