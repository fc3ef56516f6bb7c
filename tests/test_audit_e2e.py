"""Every call a server answers lands in its audit trail, which verifies; usage reads it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import grpc
import pytest

from hashmatch.cli import main
from hashmatch.client import Client
from hashmatch.commands.common import Streams
from tests import server_harness
from tests.helpers import audit_trail, encode, synthetic_rgb


def test_calls_are_audited_and_the_trail_verifies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    photo = encode(synthetic_rgb(120, 160, seed=3), "PNG")
    srv = server_harness.start(data)
    try:
        with Client(srv.target) as client:
            pdq = client.hash_images([photo])[0].pdq
            out = io.StringIO()
            assert (
                main(["bank", "create", "audited", "--data-dir", str(data)], Streams(stdout=out))
                == 0
            )
            assert (
                main(["bank", "add", "audited", pdq, "--data-dir", str(data)], Streams(stdout=out))
                == 0
            )
            for _ in range(100):  # the server follows the bank within a second
                if client.match_images([photo])[0].is_match:
                    break
            client.match_images([photo, b"junk"])
            client.match_hashes([pdq])
            list(client.match_stream([("s1", photo), ("s2", photo)]))
            with pytest.raises(grpc.RpcError):
                client.match_images([photo], banks=["missing"])
    finally:
        assert srv.stop() == 0
    trail = [rec for rec in audit_trail(data / "audit.sqlite3")]
    rpcs = [r["rpc"] for r in trail]
    assert {"HashImages", "MatchImages", "MatchHashes", "MatchStream"} <= set(rpcs)
    batch = next(r for r in trail if r["rpc"] == "MatchImages" and r["items"] == 2)
    assert batch["codes"] == {"OK": 1, "NOT_AN_IMAGE": 1} and batch["matches_by_bank"] == {
        "audited": 1
    }
    assert batch["tracking_id"] and batch["bank_sequence"] > 0
    stream = next(r for r in trail if r["rpc"] == "MatchStream")
    assert stream["items"] == 2 and stream["matched_items"] == 2
    assert any(r["status"] == "NOT_FOUND" for r in trail)  # the unknown bank
    assert pdq not in json.dumps(trail)  # no hashes of the caller's content
    out = io.StringIO()
    assert main(["audit", "verify", "--data-dir", str(data)], Streams(stdout=out)) == 0
    assert json.loads(out.getvalue())["records"] == len(trail)
    out = io.StringIO()
    args = ["report", "usage", "--data-dir", str(data), "--from", "2000", "--to", "2100"]
    assert main(args, Streams(stdout=out)) == 0
    (usage,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert usage["matches_by_bank"]["audited"] >= 4 and usage["hashes"] == 1


def test_refused_calls_are_audited_too(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[auth]\nrequired = true\n")
    srv = server_harness.start(tmp_path / "data", "--config", str(config))
    try:
        with Client(srv.target) as client, pytest.raises(grpc.RpcError) as exc:
            client.match_hashes(["00" * 32])
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        assert srv.stop() == 0
    trail = [rec for rec in audit_trail(tmp_path / "data" / "audit.sqlite3")]
    assert {"rpc": "MatchHashes", "status": "UNAUTHENTICATED"}.items() <= trail[-1].items()
