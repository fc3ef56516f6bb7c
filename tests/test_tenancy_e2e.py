"""Tenancy end to end, against one `hashmatch serve` with auth on: the auth matrix (every
RPC x every kind of caller, exact status codes, object-level cases), rate limits and
quotas, rotation, revocation, the sandbox, and the probing metrics."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from hashmatch.cli import main
from hashmatch.client import Client
from hashmatch.commands.common import Streams
from hashmatch.proto import admin_pb, admin_rpc, bank_pb, bank_rpc, pb, report_pb, report_rpc, rpc
from tests import server_harness
from tests.helpers import encode, synthetic_rgb
from tests.tenancy_setup import Keys, admin, key, populate, tenant

OK = grpc.StatusCode.OK
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
PIXELS = synthetic_rgb(64, 64, seed=3)
IMAGE = encode(PIXELS, "PNG")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Keys]]:
    data = tmp_path_factory.mktemp("tenancy") / "data"
    keys = populate(data)
    config = data.parent / "hm.toml"
    config.write_text("[auth]\nrate_per_second = 1000\nburst = 2000\n")
    srv = server_harness.start(data, "--config", str(config), "--rest-listen", "127.0.0.1:0")
    try:
        acme = _md(keys.by_name["bank-admin"])
        banks = bank_rpc.BankServiceStub(srv.channel())  # type: ignore[no-untyped-call]
        for name in ("acme:list", "acme:doomed"):
            banks.CreateBank(bank_pb.CreateBankRequest(name=name), metadata=acme)
        banks.AddEntries(
            bank_pb.AddEntriesRequest(
                bank="acme:list",
                entries=[bank_pb.Entry(signal_type=pb.MD5, value=b"\1" * 16, label="L")],
            ),
            metadata=acme,
        )
        globex = _md(keys.by_name["other tenant"])
        banks.CreateBank(bank_pb.CreateBankRequest(name="globex:secret"), metadata=globex)
        shared = bank_pb.BankSettings(
            visibility=bank_pb.SHARED, set_shared_with=True, shared_with=["acme"]
        )
        banks.CreateBank(
            bank_pb.CreateBankRequest(name="globex:shared", settings=shared), metadata=globex
        )
        yield srv, keys
    finally:
        assert srv.stop() == 0, "".join(srv.log)


def _md(k: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {k}"),) if k else ()


Call = Callable[[grpc.Channel, tuple[tuple[str, str], ...], str, Keys], object]


def _stubs(ch: grpc.Channel) -> tuple[Any, Any, Any]:
    return (
        rpc.MatchServiceStub(ch),  # type: ignore[no-untyped-call]
        bank_rpc.BankServiceStub(ch),  # type: ignore[no-untyped-call]
        admin_rpc.AdminServiceStub(ch),  # type: ignore[no-untyped-call]
    )


def _image_req(banks: list[str]) -> pb.MatchImagesRequest:
    return pb.MatchImagesRequest(
        images=[pb.Image(data=IMAGE)], options=pb.MatchOptions(banks=banks)
    )


def _label(who: str) -> str:
    return who.replace(" ", "-")


def _acme_entry(ch: grpc.Channel, keys: Any) -> int:
    """The id of acme:list's entry, read with acme's own key."""
    listed = _stubs(ch)[1].ListEntries(
        bank_pb.ListEntriesRequest(bank="acme:list"), metadata=_md(keys.by_name["bank-admin"])
    )
    return int(listed.entries[0].id)


CALLS: dict[str, Call] = {
    "MatchImages": lambda ch, md, who, k: _stubs(ch)[0].MatchImages(_image_req([]), metadata=md),
    "MatchImages(acme bank)": lambda ch, md, who, k: _stubs(ch)[0].MatchImages(
        _image_req(["acme:list"]), metadata=md
    ),
    "MatchStream": lambda ch, md, who, k: list(
        _stubs(ch)[0].MatchStream(
            iter([pb.MatchStreamRequest(image=pb.Image(content_id="s", data=IMAGE))]), metadata=md
        )
    ),
    "MatchHashes(acme bank)": lambda ch, md, who, k: _stubs(ch)[0].MatchHashes(
        pb.MatchHashesRequest(
            hashes=[pb.HashQuery(signal_type=pb.MD5, value=b"\1" * 16)],
            options=pb.MatchOptions(banks=["acme:list"]),
        ),
        metadata=md,
    ),
    "HashImages": lambda ch, md, who, k: _stubs(ch)[0].HashImages(
        pb.HashImagesRequest(images=[pb.Image(data=IMAGE)]), metadata=md
    ),
    "CreateBank": lambda ch, md, who, k: _stubs(ch)[1].CreateBank(
        bank_pb.CreateBankRequest(name=f"acme:new-{_label(who)}"), metadata=md
    ),
    "GetBank": lambda ch, md, who, k: _stubs(ch)[1].GetBank(
        bank_pb.GetBankRequest(name="acme:list"), metadata=md
    ),
    "ListBanks": lambda ch, md, who, k: _stubs(ch)[1].ListBanks(
        bank_pb.ListBanksRequest(), metadata=md
    ),
    "UpdateBank": lambda ch, md, who, k: _stubs(ch)[1].UpdateBank(
        bank_pb.UpdateBankRequest(
            name="acme:list", settings=bank_pb.BankSettings(pdq_threshold=30)
        ),
        metadata=md,
    ),
    "DeleteBank": lambda ch, md, who, k: _stubs(ch)[1].DeleteBank(
        bank_pb.DeleteBankRequest(name="acme:doomed"), metadata=md
    ),
    "AddEntries": lambda ch, md, who, k: _stubs(ch)[1].AddEntries(
        bank_pb.AddEntriesRequest(
            bank="acme:list", entries=[bank_pb.Entry(signal_type=pb.MD5, value=b"\2" * 16)]
        ),
        metadata=md,
    ),
    "RemoveEntries": lambda ch, md, who, k: _stubs(ch)[1].RemoveEntries(
        bank_pb.RemoveEntriesRequest(
            bank="acme:list", values=[bank_pb.HashValue(signal_type=pb.MD5, value=b"\3" * 16)]
        ),
        metadata=md,
    ),
    "ListEntries": lambda ch, md, who, k: _stubs(ch)[1].ListEntries(
        bank_pb.ListEntriesRequest(bank="acme:list"), metadata=md
    ),
    "ImportEntries": lambda ch, md, who, k: _stubs(ch)[1].ImportEntries(
        iter([bank_pb.ImportChunk(bank="acme:list", format="csv", data=b"")]), metadata=md
    ),
    "SendFeedback": lambda ch, md, who, k: _stubs(ch)[1].SendFeedback(
        bank_pb.FeedbackRequest(
            bank="acme:list", entry_id=_acme_entry(ch, k), verdict=bank_pb.CONFIRMED
        ),
        metadata=md,
    ),
    "AcceptShare": lambda ch, md, who, k: _stubs(ch)[1].AcceptShare(
        bank_pb.ShareRequest(bank="globex:shared"), metadata=md
    ),
    "LeaveShare": lambda ch, md, who, k: _stubs(ch)[1].LeaveShare(
        bank_pb.ShareRequest(bank="globex:shared"), metadata=md
    ),
    "ExportEntries": lambda ch, md, who, k: list(
        _stubs(ch)[1].ExportEntries(bank_pb.ExportRequest(bank="acme:list"), metadata=md)
    ),
    "ApplyTenant": lambda ch, md, who, k: _stubs(ch)[2].ApplyTenant(
        admin_pb.ApplyTenantRequest(
            tenant_id=f"applicant-{_label(who)}",
            organisation="Org",
            contact="c@example.org",
            intended_use="scanning uploads",
        ),
        metadata=md,
    ),
    "GetTenant": lambda ch, md, who, k: _stubs(ch)[2].GetTenant(
        admin_pb.GetTenantRequest(tenant_id="acme"), metadata=md
    ),
    "ListTenants": lambda ch, md, who, k: _stubs(ch)[2].ListTenants(
        admin_pb.ListTenantsRequest(), metadata=md
    ),
    "SetTenantState": lambda ch, md, who, k: _stubs(ch)[2].SetTenantState(
        admin_pb.SetTenantStateRequest(tenant_id="target", action=admin_pb.APPROVE), metadata=md
    ),
    "CreateKey": lambda ch, md, who, k: _stubs(ch)[2].CreateKey(
        admin_pb.CreateKeyRequest(tenant_id="acme", roles=["match"]), metadata=md
    ),
    "ListKeys": lambda ch, md, who, k: _stubs(ch)[2].ListKeys(
        admin_pb.ListKeysRequest(tenant_id="acme"), metadata=md
    ),
    "RotateKey": lambda ch, md, who, k: _stubs(ch)[2].RotateKey(
        admin_pb.RotateKeyRequest(key_id=k.spare["rotate"], overlap_seconds=60), metadata=md
    ),
    "RevokeKey": lambda ch, md, who, k: _stubs(ch)[2].RevokeKey(
        admin_pb.RevokeKeyRequest(key_id=k.spare["revoke"]), metadata=md
    ),
    "WhoAmI": lambda ch, md, who, k: _stubs(ch)[2].WhoAmI(admin_pb.WhoAmIRequest(), metadata=md),
    "GetUsage": lambda ch, md, who, k: _stubs(ch)[2].GetUsage(
        admin_pb.GetUsageRequest(tenant_id="acme", start="2026-01-01", end="2026-02-01"),
        metadata=md,
    ),
    "FileReport": lambda ch, md, who, k: _reports(ch).FileReport(
        report_pb.FileReportRequest(), metadata=md
    ),
    "GetReport": lambda ch, md, who, k: _reports(ch).GetReport(
        report_pb.GetReportRequest(id=987654), metadata=md
    ),
    "ListReports": lambda ch, md, who, k: _reports(ch).ListReports(
        report_pb.ListReportsRequest(), metadata=md
    ),
    "RetractReport": lambda ch, md, who, k: _reports(ch).RetractReport(
        report_pb.RetractReportRequest(id=987654), metadata=md
    ),
}


def _reports(ch: grpc.Channel) -> Any:
    return report_rpc.ReportServiceStub(ch)  # type: ignore[no-untyped-call]


# What the report role gets (no reporting endpoint is configured here): a request without
# an idempotency key is refused, a report that does not exist is NOT_FOUND.
REPORT_ANSWERS = {
    "FileReport": INVALID,
    "GetReport": NOT_FOUND,
    "ListReports": OK,
    "RetractReport": NOT_FOUND,
}

MATCH_RPCS = {"MatchImages", "MatchImages(acme bank)", "MatchStream", "HashImages"}
MATCH_RPCS |= {"MatchHashes(acme bank)"}
# Accepting or leaving globex:shared, which globex shared with acme alone.
SHARE_RPCS = {"AcceptShare", "LeaveShare"}
BANK_RPCS = {n for n in CALLS if n.endswith(("Bank", "Banks", "Entries"))} | {"SendFeedback"}
BANK_RPCS |= SHARE_RPCS
ACME_OBJECTS = {"MatchImages(acme bank)", "MatchHashes(acme bank)"} | (BANK_RPCS - {"ListBanks"})
KEY_ADMIN = {"GetTenant", "CreateKey", "ListKeys", "RotateKey", "RevokeKey", "GetUsage"}
ROLE_OF = {
    "match": MATCH_RPCS,
    "bank-admin": BANK_RPCS,
    "report": set(REPORT_ANSWERS),
    "tenant-admin": KEY_ADMIN,
}


def expected(who: str, call: str) -> grpc.StatusCode:
    if call == "ApplyTenant":
        return OK  # needs no key; any key sent is ignored
    if who in ("no key", "bad key", "not a key", "revoked key"):
        return UNAUTH
    if who in ("pending tenant", "suspended tenant"):
        return DENIED
    if call == "WhoAmI":
        return OK
    if who in ROLE_OF:  # acme's single-role keys
        if call not in ROLE_OF[who]:
            return DENIED
        return REPORT_ANSWERS.get(call, OK)
    if call in SHARE_RPCS and who in ("operator", "other tenant"):
        return NOT_FOUND  # only the invited tenant can accept; the others see no invitation
    if who == "operator":  # every role, but no access to tenants' private banks
        if call == "CreateBank":
            return INVALID  # "acme:..." is acme's namespace
        if call in REPORT_ANSWERS:
            return REPORT_ANSWERS[call]
        return NOT_FOUND if call in ACME_OBJECTS else OK
    assert who == "other tenant"  # globex: match, bank-admin, tenant-admin
    if call in {"ListTenants", "SetTenantState"} or call in REPORT_ANSWERS:
        return DENIED  # globex's key has no operator or report role
    if call == "CreateBank":
        return INVALID
    if call in ACME_OBJECTS or call in KEY_ADMIN:
        return NOT_FOUND  # acme's things look exactly like missing ones
    return OK


def test_auth_matrix(world: tuple[Any, Keys]) -> None:
    srv, keys = world
    got: dict[tuple[str, str], grpc.StatusCode] = {}
    with srv.channel() as ch:
        for who, k in keys.by_name.items():
            for name, call in CALLS.items():
                try:
                    call(ch, _md(k), who, keys)
                    got[who, name] = OK
                except grpc.RpcError as exc:
                    got[who, name] = exc.code()
    want = {(who, name): expected(who, name) for who in keys.by_name for name in CALLS}
    wrong = {k: (got[k].name, want[k].name) for k in want if got[k] != want[k]}
    assert not wrong, f"(caller, rpc): (got, expected): {wrong}"
    # The matrix covers every RPC of the three services, and each outcome occurs.
    methods = {m.split("(")[0] for m in CALLS}
    for svc in (pb, bank_pb, admin_pb, report_pb):
        for service in svc.DESCRIPTOR.services_by_name.values():
            assert {m.name for m in service.methods} <= methods
    assert set(got.values()) == {OK, UNAUTH, DENIED, NOT_FOUND, INVALID}


def test_same_answer_for_missing_and_foreign_banks(world: tuple[Any, Keys]) -> None:
    srv, keys = world
    with srv.channel() as ch:
        _, banks, _ = _stubs(ch)
        md = _md(keys.by_name["bank-admin"])
        answers = []
        for name in ("globex:secret", "globex:never-made"):
            with pytest.raises(grpc.RpcError) as exc:
                banks.GetBank(bank_pb.GetBankRequest(name=name), metadata=md)
            answers.append((exc.value.code(), exc.value.details().replace(name, "NAME")))
        assert answers[0] == answers[1] == (NOT_FOUND, "no bank named 'NAME'")
        listed = {b.name for b in banks.ListBanks(bank_pb.ListBanksRequest(), metadata=md).banks}
        assert "globex:secret" not in listed and {"acme:list", "Test"} <= listed
        # The operator manages tenants but does not read their private banks.
        op = {
            b.name
            for b in banks.ListBanks(bank_pb.ListBanksRequest(), metadata=_md(keys.operator)).banks
        }
        assert not any(n.startswith(("acme:", "globex:")) for n in op)
        # The PhotoDNA header works as well as the bearer token.
        photodna = (("ocp-apim-subscription-key", keys.by_name["bank-admin"] or ""),)
        assert banks.GetBank(bank_pb.GetBankRequest(name="acme:list"), metadata=photodna).name


def test_matches_never_carry_the_stored_hash(world: tuple[Any, Keys]) -> None:
    srv, keys = world
    with Client(srv.target, api_key=keys.by_name["match"]) as c:
        (o,) = c.match_hashes(["md5:" + "01" * 16])
    assert o.is_match and o.matches[0]["bank"] == "acme:list"
    assert "value" not in o.matches[0]


def test_sandbox_export_matches_source_test(world: tuple[Any, Keys], tmp_path: Path) -> None:
    srv, keys = world
    out = io.StringIO()
    assert main(["sandbox", "export", str(tmp_path)], Streams(stdout=out)) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    files = [(Path(r["path"]).read_bytes(), r["expect_match"]) for r in rows]
    assert sum(m for _, m in files) >= 4 and sum(not m for _, m in files) >= 2
    with Client(srv.target, api_key=keys.by_name["match"]) as c:
        for test in (True, False):
            outcomes = c.match_images([d for d, _ in files], test=test)
            assert [o.is_match for o in outcomes] == [m for _, m in files]
            for o in outcomes:
                assert all(m["bank"] == "Test" and m["source"] == "Test" for m in o.matches)
        # The test flag restricts matching to the sandbox: acme's own list is not searched.
        (h,) = c.match_hashes(["md5:" + "01" * 16], test=True)
        assert not h.is_match


def test_revocation_is_immediate_and_rotation_overlaps(world: tuple[Any, Keys]) -> None:
    srv, _ = world
    data = srv.data_dir
    k = key(data, "acme", "match", "tenant-admin")
    kid = k.split("_")[1]
    with srv.channel() as ch:
        _, _, adm = _stubs(ch)
        assert adm.WhoAmI(admin_pb.WhoAmIRequest(), metadata=_md(k)).tenant_id == "acme"
        rotated = adm.RotateKey(admin_pb.RotateKeyRequest(key_id=kid), metadata=_md(k))
        assert rotated.secret.startswith("hmk_") and rotated.key.tenant_id == "acme"
        # Within the overlap window both keys work.
        for secret in (k, rotated.secret):
            adm.WhoAmI(admin_pb.WhoAmIRequest(), metadata=_md(secret))
        listed = {x.id: x for x in adm.ListKeys(admin_pb.ListKeysRequest(), metadata=_md(k)).keys}
        assert listed[kid].replaced_by == rotated.key.id and listed[kid].expires_at
        # Revoked by the CLI on the data dir: the running server refuses it on the next call.
        admin(data, "key", "revoke", rotated.key.id)
        with pytest.raises(grpc.RpcError) as exc:
            adm.WhoAmI(admin_pb.WhoAmIRequest(), metadata=_md(rotated.secret))
        assert exc.value.code() == UNAUTH
        # Suspension too; reinstatement restores access.
        admin(data, "tenant", "suspend", "acme")
        try:
            with pytest.raises(grpc.RpcError) as exc:
                adm.WhoAmI(admin_pb.WhoAmIRequest(), metadata=_md(k))
            assert exc.value.code() == DENIED
        finally:
            admin(data, "tenant", "reinstate", "acme")
        adm.WhoAmI(admin_pb.WhoAmIRequest(), metadata=_md(k))


def test_rate_limit_and_monthly_quota(world: tuple[Any, Keys]) -> None:
    srv, _ = world
    data = srv.data_dir
    tenant(data, "slow", "approve")
    admin(data, "tenant", "limits", "slow", "--rate", "0.5", "--monthly-items", "5")
    k = key(data, "slow", "match")
    with srv.channel() as ch:
        match, _, _ = _stubs(ch)
        req = pb.MatchHashesRequest(hashes=[pb.HashQuery(signal_type=pb.MD5, value=b"\0" * 16)])
        codes, retry = [], ""
        for _ in range(4):
            try:
                match.MatchHashes(req, metadata=_md(k))
                codes.append(OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
                retry = dict(exc.trailing_metadata() or ()).get("retry-after", "")
        assert codes[0] == OK and EXHAUSTED in codes and int(retry) >= 1
    # The quota: 5 items a month; a fresh key of a fast tenant shows it apart from the rate.
    tenant(data, "small", "approve")
    admin(data, "tenant", "limits", "small", "--monthly-items", "5")
    k = key(data, "small", "match")
    with Client(srv.target, api_key=k) as c:
        assert len(c.match_hashes(["00" * 16] * 4)) == 4
        with pytest.raises(grpc.RpcError) as exc:
            c.match_hashes(["00" * 16] * 2)
    assert exc.value.code() == EXHAUSTED and "monthly quota" in (exc.value.details() or "")
    with Client(srv.target, api_key=k) as c:  # a stream's items say so one by one
        assert c.match_hashes(["00" * 16])[0].ok  # the 5th item of 5
        assert [o.code for o in c.match_stream([("a", IMAGE)])] == ["RESOURCE_EXHAUSTED"]
    retry = dict(exc.value.trailing_metadata() or ()).get("retry-after", "0")
    assert int(retry) >= 1
    body = urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}/metrics").read().decode()
    assert 'hashmatch_tenant_throttled_total{limit="rate",tenant="slow"}' in body
    assert 'hashmatch_tenant_throttled_total{limit="monthly_items",tenant="small"}' in body
    assert 'hashmatch_tenant_items_total{tenant="small"} 6.0' in body
    assert 'hashmatch_auth_refusals_total{code="UNAUTHENTICATED"}' in body
    # test_auth_matrix asked for acme's banks with globex's key: counted as probing.
    assert 'hashmatch_tenant_bank_not_found_total{tenant="globex"}' in body


def test_open_streams_hold_none_of_the_quota(world: tuple[Any, Keys]) -> None:
    """Streams pay each item from the credit the server holds for the tenant: ten open
    streams take ten items, not ten blocks, and the tenant gets exactly its quota."""
    srv, _ = world
    tenant(srv.data_dir, "streamer", "approve")
    admin(srv.data_dir, "tenant", "limits", "streamer", "--monthly-items", "100")
    k = key(srv.data_dir, "streamer", "match")
    release = threading.Event()

    def held_open() -> Iterator[tuple[str, bytes]]:
        yield "a", IMAGE
        release.wait(30)

    with Client(srv.target, api_key=k) as c:
        streams = [c.match_stream(held_open()) for _ in range(10)]
        try:
            assert [next(s).code for s in streams] == ["OK"] * 10
            assert all(o.ok for o in c.match_hashes(["00" * 16] * 90))  # 100 of 100
            with pytest.raises(grpc.RpcError) as exc:
                c.match_hashes(["00" * 16])
        finally:
            release.set()
            for s in streams:
                list(s)
        assert exc.value.code() == EXHAUSTED and "monthly quota" in (exc.value.details() or "")
        with pytest.raises(grpc.RpcError):  # closed streams gave nothing back to spend
            c.match_hashes(["00" * 16])


def test_readme_tenant_path_with_the_cli(world: tuple[Any, Keys], tmp_path: Path) -> None:
    """README's path: apply, approve, a key, the sandbox via `hashmatch match --test`."""
    srv, _ = world
    data = srv.data_dir
    admin(
        data, "tenant", "apply", "initech", "--organisation", "Initech",
        "--contact", "trust@initech.example", "--intended-use", "scanning user uploads",
    )  # fmt: skip
    out = io.StringIO()
    argv = ["admin", "tenant", "list", "--state", "applied", "--data-dir", str(data)]
    assert main(argv, Streams(stdout=out)) == 0
    assert "initech" in {json.loads(line)["id"] for line in out.getvalue().splitlines()}
    admin(data, "tenant", "approve", "initech", "--reason", "vetted")
    made = admin(data, "key", "create", "initech", "--role", "match", "--role", "tenant-admin")
    secret = str(made["secret"])
    assert main(["sandbox", "export", str(tmp_path)], Streams(stdout=io.StringIO())) == 0
    files = [str(tmp_path / "test-hit-00.png"), str(tmp_path / "test-miss-00.png")]
    out = io.StringIO()
    argv = ["match", "--server", srv.target, "--api-key", secret, "--test", *files]
    assert main(argv, Streams(stdout=out)) == 0
    hit, miss = (json.loads(line) for line in out.getvalue().splitlines())
    assert hit["is_match"] and hit["matches"][0]["source"] == "Test"
    assert not miss["is_match"] and miss["matches"] == []
    err = io.StringIO()
    assert main(["match", "--server", srv.target, *files], Streams(stderr=err)) == 3
    assert "UNAUTHENTICATED" in err.getvalue()


