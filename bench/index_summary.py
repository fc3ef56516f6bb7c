"""Medians over several index_bench.py runs (their index_bench.json files), as a table.

python bench/index_summary.py bench/out/run*/index_bench.json
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def main() -> None:
    by_n: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for f in sys.argv[1:]:
        for r in json.loads(Path(f).read_text()):
            by_n[r["n"]].append(r)
    med = statistics.median
    print(
        "| N | runs | hashmatch q/s | FAISS flat q/s | python-threatexchange q/s |"
        " hashmatch / FAISS | hashmatch / TE | hashmatch dihedral (8 hashes) q/s |"
        " hashmatch build / load (s) | TE build (s) | hashmatch resident | TE resident |"
        " recall hashmatch / TE |"
    )
    print("|" + "---|" * 13)
    for n, runs in sorted(by_n.items()):
        hm = med(r["hashmatch_qps"] for r in runs)
        fa = med(r["faiss_qps"] for r in runs)
        te_runs = [r for r in runs if "te_qps" in r]
        te = med(r["te_qps"] for r in te_runs) if te_runs else float("nan")
        ratio_f = med(r["hashmatch_qps"] / r["faiss_qps"] for r in runs)
        ratio_t = (
            med(r["hashmatch_qps"] / r["te_qps"] for r in te_runs) if te_runs else float("nan")
        )
        build = med(med(r["hashmatch_build_s"]) for r in runs)
        load = med(med(r["hashmatch_load_s"]) for r in runs)
        te_build = med(r["te_build_s"] for r in te_runs) if te_runs else float("nan")
        rss = med(r["hashmatch_rss_bytes"] for r in runs) / 2**20
        te_rss = med(r["te_rss_bytes"] for r in te_runs) / 2**20 if te_runs else float("nan")
        recall = min(r["hashmatch_recall"] for r in runs)
        te_recall = min(r["te_recall"] for r in te_runs) if te_runs else float("nan")
        dih = med(r["hashmatch_dihedral_qps"] for r in runs)
        print(
            f"| {n:,} | {len(runs)} | {hm:,.0f} | {fa:,.0f} | {te:,.0f} | {ratio_f:.1f}x |"
            f" {ratio_t:.1f}x | {dih:,.0f} | {build:.1f} / {load:.1f} | {te_build:.0f} |"
            f" {rss:,.0f} MiB | {te_rss:,.0f} MiB | {recall:.0%} / {te_recall:.0%} |"
        )
    for n, runs in sorted(by_n.items()):
        ratios = ", ".join(f"{r['hashmatch_qps'] / r['faiss_qps']:.1f}x" for r in runs)
        print(f"\nN={n:,}: hashmatch / FAISS per run: {ratios}")


if __name__ == "__main__":
    main()
