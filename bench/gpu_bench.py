"""PDQ on a GPU: (a) the hash stage on decoded 1280x960 luma planes already on the device
(and, beside it, uploaded from the host), GPU backend vs CPU backend; (b) end to end,
1280x960 JPEG bytes in host memory to hashes on the host: the engine with the GPU backend
and a GPU decoder (DALI, or nvImageCodec where DALI is not installed: the pixels stay on
the device from decode to hash) against the CPU engine on all cores and against Pillow +
pdqhash.

    python -m bench.gpu_bench [--batch 256] [--runs 7] [--decoder dali|nvimagecodec]

Prints img/s and ratios; says so and exits 0 where no CUDA device is usable.

    python -m bench.gpu_bench --cpu

measures (b) only, with both library decoders run on the CPU backend (no GPU needed):
what `[engine] decoder = "auto"` weighs when it keeps the CPU path there.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.timing import median_seconds
from hashmatch.hashing.backend import CpuBackend, GpuBackend, _try_cupy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--decoder", choices=["auto", "dali", "nvimagecodec"], default="auto", help="(b)'s"
    )
    parser.add_argument("--cpu", action="store_true", help="(b) with the decoders on the CPU")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (960, 1280), dtype=np.uint8)
    if args.cpu:
        for decoder in ("dali", "nvimagecodec"):
            end_to_end(base, args.batch, args.runs, decoder, on_gpu=False)
        return
    cupy = _try_cupy()
    if cupy is None:
        print("no CUDA device usable here: nothing measured")
        return
    images = [np.roll(base, k, axis=1) for k in range(args.batch)]
    on_device = [cupy.asarray(im) for im in images]  # (a) as the issue states it
    cpu, gpu = CpuBackend(), GpuBackend(cupy)

    def cpu_run() -> None:
        cpu.finish([cpu.prepare(im) for im in images], False)

    def gpu_run(batch: list[object]) -> None:
        gpu.finish([gpu.prepare(im) for im in batch], False)
        cupy.cuda.Device().synchronize()

    rates = {
        "cpu": args.batch / median_seconds(cpu_run, args.runs),
        "device": args.batch / median_seconds(lambda: gpu_run(on_device), args.runs),
        "host": args.batch / median_seconds(lambda: gpu_run(images), args.runs),
    }
    print(f"device: {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    print("| stage | cpu img/s (1 thread) | gpu img/s | ratio |")
    print("|---|---|---|---|")
    for key, where in (("device", "already on the device"), ("host", "uploaded from the host")):
        print(
            f"| hash 1280x960 luma {where}, batch {args.batch} | {rates['cpu']:.0f} "
            f"| {rates[key]:.0f} | {rates[key] / rates['cpu']:.1f}x |"
        )
    end_to_end(base, args.batch, args.runs, args.decoder, on_gpu=True)


def end_to_end(base: np.ndarray, batch: int, runs: int, decoder: str, on_gpu: bool) -> None:
    import io
    import os

    import pdqhash
    from PIL import Image

    from hashmatch.config import BackendChoice, DecoderChoice, EngineConfig
    from hashmatch.hashing.engine import Engine

    rgb = np.dstack([base, np.roll(base, 7, axis=0), np.roll(base, 13, axis=1)])
    jpegs = []
    for k in range(batch):
        buf = io.BytesIO()
        Image.fromarray(np.roll(rgb, k, axis=1)).save(buf, "JPEG", quality=90)
        jpegs.append(buf.getvalue())
    cores = len(os.sched_getaffinity(0))
    # The host's share (reading, headers, MD5/SHA-256) runs on all cores in both engines.
    backend = BackendChoice.GPU if on_gpu else BackendChoice.CPU
    engine = Engine(EngineConfig(backend=backend, decoder=DecoderChoice(decoder), workers=cores))
    if engine.decoder is None:
        print("(b) not measured: neither DALI nor nvImageCodec is installed")
        return
    used = f"{backend.value.upper()} + {type(engine.decoder).__name__} ({engine.decoder.device})"
    cpu = Engine(EngineConfig(backend=BackendChoice.CPU, workers=cores))

    def pillow() -> None:
        for data in jpegs[:32]:
            pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))

    rates = {
        "engine": batch / median_seconds(lambda: engine.hash_many(jpegs), runs),
        "cpu": batch / median_seconds(lambda: cpu.hash_many(jpegs), runs),
        "pillow": 32 / median_seconds(pillow, runs),
    }
    print(
        f"| end to end, 1280x960 JPEG bytes -> hashes, batch {batch} | {used} "
        f"{rates['engine']:.0f} img/s | CPU engine, {cores} cores {rates['cpu']:.0f} img/s "
        f"({rates['engine'] / rates['cpu']:.1f}x) | Pillow + pdqhash, 1 core "
        f"{rates['pillow']:.0f} img/s ({rates['engine'] / rates['pillow']:.0f}x) |"
    )


if __name__ == "__main__":
    main()
