"""Image bytes -> pixels for PDQ: a luma plane (uint8 [H, W]) or RGB (uint8 [H, W, 3]).

JPEG goes through libjpeg-turbo (simplejpeg), reading the Y plane directly when the
file is YCbCr or greyscale; everything else goes through Pillow exactly as the
reference path does (`Image.open(...).convert("RGB")`: first frame, EXIF orientation
not applied, alpha dropped). Sizes are checked from the header before any pixel is
decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import simplejpeg
from PIL import Image, ImageFile

from hashmatch.config import EngineConfig, HashMode
from hashmatch.errors import CorruptImage, NotAnImage, SizeOutOfRange, TooLarge

# Our own pixel limit (EngineConfig.max_pixels) is checked before decoding; Pillow's
# global bomb check would only warn or fail at a different, fixed limit.
Image.MAX_IMAGE_PIXELS = None
# Pillow warns (UserWarning) about damage it works around, e.g. corrupt EXIF in a TIFF;
# the image still decodes, and per-upload warnings would only flood the server's log.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

CPP_DOWNSAMPLE = 512


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    WEBP = "webp"
    BMP = "bmp"
    TIFF = "tiff"


_PIL_FORMATS = {
    ImageFormat.JPEG: "JPEG",
    ImageFormat.PNG: "PNG",
    ImageFormat.GIF: "GIF",
    ImageFormat.WEBP: "WEBP",
    ImageFormat.BMP: "BMP",
    ImageFormat.TIFF: "TIFF",
}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Pixels to hash, and the size of the image as stored (pixels may be scaled)."""

    pixels: np.ndarray  # uint8 [H, W] luma or [H, W, 3] RGB
    format: ImageFormat
    width: int
    height: int


def sniff(data: bytes) -> ImageFormat:
    """The format from the magic bytes; only the formats we accept."""
    if not data:
        raise NotAnImage("empty input")
    if data[:3] == b"\xff\xd8\xff":
        return ImageFormat.JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ImageFormat.PNG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ImageFormat.GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if data[:2] == b"BM":
        return ImageFormat.BMP
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ImageFormat.TIFF
    raise NotAnImage("not a JPEG, PNG, GIF, WebP, BMP or TIFF image")


# Bytes a pixel takes in Pillow as decoded (it keeps RGB in 4, as RGBA; modes not listed
# take 4), to which the RGB conversion (4) and its array (3) add while both are alive.
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
_TO_RGB = 4 + 3
Y_PLANE = "Y"  # a JPEG's luma as libjpeg-turbo hands it over: 1 byte, copied once


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """The memory decoding an image takes at its peak, from its header alone."""
    if mode == Y_PLANE:
        return width * height * 2
    return width * height * (_BYTES_PER_PIXEL.get(mode, 4) + _TO_RGB)


def check_size(width: int, height: int, config: EngineConfig, mode: str = "RGB") -> None:
    """Refused from the header, before any pixel is decoded: too many pixels, too small a
    side, or more memory to decode than an item may take (a 3.8 KB lossless WebP of
    16383 x 6000 decodes to 393 MB in Pillow, and to 1.1 GB with its RGB conversion)."""
    if width * height > config.max_pixels:
        raise SizeOutOfRange(
            f"{width}x{height} is {width * height} pixels, over the limit of {config.max_pixels}"
        )
    if min(width, height) < config.min_dimension:
        raise SizeOutOfRange(
            f"{width}x{height} is under the minimum of {config.min_dimension} px on a side"
        )
    need = decoded_bytes(width, height, mode)
    if need > config.max_decoded_bytes:
        raise SizeOutOfRange(
            f"{width}x{height} {mode} decodes to {need} bytes, over the limit of"
            f" {config.max_decoded_bytes}"
        )


def decode(data: bytes, config: EngineConfig) -> DecodedImage:
    """Decode for the configured hash mode; raises a typed HashmatchError on bad input."""
    if len(data) > config.max_bytes:
        raise TooLarge(f"{len(data)} bytes, over the limit of {config.max_bytes}")
    fmt = sniff(data)
    if fmt is ImageFormat.JPEG and config.mode is not HashMode.CPP:
        decoded = _jpeg_luma(data, config)
        if decoded is not None:
            return decoded
    pixels = _pillow_rgb(data, fmt, config)
    height, width = pixels.shape[:2]
    if config.mode is HashMode.CPP:
        pixels = nearest_512(pixels)
    return DecodedImage(pixels, fmt, width, height)


