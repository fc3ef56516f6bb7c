"""The short version of the decode/hash fuzzer (the long one: python -m tools.fuzz_engine)."""

from __future__ import annotations

from tools.fuzz_engine import fuzz


def test_mutated_images_never_crash_hang_or_leak() -> None:
    report = fuzz(iterations=1500, seed=2026, time_limit=2.0)
    assert report.iterations == 1500
    assert not report.findings, report.findings
    assert report.ok, report.to_json()
    # The mutations reach every outcome: decoded, refused as corrupt, bombs refused early.
    assert {"OK", "CORRUPT_IMAGE", "NOT_AN_IMAGE", "SIZE_OUT_OF_RANGE"} <= set(report.outcomes)
