"""The line a running load test keeps rewriting on stderr: rate, latency and errors over
the last interval."""

from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from hashmatch.loadtest.recorder import Recorder


class ProgressLine:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._seen = 0
        self._last = time.perf_counter()

    def __call__(self, rec: Recorder) -> None:
        now = time.perf_counter()
        n = len(rec.latencies)
        items = sum(rec.items[self._seen : n])
        recent = np.asarray(rec.latencies[self._seen : n])
        p99 = float(np.percentile(recent, 99)) * 1e3 if recent.size else 0.0
        errors = sum(v for k, v in rec.statuses.items() if k != "OK") + sum(rec.item_codes.values())
        rate = items / (now - self._last) if now > self._last else 0.0
        self._out.write(
            f"\r{now - rec.started:6.1f} s  {rate:9,.1f} items/s  p99 {p99:8.1f} ms"
            f"  errors {errors:,}   "
        )
        self._out.flush()
        self._seen, self._last = n, now

    def done(self) -> None:
        self._out.write("\n")
        self._out.flush()
