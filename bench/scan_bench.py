"""Bulk scan throughput: `hashmatch scan` with 1 and 2 workers, the bare engine, and a naive
per-file loop (Pillow + pdqhash + FAISS range search per file), on one tree, in one run.

    python -m bench.scan_bench [--count 10000] [--runs 3]

The tree: --count 640x480 JPEGs (q=90) made from scikit-image's photos with small shifts,
in 100 folders; a bank of 10,000 random PDQ hashes with 50 of the tree's own planted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pdqhash
from PIL import Image

from bench.hash_bench import make_jpegs
from hashmatch.banks.model import BankSettings, NewEntry, SignalType
from hashmatch.config import BackendChoice, EngineConfig
from hashmatch.hashing.engine import Engine
from hashmatch.hashing.pools import process_pool
from hashmatch.hashing.signature import Signature
from hashmatch.matching.bank_matcher import BankMatcher, MatcherConfig
from hashmatch.scan.runner import Progress, ScanConfig, run_scan
from hashmatch.storage.datadir import DataDir


def make_tree(root: Path, count: int) -> list[Path]:
    base = make_jpegs(640, 480, 10)
    paths = []
    for k in range(count):
        folder = root / f"f{k % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"{k:06d}.jpg"
        # Distinct files (distinct MD5s) that share the photos' content.
        p.write_bytes(base[k % len(base)] + k.to_bytes(4, "big"))
        paths.append(p)
    return paths


def naive_loop(paths: list[Path], index: faiss.IndexBinaryFlat) -> int:
    """What a script around python-threatexchange's pieces does: one file at a time."""
    hits = 0
    for p in paths:
        with Image.open(p) as img:
            bits, _ = pdqhash.compute(np.asarray(img.convert("RGB")))
        code = np.packbits(bits.astype(np.uint8))[None]
        lims, _, _ = index.range_search(code, 32)
        hits += int(lims[1] > 0)
    return hits


_CHUNK_ENGINE: list[Engine] = []


def _hash_chunk(paths: list[str]) -> int:
    if not _CHUNK_ENGINE:
        _CHUNK_ENGINE.append(Engine(EngineConfig(backend=BackendChoice.CPU)))
    return sum(isinstance(r, Signature) for r in _CHUNK_ENGINE[0].hash_many(paths))


def bare_processes(paths: list[Path], workers: int, runs: int) -> float:
    """The engine alone as the scan runs it with several workers: one process per worker,
    a 256-path chunk per task; no listing, matching or writing."""
    chunks = [[str(p) for p in paths[lo : lo + 256]] for lo in range(0, len(paths), 256)]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()  # pool start-up counted, as it is in the scan
        with process_pool(workers) as pool:  # as the scan's pool is made
            assert sum(pool.map(_hash_chunk, chunks)) == len(paths)
        times.append(time.perf_counter() - t0)
    return len(paths) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--naive-sample", type=int, default=1000, help="files timed in the naive loop"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_tree(root / "tree", args.count)
        engine = Engine(EngineConfig(backend=BackendChoice.CPU))
        planted = [r.pdq.value for r in engine.hash_many(paths[:50]) if isinstance(r, Signature)]
        rng = np.random.default_rng(0)
        bank = [
            *planted,
            *(rng.integers(0, 256, 32, dtype=np.uint8).tobytes() for _ in range(10_000 - 50)),
        ]
        store = DataDir(root / "data").open_banks()
        store.create_bank("bench", BankSettings())
        store.write_entries("bench", [NewEntry(SignalType.PDQ, v) for v in bank])
        index = faiss.IndexBinaryFlat(256)
        index.add(np.frombuffer(b"".join(bank), dtype=np.uint8).reshape(-1, 32))

        results: dict[str, float] = {}
        sample = paths[: args.naive_sample]
        t0 = time.perf_counter()
        naive_loop(sample, index)
        results["naive loop (Pillow + pdqhash + FAISS per file), 1 core"] = len(sample) / (
            time.perf_counter() - t0
        )

        for workers in (1, 2):
            with Engine(EngineConfig(workers=workers, backend=BackendChoice.CPU)) as eng:
                times = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    for lo in range(0, len(paths), 256):
                        eng.hash_many(paths[lo : lo + 256])
                    times.append(time.perf_counter() - t0)
            results[f"bare engine, hash_many over paths, {workers} worker(s)"] = len(
                paths
            ) / statistics.median(times)
        results["bare engine, 2 worker processes over 256-path chunks"] = bare_processes(
            paths, 2, args.runs
        )

        with BankMatcher.open(store, MatcherConfig(DataDir(root / "data").snapshot)) as matcher:
            for workers in (1, 2):
                times = []
                for _ in range(args.runs):
                    out = root / f"out{workers}"
                    shutil.rmtree(out, ignore_errors=True)
                    config = ScanConfig(
                        str(root / "tree"),
                        out,
                        EngineConfig(workers=workers, backend=BackendChoice.CPU),
                    )
                    with open(os.devnull, "w") as quiet:
                        summary = run_scan(config, matcher, Progress(quiet, every_s=1e9))
                    assert summary.files == len(paths) and summary.matched >= 50
                    times.append(summary.seconds)
                results[f"hashmatch scan (hash + match + Parquet), {workers} worker(s)"] = len(
                    paths
                ) / statistics.median(times)
        store.close()

    print(f"\n{args.count:,} JPEGs 640x480, median of {args.runs} runs")
    print(f"(naive loop timed on the first {len(sample)} files)")
    print("| path | images/s |\n|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value:.0f} |")
    scan1 = results["hashmatch scan (hash + match + Parquet), 1 worker(s)"]
    scan2 = results["hashmatch scan (hash + match + Parquet), 2 worker(s)"]
    # The bare engine at its best with 2 workers: threads, or processes as the scan uses.
    bare2 = max(
        results["bare engine, hash_many over paths, 2 worker(s)"],
        results["bare engine, 2 worker processes over 256-path chunks"],
    )
    naive = results["naive loop (Pillow + pdqhash + FAISS per file), 1 core"]
    print(f"\nscan 2 workers / 1 worker: {scan2 / scan1:.2f}x")
    print(f"scan vs bare engine (2 workers): {100 * (1 - scan2 / bare2):.1f}% overhead")
    print(f"scan (2 workers) vs naive loop: {scan2 / naive:.1f}x")


if __name__ == "__main__":
    main()
