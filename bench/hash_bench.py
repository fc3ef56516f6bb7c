"""Engine throughput against the reference path, in one process, one core, same files.

Reference path: Pillow RGB decode + pdqhash.compute (what python-threatexchange does).
hashmatch: Engine.hash_many in `exact` mode, the default (JPEG planes through libturbojpeg),
and beside it exact with JPEG decoded to RGB (jpeg_planes = false, or no libturbojpeg),
`luma` (the Y plane), `cpp` and `fast`, for the record. Prints ms/img (median of --runs)
per size, the ratios and the distances to the reference; then --workers 2 against 1.

    python -m bench.hash_bench                # the full table for bench/RESULTS.md
    python -m bench.hash_bench --quick        # a smoke run
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
import skimage
from PIL import Image

from hashmatch.config import BackendChoice, EngineConfig, HashMode, PoolKind
from hashmatch.hashing.decode.images import jpeg_path
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.signature import Signature

SIZES = [(640, 480), (1280, 960), (3000, 2000)]
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg"]


def make_jpegs(width: int, height: int, count: int) -> list[bytes]:
    """Real photographs (scikit-image's), resized with Lanczos and saved at JPEG q=90."""
    data_dir = Path(skimage.__file__).parent / "data"
    out = []
    for k in range(count):
        with Image.open(data_dir / PHOTOS[k % len(PHOTOS)]) as img:
            rgb = img.convert("RGB")
            if k >= len(PHOTOS):
                rgb = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            buf = io.BytesIO()
            rgb.resize((width, height), Image.Resampling.LANCZOS).save(buf, "JPEG", quality=90)
            out.append(buf.getvalue())
    return out


def reference_hash(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        bits, _ = pdqhash.compute(np.asarray(img.convert("RGB")))
    return np.packbits(bits.astype(np.uint8)).tobytes()


def engine(mode: HashMode, workers: int = 1, jpeg_planes: bool = True) -> Engine:
    return Engine(
        EngineConfig(mode=mode, workers=workers, backend=BackendChoice.CPU, jpeg_planes=jpeg_planes)
    )


def distance_to_reference(eng: Engine, files: list[bytes]) -> tuple[float, int]:
    dists = []
    for data, result in zip(files, eng.hash_many(files), strict=True):
        assert isinstance(result, Signature)
        ref = reference_hash(data)
        dists.append(
            (int.from_bytes(ref, "big") ^ int.from_bytes(result.pdq.value, "big")).bit_count()
        )
    return float(np.mean(dists)), max(dists)


def single_core_table(count: int, runs: int) -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    engines = {
        f"exact ({jpeg_path(EngineConfig())})": engine(HashMode.EXACT),
        "exact (rgb)": engine(HashMode.EXACT, jpeg_planes=False),
        "luma": engine(HashMode.LUMA),
        "cpp": engine(HashMode.CPP),
        "fast": engine(HashMode.FAST),
    }
    print(f"\n## single core: ms/img (median of {runs} interleaved runs, {count} images per size)")
    print("| size | reference (Pillow+pdqhash) | " + " | ".join(f"{k} | ratio" for k in engines))
    print("|---|---|" + "---|---|" * len(engines))
    distances = []
    for w, h in SIZES:
        files = make_jpegs(w, h, count)
        for eng in engines.values():
            eng.hash_many(files)  # warm-up
        jobs = {"reference": lambda files=files: [reference_hash(d) for d in files]}
        jobs |= {k: (lambda e=e, files=files: e.hash_many(files)) for k, e in engines.items()}
        medians = interleaved_medians(jobs, runs)
        ref = medians["reference"] / count
        row = [f"{w}x{h}", f"{ref * 1e3:.2f}"]
        for k in engines:
            t = medians[k] / count
            row += [f"{t * 1e3:.2f}", f"{ref / t:.1f}x"]
        print("| " + " | ".join(row) + " |")
        distances.append(
            [f"{w}x{h}"]
            + ["{:.2f} / {}".format(*distance_to_reference(e, files)) for e in engines.values()]
        )
    print("\nbits to the reference, mean / max:")
    print("| size | " + " | ".join(engines) + " |")
    print("|---|" + "---|" * len(engines))
    for row in distances:
        print("| " + " | ".join(row) + " |")


def interleaved_medians(jobs: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds of each job, run in interleaved rounds so that a burst of load
    elsewhere on the machine hits all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(runs):
        for k, job in jobs.items():
            t0 = time.perf_counter()
            job()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def workers_table(count: int, runs: int) -> None:
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print(f"\n## exact mode, all cores: images/s (median of {runs} interleaved runs)")
    print("| size | workers=1 | workers=2 (threads) | ratio | workers=2 (processes) | ratio |")
    print("|---|---|---|---|---|---|")
    configs = [
        EngineConfig(workers=1, backend=BackendChoice.CPU),
        EngineConfig(workers=2, pool=PoolKind.THREAD, backend=BackendChoice.CPU),
        EngineConfig(workers=2, pool=PoolKind.PROCESS, backend=BackendChoice.CPU),
    ]
    engines = [Engine(c) for c in configs]
    for w, h in SIZES[1:]:
        files = make_jpegs(w, h, count)
        times: list[list[float]] = [[] for _ in engines]
        for eng in engines:
            eng.hash_many(files)  # warm-up: pools started, JIT loaded
        # Interleaved rounds, so a burst of load elsewhere on the machine hits all alike.
        for _ in range(runs):
            for k, eng in enumerate(engines):
                t0 = time.perf_counter()
                eng.hash_many(files)
                times[k].append(time.perf_counter() - t0)
        rates = [count / statistics.median(t) for t in times]
        row = [f"{w}x{h}", f"{rates[0]:.0f}"]
        for rate in rates[1:]:
            row += [f"{rate:.0f}", f"{rate / rates[0]:.2f}x"]
        print("| " + " | ".join(row) + " |")
    for eng in engines:
        eng.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few images, few runs")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--count", type=int, default=10, help="images per size")
    args = parser.parse_args()
    runs, count = (2, 3) if args.quick else (args.runs, args.count)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    single_core_table(count, runs)
    workers_table(count * 4, runs)


if __name__ == "__main__":
    main()
