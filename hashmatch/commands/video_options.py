"""Video options and helpers the video commands share (hash-video, compare-video,
video-bank): what sampling and decoding to use, and reading a video or its hash file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hashmatch.config import DecoderChoice, VideoConfig
from hashmatch.errors import Unreadable
from hashmatch.video.features import VideoHash

if TYPE_CHECKING:
    from hashmatch.video.hasher import VideoHasher


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


def load(path: Path, hasher: VideoHasher) -> VideoHash:
    if path.suffix.lower() == ".txt":
        try:
            return VideoHash.from_text(path.read_text())
        except OSError as exc:
            raise Unreadable(f"{path}: {exc.strerror or type(exc).__name__}") from None
    return hasher.hash(path)


def video_hasher(args: argparse.Namespace) -> VideoHasher:
    from hashmatch.video.hasher import VideoHasher  # PyAV and the kernels: only here

    return VideoHasher(video_config(args))
