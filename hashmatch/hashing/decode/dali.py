"""Batch image decode through NVIDIA DALI: on the GPU (the "mixed" decoder, NVJPG hardware
where the card has it) or on the CPU (a pipeline with device_id=None, which is how CI runs
it: no CUDA needed). One of the two BatchDecoders (hashmatch.hashing.decode.batch).

Output is RGB, so the hash follows the reference's path exactly (Pillow's RGB, then luma
in float), with EXIF orientation not applied (the reference does not) and libjpeg's
"fancy" chroma upsampling on the GPU too (nvJPEG's default differs from Pillow's). DALI
fails a whole batch when one item does not decode: that batch is then handed back
undecoded, and the engine decodes it item by item on the CPU path, which gives each bad
item its typed error. On a GPU the decoded images are copied, on the device, into CuPy
arrays: DALI reuses its output buffers on the next run.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hashmatch.hashing.decode.batch import importable

log = logging.getLogger(__name__)


def dali_installed() -> bool:
    return importable("nvidia.dali")


def sync_pipeline(
    graph: Callable[[], Any], batch_size: int, threads: int, device_id: int | None
) -> Any:
    """A built DALI pipeline that runs only when asked (not pipelined, no prefetch): each
    run works on what was fed just before it."""
    dali: Any = importlib.import_module("nvidia.dali")  # untyped: its annotations are partial
    pipe = dali.pipeline_def(
        graph,
        batch_size=batch_size,
        num_threads=threads,
        device_id=device_id,
        exec_pipelined=False,
        exec_async=False,
        prefetch_queue_depth=1,
    )()
    pipe.build()
    return pipe


class DaliDecoder:
    name = "dali"

    def __init__(self, max_batch: int = 64, device_id: int | None = None, threads: int = 2):
        self.max_batch = max_batch
        self.device_id = device_id
        self.threads = threads
        self._pipe = self._build()
        # The server runs several engine batches at once over one engine; a pipeline's
        # feed, run and copy-out must be one step (concurrent use hangs DALI).
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return "cpu" if self.device_id is None else f"gpu:{self.device_id}"

    def _build(self) -> Any:
        # Imported as untyped modules: DALI's own annotations are partial.
        fn: Any = importlib.import_module("nvidia.dali.fn")
        types: Any = importlib.import_module("nvidia.dali.types")

        def pipeline() -> Any:
            encoded = fn.external_source(name="encoded", dtype=types.UINT8)
            device = "cpu" if self.device_id is None else "mixed"
            return fn.decoders.image(
                encoded,
                device=device,
                output_type=types.RGB,
                adjust_orientation=False,
                jpeg_fancy_upsampling=True,
            )

        # Synchronous, no prefetch: each run decodes exactly the batch just fed.
        return sync_pipeline(pipeline, self.max_batch, self.threads, self.device_id)

    def decode_many(self, items: Sequence[bytes]) -> list[Any | None]:
        """RGB uint8[h, w, 3] per item (CuPy on the GPU); None for every item of a batch
        DALI refused."""
        out: list[Any | None] = []
        for lo in range(0, len(items), self.max_batch):
            chunk = items[lo : lo + self.max_batch]
            with self._lock:
                out += self._decode_chunk(chunk)
        return out

    def _decode_chunk(self, chunk: Sequence[bytes]) -> list[Any | None]:
        try:
            self._pipe.feed_input("encoded", [np.frombuffer(b, np.uint8) for b in chunk])
            (images,) = self._pipe.run()
            return self._own(images, len(chunk))
        except Exception as exc:  # DALI raises for the batch; the CPU path sorts it out
            log.info("DALI refused a batch of %d (%s): decoding it on the CPU", len(chunk), exc)
            self._pipe = self._build()  # a pipeline that raised is not reused
            return [None] * len(chunk)

    def _own(self, images: Any, n: int) -> list[Any]:
        """Copies of a run's outputs that outlive the next run (host or device memory)."""
        if self.device_id is None:
            return [np.array(images.at(k)) for k in range(n)]
        import cupy

        # Wait for the decode (whether or not the array interface names DALI's stream:
        # once a batch costs little), then copy device to device: nothing crosses to the
        # host.
        cupy.cuda.Device(self.device_id).synchronize()
        return [cupy.array(images[k], copy=True) for k in range(n)]
