"""A generated corpus of JPEGs as platforms see them: photographs and saturated graphics,
every chroma subsampling libjpeg-turbo upsamples, qualities 20-100, sizes from 5 px to
6000 px, progressive, restart markers, grey, CMYK, an EXIF rotation."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import simplejpeg
import skimage
from PIL import Image

from tests.helpers import synthetic_rgb

SUBSAMPLINGS = ("444", "422", "420", "440", "411")
# Sides of exactly 8 or 16 px are left out: PDQ's hash of them is float rounding noise
# (README, Modes), in every implementation.
SIZES = [(5, 5), (5, 9), (9, 300), (37, 53), (53, 37), (101, 67), (333, 251), (480, 640)]
LARGE = [(999, 1601), (40, 6000), (6000, 40)]


def colour_wheel(height: int, width: int) -> np.ndarray:
    """Fully saturated hues around the centre, white at it: the chroma-heavy case."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    hue = (np.arctan2(y - cy, x - cx) / (2 * np.pi)) % 1.0
    sat = np.clip(np.hypot((y - cy) / max(cy, 1), (x - cx) / max(cx, 1)), 0, 1)
    hsv = np.stack([hue * 255, sat * 255, np.full_like(hue, 255)], axis=2).astype(np.uint8)
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


def photo(height: int, width: int, k: int) -> np.ndarray:
    names = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"]
    with Image.open(Path(skimage.__file__).parent / "data" / names[k % len(names)]) as img:
        rgb = img.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(rgb)


def _simplejpeg(rgb: np.ndarray, quality: int, sub: str) -> bytes:
    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=quality, colorsubsampling=sub)


def _pillow(pixels: np.ndarray | Image.Image, **options: object) -> bytes:
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, "JPEG", **options)
    return buf.getvalue()


def corpus(large: bool = True) -> Iterator[tuple[str, bytes]]:
    """(name, JPEG bytes)."""
    qualities = (20, 55, 75, 90, 100)
    for n, (h, w) in enumerate(SIZES + (LARGE if large else [])):
        contents = {"photo": photo(h, w, n), "wheel": colour_wheel(h, w)}
        if h >= 16 and w >= 16:
            contents["synthetic"] = synthetic_rgb(h, w, seed=n)
        for kind, rgb in contents.items():
            for k, sub in enumerate(SUBSAMPLINGS):
                q = qualities[(n + k) % len(qualities)]
                yield f"{kind} {w}x{h} {sub} q{q}", _simplejpeg(rgb, q, sub)
        rgb = contents["wheel"]
        yield f"wheel {w}x{h} progressive", _pillow(rgb, quality=80, progressive=True)
        yield f"wheel {w}x{h} restart", _pillow(rgb, quality=70, restart_marker_blocks=2)
        yield f"photo {w}x{h} grey", _pillow(contents["photo"][:, :, 1], quality=85)
        cmyk = Image.fromarray(contents["photo"]).convert("CMYK")
        yield f"photo {w}x{h} cmyk", _pillow(cmyk, quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the reference hashes the pixels as stored
    yield "photo exif-6", _pillow(photo(300, 400, 1), quality=88, exif=exif.tobytes())
    yield "wheel 37x53 q55 4:2:0 (Pillow)", _pillow(colour_wheel(53, 37), quality=55)
