"""Pictures of a run (latency over time, latency histogram) and of a sweep (throughput
against latency). matplotlib is an optional extra: `pip install 'hashmatch[plot]'`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hashmatch.errors import ConfigError
from hashmatch.loadtest.recorder import Recorder, Summary


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'hashmatch[plot]'") from None
    return plt


def per_second(rec: Recorder) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seconds into the run, items answered in each, and their p50 and p99 latency (ms)."""
    keep = np.asarray(rec.answered, dtype=bool)
    done = np.asarray(rec.finished_at)[keep]
    lat = np.asarray(rec.latencies)[keep] * 1e3
    items = np.asarray(rec.items)[keep]
    if done.size == 0:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    bins = np.floor(done).astype(np.int64)
    seconds = np.arange(bins.max() + 1)
    counts = np.bincount(bins, weights=items, minlength=seconds.size)
    p50, p99 = np.full(seconds.size, np.nan), np.full(seconds.size, np.nan)
    for s in np.unique(bins):
        p50[s], p99[s] = np.percentile(lat[bins == s], [50, 99])
    return seconds + 0.5, counts, p50, p99


def run_plot(rec: Recorder, summary: Summary, title: str, path: Path) -> None:
    plt = pyplot()
    fig, (over_time, hist) = plt.subplots(2, 1, figsize=(9, 7), constrained_layout=True)
    keep = np.asarray(rec.answered, dtype=bool)
    done = np.asarray(rec.finished_at)[keep]
    lat = np.asarray(rec.latencies)[keep] * 1e3
    over_time.scatter(done, lat, s=2, alpha=0.25, color="tab:gray", label="calls answered")
    t, counts, p50, p99 = per_second(rec)
    over_time.plot(t, p50, color="tab:blue", label="p50 per second")
    over_time.plot(t, p99, color="tab:red", label="p99 per second")
    over_time.set_xlabel("seconds into the run")
    over_time.set_ylabel("latency, ms")
    over_time.set_yscale("log")
    rate_axis = over_time.twinx()
    rate_axis.step(t, counts, where="mid", color="tab:green", alpha=0.6, label="items/s")
    rate_axis.set_ylabel("items/s")
    rate_axis.set_ylim(bottom=0)
    over_time.legend(loc="upper left", fontsize="small")
    over_time.set_title(title)
    if lat.size:
        low, high = max(lat.min(), 1e-2), max(lat.max(), 1e-1)
        hist.hist(lat, bins=np.geomspace(low, high * 1.01, 60), color="tab:blue")
        for p, v in summary.latency_ms.items():
            hist.axvline(v, color="tab:red", linestyle=":", linewidth=1)
            hist.text(v, hist.get_ylim()[1] * 0.9, f"p{p:g}", rotation=90, fontsize="small")
    hist.set_xscale("log")
    hist.set_xlabel("latency, ms")
    hist.set_ylabel("calls")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sweep_plot(
    steps: list[Summary], bound_ms: float, knee: Summary | None, title: str, path: Path
) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    achieved = [s.items_per_s for s in steps]
    ax.plot(achieved, [s.latency_ms[50.0] for s in steps], "o-", label="p50")
    ax.plot(achieved, [s.latency_ms[99.0] for s in steps], "o-", color="tab:red", label="p99")
    for s in steps:
        ax.annotate(f"{s.target_items_per_s:g}/s", (s.items_per_s, s.latency_ms[99.0]),
                    textcoords="offset points", xytext=(4, 4), fontsize="x-small")  # fmt: skip
    ax.axhline(bound_ms, color="tab:gray", linestyle="--", label=f"p99 bound {bound_ms:g} ms")
    if knee is not None:
        ax.axvline(knee.items_per_s, color="tab:green", linestyle=":",
                   label=f"knee: {knee.items_per_s:,.0f} items/s")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("items/s answered OK (open loop, target rate labelled)")
    ax.set_ylabel("latency, ms")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    plt.close(fig)
