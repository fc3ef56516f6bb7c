"""Exchanges end to end, as a user runs them: `hashmatch exchange` commands as processes
against a fake exchange on loopback; `kill -9` mid-sync and a rerun equal a clean sync; a
running server syncs on its schedule, matches what arrived, sends a tenant's verdict back
upstream and answers ExchangeService for operators only. Credentials stay out of the
database, the output and the errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from hashmatch.client import Client
from hashmatch.proto import bank_pb, bank_rpc, exchange_pb, exchange_rpc
from tests import server_harness, tenancy_setup
from tests.fake_threatexchange import TOKEN, FakeThreatExchange

ENV = {"TE_TOKEN": TOKEN}


def cli(
    data: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hashmatch", *argv, "--data-dir", str(data)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **ENV, **(env or {})},
    )  # fmt: skip


def ok(data: Path, *argv: str) -> str:
    done = cli(data, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "not in time"
        time.sleep(0.05)


@pytest.fixture
def fake() -> Iterator[FakeThreatExchange]:
    with FakeThreatExchange() as f:
        yield f


def _fields(msg: exchange_pb.AddExchangeRequest) -> dict[str, object]:
    return {f.name: v for f, v in msg.ListFields()}


def setup(data: Path, fake: FakeThreatExchange, *extra: str) -> None:
    ok(data, "bank", "create", "te", "--visibility", "public")
    ok(
        data, "exchange", "add", "te-x", "--type", "threatexchange", "--url", fake.base_url,
        "--privacy-group", "1001", "--bank", "te", "--credentials-env", "TE_TOKEN", "--no-sync",
        *extra,
    )  # fmt: skip


def bank_rows(data: Path) -> set[tuple[str, bytes, str, str, bool]]:
    with sqlite3.connect(data / "banks.sqlite3") as db:
        rows = db.execute(
            "SELECT external_id, value, label, source, removed_at IS NULL FROM entries"
        ).fetchall()
    return {(r[0], bytes(r[1]), r[2], r[3], bool(r[4])) for r in rows}


def test_kill_mid_sync_and_rerun_equal_a_clean_sync(
    fake: FakeThreatExchange, tmp_path: Path
) -> None:
    an_hour_ago = int(time.time()) - 3600
    fake.add_many(4500, at=an_hour_ago)  # 5 pages of 1,000
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for data in (killed, clean):
        setup(data, fake)
    path = fake.updates_path()
    fake.hold[path] = hold = threading.Event()
    fake.hold_from[path] = 4  # pages 1-3 answered, the 4th waits: kill -9 meanwhile
    proc = subprocess.Popen(
        [sys.executable, "-m", "hashmatch", "exchange", "sync", "te-x", "--data-dir", str(killed)],
        env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    until(lambda: fake.paths().count(path) >= 4)
    time.sleep(0.3)  # page 3 committing, if it still is
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    hold.set()
    del fake.hold[path]
    status = json.loads(ok(killed, "exchange", "list"))
    assert 0 < status["added"] < 4500 and status["last_run_at"] is None  # cut mid-run
    partial = bank_rows(killed)
    assert len(partial) == status["added"]  # the counts commit with their pages
    report = json.loads(ok(killed, "exchange", "sync", "te-x"))
    assert report["added"] == 4500 - status["added"] and report["error"] is None
    json.loads(ok(clean, "exchange", "sync", "te-x"))
    assert bank_rows(killed) == bank_rows(clean)
    assert len(bank_rows(clean)) == 4500
    assert json.loads(ok(killed, "exchange", "list"))["added"] == 4500  # nothing twice

    # Upstream changes: deletions, an update of tags, new records; then both agree again.
    ids = sorted(fake.live())[:12]
    for i in ids[:10]:
        fake.delete(i)
    fake.update(ids[10], tags=("csam", "reviewed"))
    fake.add("ab" * 32, tags=("terror",))
    for data in (killed, clean):
        report = json.loads(ok(data, "exchange", "sync", "te-x"))
        assert report["removed"] == 10 and report["added"] >= 1
    assert bank_rows(killed) == bank_rows(clean)
    live = {x: label for x, _, label, _, alive in bank_rows(clean) if alive}
    assert len(live) == 4500 - 10 + 1
    assert not any(x.startswith(f"1001/{i}/") for i in ids[:10] for x in live)
    assert live[f"1001/{ids[10]}/pdq"] == "csam,reviewed"
    words = ok(clean, "exchange", "status", "te-x")
    assert "te-x: threatexchange" in words and "entries added 4,501, removed 10" in words


def test_one_command_makes_the_bank_and_fills_it(fake: FakeThreatExchange, tmp_path: Path) -> None:
    fake.add("12" * 32, tags=("csam",))
    data = tmp_path / "data"
    out = ok(
        data, "exchange", "add", "te-x", "--type", "threatexchange", "--environment",
        "production", "--url", fake.base_url, "--privacy-group", "1001",
        "--credentials-env", "TE_TOKEN",
    )  # fmt: skip
    added, report = (json.loads(line) for line in out.splitlines())
    assert added["bank"] == "te-x" and added["bank_created"] and report["added"] == 1
    stats = json.loads(ok(data, "bank", "stats", "te-x"))
    assert stats["entries"] == {"pdq": 1, "md5": 0, "sha256": 0}
    refused = cli(
        data, "exchange", "add", "te-x", "--type", "threatexchange", "--url", fake.base_url,
        "--privacy-group", "1001", "--credentials-env", "TE_TOKEN", "--bank", "fresh",
    )  # fmt: skip
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert "fresh" not in ok(data, "bank", "list")  # no bank left behind
    sandbox = cli(
        data, "exchange", "add", "te-y", "--type", "threatexchange", "--url", fake.base_url,
        "--privacy-group", "1001", "--credentials-env", "TE_TOKEN", "--bank", "Test",
    )  # fmt: skip
    assert sandbox.returncode == 2 and "sandbox's bank of benign samples" in sandbox.stderr


def test_credentials_are_never_stored_printed_or_in_errors(
    fake: FakeThreatExchange, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    setup(data, fake)
    fake.add("cd" * 32)
    assert json.loads(ok(data, "exchange", "sync", "te-x"))["added"] == 1
    listed = ok(data, "exchange", "list") + ok(data, "exchange", "status")
    secret = TOKEN.split("|")[1]
    for path in data.iterdir():
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in listed and "TE_TOKEN" in listed  # the name, never the value
    wrong = cli(data, "exchange", "sync", "te-x", env={"TE_TOKEN": "1|wrong-secret"})
    assert wrong.returncode == 1 and "wrong-secret" not in wrong.stdout + wrong.stderr
    assert "HTTP 400" in json.loads(wrong.stdout)["error"]
    missing = cli(data, "exchange", "sync", "te-x", env={"TE_TOKEN": ""})
    assert missing.returncode == 2 and "set TE_TOKEN" in missing.stderr  # configuration
    bad = cli(data, "exchange", "add", "y", "--type", "ncmec", "--environment", "moon",
              "--bank", "te", "--credentials-env", "A,B")  # fmt: skip
    assert bad.returncode == 2 and "ncmec environments" in bad.stderr


def test_a_server_syncs_on_schedule_matches_and_sends_verdicts_upstream(
    fake: FakeThreatExchange, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    keys = tenancy_setup.populate(data)
    setup(data, fake, "--feedback-upstream")
    config = tmp_path / "hashmatch.toml"
    config.write_text("[exchanges]\ninterval_s = 0.2\n")
    srv = server_harness.start(data, "--config", str(config), env=ENV)
    try:
        acme = keys.by_name["match"]
        value = "ef" * 32
        with Client(srv.target, api_key=acme) as client:
            assert not client.match_hashes([value])[0].is_match
            indicator = fake.add(value, tags=("csam",))
            changed = time.monotonic()
            until(lambda: client.match_hashes([value])[0].is_match)
            print(f"upstream change to matchable: {time.monotonic() - changed:.2f} s")
            (match,) = client.match_hashes([value])[0].matches
            assert match["bank"] == "te" and match["label"] == "csam"
        feedback = bank_rpc.BankServiceStub(srv.channel())  # type: ignore[no-untyped-call]
        feedback.SendFeedback(
            bank_pb.FeedbackRequest(
                bank="te", entry_id=match["entry_id"], verdict=bank_pb.FALSE_POSITIVE
            ),
            metadata=(("authorization", f"Bearer {keys.by_name['bank-admin']}"),),
        )
        until(lambda: any(r[1] == "DISAGREE_WITH_TAGS" for r in fake.reactions))
        assert indicator  # the record the verdict went back to

        stub = exchange_rpc.ExchangeServiceStub(srv.channel())  # type: ignore[no-untyped-call]
        operator = (("authorization", f"Bearer {keys.operator}"),)
        (x,) = stub.ListExchanges(exchange_pb.ListExchangesRequest(), metadata=operator).exchanges
        assert x.name == "te-x" and x.status.added >= 1 and "te-x: threatexchange" in x.status_text
        assert list(x.credentials_env) == ["TE_TOKEN"]
        report = stub.SyncExchange(exchange_pb.SyncExchangeRequest(name="te-x"), metadata=operator)
        assert report.exchange == "te-x" and (report.error == "" or report.busy)
        for who in ("match", "bank-admin", "other tenant", "no key"):
            secret = keys.by_name[who]
            meta = (("authorization", f"Bearer {secret}"),) if secret else ()
            with pytest.raises(grpc.RpcError) as denied:
                stub.ListExchanges(exchange_pb.ListExchangesRequest(), metadata=meta)
            assert denied.value.code() in (
                grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED
            )  # fmt: skip
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetExchange(exchange_pb.GetExchangeRequest(name="nope"), metadata=operator)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # A key may bind exchanges to their own hosts only: a base URL would send the
        # server's credentials wherever the caller likes.
        add = exchange_pb.AddExchangeRequest(
            name="nc", type="ncmec", bank="nc", environment="test-industry",
            credentials_env=["HASHMATCH_EXCHANGE_NCMEC_USER", "HASHMATCH_EXCHANGE_NCMEC_PASS"],
        )  # fmt: skip
        for names in (["HASHMATCH_EXCHANGE_U", "PGPASSWORD"], ["AWS_SECRET_ACCESS_KEY", "X"]):
            with pytest.raises(grpc.RpcError) as other_secrets:  # the server's other secrets
                stub.AddExchange(
                    exchange_pb.AddExchangeRequest(**{**_fields(add), "credentials_env": names}),
                    metadata=operator,
                )
            assert other_secrets.value.code() == grpc.StatusCode.PERMISSION_DENIED
        for bank in ("acme:mine", "globex:new"):  # a tenant's bank, or in its namespace
            with pytest.raises(grpc.RpcError) as theirs:
                stub.AddExchange(
                    exchange_pb.AddExchangeRequest(**{**_fields(add), "bank": bank}),
                    metadata=operator,
                )
            assert theirs.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as elsewhere:
            stub.AddExchange(
                exchange_pb.AddExchangeRequest(url="https://attacker.example", **_fields(add)),
                metadata=operator,
            )
        assert elsewhere.value.code() == grpc.StatusCode.PERMISSION_DENIED
        made = stub.AddExchange(add, metadata=operator)
        assert made.bank == "nc" and made.environment == "test-industry" and not made.url
        stub.SetExchangePaused(
            exchange_pb.SetExchangePausedRequest(name="nc", paused=True), metadata=operator
        )
        stub.RemoveExchange(exchange_pb.RemoveExchangeRequest(name="nc"), metadata=operator)
        assert srv.metrics_port is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics") as r:
            text = r.read().decode()
        assert 'hashmatch_exchange_entries_added_total{exchange="te-x"} 1.0' in text
        assert 'hashmatch_exchange_last_success_timestamp_seconds{exchange="te-x"}' in text
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("kind", ["ncmec", "stopncii"])
def test_each_exchange_fills_its_bank_with_one_command(kind: str, tmp_path: Path) -> None:
    """NCMEC and StopNCII as ThreatExchange above: `exchange add` alone (its --url a fake
    of the API) makes the bank and fills it; a second sync after an upstream deletion
    removes what went."""
    from tests import fake_ncmec, fake_stopncii

    data, then = tmp_path / "data", int(time.time()) - 3600
    pdq, md5 = fake_ncmec.bulk_hashes(7)
    with fake_ncmec.FakeNcmec() if kind == "ncmec" else fake_stopncii.FakeStopncii() as fake:
        if isinstance(fake, fake_ncmec.FakeNcmec):
            fake.add("1001", then, pdq=pdq, md5=md5, classification="A1")
            env = {"U": fake_ncmec.USER, "P": fake_ncmec.PASSWORD}
            names, expect = "U,P", {(pdq, "A1"), (md5, "A1")}
        else:
            fake.add(pdq, then, status="Active")
            fake.add(md5, then, signal_type="VideoMD5", status="Active")
            env = {"S": fake_stopncii.SUBSCRIPTION_KEY, "F": fake_stopncii.FETCH_KEY,
                   "B": fake_stopncii.FEEDBACK_KEY}  # fmt: skip
            names, expect = "S,F,B", {(pdq, "Active"), (md5, "Active")}
        done = cli(
            data, "exchange", "add", kind, "--type", kind, "--url", fake.base_url,
            "--credentials-env", names, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        added, report = (json.loads(line) for line in done.stdout.splitlines())
        assert added["bank_created"] and report["added"] == 2 and report["error"] is None
        rows = bank_rows(data)
        assert {(v, label) for _, v, label, _, _ in rows} == expect
        assert all(source.startswith(kind) for _, _, _, source, _ in rows)
        if isinstance(fake, fake_stopncii.FakeStopncii):
            fake.withdraw(pdq, then + 10)
            again = cli(data, "exchange", "sync", kind, env=env)
            assert again.returncode == 0 and json.loads(again.stdout)["removed"] == 1
            live = {v for _, v, _, _, alive in bank_rows(data) if alive}
            assert live == {md5}
