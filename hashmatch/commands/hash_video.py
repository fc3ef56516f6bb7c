"""`hashmatch hash-video FILE...`: vPDQ hashes of videos, one JSON line per video (or the
reference's text format, one file per video, with --output-dir)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hashmatch.commands.common import ExitCode, Streams
from hashmatch.commands.hash import iter_paths
from hashmatch.config import DecoderChoice, VideoConfig
from hashmatch.errors import HashmatchError
from hashmatch.video.features import VideoHash
from hashmatch.video.hasher import VideoHasher


def register(sub: Any) -> None:
    p = sub.add_parser("hash-video", help="vPDQ-hash video files: one JSON line per video")
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


def add_video_options(p: argparse.ArgumentParser) -> None:
    d = VideoConfig()
    p.add_argument(
        "--seconds-per-hash",
        type=float,
        default=d.seconds_per_hash,
        help="hash one frame per this many seconds (default 1, as vPDQ); 0: every frame",
    )
    p.add_argument(
        "--threads", type=int, default=d.decode_threads, help="decoders at once (0: one per core)"
    )
    p.add_argument(
        "--rgb",
        action="store_true",
        help="luma from RGB24 like the reference (slower; default: the Y plane)",
    )
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, help="largest frame")
    p.add_argument(
        "--decoder",
        choices=[c.value for c in DecoderChoice if c is not DecoderChoice.NVIMAGECODEC],
        default=d.decoder.value,
        help="auto: DALI (NVDEC) where installed with a GPU, else PyAV; dali; cpu: PyAV",
    )


def video_config(args: argparse.Namespace) -> VideoConfig:
    return VideoConfig(
        seconds_per_hash=args.seconds_per_hash,
        decode_threads=args.threads,
        rgb=args.rgb,
        max_pixels=args.max_pixels,
        decoder=DecoderChoice(args.decoder),
    )


def features_json(h: VideoHash) -> list[dict[str, Any]]:
    return [
        {"frame": f, "timestamp": round(t, 3), "pdq": p.hex(), "quality": q}
        for f, t, p, q in h.rows()
    ]


def run(args: argparse.Namespace, io: Streams) -> ExitCode:
    hasher = VideoHasher(video_config(args))
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
