"""Image bytes -> pixels for PDQ: a luma plane (uint8 [H, W]), RGB (uint8 [H, W, 3]) or
a JPEG's YCbCr planes (kernels/ycc.py turns them into Pillow's luma, bit for bit).

Everything is decoded as the reference path does (`Image.open(...).convert("RGB")`:
first frame, EXIF orientation not applied, alpha dropped), JPEG through libjpeg-turbo:
its planes where libturbojpeg is installed, else simplejpeg's RGB with the same fancy
upsampling and IDCT as Pillow's (equal to it byte for byte). What those cannot take
(CMYK, an unusual subsampling, a damaged file) goes to Pillow itself. Sizes are checked
from the header before any pixel is decoded, so a decompression bomb costs nothing.
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
from hashmatch.hashing.decode.jpeg_markers import scan_markers
from hashmatch.hashing.decode.turbojpeg import TJCS_GRAY, turbojpeg
from hashmatch.kernels.ycc import YccPlanes

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

    pixels: np.ndarray | YccPlanes  # uint8 [H, W] luma, [H, W, 3] RGB, or JPEG planes
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
# A colour JPEG: its planes (at most 3 bytes, 4:4:4) or RGB, and the float32 luma plane
# made of them for the GPU or for a short, wide image.
YCC = "YCbCr"


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """The memory decoding an image takes at its peak, from its header alone."""
    if mode == Y_PLANE:
        return width * height * 2
    if mode == YCC:
        return width * height * (3 + 4)
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


FREE_SCANS = 12  # libjpeg's progressive script writes 10 scans, 6 for grey


def check_scans(data: bytes, config: EngineConfig) -> None:
    """A JPEG refused (SizeOutOfRange) where it may hold more than max_jpeg_scans scans,
    or, past FREE_SCANS, more scans x pixels than max_jpeg_scan_pixels (the size read
    from the header only then: never for a baseline or standard progressive file)."""
    scans = scan_markers(data)
    if scans > config.max_jpeg_scans:
        raise SizeOutOfRange(f"JPEG with over {config.max_jpeg_scans} scans (the limit)")
    if scans <= FREE_SCANS:
        return
    width, height = _pillow_size(data)
    if scans * width * height > config.max_jpeg_scan_pixels:
        raise SizeOutOfRange(
            f"JPEG of {width}x{height} with up to {scans} scans: over the limit of"
            f" {config.max_jpeg_scan_pixels} scan pixels"
        )


def _pillow_size(data: bytes) -> tuple[int, int]:
    """The frame's size by Pillow's header reader; a file it cannot read is refused (a
    decoder that skips what Pillow stops at must not get past the scan budget)."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            return img.width, img.height
    except Exception as exc:
        raise CorruptImage(f"jpeg header: {exc}") from None


def decode(data: bytes, config: EngineConfig) -> DecodedImage:
    """Decode for the configured hash mode; raises a typed HashmatchError on bad input."""
    if len(data) > config.max_bytes:
        raise TooLarge(f"{len(data)} bytes, over the limit of {config.max_bytes}")
    fmt = sniff(data)
    if fmt is ImageFormat.JPEG:
        check_scans(data, config)
    if fmt is ImageFormat.JPEG and config.mode is not HashMode.CPP:
        if config.mode is HashMode.EXACT:
            decoded = _jpeg_exact(data, config)
        else:
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


def jpeg_path(config: EngineConfig) -> str:
    """How exact mode decodes a colour JPEG here: "planes" (libturbojpeg) or "rgb"."""
    return "planes" if config.jpeg_planes and turbojpeg() is not None else "rgb"


def _jpeg_exact(data: bytes, config: EngineConfig) -> DecodedImage | None:
    """Pillow's pixels of a YCbCr or grey JPEG, or None where Pillow itself must decode."""
    tj = turbojpeg() if config.jpeg_planes else None
    if tj is None:
        return _jpeg_rgb(data, config)
    with tj.open() as jpeg:
        header = jpeg.header(data)
        if header is None:
            return None
        grey = header.colorspace == TJCS_GRAY
        check_size(header.width, header.height, config, Y_PLANE if grey else YCC)
        planes = jpeg.planes(data, header)
    if planes is None:
        return None
    return DecodedImage(planes, ImageFormat.JPEG, header.width, header.height)


def _jpeg_header(data: bytes) -> tuple[int, int, str]:
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        raise CorruptImage(f"JPEG header: {exc}") from None
    return width, height, colorspace


def _jpeg_rgb(data: bytes, config: EngineConfig) -> DecodedImage | None:
    """simplejpeg's RGB (accurate IDCT, fancy upsampling: Pillow's bytes) or grey plane."""
    width, height, colorspace = _jpeg_header(data)
    if colorspace not in ("YCbCr", "Gray"):
        return None  # CMYK/YCCK: the reference's Pillow conversion decides the colours
    grey = colorspace == "Gray"
    check_size(width, height, config, Y_PLANE if grey else YCC)
    try:
        pixels = simplejpeg.decode_jpeg(
            data, colorspace="GRAY" if grey else "RGB", fastdct=False, fastupsample=False
        )
    except ValueError:  # damaged: Pillow decides, as for the reference
        return None
    if grey:
        pixels = np.ascontiguousarray(pixels[:, :, 0])
    return DecodedImage(pixels, ImageFormat.JPEG, width, height)


def _jpeg_luma(data: bytes, config: EngineConfig) -> DecodedImage | None:
    """The Y plane of a YCbCr/greyscale JPEG (luma and fast modes), or None where only an
    RGB decode will do."""
    width, height, colorspace = _jpeg_header(data)
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


def _decode_mode(header: Header, config: EngineConfig) -> str:
    """What decoding this image holds in memory: a JPEG's Y plane or its planes (RGB), on
    every path alike, else Pillow's mode."""
    if header.format is not ImageFormat.JPEG or header.mode not in ("RGB", "L"):
        return header.mode
    if header.mode == "L" or config.mode is not HashMode.EXACT:
        return Y_PLANE
    return YCC


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
    if fmt is ImageFormat.JPEG:
        check_scans(data, config)
    try:
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]]) as img:
            header = Header(fmt, img.width, img.height, img.mode, _deep(img))
    except Image.DecompressionBombError as exc:
        raise SizeOutOfRange(str(exc)) from None
    except Exception as exc:  # Pillow raises many types for a bad header
        raise CorruptImage(f"{fmt.value} header: {exc}") from None
    check_size(header.width, header.height, config, _decode_mode(header, config))
    return header
