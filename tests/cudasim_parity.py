"""Run under NUMBA_ENABLE_CUDASIM=1 (tests/test_cuda_kernels.py does): the CUDA kernels and
the GPU backend, driven with NumPy in place of CuPy, against the CPU engine."""

from __future__ import annotations

import os
import sys
import types

import numpy as np

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run me under the CUDA simulator"

from hashmatch.hashing.backend import CpuBackend, GpuBackend  # noqa: E402
from hashmatch.kernels import cuda as k  # noqa: E402
from hashmatch.kernels.cpu import _BLUE, _RG, _cols, _rows_gray, _rows_rgb  # noqa: E402
from hashmatch.kernels.resample import resampler  # noqa: E402
from hashmatch.kernels.ycc import YccPlanes  # noqa: E402


def check_kernels(rng: np.random.Generator) -> None:
    for h, w in [(5, 9), (12, 20), (70, 9)]:
        rgb = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
        luma = np.empty((2, h, w), np.float32)
        grid, block = k.grid_for(w, h, 2)
        k.luma_kernel[grid, block](rgb, luma)
        want = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)
        np.testing.assert_array_equal(luma, want)

        rows, cols = resampler(h), resampler(w)
        tmp = np.empty((2, 64, w), np.float32)
        grid, block = k.grid_for(w, 64, 2)
        k.rows_kernel[grid, block](luma, rows.starts, rows.weights, tmp)
        out = np.empty((2, 64, 64), np.float32)
        grid, block = k.grid_for(64, 64, 2)
        k.cols_kernel[grid, block](tmp, cols.starts, cols.weights, out)
        for n in range(2):
            cpu_tmp = _rows_rgb(rgb[n], rows.starts, rows.weights, _RG, _BLUE)
            np.testing.assert_array_equal(tmp[n], cpu_tmp)
            np.testing.assert_array_equal(out[n], _cols(cpu_tmp, cols.starts, cols.weights))
            grey = rgb[n, :, :, 0].copy()
            np.testing.assert_array_equal(
                _rows_gray(grey, rows.starts, rows.weights),
                _rows_gray(grey.astype(np.float32), rows.starts, rows.weights),
            )


def numpy_as_cupy() -> types.ModuleType:
    """The slice of CuPy's API GpuBackend uses, on NumPy (the simulator takes NumPy arrays)."""
    shim = types.ModuleType("cupy_on_numpy")
    for name in ("empty", "asarray", "float32", "uint8", "uint32", "int32"):
        setattr(shim, name, getattr(np, name))
    shim.asnumpy = np.asarray  # type: ignore[attr-defined]
    oom = type("OutOfMemoryError", (MemoryError,), {})
    shim.cuda = types.SimpleNamespace(memory=types.SimpleNamespace(OutOfMemoryError=oom))  # type: ignore[attr-defined]
    for name in dir(np):  # hash_buffers calls xp.matmul, xp.partition, ...
        if not hasattr(shim, name):
            setattr(shim, name, getattr(np, name))
    return shim


