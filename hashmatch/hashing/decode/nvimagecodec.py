"""Batch image decode through nvImageCodec, the codec library DALI decodes with, for
machines that have it without DALI (a 25 MB wheel against DALI's ~200 MB). One of the two
BatchDecoders (hashmatch.hashing.decode.batch).

On a GPU it decodes with nvJPEG (NVJPG hardware where the card has it, with the
`nvidia-nvjpeg` wheel installed) into device memory, handed to the GPU backend as CuPy
arrays without a copy; with device_id None it decodes on the CPU (libjpeg-turbo, libpng,
libwebp, libtiff), which is how CI tests it. Output is RGB with EXIF orientation not
applied and libjpeg's "fancy" chroma upsampling, so it equals Pillow's byte for byte on
what `takes` accepts. Unlike DALI it fails per item: an item it cannot decode comes back
None, and the engine decodes it on the CPU path for its typed error.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from hashmatch.hashing.decode.batch import importable

log = logging.getLogger(__name__)


def nvimgcodec_installed() -> bool:
    return importable("nvidia.nvimgcodec")


class NvImageCodecDecoder:
    name = "nvimagecodec"

    def __init__(self, device_id: int | None = None, threads: int = 0):
        # Its own log level, read when it loads: errors only. Bad items are expected here
        # and each gets a typed error; a warning per item on stderr would flood the
        # server's log. An operator's own setting wins.
        os.environ.setdefault("PYNVIMGCODEC_VERBOSITY", "1")
        # Untyped: its bundled annotations are partial.
        self._codec: Any = importlib.import_module("nvidia.nvimgcodec")
        self.device_id = device_id
        codec = self._codec
        cpu = device_id is None
        self._decoder = codec.Decoder(
            device_id=codec.NVIMGCODEC_DEVICE_CPU_ONLY if cpu else device_id,
            max_num_cpu_threads=threads,
            backends=[codec.Backend(codec.CPU_ONLY)] if cpu else None,  # None: all
            options=":fancy_upsampling=1",
        )
        # One decode at a time: the server runs several engine batches at once over one
        # engine, and a decoder used concurrently breaks its internal futures.
        self._lock = threading.Lock()
        self._params = codec.DecodeParams(
            apply_exif_orientation=False,
            color_spec=codec.ColorSpec.SRGB,
            allow_any_depth=False,
            sample_format=codec.SampleFormat.I_RGB,
        )

    @property
    def device(self) -> str:
        return "cpu" if self.device_id is None else f"gpu:{self.device_id}"

    def decode_many(self, items: Sequence[bytes]) -> list[Any | None]:
        """RGB uint8[h, w, 3] per item (CuPy on the GPU); None where an item failed."""
        streams: list[Any | None] = []
        for data in items:
            try:
                streams.append(self._codec.CodeStream(data))
            except Exception:  # an unparseable header: the CPU path says why
                streams.append(None)
        parsed = [s for s in streams if s is not None]
        try:
            with self._lock:
                decoded = self._decoder.decode(parsed, params=self._params) if parsed else []
        except Exception as exc:  # the library raising for a batch: the CPU path sorts it
            log.info("nvImageCodec refused a batch of %d (%s): CPU path", len(parsed), exc)
            return [None] * len(items)
        images = iter(self._own(decoded))
        return [None if s is None else next(images) for s in streams]

    def _own(self, decoded: list[Any]) -> list[Any | None]:
        """NumPy (CPU) or CuPy (GPU) arrays of a batch's images; None where one failed."""
        if self.device_id is None:
            return [None if im is None else np.asarray(im.cpu()) for im in decoded]
        import cupy

        # Wait for the decode once a batch, whether or not each image's array interface
        # names its stream; then zero-copy: each CuPy array keeps its image alive.
        cupy.cuda.Device(self.device_id).synchronize()
        return [None if im is None else cupy.asarray(im) for im in decoded]
