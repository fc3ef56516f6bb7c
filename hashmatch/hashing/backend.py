"""The one place that decides where the math runs.

A backend turns decoded pixels into PDQ hashes in two steps:
- prepare(pixels): per item, in the worker that decoded it (CPU: the banded resample
  to the 64x64 buffer, so it runs in parallel; GPU: nothing, pixels go up as they are,
  or stay where they are when a GPU decoder left them in device memory);
- finish(prepared, dihedral): once per batch (DCT, median, bits, quality through the
  array namespace; the GPU also resamples here, bucketed by image size).
Nothing else in hashmatch asks whether there is a GPU.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.errors import ConfigError
from hashmatch.kernels import ycc
from hashmatch.kernels.constants import PDQ_BUFFER
from hashmatch.kernels.cpu import resample_to_64
from hashmatch.kernels.pdq import hash_buffers
from hashmatch.kernels.resample import ByteBoundedCache, columns_first, resampler
from hashmatch.kernels.ycc import YccPlanes

log = logging.getLogger(__name__)


class Backend(Protocol):
    name: str
    device: str  # what metrics and health report: the CPU architecture or the GPU's name
    # Whether prepare() keeps the decoded pixels until finish() (the engine then hashes a
    # batch in parts bounded by max_batch_decoded_bytes).
    keeps_pixels: bool

    def prepare(self, pixels: Any) -> Any: ...

    def finish(
        self, prepared: Sequence[np.ndarray], dihedral: bool
    ) -> tuple[np.ndarray, np.ndarray]: ...


class CpuBackend:
    """NumPy + Numba CPU kernels."""

    name = "cpu"
    device = platform.machine() or "cpu"
    keeps_pixels = False  # prepare() resamples to 64 x 64 at once

    def prepare(self, pixels: np.ndarray | YccPlanes) -> np.ndarray:
        h, w = pixels.shape[:2]
        return resample_to_64(pixels, resampler(h), resampler(w))

    def finish(
        self, prepared: Sequence[np.ndarray], dihedral: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if not prepared:
            return _empty(dihedral)
        hashes, quality = hash_buffers(np.stack(prepared), dihedral, np)
        return hashes, quality


class GpuBackend:
    """CuPy arrays + Numba CUDA kernels; only 32 bytes + quality per image come back."""

    name = "gpu"
    keeps_pixels = True

    def __init__(self, cupy: Any) -> None:
        # CuPy's own switch (read once, here): TF32 keeps 10 mantissa bits in matmul,
        # enough to move DCT coefficients across the median and flip hash bits.
        if os.environ.get("CUPY_TF32", "0") != "0":
            raise ConfigError("CUPY_TF32 is set: PDQ's DCT needs full float32 (unset it)")
        self.cp = cupy
        # The device copies of the bands, bounded like the host ones.
        self._bands: ByteBoundedCache[int, tuple[Any, Any]] = ByteBoundedCache(
            self._upload_band, lambda b: int(b[0].nbytes + b[1].nbytes), 64 << 20, 8 << 20
        )
        self.device = _device_name(cupy)
        self._out_of_memory: type[BaseException] = cupy.cuda.memory.OutOfMemoryError

    def prepare(self, pixels: Any) -> Any:
        if isinstance(pixels, YccPlanes):  # a JPEG the CPU path decoded: its luma goes up
            return ycc.luma_plane(pixels.y, pixels.cb, pixels.cr, pixels.v, pixels.h)
        return pixels  # host (NumPy) or, from a GPU decoder, device (CuPy) pixels

    def finish(
        self, prepared: Sequence[np.ndarray], dihedral: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if not prepared:
            return _empty(dihedral)
        try:
            return self._finish(prepared, dihedral)
        except self._out_of_memory:
            # Out of device memory: halve the batch rather than fail it; one image that
            # still does not fit is hashed on the CPU (same math, same hash).
            pool = getattr(self.cp, "get_default_memory_pool", None)
            if pool is not None:
                pool().free_all_blocks()
            if len(prepared) == 1:
                log.warning(
                    "GPU out of memory on one %s image: hashed on the CPU", prepared[0].shape
                )
                cpu = CpuBackend()
                return cpu.finish([cpu.prepare(self.cp.asnumpy(prepared[0]))], dihedral)
            mid = len(prepared) // 2
            head = self.finish(prepared[:mid], dihedral)
            tail = self.finish(prepared[mid:], dihedral)
            return np.concatenate([head[0], tail[0]]), np.concatenate([head[1], tail[1]])

    def _finish(
        self, prepared: Sequence[np.ndarray], dihedral: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        cp = self.cp
        buffers = cp.empty((len(prepared), PDQ_BUFFER, PDQ_BUFFER), dtype=cp.float32)
        buckets: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for k, px in enumerate(prepared):
            buckets[px.shape].append(k)
        for shape, members in buckets.items():
            batch = self._on_device([prepared[k] for k in members])
            buffers[cp.asarray(members)] = self._resample(batch, shape[0], shape[1])
        hashes, quality = hash_buffers(buffers, dihedral, cp)
        return cp.asnumpy(hashes), cp.asnumpy(quality)

    def _on_device(self, images: list[Any]) -> Any:
        """One same-shape batch in device memory: host images go up in one copy, images a
        GPU decoder left on the device are stacked there (they never visit the host)."""
        cp = self.cp
        if not any(isinstance(im, cp.ndarray) for im in images):
            return cp.asarray(np.stack(images))
        return cp.stack([cp.asarray(im) for im in images])

    def _upload_band(self, n: int) -> tuple[Any, Any]:
        r = resampler(n)
        return self.cp.asarray(r.starts), self.cp.asarray(r.weights)

    def _band(self, n: int) -> tuple[Any, Any]:
        return self._bands.get(n)

    def _resample(self, batch: Any, h: int, w: int) -> Any:
        if columns_first(h, w):  # as the CPU kernels do, for the same bits
            return self._resample(cp_swap(self.cp, batch), w, h).transpose(0, 2, 1)
        from hashmatch.kernels import cuda as k

        cp = self.cp
        n = batch.shape[0]
        if batch.ndim == 4:
            luma = cp.empty((n, h, w), dtype=cp.float32)
            grid, block = k.grid_for(w, h, n)
            k.luma_kernel[grid, block](batch, luma)
            batch = luma
        rs, rw = self._band(h)
        cs, cw = self._band(w)
        tmp = cp.empty((n, PDQ_BUFFER, w), dtype=cp.float32)
        grid, block = k.grid_for(w, PDQ_BUFFER, n)
        k.rows_kernel[grid, block](batch, rs, rw, tmp)
        out = cp.empty((n, PDQ_BUFFER, PDQ_BUFFER), dtype=cp.float32)
        grid, block = k.grid_for(PDQ_BUFFER, PDQ_BUFFER, n)
        k.cols_kernel[grid, block](tmp, cs, cw, out)
        return out


def cp_swap(cp: Any, batch: Any) -> Any:
    """The batch with each image's rows and columns swapped (a contiguous copy)."""
    axes = (0, 2, 1, 3) if batch.ndim == 4 else (0, 2, 1)
    return cp.ascontiguousarray(batch.transpose(axes))


