"""Index benchmark (issue 3): exact PDQ range search, hashmatch vs its peers, one run.

For each size N: N random PDQ codes, 1,000 queries (every third planted 0-31 bits from a
stored code, the rest random), radius 31, the same thread count for everyone:
- hashmatch's MultiIndexHashIndex (build from arrays; load from a snapshot in a fresh
  process, where its resident memory is measured);
- FAISS IndexBinaryFlat range_search (brute force; also the ground truth, itself checked
  against a NumPy popcount oracle on a sample of queries);
- python-threatexchange's PDQ index, when --te-python names a Python that has it (it lives
  in its own virtual environment; see te_runner.py).
Prints a table and the ratios; writes the figures as JSON under --out.

    python bench/index_bench.py --sizes 1000000 10000000 --te-python /tmp/te-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RADIUS = 31


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def make_data(n: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(n_queries, 32), dtype=np.uint8)
    for i in range(0, n_queries, 3):  # a third planted within distance <= 31
        bits = np.unpackbits(codes[rng.integers(n)])
        bits[rng.choice(256, size=int(rng.integers(0, RADIUS + 1)), replace=False)] ^= 1
        queries[i] = np.packbits(bits)
    return codes, queries


def numpy_oracle(codes: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    c64 = codes.view(np.uint64)
    out = []
    for q in queries.view(np.uint64):
        d = np.bitwise_count(c64 ^ q).sum(axis=1, dtype=np.int32)
        out.append(set(np.flatnonzero(d <= RADIUS).tolist()))
    return out


def sets_of(lims: np.ndarray, ids: np.ndarray) -> list[set[int]]:
    return [set(ids[lims[i] : lims[i + 1]].tolist()) for i in range(len(lims) - 1)]


def recall(found: list[set[int]], truth: list[set[int]]) -> tuple[float, int]:
    """(recall, false hits) over all (query, entry) pairs."""
    total = sum(len(t) for t in truth)
    got = sum(len(f & t) for f, t in zip(found, truth, strict=True))
    extra = sum(len(f - t) for f, t in zip(found, truth, strict=True))
    return (got / total if total else 1.0), extra


def timed(fn: Any, repeats: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def load_probe(path: Path, threads: int) -> None:
    """Subprocess mode: load a snapshot in a fresh process; print time and memory."""
    from hashmatch.index.mih import MihConfig, MultiIndexHashIndex

    # Load the compiled kernels first, so the measure is the index's data alone.
    warm = MultiIndexHashIndex.from_arrays(np.arange(2000), np.zeros((2000, 32), np.uint8))
    warm.range_search(np.zeros((1, 32), np.uint8), RADIUS)
    warm.close()
    del warm
    base = rss_bytes()
    t0 = time.perf_counter()
    index, _ = MultiIndexHashIndex.load(path, MihConfig(threads=threads))
    load_s = time.perf_counter() - t0
    print(json.dumps({"load_s": load_s, "rss_bytes": rss_bytes() - base, "nbytes": index.nbytes}))


def run_size(n: int, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    import faiss

    from hashmatch.index.mih import MihConfig, MultiIndexHashIndex

    faiss.omp_set_num_threads(args.threads)
    res: dict[str, Any] = {"n": n, "queries": args.queries, "threads": args.threads}
    codes, queries = make_data(n, args.queries, args.seed + n)
    ids = np.arange(n)

    # FAISS brute force: baseline and ground truth.
    t0 = time.perf_counter()
    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    res["faiss_build_s"] = time.perf_counter() - t0
    med, times, (lims, _, labels) = timed(
        lambda: flat.range_search(queries, RADIUS + 1), args.repeats
    )  # strict (<): radius + 1
    truth = sets_of(lims.astype(np.int64), labels)
    res["faiss_query_s"] = times
    res["faiss_qps"] = args.queries / med
    flat.reset()  # frees its codes
    if args.oracle_queries:
        k = min(args.oracle_queries, args.queries)
        oracle = numpy_oracle(codes, queries[:k])
        res["faiss_vs_numpy_oracle"] = recall(truth[:k], oracle)[0] if oracle else None
        if truth[:k] != oracle:
            raise SystemExit("FAISS disagrees with the NumPy oracle: ground truth unusable")
    res["truth_pairs"] = sum(len(t) for t in truth)

    # hashmatch
    cfg = MihConfig(threads=args.threads)
    builds = []
    index = None
    for _ in range(args.repeats):
        index = None
        t0 = time.perf_counter()
        index = MultiIndexHashIndex.from_arrays(ids, codes, cfg)
        builds.append(time.perf_counter() - t0)
    assert index is not None
    res["hashmatch_build_s"] = builds
    res["hashmatch_nbytes"] = index.nbytes
    index.range_search(queries[:2], RADIUS)  # JIT warm-up (cached after the first run)
    med, times, hits = timed(lambda: index.range_search(queries, RADIUS), args.repeats)
    res["hashmatch_query_s"] = times
    res["hashmatch_qps"] = args.queries / med
    res["hashmatch_recall"], res["hashmatch_false_hits"] = recall(
        sets_of(hits.lims, hits.ids), truth
    )
    # 8 dihedral hashes per query (here: the query and 7 random codes).
    rng = np.random.default_rng(args.seed)
    dihedral = np.repeat(queries, 8, axis=0)
    dihedral[np.arange(dihedral.shape[0]) % 8 != 0] = rng.integers(
        0, 256, size=(args.queries * 7, 32), dtype=np.uint8
    )
    med, times, _ = timed(lambda: index.range_search(dihedral, RADIUS), args.repeats)
    res["hashmatch_dihedral_query_s"] = times
    res["hashmatch_dihedral_qps"] = args.queries / med
    snap = out_dir / f"mih-{n}.snapshot"
    t0 = time.perf_counter()
    index.save(snap, {"n": n})
    res["hashmatch_snapshot_save_s"] = time.perf_counter() - t0
    index.close()
    index = None  # free the tables before the load probes run beside this process
    loads = []
    for _ in range(args.repeats):
        probe = subprocess.run(
            [sys.executable, __file__, "--load-probe", str(snap), "--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        loads.append(json.loads(probe.stdout))
    res["hashmatch_load_s"] = [x["load_s"] for x in loads]
    res["hashmatch_rss_bytes"] = statistics.median(x["rss_bytes"] for x in loads)
    snap.unlink()

    if args.te_python:
        np.save(out_dir / "codes.npy", codes)
        np.save(out_dir / "queries.npy", queries)
        del codes
        te_repeats = str(args.repeats)
        proc = subprocess.run(
            [args.te_python, str(Path(__file__).with_name("te_runner.py")), str(out_dir),
             str(args.threads), te_repeats],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            res["te_error"] = proc.stderr[-2000:]
        else:
            te = json.loads((out_dir / "te_result.json").read_text())
            res["te_index_class"] = te["index_class"]
            res["te_build_s"] = te["build_s"]
            res["te_rss_bytes"] = te["rss_delta_bytes"]
            res["te_query_s"] = te["query_s"]
            res["te_qps"] = args.queries / statistics.median(te["query_s"])
            res["te_recall"], res["te_false_hits"] = recall([set(f) for f in te["found"]], truth)
        for name in ("codes.npy", "queries.npy", "te_result.json"):
            (out_dir / name).unlink(missing_ok=True)
    return res


def report(results: list[dict[str, Any]]) -> str:
    med = statistics.median
    rows = [
        "| N | index | build (s) | load (s) | queries/s | recall | resident |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        n = f"{r['n']:,}"
        rows.append(
            f"| {n} | hashmatch MIH | {med(r['hashmatch_build_s']):.2f} |"
            f" {med(r['hashmatch_load_s']):.2f} | {r['hashmatch_qps']:,.0f} |"
            f" {r['hashmatch_recall']:.2%} | {r['hashmatch_rss_bytes'] / 2**20:,.0f} MiB"
            f" ({r['hashmatch_nbytes'] / 2**20:,.0f} MiB of arrays) |"
        )
        rows.append(
            f"| {n} | hashmatch MIH, 8 dihedral hashes per query | | |"
            f" {r['hashmatch_dihedral_qps']:,.0f} | | |"
        )
        rows.append(
            f"| {n} | FAISS IndexBinaryFlat | {r['faiss_build_s']:.2f} | | {r['faiss_qps']:,.0f} |"
            " 100% (ground truth) | 32 B/code |"
        )
        if "te_qps" in r:
            rows.append(
                f"| {n} | python-threatexchange PDQIndex | {r['te_build_s']:.1f} | |"
                f" {r['te_qps']:,.0f} | {r['te_recall']:.2%} |"
                f" {r['te_rss_bytes'] / 2**20:,.0f} MiB |"
            )
        elif "te_error" in r:
            rows.append(f"| {n} | python-threatexchange | failed: see JSON | | | | |")
    rows.append("")
    for r in results:
        line = (
            f"N={r['n']:,}: hashmatch / FAISS flat throughput = "
            f"{r['hashmatch_qps'] / r['faiss_qps']:.1f}x"
        )
        if "te_qps" in r:
            line += f"; hashmatch / python-threatexchange = {r['hashmatch_qps'] / r['te_qps']:.1f}x"
        rows.append(line)
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--oracle-queries", type=int, default=200)
    p.add_argument("--te-python", help="a Python with threatexchange installed")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("out"))
    p.add_argument("--load-probe", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.load_probe:
        load_probe(args.load_probe, args.threads)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.sizes:
        r = run_size(n, args, args.out)
        print(json.dumps(r), flush=True)
        results.append(r)
    (args.out / "index_bench.json").write_text(json.dumps(results, indent=1))
    print(report(results))


if __name__ == "__main__":
    main()
