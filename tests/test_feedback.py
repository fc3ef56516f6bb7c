"""Feedback on a match: a false positive stops matching for the caller, and is exported."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import grpc
import pytest

from hashmatch.cli import main
from hashmatch.client import Client
from hashmatch.commands.common import Streams
from hashmatch.proto import bank_pb, bank_rpc
from tests import server_harness
from tests.helpers import encode, synthetic_rgb


def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "not in time"
        time.sleep(0.05)


def test_false_positive_feedback_suppresses_and_exports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    photo = encode(synthetic_rgb(120, 160, seed=51), "PNG")
    srv = server_harness.start(data)
    try:
        with Client(srv.target) as client:
            pdq = client.hash_images([photo])[0].pdq
            quiet = Streams(stdout=io.StringIO())
            main(["bank", "create", "ncmec", "--data-dir", str(data)], quiet)
            main(["bank", "add", "ncmec", pdq, "--data-dir", str(data)], quiet)

            def match() -> object:
                return client.match_images([photo])[0]

            _until(lambda: match().is_match)  # type: ignore[attr-defined]
            entry_id = match().matches[0]["entry_id"]  # type: ignore[attr-defined]
            banks = bank_rpc.BankServiceStub(srv.channel())  # type: ignore[no-untyped-call]
            resp = banks.SendFeedback(
                bank_pb.FeedbackRequest(bank="ncmec", entry_id=entry_id,
                                        verdict=bank_pb.FALSE_POSITIVE, note="a cat")
            )  # fmt: skip
            assert resp.allow_bank == ""  # kept by entry id, in no bank
            _until(lambda: not match().is_match)  # type: ignore[attr-defined]
            suppressed = match()
            assert suppressed.matches and suppressed.matches[0]["bank"] == "ncmec"  # type: ignore[attr-defined]
            names = {b.name for b in banks.ListBanks(bank_pb.ListBanksRequest()).banks}
            assert names == {"ncmec", "Test"}  # no allow bank holding a copy of the value
            banks.SendFeedback(
                bank_pb.FeedbackRequest(bank="ncmec", entry_id=entry_id, verdict=bank_pb.CONFIRMED)
            )
            _until(lambda: match().is_match)  # type: ignore[attr-defined]
            for bad in (
                bank_pb.FeedbackRequest(bank="ncmec", entry_id=entry_id),
                bank_pb.FeedbackRequest(bank="nope", entry_id=entry_id, verdict=bank_pb.CONFIRMED),
                bank_pb.FeedbackRequest(bank="ncmec", entry_id=999, verdict=bank_pb.CONFIRMED),
            ):
                with pytest.raises(grpc.RpcError) as exc:
                    banks.SendFeedback(bad)
                assert exc.value.code() in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.NOT_FOUND,
                )
    finally:
        assert srv.stop() == 0
    out = io.StringIO()
    assert (
        main(
            ["feedback", "export", "--bank", "ncmec", "--data-dir", str(data)], Streams(stdout=out)
        )
        == 0
    )
    (row,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert row["entry_id"] == entry_id and row["confirmed"] == 1 and row["false_positive"] == 0