def _rest(srv: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{srv.rest_port}/photodna/v1.0/MatchHash",
        data=json.dumps([{"DataRepresentation": "MD5", "Value": "01" * 16}]).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_rest_face_takes_the_photodna_key_header(world: tuple[Any, Keys]) -> None:
    srv, keys = world
    assert srv.rest_port is not None
    ok = keys.by_name["match"] or ""
    cases = {
        "none": ({}, 401),
        "bad": ({"Ocp-Apim-Subscription-Key": "hmk_000000000000_" + "A" * 43}, 401),
        "no match role": ({"Ocp-Apim-Subscription-Key": keys.by_name["report"] or ""}, 403),
        "suspended": ({"Ocp-Apim-Subscription-Key": keys.by_name["suspended tenant"] or ""}, 403),
        "match": ({"Ocp-Apim-Subscription-Key": ok}, 200),
        "bearer": ({"Authorization": f"Bearer {ok}"}, 200),
        "other tenant": ({"Ocp-Apim-Subscription-Key": keys.by_name["other tenant"] or ""}, 200),
    }
    answers = {name: _rest(srv, h) for name, (h, _) in cases.items()}
    assert {n: a[0] for n, a in answers.items()} == {n: c for n, (_, c) in cases.items()}
    # acme's list matches for acme's key, not for globex's (the tenant's view).
    assert answers["match"][1]["MatchResults"][0]["IsMatch"] is True
    assert answers["other tenant"][1]["MatchResults"][0]["IsMatch"] is False


REST_ROUTES: dict[str, tuple[str, bytes, str]] = {
    # route: (content type, body, the role it needs)
    "Match": ("image/png", IMAGE, "match"),
    "MatchHash": (
        "application/json",
        json.dumps([{"DataRepresentation": "MD5", "Value": "01" * 16}]).encode(),
        "match",
    ),
    # Past auth, an empty report is a bad parameter (HTTP 200, a PhotoDNA error status):
    # nothing is filed.
    "Report": ("application/json", b"{}", "report"),
}


def _rest_expected(who: str, role: str, route: str) -> int:
    if who in ("no key", "bad key", "not a key", "revoked key"):
        return 401
    if who in ("pending tenant", "suspended tenant"):
        return 403
    roles = {"match": {"match"}, "report": {"report"}, "bank-admin": set(),
             "tenant-admin": set(), "other tenant": {"match"}}  # fmt: skip
    if who in roles and role not in roles[who]:
        return 403
    return 200


def test_rest_auth_matrix_every_route_and_key(world: tuple[Any, Keys]) -> None:
    """Every REST route that touches data against every kind of key: the same answers as
    the gRPC matrix, as HTTP statuses."""
    srv, keys = world
    whos = ["no key", "bad key", "not a key", "revoked key", "pending tenant",
            "suspended tenant", "match", "report", "bank-admin", "tenant-admin",
            "other tenant", "operator"]  # fmt: skip
    got, want = {}, {}
    for route, (ctype, body, role) in REST_ROUTES.items():
        for who in whos:
            k = keys.by_name[who]
            req = urllib.request.Request(
                f"http://127.0.0.1:{srv.rest_port}/photodna/v1.0/{route}",
                data=body,
                headers={"Content-Type": ctype, **({"Ocp-Apim-Subscription-Key": k} if k else {})},
                method="POST",
            )
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    got[route, who] = resp.status
                    if route == "Report":
                        assert json.loads(resp.read())["Status"]["Code"] != 3000
            except urllib.error.HTTPError as exc:
                got[route, who] = exc.code
            want[route, who] = _rest_expected(who, role, route)
    assert got == want
    # The public routes hold no tenant data and need no key.
    for path in ("/openapi.json", "/health"):
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.rest_port}{path}") as resp:
            assert resp.status == 200


