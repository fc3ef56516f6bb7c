"""`hashmatch match FILE...`: images (and videos, by extension) matched by a running server;
JSON lines, in order."""

from __future__ import annotations

import argparse
from itertools import islice
from pathlib import Path
from typing import Any

import grpc

from hashmatch.client.blocking import Client
from hashmatch.client.images import DEFAULT_TARGET
from hashmatch.client.video import VideoClient, is_video_path
from hashmatch.client.video import options as video_options
from hashmatch.commands.common import ExitCode, Streams, add_api_key, api_key_of
from hashmatch.commands.hash import iter_paths
from hashmatch.errors import HashmatchError
from hashmatch.hashing.reading import read_item

BATCH = 64
MAX_BYTES = 64 * 1024 * 1024


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="image or video paths; '-': paths on stdin"
    )
    p.add_argument("--server", default=DEFAULT_TARGET, metavar="HOST:PORT")
    p.add_argument("--bank", action="append", default=[], help="only these banks (repeatable)")
    p.add_argument("--max-distance", type=int, default=0, help="stricter PDQ threshold")
    p.add_argument("--dihedral", action="store_true", help="also match rotations and flips")
    p.add_argument("--tls-ca", type=Path, metavar="PEM", help="use TLS, trusting this CA")
    p.add_argument(
        "--video-min-percent",
        type=float,
        metavar="P",
        help="videos: share of frames that must match each way (server default: vPDQ's 80)",
    )
    add_api_key(p)
    p.add_argument(
        "--test", action="store_true", help="match the integration sandbox's Test bank only"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    paths = iter_paths(args.files, io.stdin)
    key = api_key_of(args, io)
    creds = None
    if args.tls_ca is not None:
        creds = grpc.ssl_channel_credentials(root_certificates=args.tls_ca.read_bytes())
    with (
        Client(args.server, credentials=creds, api_key=key) as client,
        VideoClient(args.server, creds, api_key=key) as vc,
    ):
        while batch := list(islice(paths, BATCH)):
            readable: list[tuple[str, bytes]] = []
            lines: dict[str, dict[str, Any]] = {}
            for k, path in enumerate(batch):
                if is_video_path(path):
                    try:
                        lines[str(k)] = _match_video(vc, path, args)
                    except grpc.RpcError as exc:
                        if exc.code() is not grpc.StatusCode.INVALID_ARGUMENT:
                            io.stderr.write(
                                f"hashmatch: {args.server}: {exc.code().name}: {exc.details()}\n"
                            )
                            return ExitCode.DEPENDENCY
                        err = {"code": exc.code().name, "message": exc.details()}
                        lines[str(k)] = {"error": err}
                    continue
                try:
                    readable.append((str(k), read_item(path, MAX_BYTES)))
                except HashmatchError as exc:  # reported locally, nothing sent
                    lines[str(k)] = {"error": {"code": exc.code.value, "message": exc.message}}
            try:
                outcomes = (
                    []
                    if not readable
                    else client.match_images(
                        [d for _, d in readable],
                        content_ids=[c for c, _ in readable],
                        banks=args.bank,
                        max_distance=args.max_distance,
                        dihedral=args.dihedral,
                        test=args.test,
                    )
                )
            except grpc.RpcError as exc:
                io.stderr.write(f"hashmatch: {args.server}: {exc.code().name}: {exc.details()}\n")
                return ExitCode.DEPENDENCY
            for o in outcomes:
                lines[o.content_id] = {k: v for k, v in o.to_json().items() if k != "content_id"}
            for k, path in enumerate(batch):
                io.json_line({"path": path, **lines[str(k)]})
            io.stdout.flush()
    return ExitCode.OK


def _match_video(vc: VideoClient, path: str, args: argparse.Namespace) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:  # streamed in chunks, never read whole
            opts = video_options(
                args.bank,
                args.max_distance,
                query_match_percent=args.video_min_percent,
                target_match_percent=args.video_min_percent,
            )
            out = vc.match_video(fh, opts)
    except OSError as exc:
        return {"error": {"code": "UNREADABLE", "message": exc.strerror or type(exc).__name__}}
    out.pop("content_id", None)
    return out