def _planes(
    rng: np.random.Generator, h: int, w: int, v: int, hf: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chroma = (-(-h // v), -(-w // hf))
    return (
        rng.integers(0, 256, (h, w), dtype=np.uint8),
        rng.integers(0, 256, chroma, dtype=np.uint8),
        rng.integers(0, 256, chroma, dtype=np.uint8),
    )


def check_backend(rng: np.random.Generator) -> None:
    images: list[np.ndarray] = [
        rng.integers(0, 256, (12, 20), dtype=np.uint8),
        rng.integers(0, 256, (9, 33, 3), dtype=np.uint8),
        rng.integers(0, 256, (12, 20), dtype=np.uint8),
        rng.integers(0, 256, (7, 7, 3), dtype=np.uint8),
        # JPEG planes (4:2:0, then 4:2:2): the CPU resamples them row by row, the GPU
        # backend takes their luma plane; the same bits.
        YccPlanes(*_planes(rng, 12, 20, 2, 2), 2, 2),
        YccPlanes(*_planes(rng, 30, 9, 1, 2), 1, 2),
    ]
    cpu, gpu = CpuBackend(), GpuBackend(numpy_as_cupy())
    for dihedral in (False, True):
        want_h, want_q = cpu.finish([cpu.prepare(im) for im in images], dihedral)
        got_h, got_q = gpu.finish([gpu.prepare(im) for im in images], dihedral)
        np.testing.assert_array_equal(got_h, want_h)
        np.testing.assert_array_equal(got_q, want_q)


class DeviceArray(np.ndarray):
    """Stands for a CuPy array: pixels a GPU decoder left in device memory."""


def check_device_pixels_stay_on_the_device(rng: np.random.Generator) -> None:
    """Pixels already on the device are hashed where they are (no upload); host pixels in
    the same batch go up; the hashes equal the CPU engine's either way."""
    host = [rng.integers(0, 256, (12, 20, 3), dtype=np.uint8) for _ in range(3)]
    host.append(rng.integers(0, 256, (9, 33, 3), dtype=np.uint8))
    on_device = [im.view(DeviceArray) for im in host]
    shim = numpy_as_cupy()
    shim.ndarray = DeviceArray  # type: ignore[attr-defined]
    uploads: list[tuple[int, ...]] = []

    def asarray(a: object, dtype: object = None) -> np.ndarray:
        if type(a) is np.ndarray and a.dtype == np.uint8 and a.ndim >= 3:  # pixels going up
            uploads.append(a.shape)
        return np.asarray(a, dtype)  # type: ignore[call-overload, no-any-return]

    shim.asarray = asarray  # type: ignore[attr-defined]
    cpu, gpu = CpuBackend(), GpuBackend(shim)
    want_h, want_q = cpu.finish([cpu.prepare(im) for im in host], False)
    for batch, want_uploads in (
        (on_device, []),
        ([host[0], *on_device[1:]], [(12, 20, 3)]),  # a bucket of both: that one goes up
        (host, [(3, 12, 20, 3), (1, 9, 33, 3)]),  # all host: one upload per bucket
    ):
        uploads.clear()
        got_h, got_q = gpu.finish([gpu.prepare(im) for im in batch], False)
        np.testing.assert_array_equal(got_h, want_h)
        np.testing.assert_array_equal(got_q, want_q)
        assert sorted(uploads) == sorted(want_uploads), uploads


def check_out_of_memory_splits(rng: np.random.Generator) -> None:
    """A batch that does not fit is halved until it does; an image that never fits is
    hashed on the CPU: the same hashes either way."""
    images = [rng.integers(0, 256, (12 + k, 20, 3), dtype=np.uint8) for k in range(5)]
    gpu = GpuBackend(numpy_as_cupy())
    resample, calls = gpu._resample, []

    def tight(batch: np.ndarray, h: int, w: int) -> np.ndarray:
        calls.append(batch.shape[0])
        if len(calls) < 4 or h == 16:  # the first batches, and one size always, fail
            raise gpu._out_of_memory("out of memory allocating")
        return resample(batch, h, w)

    gpu._resample = tight  # type: ignore[method-assign]
    cpu = CpuBackend()
    want_h, want_q = cpu.finish([cpu.prepare(im) for im in images], True)
    got_h, got_q = gpu.finish([gpu.prepare(im) for im in images], True)
    np.testing.assert_array_equal(got_h, want_h)
    np.testing.assert_array_equal(got_q, want_q)
    assert len(calls) > len(images), calls  # it did split


if __name__ == "__main__":
    generator = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    check_kernels(generator)
    check_backend(generator)
    check_device_pixels_stay_on_the_device(generator)
    check_out_of_memory_splits(generator)
    print("cudasim parity ok")
