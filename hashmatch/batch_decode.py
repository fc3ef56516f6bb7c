"""Batch image decoders beside the CPU path: DALI (hashmatch.dali_decode) and nvImageCodec
(hashmatch.nvimgcodec_decode), on the GPU or on the CPU.

Both give RGB that equals Pillow's byte for byte on what `takes` accepts, so the hashes
are the reference's bit for bit (tests/test_batch_decode.py). On a GPU the pixels stay
in device memory (CuPy arrays) for the GPU backend: no host round trip between decode
and hash. An item a decoder cannot do comes back as None and goes through the CPU path,
which gives it its typed error.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol

from hashmatch.decode import Header, ImageFormat

# Pillow modes whose RGB conversion the library decoders reproduce exactly (8 bits a
# channel stored). CMYK, 16-bit (whatever Pillow's mode says) and GIF stay on the CPU path.
_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P", "PA"})
_FORMATS = frozenset(
    {ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP, ImageFormat.BMP, ImageFormat.TIFF}
)


def importable(module: str) -> bool:
    """Whether an optional library (DALI, nvImageCodec) is installed."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def takes(header: Header) -> bool:
    """Whether the batch decoders decode this image to exactly the reference's RGB."""
    return header.format in _FORMATS and header.mode in _MODES and not header.deep


class BatchDecoder(Protocol):
    name: str  # "dali", "nvimagecodec": the [engine] decoder value that asks for it

    # "cpu" or "gpu:<id>": what the engine reports as the decode device.
    @property
    def device(self) -> str: ...

    def decode_many(self, items: Sequence[bytes]) -> list[Any | None]:
        """RGB uint8[h, w, 3] per item: a NumPy array on the CPU, a CuPy array on the
        GPU; None for an item the decoder could not do (the CPU path retries it)."""
        ...
