"""What a load test measured: every call's latency against its intended start, its
items, and what went wrong, by gRPC (or HTTP) status and by item code."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True, slots=True)
class CallResult:
    """One call's outcome: items answered OK, and the others' codes (a refused call has
    `status` set and every item counted under it)."""

    items: int
    ok: int = 0
    item_codes: tuple[str, ...] = ()
    status: str = "OK"


@dataclass
class Recorder:
    """Samples, in the order calls finished. Latency is finish time minus the time the
    schedule meant the call to start (open loop: queueing in the client or the server is
    counted, not hidden), or minus its actual start (closed loop). Percentiles are over
    the calls the server answered (a refusal is counted by its status, and its quick
    answer does not flatter the latency)."""

    started: float = field(default_factory=time.perf_counter)
    cpu_started: float = field(default_factory=time.process_time)
    finished_at: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    answered: list[bool] = field(default_factory=list)
    ok_items: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    item_codes: Counter[str] = field(default_factory=Counter)
    late_starts: int = 0  # calls that left the client over 10 ms after their slot

    def record(self, intended: float, done: float, result: CallResult) -> None:
        self.finished_at.append(done - self.started)
        self.latencies.append(done - intended)
        self.items.append(result.items)
        self.answered.append(result.status == "OK")
        self.ok_items += result.ok
        self.statuses[result.status] += 1
        self.item_codes.update(result.item_codes)

    def summary(self, wall_s: float | None = None) -> Summary:
        wall = wall_s if wall_s is not None else time.perf_counter() - self.started
        lat = np.asarray(self.latencies, dtype=np.float64)[np.asarray(self.answered, dtype=bool)]
        items = int(sum(self.items))
        cpu = time.process_time() - self.cpu_started
        pct = {p: float(np.percentile(lat, p)) if lat.size else 0.0 for p in PERCENTILES}
        return Summary(
            wall_s=wall,
            calls=len(self.latencies),
            items=items,
            ok_items=self.ok_items,
            items_per_s=self.ok_items / wall if wall > 0 else 0.0,
            calls_per_s=len(self.latencies) / wall if wall > 0 else 0.0,
            latency_ms={p: v * 1e3 for p, v in pct.items()},
            max_latency_ms=float(lat.max()) * 1e3 if lat.size else 0.0,
            statuses=dict(self.statuses),
            item_codes=dict(self.item_codes),
            client_cpu_ms_per_item=cpu * 1e3 / items if items else 0.0,
            late_starts=self.late_starts,
        )


@dataclass(frozen=True)
class Summary:
    wall_s: float
    calls: int
    items: int
    ok_items: int
    items_per_s: float  # answered OK: what the server got through
    calls_per_s: float
    latency_ms: dict[float, float]
    max_latency_ms: float
    statuses: dict[str, int]
    item_codes: dict[str, int]
    client_cpu_ms_per_item: float
    late_starts: int
    target_items_per_s: float | None = None

    @property
    def target(self) -> float:
        """The open-loop rate asked for (0 for a closed loop)."""
        return self.target_items_per_s or 0.0

    @property
    def p99_ms(self) -> float:
        return self.latency_ms[99.0]

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "calls": self.calls,
            "items": self.items,
            "ok_items": self.ok_items,
            "items_per_s": round(self.items_per_s, 1),
            "calls_per_s": round(self.calls_per_s, 1),
            "target_items_per_s": self.target_items_per_s,
            "latency_ms": {f"p{p:g}": round(v, 3) for p, v in self.latency_ms.items()}
            | {"max": round(self.max_latency_ms, 3)},
            "errors_by_status": {k: v for k, v in self.statuses.items() if k != "OK"},
            "errors_by_item_code": self.item_codes,
            "client_cpu_ms_per_item": round(self.client_cpu_ms_per_item, 3),
            "late_starts": self.late_starts,
        }

    def table(self) -> str:
        lat = self.latency_ms
        rows = [
            ("items/s (OK)", f"{self.items_per_s:,.1f}"
             + (f" (target {self.target_items_per_s:,.1f})" if self.target_items_per_s else "")),
            ("calls/s", f"{self.calls_per_s:,.1f}"),
            ("items, calls", f"{self.items:,} ({self.ok_items:,} OK), {self.calls:,} in"
             f" {self.wall_s:.1f} s"),
            ("latency ms p50 / p90 / p99 / p99.9 / max",
             " / ".join(f"{lat[p]:.1f}" for p in PERCENTILES) + f" / {self.max_latency_ms:.1f}"),
            ("errors by status", _counts({k: v for k, v in self.statuses.items() if k != "OK"})),
            ("errors by item code", _counts(self.item_codes)),
            ("client CPU per item", f"{self.client_cpu_ms_per_item:.3f} ms"),
        ]  # fmt: skip
        if self.late_starts:
            rows.append(("calls started late (client saturated)", f"{self.late_starts:,}"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"
