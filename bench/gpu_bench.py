"""PDQ on a GPU: (a) the hash stage on decoded 1280x960 luma planes, GPU backend vs CPU
backend; (b) end to end, 1280x960 JPEG bytes in host memory to hashes on the host: the
engine with the GPU backend and DALI's decoder against the CPU engine on all cores and
against Pillow + pdqhash.

    python -m bench.gpu_bench [--batch 256] [--runs 7]

Prints img/s and ratios; says so and exits 0 where no CUDA device is usable.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.timing import median_seconds
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

    rates = {
        name: args.batch / median_seconds(fn, args.runs)
        for name, fn in (("cpu", cpu_run), ("gpu", gpu_run))
    }
    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    print("| stage | cpu img/s (1 thread) | gpu img/s | ratio |")
    print("|---|---|---|---|")
    print(
        f"| hash 1280x960 luma, batch {args.batch} | {rates['cpu']:.0f} | {rates['gpu']:.0f} "
        f"| {rates['gpu'] / rates['cpu']:.1f}x |"
    )
    end_to_end(base, args.batch, args.runs)


def end_to_end(base: np.ndarray, batch: int, runs: int) -> None:
    import io
    import os

    import pdqhash
    from PIL import Image

    from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig
    from hashmatch.engine import Engine

    rgb = np.dstack([base, np.roll(base, 7, axis=0), np.roll(base, 13, axis=1)])
    jpegs = []
    for k in range(batch):
        buf = io.BytesIO()
        Image.fromarray(np.roll(rgb, k, axis=1)).save(buf, "JPEG", quality=90)
        jpegs.append(buf.getvalue())
    cores = len(os.sched_getaffinity(0))
    gpu = Engine(EngineConfig(backend=BackendChoice.GPU, decoder=DecoderChoice.DALI))
    cpu = Engine(EngineConfig(backend=BackendChoice.CPU, workers=cores))

    def pillow() -> None:
        for data in jpegs[:32]:
            pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))

    rates = {
        "gpu": batch / median_seconds(lambda: gpu.hash_many(jpegs), runs),
        "cpu": batch / median_seconds(lambda: cpu.hash_many(jpegs), runs),
        "pillow": 32 / median_seconds(pillow, 1),
    }
    print(
        f"| end to end, 1280x960 JPEG bytes -> hashes, batch {batch} | GPU + DALI "
        f"{rates['gpu']:.0f} img/s | CPU engine, {cores} cores {rates['cpu']:.0f} img/s "
        f"({rates['gpu'] / rates['cpu']:.1f}x) | Pillow + pdqhash, 1 core "
        f"{rates['pillow']:.0f} img/s ({rates['gpu'] / rates['pillow']:.0f}x) |"
    )


if __name__ == "__main__":
    main()