def test_cli_client_paths_need_a_match_key(world: tuple[Any, Keys], tmp_path: Path) -> None:
    """The CLI commands that reach a server's data (`match`, `scan --server`) with every
    kind of key: refused without the match role, with the gRPC status on stderr."""
    srv, keys = world
    (tmp_path / "in").mkdir()
    image = tmp_path / "in" / "a.png"
    image.write_bytes(IMAGE)
    for who, want in (("no key", "UNAUTHENTICATED"), ("revoked key", "UNAUTHENTICATED"),
                      ("bank-admin", "PERMISSION_DENIED"), ("suspended tenant",
                      "PERMISSION_DENIED"), ("match", None)):  # fmt: skip
        k = keys.by_name[who]
        key_args = ["--api-key", k] if k else []
        for name, argv in (
            ("match", ["match", "--server", srv.target, *key_args, str(image)]),
            ("scan", ["scan", str(tmp_path / "in"), "--out", str(tmp_path / f"out-{who}"),
                      "--server", srv.target, *key_args]),
        ):  # fmt: skip
            err = io.StringIO()
            code = main(argv, Streams(stdout=io.StringIO(), stderr=err))
            if want is None:
                assert code == 0, (name, who, err.getvalue())
            else:
                assert code != 0 and want in err.getvalue(), (name, who, err.getvalue())
