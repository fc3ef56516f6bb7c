"""The 30-second version of the soak/overload run (the long one: python -m tools.soak)."""

from __future__ import annotations

from pathlib import Path

from tests import server_harness
from tools.soak import Soak, sample_images


def test_overload_every_call_answered_memory_flat(tmp_path: Path) -> None:
    config = tmp_path / "soak.toml"
    config.write_text("[batch]\nmax_queue_items = 256\n")
    srv = server_harness.start(tmp_path / "data", "--config", str(config))
    try:
        report = Soak(srv.target, sample_images(), seconds=30, workers=12).run(srv.proc.pid)
        assert srv.proc.poll() is None, "the server died under load"
    finally:
        assert srv.stop() == 0
    assert report.lost == 0, report.to_json()
    assert report.answers["OK"] > 0 and report.answers["RESOURCE_EXHAUSTED"] > 0, report.to_json()
    assert report.ok, report.to_json()
