"""Runs python-threatexchange's PDQ index on the benchmark's data, in ITS OWN virtual
environment (threatexchange pulls in faiss-cpu and more; it is never a hashmatch
dependency). Called by index_bench.py; reads codes.npy and queries.npy, writes JSON.

    /path/to/te-venv/bin/python bench/te_runner.py DIR THREADS REPEATS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from threatexchange.signal_type.pdq.signal import PdqSignal


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    folder, threads, repeats = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    faiss.omp_set_num_threads(threads)
    codes = np.load(folder / "codes.npy", mmap_mode="r")
    queries = np.load(folder / "queries.npy")
    q_hex = [q.tobytes().hex() for q in queries]
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    # The index class python-threatexchange uses for PDQ (PDQIndex, FAISS IndexBinaryMultiHash);
    # hex strings in, as its API takes them.
    entries = ((c.tobytes().hex(), i) for i, c in enumerate(codes))
    index = PdqSignal.get_index_cls()(entries)
    build_s = time.perf_counter() - t0
    rss1 = rss_bytes()
    times = []
    found: list[list[int]] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        found = [sorted(int(m.metadata) for m in index.query(h)) for h in q_hex]
        times.append(time.perf_counter() - t0)
    out = {
        "index_class": type(index).__module__ + "." + type(index).__qualname__,
        "build_s": build_s,
        "rss_delta_bytes": rss1 - rss0,
        "query_s": times,
        "found": found,
    }
    (folder / "te_result.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