def _device_name(cupy: Any) -> str:
    try:
        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    except AttributeError:  # a stand-in array module (the simulator tests) has no runtime
        return "cuda"
    return name.decode() if isinstance(name, bytes) else str(name)


def _empty(dihedral: bool) -> tuple[np.ndarray, np.ndarray]:
    shape = (0, 8, 32) if dihedral else (0, 32)
    return np.zeros(shape, dtype=np.uint8), np.zeros(0, dtype=np.int32)


@functools.cache  # a driver query: the answer does not change while the process runs
def _try_cupy() -> Any | None:
    try:
        import cupy

        # cupy imports without a driver and fails on first use: try one tiny operation.
        int((cupy.arange(4) + 1).sum())
        return cupy
    except ImportError:  # a CPU install: nothing to say
        return None
    except Exception as exc:  # CuPy is there but no driver or device works: say so
        log.warning("GPU backend unusable, using the CPU: %s", exc)
        return None


@functools.cache
def cuda_usable() -> bool:
    """Whether a CUDA device is usable in this process: the one question of "is there a
    GPU?" that the backend, the GPU index and the video decoder all ask, here. CuPy
    answers where it is installed; else Numba's CUDA driver (its simulator in tests)."""
    if _try_cupy() is not None:
        return True
    try:
        from numba import cuda

        return bool(cuda.is_available())  # type: ignore[no-untyped-call]
    except Exception:  # no driver, or numba without CUDA support
        return False


def select_backend(config: EngineConfig) -> Backend:
    """Pick the backend once, at start-up."""
    if config.backend is BackendChoice.CPU:
        return CpuBackend()
    cupy = _try_cupy()
    if cupy is not None:
        return GpuBackend(cupy)
    if config.backend is BackendChoice.GPU:
        raise ConfigError("backend 'gpu' asked for, but CUDA/CuPy is not usable here")
    return CpuBackend()
