"""A sweep of open-loop rates, and its knee: the highest rate the server kept (achieved
at least 95 % of it) with p99 latency under a bound and no refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hashmatch.loadtest.recorder import Summary

KEPT = 0.95


@dataclass(frozen=True)
class Sweep:
    steps: list[Summary]
    bound_ms: float
    knee: Summary | None


def kept(step: Summary, bound_ms: float) -> bool:
    target = step.target
    refused = sum(v for k, v in step.statuses.items() if k != "OK")
    return step.items_per_s >= KEPT * target and step.p99_ms <= bound_ms and refused == 0


def knee_of(steps: Sequence[Summary], bound_ms: float) -> Summary | None:
    good = [s for s in steps if kept(s, bound_ms)]
    return max(good, key=lambda s: s.target, default=None)


async def sweep(
    rates: Sequence[float], run_at: Callable[[float], Awaitable[Summary]], bound_ms: float
) -> Sweep:
    """Each rate in turn, lowest first; past two rates in a row that the server did not
    keep there is nothing more to learn, so the sweep stops."""
    steps: list[Summary] = []
    missed = 0
    for rate in sorted(rates):
        step = await run_at(rate)
        steps.append(step)
        missed = 0 if kept(step, bound_ms) else missed + 1
        if missed >= 2:
            break
    return Sweep(steps, bound_ms, knee_of(steps, bound_ms))


async def sweep_auto(
    run_at: Callable[[float], Awaitable[Summary]], bound_ms: float, start: float,
    refine: int = 3, most: int = 16,
) -> Sweep:  # fmt: skip
    """Rates doubling from `start` until two in a row are not kept, then `refine` halvings
    of the gap between the highest rate kept and the next: the knee within ~10 %."""
    steps: list[Summary] = []
    rate, missed = start, 0
    while missed < 2 and len(steps) < most:
        step = await run_at(rate)
        steps.append(step)
        missed = 0 if kept(step, bound_ms) else missed + 1
        rate *= 2
    for _ in range(refine):
        knee = knee_of(steps, bound_ms)
        low = knee.target if knee else 0.0
        higher = [s.target for s in steps if s.target > low]
        if not higher or len(steps) >= most:
            break
        steps.append(await run_at((low + min(higher)) / 2))
    steps.sort(key=lambda s: s.target)
    return Sweep(steps, bound_ms, knee_of(steps, bound_ms))


def sweep_table(result: Sweep) -> str:
    lines = [
        "| target items/s | achieved | p50 ms | p99 ms | p99.9 ms | refused | kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in result.steps:
        refused = sum(v for k, v in s.statuses.items() if k != "OK")
        lines.append(
            f"| {s.target_items_per_s:,.0f} | {s.items_per_s:,.1f} | {s.latency_ms[50.0]:.1f}"
            f" | {s.p99_ms:.1f} | {s.latency_ms[99.9]:.1f} | {refused:,}"
            f" | {'yes' if kept(s, result.bound_ms) else 'no'} |"
        )
    knee = result.knee
    lines.append(
        f"\nknee (p99 <= {result.bound_ms:g} ms, >= {KEPT:.0%} of the rate kept, nothing"
        " refused): "
        + (f"{knee.target_items_per_s:,.0f} items/s" if knee else "none of these rates")
    )
    return "\n".join(lines)
