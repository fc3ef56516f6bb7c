"""`hashmatch compare-video QUERY TARGET`: vPDQ match of two videos, locally, no server.

Either side may be a video file or a vPDQ hash file (the reference's text format, as
written by `hash-video --output-dir` or Meta's vpdq); prints one JSON object.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hashmatch.commands.common import ExitCode, Streams
from hashmatch.commands.video_options import add_video_options, load, video_hasher
from hashmatch.config import VideoConfig
from hashmatch.video.compare import VideoMatchOptions, compare


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", type=Path, help="video, or .txt vPDQ hash file")
    p.add_argument("target", type=Path, help="video, or .txt vPDQ hash file")
    add_match_options(p)
    add_video_options(p)
    p.set_defaults(run=run)


def add_match_options(p: argparse.ArgumentParser) -> None:
    d = VideoConfig()
    p.add_argument("--max-distance", type=int, default=d.max_distance, help="PDQ bits (<=)")
    p.add_argument("--min-quality", type=int, default=d.min_quality, help="frames below: ignored")
    p.add_argument("--query-percent", type=float, default=d.query_match_percent)
    p.add_argument("--target-percent", type=float, default=d.target_match_percent)


def match_options(args: argparse.Namespace) -> VideoMatchOptions:
    return VideoMatchOptions(
        max_distance=args.max_distance,
        min_quality=args.min_quality,
        query_match_percent=args.query_percent,
        target_match_percent=args.target_percent,
    )


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    options = match_options(args)
    hasher = video_hasher(args)
    result = compare(load(args.query, hasher), load(args.target, hasher), options)
    io.json_line({"query": str(args.query), "target": str(args.target), **result.to_json()})
    return ExitCode.OK
