"""Synthetic test videos, encoded with PyAV: known content that changes every second."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def scene(seed: int, width: int, height: int, shift: int = 0) -> np.ndarray:
    """A smooth random RGB picture (blurred noise, upsampled), moved right by `shift` px."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3)).astype(np.float32)
    ys = np.linspace(0, 11, height)
    xs = (np.linspace(0, 15, width) + shift * 15 / width) % 15
    y0 = np.floor(ys).astype(int).clip(0, 10)
    x0 = np.floor(xs).astype(int).clip(0, 14)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    img = (
        small[y0][:, x0] * (1 - fy) * (1 - fx)
        + small[y0 + 1][:, x0] * fy * (1 - fx)
        + small[y0][:, x0 + 1] * (1 - fy) * fx
        + small[y0 + 1][:, x0 + 1] * fy * fx
    )
    return np.asarray(img.clip(0, 255), dtype=np.uint8)


def write_video(
    path: Path,
    seeds: list[int],
    *,
    fps: int = 10,
    size: tuple[int, int] = (128, 96),
    codec: str = "libx264",
    bitrate: int = 0,
    first_frame: int = 0,
    n_frames: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """One scene per second (seeds[k] for second k), moving 1 px per frame; frames
    first_frame .. first_frame + n_frames of that timeline."""
    width, height = size
    total = len(seeds) * fps
    last = total if n_frames is None else min(total, first_frame + n_frames)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if options:
            stream.options = options
        if bitrate:
            stream.bit_rate = bitrate
        for n in range(first_frame, last):
            rgb = scene(seeds[n // fps], width, height, shift=n % fps)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
