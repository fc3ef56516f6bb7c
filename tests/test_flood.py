"""Flood quarantine: an entry matching too many distinct contents is flagged, suspended
(its matches reported as suppressed), audited, and released by an operator."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from hashmatch.cli import main
from hashmatch.client import Client
from hashmatch.commands.common import Streams
from tests import server_harness
from tests.helpers import audit_trail, encode, synthetic_rgb


def test_flooding_entry_is_quarantined_and_released(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "c.toml"
    # One tenant here (open mode: the operator), so one tenant's flood is enough.
    config.write_text(
        "[flood]\nmax_distinct = 3\nwindow_s = 3600\nsuspend = true\nmin_tenants = 1\n"
    )
    rgb = synthetic_rgb(160, 200, seed=61)
    # Near-identical uploads, each a distinct file (different JPEG quality: other MD5s).
    variants = [encode(rgb, "JPEG", quality=q) for q in (95, 90, 85, 80, 75, 70)]
    srv = server_harness.start(data, "--config", str(config))
    quiet = Streams(stdout=io.StringIO())
    try:
        with Client(srv.target) as client:
            pdq = client.hash_images([variants[0]])[0].pdq
            main(["bank", "create", "lists", "--data-dir", str(data)], quiet)
            main(["bank", "add", "lists", pdq, "--data-dir", str(data)], quiet)
            end = time.monotonic() + 10
            while not client.match_images([variants[0]])[0].is_match:
                assert time.monotonic() < end
                time.sleep(0.05)
            # variants[0] was content 1; 2 and 3 still match; the 4th distinct one flags
            # the entry, and from that very call on its matches are suppressed.
            seen = [client.match_images([v])[0].is_match for v in variants[1:4]]
            assert seen == [True, True, False]
            after = client.match_images([variants[4]])[0]
            assert not after.is_match and after.matches  # still listed, but suppressed
            out = io.StringIO()
            main(["quarantine", "list", "--data-dir", str(data)], Streams(stdout=out))
            (flagged,) = [json.loads(line) for line in out.getvalue().splitlines()]
            assert flagged["bank"] == "lists" and flagged["suspended"] == 1
            assert (
                main(
                    ["quarantine", "release", str(flagged["entry_id"]), "--data-dir", str(data)],
                    quiet,
                )
                == 0
            )
            end = time.monotonic() + 10
            while not client.match_images([variants[5]])[0].is_match:  # picked up within ~1 s
                assert time.monotonic() < end
                time.sleep(0.1)
    finally:
        assert srv.stop() == 0
    assert any(rec["rpc"] == "FloodQuarantine" for rec in audit_trail(data / "audit.sqlite3"))


def test_the_monitor_holds_only_the_window(tmp_path: Path) -> None:
    """One tenant's endless distinct contents (it alone can never flag the entry) are held
    only up to what can count, and nothing is held a window after the traffic stops."""
    from hashmatch.banks.model import SignalType
    from hashmatch.config import FloodSettings
    from hashmatch.core.flood import FloodMonitor
    from hashmatch.matching.model import Match, MatchResult
    from hashmatch.storage.flood_store import SqliteFloodStore

    now = [0.0]
    config = FloodSettings(window_s=60.0, max_distinct=100, min_tenants=2)
    monitor = FloodMonitor(config, SqliteFloodStore(tmp_path / "f.sqlite3"), clock=lambda: now[0])
    hit = MatchResult((Match("ncmec", 1, SignalType.PDQ, 0, None),))

    def held() -> int:
        return sum(len(s) for t in monitor._seen.values() for s in t.values())

    for k in range(30_000):  # 3,000 s, 10 a second
        now[0] = k / 10
        monitor.observe("acme", [k.to_bytes(4, "big")], [hit])
        assert held() <= 51  # acme counts for at most ceil(101 / 2) contents
    now[0] += 61.0
    monitor.observe("acme", [], [])
    assert held() == 0 and monitor._seen == {}
