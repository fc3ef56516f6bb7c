"""`hashmatch hash-video FILE...`: vPDQ hashes of videos, one JSON line per video (or the
reference's text format, one file per video, with --output-dir)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hashmatch.commands.common import ExitCode, Streams
from hashmatch.commands.hash import iter_paths
from hashmatch.commands.video_options import add_video_options, video_hasher
from hashmatch.errors import HashmatchError
from hashmatch.video.features import VideoHash


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="video paths; '-': paths on stdin")
    add_video_options(p)
    p.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="also write DIR/<name>.txt in the vPDQ reference format "
        "(frame_number,quality,pdq_hex,timestamp)",
    )
    p.set_defaults(run=run)


def features_json(h: VideoHash) -> list[dict[str, Any]]:
    return [
        {"frame": f, "timestamp": round(t, 3), "pdq": p.hex(), "quality": q}
        for f, t, p, q in h.rows()
    ]


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    hasher = video_hasher(args)
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    for path in iter_paths(args.files, io.stdin):
        try:
            h = hasher.hash(path)
        except HashmatchError as exc:
            failed = True
            io.json_line({"path": path, "error": {"code": exc.code.value, "message": exc.message}})
            continue
        line: dict[str, Any] = {"path": path, "frames": len(h), "features": features_json(h)}
        if args.output_dir is not None:
            out = args.output_dir / f"{Path(path).stem}.txt"
            out.write_text(h.to_text())
            line = {"path": path, "frames": len(h), "output": str(out)}
        io.json_line(line)
        io.stdout.flush()
    return ExitCode.FAILURE if failed else ExitCode.OK
