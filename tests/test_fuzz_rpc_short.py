"""The short version of the RPC message fuzzer (the long one: python -m tools.fuzz_rpc)."""

from __future__ import annotations

from pathlib import Path

from tests import server_harness
from tools.fuzz_rpc import fuzz, methods


def test_malformed_messages_to_every_rpc_get_a_status_never_internal(tmp_path: Path) -> None:
    srv = server_harness.start(tmp_path / "data")
    try:
        report = fuzz(srv.target, iterations=1500, seed=2026)
        assert srv.proc.poll() is None, "the server died"
    finally:
        assert srv.stop() == 0
    assert report.calls == 1500
    assert report.ok, report.to_json()
    assert {"OK", "INVALID_ARGUMENT", "UNKNOWN"} <= set(report.codes), report.codes
    # Every service's every method is in the pool the fuzzer draws from.
    assert len({m.path.split("/")[1] for m in methods()}) == 5
