"""PDQ range search on a GPU: 1,000 queries (radius 31) against N codes, the tiled kernels
of hashmatch.index.gpu_flat against FAISS (GpuIndexBinaryFlat k-NN where a faiss GPU
build is installed, IndexBinaryFlat range search on the CPU on a sample).

    python -m bench.gpu_index_bench [--codes 100000000] [--queries 1000] [--runs 5]

Needs a CUDA device for the GPU figures; says so and exits 0 where there is none.
Memory: 32 bytes a code on the device (3.2 GB at 100M) plus the host copy.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.timing import median_seconds
from hashmatch.errors import BadParameter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codes", type=int, default=100_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--radius", type=int, default=31)
    parser.add_argument("--cpu-sample", type=int, default=1_000_000, help="codes for FAISS CPU")
    args = parser.parse_args()
    from hashmatch.index.gpu_flat import GpuFlatIndex

    try:
        index = GpuFlatIndex(capacity=args.codes)
    except BadParameter as exc:
        print(f"{exc}: nothing measured")
        return
    rng = np.random.default_rng(0)
    step = 10_000_000
    for lo in range(0, args.codes, step):
        n = min(step, args.codes - lo)
        index.add(np.arange(lo, lo + n), rng.integers(0, 256, (n, 32), dtype=np.uint8))
    queries = rng.integers(0, 256, (args.queries, 32), dtype=np.uint8)
    _, codes = index.live_arrays()
    queries[: args.queries // 2] = codes[: args.queries // 2]  # half of them hit
    gpu_s = median_seconds(lambda: index.range_search(queries, args.radius), args.runs)
    print(f"| engine | codes | {args.queries} queries, r={args.radius} |\n|---|---|---|")
    print(f"| hashmatch GpuFlatIndex (tiled kernels) | {args.codes:,} | {1000 * gpu_s:.1f} ms |")
    try:
        import faiss
    except ImportError:
        print("faiss not installed: no FAISS baselines")
        return
    if faiss.get_num_gpus() > 0:
        res = faiss.StandardGpuResources()
        gidx = faiss.GpuIndexBinaryFlat(res, 256)
        gidx.add(codes)
        knn_s = median_seconds(lambda: gidx.search(queries, 2048), args.runs)
        name = "FAISS GpuIndexBinaryFlat k-NN (k=2048)"
        print(f"| {name} | {args.codes:,} | {1000 * knn_s:.1f} ms |")
    sample = codes[: args.cpu_sample]
    cidx = faiss.IndexBinaryFlat(256)
    cidx.add(sample)
    cpu_s = median_seconds(lambda: cidx.range_search(queries, args.radius + 1), 1)
    print(
        f"| FAISS IndexBinaryFlat range search (CPU) | {len(sample):,} | {1000 * cpu_s:.1f} ms "
        f"(x{args.codes / len(sample):.0f} for {args.codes:,}: "
        f"~{1000 * cpu_s * args.codes / len(sample):.0f} ms) |"
    )


if __name__ == "__main__":
    main()
