"""A JPEG's Y, Cb and Cr planes as stored (no upsampling, no colour conversion), from
libjpeg-turbo's TurboJPEG library (Debian: libturbojpeg0).

Pillow's RGB is libjpeg-turbo's fancy chroma upsampling plus its integer YCbCr -> RGB;
kernels/ycc.py does both inside the resampling pass, so an exact hash costs the planes'
decode and not a full RGB one. The library is optional: without it exact mode decodes
RGB (the same hashes, slower). Found once, on first use. A fresh handle for every file
(under a microsecond): a handle keeps the tables of the files it read, so one damaged
file would break the next ones, and a file without tables would decode with another
caller's (Pillow starts afresh each time). ctypes releases the GIL for the decode.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass

import numpy as np

from hashmatch.kernels.ycc import YccPlanes

# TurboJPEG's subsampling codes (TJSAMP_*) -> chroma (rows, columns) per sample.
_CHROMA_FACTORS = {0: (1, 1), 1: (1, 2), 2: (2, 2), 4: (2, 1), 5: (1, 4)}
TJSAMP_GRAY = 3
TJCS_YCBCR, TJCS_GRAY = 1, 2
TJFLAG_ACCURATEDCT = 4096  # the islow IDCT, which Pillow uses


@dataclass(frozen=True, slots=True)
class JpegHeader:
    width: int
    height: int
    subsampling: int  # TJSAMP_*, -1 where TurboJPEG cannot name it
    colorspace: int  # TJCS_*


class TurboJpeg:
    """The few TurboJPEG 2 calls we need (the API that Debian 12 and 13 ship)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        lib.tjInitDecompress.restype = ctypes.c_void_p
        lib.tjDestroy.argtypes = [ctypes.c_void_p]
        int_p = ctypes.POINTER(ctypes.c_int)
        lib.tjDecompressHeader3.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, int_p, int_p, int_p, int_p
        ]  # fmt: skip
        lib.tjDecompressToYUVPlanes.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, int_p, ctypes.c_int, ctypes.c_int,
        ]  # fmt: skip
        lib.tjPlaneWidth.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.tjPlaneHeight.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]

    def open(self) -> Decompressor:
        """A handle for one file: `with tj.open() as d: d.header(...); d.planes(...)`."""
        return Decompressor(self._lib)


class Decompressor:
    """One TurboJPEG handle, for one file."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._handle = lib.tjInitDecompress()
        if not self._handle:
            raise MemoryError("tjInitDecompress failed")

    def __enter__(self) -> Decompressor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._lib.tjDestroy(self._handle)

    def header(self, data: bytes) -> JpegHeader | None:
        """Size, subsampling and colour space, or None where TurboJPEG cannot read them."""
        w, h, sub, cs = (ctypes.c_int() for _ in range(4))
        refs = (ctypes.byref(v) for v in (w, h, sub, cs))
        if self._lib.tjDecompressHeader3(self._handle, data, len(data), *refs) != 0:
            return None
        if w.value < 1 or h.value < 1:  # a file cut off inside its header: no frame yet
            return None
        return JpegHeader(w.value, h.value, sub.value, cs.value)

    def planes(self, data: bytes, header: JpegHeader) -> YccPlanes | np.ndarray | None:
        """The Y plane (greyscale) or the three planes of a YCbCr JPEG, or None where this
        file is not for us: another colour space or subsampling, or any warning or error
        (the caller then decodes as the reference does, so damaged files behave as there).
        """
        grey = header.subsampling == TJSAMP_GRAY and header.colorspace == TJCS_GRAY
        factors = _CHROMA_FACTORS.get(header.subsampling)
        if not grey and (factors is None or header.colorspace != TJCS_YCBCR):
            return None
        count = 1 if grey else 3
        lib, w, h, sub = self._lib, header.width, header.height, header.subsampling
        planes = [
            np.empty((lib.tjPlaneHeight(c, h, sub), lib.tjPlaneWidth(c, w, sub)), np.uint8)
            for c in range(count)
        ]
        pointers = (ctypes.c_void_p * 3)(*[p.ctypes.data for p in planes])
        strides = (ctypes.c_int * 3)(*[p.shape[1] for p in planes])
        done = lib.tjDecompressToYUVPlanes(
            self._handle, data, len(data), pointers, w, strides, h, TJFLAG_ACCURATEDCT
        )
        if done != 0:  # TurboJPEG 2 fails on warnings too: the reference path decides
            return None
        if grey:
            return planes[0][:h, :w]
        assert factors is not None
        return YccPlanes(planes[0][:h, :w], planes[1], planes[2], factors[0], factors[1])


@functools.cache
def turbojpeg() -> TurboJpeg | None:
    """The library, where it is installed (looked for once)."""
    name = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
    try:
        lib = ctypes.CDLL(name)
        lib.tjDecompressToYUVPlanes  # noqa: B018 (TurboJPEG 1.4+, checked at load)
    except (OSError, AttributeError):
        return None
    return TurboJpeg(lib)
