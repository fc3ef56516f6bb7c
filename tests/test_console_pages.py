"""What the console's pages do, over HTTP against a real server: each action lands in the
core exactly as its CLI/RPC twin would (tenants' states and limits, exports, exchanges'
errors and sync, usage and NCMEC's aggregate, the audit's verification)."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from hashmatch.cli import main
from hashmatch.commands.common import Streams
from hashmatch.proto import admin_pb, admin_rpc
from tests.console_setup import (
    ACME_VALUE,
    GLOBEX_PRIVATE_VALUE,
    Console,
    close_clients,
    console_server,
    session_csrf,
)
from tests.console_setup import signed_in as _signed_in
from tests.helpers import audit_trail


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data = tmp_path_factory.mktemp("pages")
    env = {"HASHMATCH_EXCHANGES_ATTEMPTS": "1", "HASHMATCH_EXCHANGES_INTERVAL_S": "0",
           "HASHMATCH_EXCHANGE_NOPE_USER": "u", "HASHMATCH_EXCHANGE_NOPE_PASS": "p"}  # fmt: skip
    with console_server(data, env=env, before=_add_exchange) as c:
        yield c


def _add_exchange(data: Path) -> None:
    """An exchange whose upstream is not there (its sync fails, and says why)."""
    err = io.StringIO()
    argv = ["exchange", "add", "feed", "--type", "ncmec", "--url", "http://127.0.0.1:9",
            "--credentials-env", "HASHMATCH_EXCHANGE_NOPE_USER,HASHMATCH_EXCHANGE_NOPE_PASS",
            "--no-sync", "--data-dir", str(data)]  # fmt: skip
    assert main(argv, Streams(stdout=io.StringIO(), stderr=err)) == 0, err.getvalue()


@pytest.fixture(autouse=True)
def _closed() -> Iterator[None]:
    yield
    close_clients()


def test_tenant_lifecycle_and_limits(console: Console) -> None:
    op = _signed_in(console.base, console.operator)
    suspend = {"csrf": session_csrf(op), "action": "suspend", "reason": "abuse"}
    r = op.post("/console/tenants/acme/decide", data=suspend)
    assert r.status_code == 303
    assert "suspended" in op.get("/console/tenants/acme").text
    r = op.post("/console/tenants/acme/decide",
                data={"csrf": session_csrf(op), "action": "reinstate", "reason": "ok"})  # fmt: skip
    assert "approved" in op.get("/console/tenants/acme").text
    limits = {"csrf": session_csrf(op), "rate_per_second": "7.5", "monthly_items": "123"}
    r = op.post("/console/tenants/acme/limits", data=limits)
    assert r.status_code == 303
    page = op.get("/console/tenants/acme").text
    assert "7.5 requests/s" in page and "123 items a month" in page
    for odd in ("nan", "inf", "-1"):  # no limit at all, or no number: refused as such
        r = op.post("/console/tenants/acme/limits", data={**limits, "rate_per_second": odd,
                                                           "csrf": session_csrf(op)})  # fmt: skip
        assert r.status_code == 400 and "rate_per_second must be a number" in r.text, odd
    assert "7.5 requests/s" in op.get("/console/tenants/acme").text
    # A bad transition is the core's error, shown as a page, never a traceback.
    r = op.post("/console/tenants/acme/decide",
                data={"csrf": session_csrf(op), "action": "approve", "reason": "x"})  # fmt: skip
    assert r.status_code == 400 and "cannot approve a tenant that is approved" in r.text
    assert "Traceback" not in r.text


def test_export_and_bank_settings(console: Console) -> None:
    c = _signed_in(console.base, console.tenant_admin)
    r = c.get("/console/banks/acme:list/export?format=csv")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert any(ACME_VALUE.hex() in row for row in rows)
    r = c.post("/console/banks/acme:list/settings",
               data={"csrf": session_csrf(c), "pdq_threshold": "20", "set": "shared_with",
                     "shared_with": "globex", "visibility": "shared"})  # fmt: skip
    assert r.status_code == 303
    page = c.get("/console/banks/acme:list").text
    assert "20 bits" in page and "shared with globex" in page
    # Over the installation's maximum: refused by the core, as over gRPC.
    r = c.post("/console/banks/acme:list/settings",
               data={"csrf": session_csrf(c), "pdq_threshold": "40"})  # fmt: skip
    assert r.status_code == 400
    # A tenant cannot make a bank public, nor one outside its namespace.
    r = c.post("/console/banks", data={"csrf": session_csrf(c), "name": "acme:p",
                                       "visibility": "public"})  # fmt: skip
    assert r.status_code == 403
    r = c.post("/console/banks", data={"csrf": session_csrf(c), "name": "globex:mine"})
    assert r.status_code == 400


def test_exchanges_show_their_errors_and_sync(console: Console) -> None:
    op = _signed_in(console.base, console.operator)
    page = op.get("/console/exchanges").text
    assert "feed" in page and "ncmec" in page and "last success" in page
    r = op.post("/console/exchanges/feed/sync", data={"csrf": session_csrf(op)})
    assert r.status_code == 303
    page = op.get("/console/exchanges").text
    assert "sync of feed failed" in page
    assert "LAST RUN FAILED" in op.get("/console/exchanges").text


def test_usage_chart_and_ncmec_aggregate(console: Console) -> None:
    m = _signed_in(console.base, console.globex)
    r = m.post("/console/debug/hashes",
               data={"csrf": session_csrf(m), "hashes": GLOBEX_PRIVATE_VALUE.hex()})  # fmt: skip
    assert r.status_code == 200 and "globex:private" in r.text
    op = _signed_in(console.base, console.operator)
    deadline = time.monotonic() + 10
    # The sign-in's record may land a flush before the match's: wait for the match.
    while "<rect" not in (page := op.get("/console/usage").text):
        assert time.monotonic() < deadline, "the audit never showed globex's match"
        time.sleep(0.1)  # the audit log writes behind the call
    assert "<svg" in page and "<td>globex</td>" in page
    # Per tenant: globex's matches are in its chart, none in another tenant's.
    assert "globex:private" in op.get("/console/usage?tenant=globex").text
    assert "<rect" not in op.get("/console/usage?tenant=acme").text
    # A tenant admin asking for another tenant's usage: it looks missing.
    g = _signed_in(console.base, console.tenant_admin)
    assert g.get("/console/usage?tenant=globex").status_code == 404
    r = op.get("/console/usage/ncmec")
    body = json.loads(r.text)
    customers = {c["customer"]: c for c in body["customers"]}
    # The debugger's hash was checked and matched: counted as any face's would be.
    assert customers["globex"]["images_checked"] >= 1 and customers["globex"]["matched"] >= 1
    # A bad span is a 400 page, not a crash.
    assert op.get("/console/usage?from=2026-13-01&to=x").status_code == 400


def test_audit_verifies(console: Console) -> None:
    op = _signed_in(console.base, console.operator)
    r = op.post("/console/audit/verify", data={"csrf": session_csrf(op)})
    assert r.status_code == 200 and "Intact" in r.text and "records checked" in r.text


def test_usage_is_on_grpc_too(console: Console) -> None:
    """The console adds no capability: a tenant admin's usage is AdminService/GetUsage."""
    with console.server.channel() as ch:
        _usage_checks(console, admin_rpc.AdminServiceStub(ch))  # type: ignore[no-untyped-call]


