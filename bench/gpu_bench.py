"""PDQ kernels on a GPU: a batch of decoded 1280x960 luma planes, GPU backend vs CPU backend.

    python -m bench.gpu_bench [--batch 256] [--runs 7]

Times the hash stage alone (pixels already decoded, as they are after nvImageCodec/DALI):
host-to-device copy, banded resampling, DCT, bits; only hashes come back. Prints img/s for
both backends and their ratio; says so and exits 0 where no CUDA device is usable.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hashmatch.backend import CpuBackend, GpuBackend, _try_cupy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cupy = _try_cupy()
    if cupy is None:
        print("no CUDA device usable here: nothing measured")
        return
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (960, 1280), dtype=np.uint8)
    images = [np.roll(base, k, axis=1) for k in range(args.batch)]
    cpu, gpu = CpuBackend(), GpuBackend(cupy)

    def cpu_run() -> None:
        cpu.finish([cpu.prepare(im) for im in images], False)

    def gpu_run() -> None:
        gpu.finish([gpu.prepare(im) for im in images], False)
        cupy.cuda.Device().synchronize()

    rates = {}
    for name, fn in (("cpu", cpu_run), ("gpu", gpu_run)):
        fn()
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        rates[name] = args.batch / statistics.median(times)
    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    print("| stage | cpu img/s (1 thread) | gpu img/s | ratio |")
    print("|---|---|---|---|")
    print(
        f"| hash 1280x960 luma, batch {args.batch} | {rates['cpu']:.0f} | {rates['gpu']:.0f} "
        f"| {rates['gpu'] / rates['cpu']:.1f}x |"
    )


if __name__ == "__main__":
    main()
