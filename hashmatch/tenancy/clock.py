"""Timestamps as the stores write them: UTC ISO-8601, sortable as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now_iso(offset_s: float = 0.0) -> str:
    t = datetime.now(UTC) + timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def seconds_to_next_month() -> float:
    now = datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return (datetime(year, month, 1, tzinfo=UTC) - now).total_seconds()