def _usage_checks(console: Console, stub: Any) -> None:
    today = datetime.now(UTC).date()
    span = {"start": (today - timedelta(days=1)).isoformat(),
            "end": (today + timedelta(days=1)).isoformat()}  # fmt: skip
    md = (("authorization", f"Bearer {console.globex}"),)
    own = stub.GetUsage(admin_pb.GetUsageRequest(**span), metadata=md).usage
    assert [u.tenant_id for u in own] in ([], ["globex"])
    with pytest.raises(grpc.RpcError) as err:
        stub.GetUsage(admin_pb.GetUsageRequest(tenant_id="acme", **span), metadata=md)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    md = (("authorization", f"Bearer {console.member}"),)  # no tenant-admin role
    with pytest.raises(grpc.RpcError) as err:
        stub.GetUsage(admin_pb.GetUsageRequest(**span), metadata=md)
    assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
    md = (("authorization", f"Bearer {console.operator}"),)
    every = stub.GetUsage(admin_pb.GetUsageRequest(**span), metadata=md).usage
    assert "operator" in {u.tenant_id for u in every}


def test_console_calls_are_audited(console: Console) -> None:
    """Each console request is one audit record, as a gRPC call is (refusals too)."""
    op = _signed_in(console.base, console.operator)
    op.get("/console/quarantine")
    op.post("/console/banks", data={"csrf": "forged", "name": "x"})  # refused: CSRF
    deadline = time.monotonic() + 10
    # An earlier test's refused CreateBank is acme's: the operator's own refusal is waited for,
    # which also shows the session's key was admitted before the CSRF check refused the form.
    want = {("Console:SignIn", "OK", "operator"), ("Console:ListQuarantine", "OK", "operator"),
            ("Console:CreateBank", "PERMISSION_DENIED", "operator")}  # fmt: skip
    while True:
        trail = audit_trail(console.data / "audit.sqlite3")
        if want <= {(r["rpc"], r["status"], r["tenant"]) for r in trail}:
            break
        assert time.monotonic() < deadline, "console calls missing from the audit trail"
        time.sleep(0.1)  # the audit log writes behind the call
    signins = [r for r in trail if r["rpc"] == "Console:SignIn" and r["status"] == "OK"]
    assert signins and all(r["tenant"] for r in signins)
