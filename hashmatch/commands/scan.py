"""`hashmatch scan SOURCE --out DIR`, `scan-rematch`, `scan-diff`: bulk re-scans."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc

from hashmatch.client import auth_metadata
from hashmatch.client.remote_matcher import RemoteMatcher, RemoteVideoMatcher
from hashmatch.commands.common import DECODER_ARGUMENT, ExitCode, Streams
from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig, HashMode
from hashmatch.matching.bank_matcher import Matcher as BankMatcher
from hashmatch.matching.model import Matcher, MatchOptions
from hashmatch.scan.output import ScanRow, read_rows, to_table, write_atomic
from hashmatch.scan.runner import Progress, ScanConfig, match_rows, match_video_rows, run_scan
from hashmatch.storage.datadir import STORE_FILE, add_data_dir, matcher_config, open_store
from hashmatch.video.matching import VideoBankMatcher, VideoMatcher
from hashmatch.video.store import VideoStore


def _match_args(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)
    p.add_argument("--server", metavar="HOST:PORT", help="match on a running server instead")
    p.add_argument(
        "--api-key",
        default=os.environ.get("HASHMATCH_API_KEY"),
        help="with --server: API key (default: $HASHMATCH_API_KEY)",
    )
    p.add_argument("--bank", action="append", default=[], help="only these banks (repeatable)")
    p.add_argument("--threshold", type=int, help="PDQ distance threshold override")


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="hash and match every image under SOURCE into Parquet")
    p.add_argument("source", help="a directory, a file of paths/URIs, or an fsspec URI prefix")
    p.add_argument("--out", type=Path, required=True, help="output folder of Parquet shards")
    _match_args(p)
    p.add_argument("--hash-only", action="store_true", help="hash, match nothing")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--mode", choices=[m.value for m in HashMode], default=HashMode.EXACT.value)
    p.add_argument("--backend", choices=[b.value for b in BackendChoice], default="auto")
    p.add_argument("--decoder", **DECODER_ARGUMENT)
    p.add_argument("--shard-size", type=int, default=256)
    p.add_argument("--restart", action="store_true", help="discard an earlier run in --out")
    p.add_argument("--ray", action="store_true", help="hash shards as Ray tasks (ray.init())")
    p.set_defaults(run=_scan)

    p = sub.add_parser("scan-rematch", help="re-match a scan's stored hashes (no re-hashing)")
    p.add_argument("old", type=Path)
    p.add_argument("--out", type=Path, required=True)
    _match_args(p)
    p.set_defaults(run=_rematch)

    p = sub.add_parser("scan-diff", help="rows matching in NEW that did not match in OLD")
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.set_defaults(run=_diff)


@contextmanager
def _matchers(args: argparse.Namespace) -> Iterator[tuple[Matcher, VideoMatcher]]:
    """Image and video matchers: the local data dir's banks, or a server's (--server)."""
    if args.server:
        with grpc.insecure_channel(args.server) as channel:
            metadata = auth_metadata(args.api_key)
            yield (
                RemoteMatcher(channel, metadata=metadata),
                RemoteVideoMatcher(channel, metadata=metadata),
            )
        return
    store = open_store(args.data_dir)
    videos = VideoStore(args.data_dir / STORE_FILE, store)
    try:
        with BankMatcher.open(store, matcher_config(args.data_dir)) as matcher:
            yield matcher, VideoBankMatcher(matcher, videos)
    finally:
        videos.close()
        store.close()


def _options(args: argparse.Namespace) -> MatchOptions:
    return MatchOptions(banks=tuple(args.bank), max_distance=args.threshold)


def _scan(args: argparse.Namespace, io: Streams) -> ExitCode:
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
        options=_options(args),
    )
    progress = Progress(io.stderr)
    try:
        if args.hash_only:
            summary = run_scan(config, None, progress, args.restart, args.ray)
        else:
            with _matchers(args) as (matcher, videos):
                summary = run_scan(config, matcher, progress, args.restart, args.ray, videos)
    except grpc.RpcError as exc:  # the server refused (a key, a quota) or went away
        return _server_error(args, io, exc, "the scan stopped; the same command resumes it")
    io.json_line({"summary": summary.to_json(), "out": str(args.out)})
    return ExitCode.OK


def _server_error(args: argparse.Namespace, io: Streams, exc: grpc.RpcError, then: str) -> ExitCode:
    io.stderr.write(f"hashmatch: {args.server}: {exc.code().name}: {exc.details()}; {then}\n")
    return ExitCode.DEPENDENCY


def _rematch(args: argparse.Namespace, io: Streams) -> ExitCode:
    table = read_rows(args.old)
    rows = [ScanRow(**{**r, "is_match": False, "matches": []}) for r in table.to_pylist()]
    try:
        with _matchers(args) as (matcher, videos):
            for lo in range(0, len(rows), 4096):
                match_rows(rows[lo : lo + 4096], matcher, _options(args))
                match_video_rows(rows[lo : lo + 4096], videos, _options(args))
    except grpc.RpcError as exc:
        return _server_error(args, io, exc, "nothing was written")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(to_table(rows), args.out)
    io.json_line(
        {"rows": len(rows), "matched": sum(r.is_match for r in rows), "out": str(args.out)}
    )
    return ExitCode.OK


def _diff(args: argparse.Namespace, io: Streams) -> ExitCode:
    def matched(path: Path) -> dict[str, set[tuple[str, int]]]:
        out: dict[str, set[tuple[str, int]]] = {}
        for r in read_rows(path).select(["path", "matches"]).to_pylist():
            out[r["path"]] = {
                (m["bank"], m["entry_id"]) for m in r["matches"] or [] if not m["suppressed"]
            }
        return out

    old, new = matched(args.old), matched(args.new)
    for path, hits in new.items():
        fresh = hits - old.get(path, set())
        if fresh:
            io.json_line(
                {
                    "path": path,
                    "new_matches": [{"bank": b, "entry_id": e} for b, e in sorted(fresh)],
                }
            )
    return ExitCode.OK