def nearest_512(rgb: np.ndarray) -> np.ndarray:
    """Meta's C++ hasher's shrink: over 512 px on a side -> 512x512, src = floor(dst*W/512)."""
    h, w = rgb.shape[:2]
    if h <= CPP_DOWNSAMPLE and w <= CPP_DOWNSAMPLE:
        return rgb
    rows = np.arange(CPP_DOWNSAMPLE) * h // CPP_DOWNSAMPLE
    cols = np.arange(CPP_DOWNSAMPLE) * w // CPP_DOWNSAMPLE
    return np.ascontiguousarray(rgb[rows][:, cols])


def _jpeg_luma(data: bytes, config: EngineConfig) -> DecodedImage | None:
    """The Y plane of a YCbCr/greyscale JPEG, or None where only an RGB decode will do."""
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise CorruptImage(f"JPEG header: {exc}") from None
    check_size(width, height, config, Y_PLANE if colorspace in ("YCbCr", "Gray") else "CMYK")
    if colorspace not in ("YCbCr", "Gray"):
        return None  # CMYK/YCCK: the reference's Pillow conversion decides the colours
    kwargs = {}
    if config.mode is HashMode.FAST:
        side = config.fast_min_side
        kwargs = {"min_height": min(side, height), "min_width": min(side, width), "min_factor": 1}
    try:
        y = simplejpeg.decode_jpeg(data, colorspace="GRAY", **kwargs)
    except ValueError as exc:
        raise CorruptImage(f"JPEG decode: {exc}") from None
    return DecodedImage(np.ascontiguousarray(y[:, :, 0]), ImageFormat.JPEG, width, height)


def _pillow_rgb(data: bytes, fmt: ImageFormat, config: EngineConfig) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]]) as img:
            check_size(img.width, img.height, config, img.mode)
            rgb = img.convert("RGB")
        return np.asarray(rgb)
    except (SizeOutOfRange, TooLarge):
        raise
    except Image.DecompressionBombError as exc:
        raise SizeOutOfRange(str(exc)) from None
    except MemoryError:
        raise TooLarge("not enough memory to decode this image") from None
    except Exception as exc:  # Pillow raises many types for bad files; all mean "corrupt"
        raise CorruptImage(f"{fmt.value} decode: {exc}") from None


@dataclass(frozen=True, slots=True)
class Header:
    """What an image's header says, read without decoding a pixel."""

    format: ImageFormat
    width: int
    height: int
    mode: str  # Pillow's mode: "RGB", "L", "P", "RGBA", "CMYK", "I;16", ...
    # 16 bits a sample stored, though Pillow's mode says "RGB"/"RGBA"/"LA": Pillow keeps
    # the high byte, where DALI scales (off by one here and there).
    deep: bool = False


def _deep(img: ImageFile.ImageFile) -> bool:
    """Whether the stored samples are 16-bit (PNG "RGB;16B", TIFF "RGB;16N", ...)."""
    for tile in img.tile:
        args = tile[3]  # (codec, extents, offset, args): a plain tuple before Pillow 11
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str) and ";16" in raw:
            return True
    return False


def peek(data: bytes, config: EngineConfig) -> Header:
    """Format, size and mode from the header; the same typed errors as decode."""
    if len(data) > config.max_bytes:
        raise TooLarge(f"{len(data)} bytes, over the limit of {config.max_bytes}")
    fmt = sniff(data)
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]]) as img:
            header = Header(fmt, img.width, img.height, img.mode, _deep(img))
    except Image.DecompressionBombError as exc:
        raise SizeOutOfRange(str(exc)) from None
    except Exception as exc:  # Pillow raises many types for a bad header
        raise CorruptImage(f"{fmt.value} header: {exc}") from None
    # A YCbCr or grey JPEG costs what its decode to luma costs, on every path alike.
    luma = header.format is ImageFormat.JPEG and header.mode in ("RGB", "L")
    check_size(header.width, header.height, config, Y_PLANE if luma else header.mode)
    return header
