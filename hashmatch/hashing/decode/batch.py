"""Batch image decoders beside the CPU path: DALI (hashmatch.hashing.decode.dali) and nvImageCodec
(hashmatch.hashing.decode.nvimagecodec), on the GPU or on the CPU.

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

from hashmatch.config import DecoderChoice, EngineConfig, HashMode, usable_cores
from hashmatch.errors import ConfigError
from hashmatch.hashing.decode.images import Header, ImageFormat

# Pillow modes whose RGB conversion the library decoders reproduce exactly (8 bits a
# channel stored). CMYK, 16-bit (whatever Pillow's mode says) and GIF stay on the CPU path.
_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P", "PA"})
_FORMATS = frozenset(
    {ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP, ImageFormat.BMP, ImageFormat.TIFF}
)


class HashBackend(Protocol):
    name: str  # "cpu" or "gpu": a decoder sits beside the backend that hashes its output


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


def select_decoder(config: EngineConfig, backend: HashBackend) -> BatchDecoder | None:
    """A library batch decoder for exact-mode batches where asked, or by default beside
    the GPU backend (DALI, else nvImageCodec); None: the CPU path decodes."""
    # Imported here: each pulls in its library's bindings when installed.
    from hashmatch.hashing.decode.dali import DaliDecoder, dali_installed
    from hashmatch.hashing.decode.nvimagecodec import NvImageCodecDecoder, nvimgcodec_installed

    choice = config.decoder
    if config.mode is not HashMode.EXACT or choice is DecoderChoice.CPU:
        return None
    if choice is DecoderChoice.AUTO and backend.name != "gpu":
        return None  # on the CPU, the CPU path is faster than a library's RGB decode
    device_id = 0 if backend.name == "gpu" else None
    # The decoder's host-side work (Huffman for nvJPEG's hybrid path, PNG, WebP) on every
    # core: one batch decodes at a time (the decoders lock), so it is not shared out.
    threads = max(2, usable_cores())
    if choice in (DecoderChoice.AUTO, DecoderChoice.DALI) and dali_installed():
        return DaliDecoder(device_id=device_id, threads=threads)
    if choice in (DecoderChoice.AUTO, DecoderChoice.NVIMAGECODEC) and nvimgcodec_installed():
        return NvImageCodecDecoder(device_id=device_id, threads=threads)
    if choice is not DecoderChoice.AUTO:
        package = "nvidia-dali" if choice is DecoderChoice.DALI else "nvidia-nvimgcodec"
        raise ConfigError(f"decoder {choice.value!r} asked for, but {package} is not installed")
    return None
