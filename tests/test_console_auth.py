"""The console's auth matrix and its attacks, over HTTP against a real server: every
console route x {no session, tenant member, tenant admin, operator}; objects of other
tenants; CSRF; session fixation; revocation taking effect at once; headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests import server_harness
from tests.console_setup import (
    ACME_VALUE,
    GLOBEX_PRIVATE_VALUE,
    GLOBEX_SHARED_VALUE,
    Console,
    client,
    close_clients,
    console_server,
    session_csrf,
    sign_in,
    signed_in,
)
from tests.tenancy_setup import admin, key

# Who may pass each route's gate: the policy its route names (as the gRPC table does).
OPERATOR, BANK, MATCH, TENANT, ANY = "operator", "bank-admin", "match", "tenant", "any"
# (method, path, concrete path, who passes). Concrete paths name acme's objects, or
# objects that do not exist: a request that passes the gate fails harmlessly after it.
ROUTES = [
    ("GET", "/", "/console/", ANY),
    ("GET", "/applications", "/console/applications", OPERATOR),
    ("GET", "/tenants", "/console/tenants", OPERATOR),
    ("GET", "/tenants/{tenant}", "/console/tenants/acme", TENANT),
    ("POST", "/tenants/{tenant}/decide", "/console/tenants/acme/decide", OPERATOR),
    ("POST", "/tenants/{tenant}/limits", "/console/tenants/nobody/limits", OPERATOR),
    ("POST", "/tenants/{tenant}/keys", "/console/tenants/acme/keys", TENANT),
    ("POST", "/keys/{key}/rotate", "/console/keys/{spare}/rotate", TENANT),
    ("POST", "/keys/{key}/revoke", "/console/keys/{spare}/revoke", TENANT),
    ("GET", "/banks", "/console/banks", BANK),
    ("POST", "/banks", "/console/banks", BANK),
    ("GET", "/banks/{bank}", "/console/banks/acme:list", BANK),
    ("POST", "/banks/{bank}/settings", "/console/banks/acme:list/settings", BANK),
    ("POST", "/banks/{bank}/share", "/console/banks/nobody:x/share", BANK),
    ("POST", "/banks/{bank}/import", "/console/banks/acme:list/import", BANK),
    ("GET", "/banks/{bank}/imports/{job}", "/console/banks/acme:list/imports/nope", BANK),
    (
        "GET",
        "/banks/{bank}/imports/{job}/status",
        "/console/banks/acme:list/imports/no/status",
        BANK,
    ),
    ("GET", "/banks/{bank}/export", "/console/banks/acme:list/export", BANK),
    ("GET", "/exchanges", "/console/exchanges", OPERATOR),
    ("POST", "/exchanges/{exchange}/sync", "/console/exchanges/nope/sync", OPERATOR),
    ("GET", "/quarantine", "/console/quarantine", OPERATOR),
    ("POST", "/quarantine/{entry}/release", "/console/quarantine/999999/release", OPERATOR),
    ("GET", "/usage", "/console/usage", TENANT),
    ("GET", "/usage/ncmec", "/console/usage/ncmec", OPERATOR),
    ("GET", "/audit", "/console/audit", OPERATOR),
    ("POST", "/audit/verify", "/console/audit/verify", OPERATOR),
    ("GET", "/debug", "/console/debug", MATCH),
    ("POST", "/debug/image", "/console/debug/image", MATCH),
    ("POST", "/debug/hashes", "/console/debug/hashes", MATCH),
    ("POST", "/signout", "/console/signout", ANY),
]
PASSES = {
    "member": {ANY, MATCH},
    "tenant_admin": {ANY, BANK, TENANT},
    "operator": {ANY, OPERATOR, BANK, TENANT, MATCH},
}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with console_server(tmp_path_factory.mktemp("console")) as c:
        yield c


@pytest.fixture(autouse=True)
def _closed() -> Iterator[None]:
    yield
    close_clients()


def registered_routes() -> set[tuple[str, str]]:
    """Every (method, path) the console registers, read from its pages' register()."""
    from hashmatch.console import pages_admin, pages_banks, pages_debug, pages_ops, signin

    seen: set[tuple[str, str]] = set()
    parts = ("tenancy", "store", "access", "calls", "audit", "flood_store", "outbox", "exchanges",
             "service")  # fmt: skip
    runtime = SimpleNamespace(**dict.fromkeys(parts))
    stub = SimpleNamespace(
        runtime=runtime,
        routes=[],
        route=lambda path, rpc, policy, handler, method="GET": seen.add((method, path)),
    )
    for page in (signin, pages_admin, pages_banks, pages_ops, pages_debug):
        page.register(stub)
    return seen


def test_the_matrix_covers_every_route() -> None:
    assert registered_routes() == {(m, p) for m, p, _, _ in ROUTES}


def request(c: httpx.Client, method: str, path: str) -> httpx.Response:
    if method == "GET":
        return c.get(path)
    return c.post(path, data={"csrf": session_csrf(c)})


@pytest.mark.parametrize("who", ["member", "tenant_admin", "operator"])
def test_auth_matrix(console: Console, who: str) -> None:
    c = signed_in(console.base, getattr(console, who))
    # A key of acme's to rotate and revoke (a request that passes the gate does it).
    spare = key(console.data, "acme", "match").split("_")[1]
    wrong = []
    for method, _, template, gate in ROUTES:
        path = template.replace("{spare}", spare)
        if path == "/console/signout":
            continue  # last, below: it ends the session
        r = request(c, method, path)
        to_signin = r.status_code == 303 and "/signin" in r.headers.get("location", "")
        passed = r.status_code not in (401, 403) and not to_signin
        if passed != (gate in PASSES[who]):
            wrong.append((method, path, r.status_code))
        assert r.status_code != 500, (method, path, r.text)
    assert not wrong, wrong
    r = request(c, "POST", "/console/signout")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/signin")
    assert c.get("/console/").status_code == 303  # the session is gone


def test_no_session(console: Console) -> None:
    c = client(console.base)
    for method, _, path, _ in ROUTES:
        path = path.replace("{spare}", "000000000000")
        r = c.get(path) if method == "GET" else c.post(path, data={"csrf": "x"})
        if method == "GET":
            assert r.status_code == 303 and r.headers["location"] == "/console/signin", path
        else:
            assert r.status_code == 403, path
    c.cookies.set("hm_session", "made-up", domain="127.0.0.1", path="/console")
    assert c.get("/console/banks").status_code == 303


def test_other_tenants_objects_look_missing(console: Console) -> None:
    c = signed_in(console.base, console.tenant_admin)
    assert c.get("/console/tenants/globex").status_code == 404
    assert c.get("/console/banks/globex:private").status_code == 404
    assert c.get("/console/banks/globex:private/export").status_code == 404
    banks = c.get("/console/banks").text
    assert "globex:private" not in banks and "globex:shared" in banks
    # Shared with acme: acme may see its settings and accept it, never read its entries.
    page = c.get("/console/banks/globex:shared")
    assert page.status_code == 200 and "invited" in page.text
    assert GLOBEX_SHARED_VALUE.hex() not in page.text
    assert c.get("/console/banks/globex:shared/export").status_code == 403
    # Its own bank's entries are listed; none of another tenant's values show anywhere.
    own = c.get("/console/banks/acme:list").text
    assert ACME_VALUE.hex() in own and GLOBEX_PRIVATE_VALUE.hex() not in own
    # The operator does not read tenants' private banks either.
    op = signed_in(console.base, console.operator)
    assert op.get("/console/banks/acme:list").status_code == 404
    # A tenant admin's usage page names its own tenant only.
    usage = c.get("/console/usage").text
    assert "globex" not in usage


def test_accept_and_leave_a_share(console: Console) -> None:
    c = signed_in(console.base, console.globex)
    g = signed_in(console.base, console.tenant_admin)
    assert c.get("/console/banks/globex:shared").status_code == 200
    r = g.post("/console/banks/globex:shared/share",
               data={"csrf": session_csrf(g), "accept": "yes"})  # fmt: skip
    assert r.status_code == 303
    assert "accepted" in g.get("/console/banks/globex:shared").text
    r = g.post("/console/banks/globex:shared/share",
               data={"csrf": session_csrf(g), "accept": "no"})  # fmt: skip
    assert "invited" in g.get("/console/banks/globex:shared").text


def test_csrf_attempts_fail(console: Console) -> None:
    c = signed_in(console.base, console.operator)
    good = session_csrf(c)
    other = session_csrf(signed_in(console.base, console.operator))  # another session's
    attempts = [
        ({}, {}),  # no token
        ({"csrf": "forged"}, {}),
        ({"csrf": other}, {}),
        ({"csrf": good}, {"Origin": "https://evil.example"}),
        ({"csrf": good}, {"Origin": "null"}),
    ]
    for n, (form, headers) in enumerate(attempts):
        data = {**form, "name": f"csrf-{n}"}
        r = c.post("/console/banks", data=data, headers=headers)
        assert r.status_code == 403, (form, headers)
    # No Origin and no Referer: refused too (a form from this console always has one).
    bare = client(console.base, headers={}, cookies=c.cookies)
    assert bare.post("/console/banks", data={"csrf": good, "name": "csrf-x"}).status_code == 403
    banks = c.get("/console/banks").text
    assert "csrf-" not in banks
    # The right token and Origin: made.
    r = c.post("/console/banks", data={"csrf": good, "name": "csrf-ok"})
    assert r.status_code == 303 and "csrf-ok" in c.get("/console/banks").text
    # Sign-in has its own token (a double-submit cookie): a forged login is refused.
    fresh = client(console.base)
    r = fresh.post("/console/signin", data={"csrf": "x", "key": console.operator})
    assert r.status_code == 403 and "hm_session" not in r.cookies


def test_session_fixation_fails(console: Console) -> None:
    # A planted id that the server never issued is not adopted.
    victim = client(console.base)
    victim.cookies.set("hm_session", "planted-by-attacker", domain="127.0.0.1", path="/console")
    sign_in(victim, console.tenant_admin)
    assert victim.cookies.get("hm_session") not in (None, "planted-by-attacker")
    planted = client(console.base)
    planted.cookies.set("hm_session", "planted-by-attacker", domain="127.0.0.1", path="/console")
    assert planted.get("/console/").status_code == 303
    # An attacker's own live session planted in the victim's browser: the victim's
    # sign-in makes a new id and ends the planted one.
    attacker = signed_in(console.base, console.member)
    planted_id = attacker.cookies["hm_session"]
    victim = client(console.base)
    victim.cookies.set("hm_session", planted_id, domain="127.0.0.1", path="/console")
    sign_in(victim, console.tenant_admin)
    assert victim.cookies["hm_session"] != planted_id
    assert attacker.get("/console/").status_code == 303


def test_revocation_and_suspension_end_sessions_at_once(console: Console) -> None:
    spare = key(console.data, "acme", "bank-admin")
    c = signed_in(console.base, spare)
    assert c.get("/console/banks").status_code == 200
    admin(console.data, "key", "revoke", spare.split("_")[1])  # the CLI, on the data dir
    r = c.get("/console/banks")
    assert r.status_code == 303 and "/signin" in r.headers["location"]
    assert c.get("/console/").status_code == 303  # the session itself is gone
    # A suspended tenant's sessions end too.
    key_b = key(console.data, "globex", "bank-admin")
    g = signed_in(console.base, key_b)
    admin(console.data, "tenant", "suspend", "globex", "--reason", "test")
    try:
        assert g.get("/console/banks").status_code == 303
    finally:
        admin(console.data, "tenant", "reinstate", "globex", "--reason", "test")
    # Rotated elsewhere (the CLI): the old key still works for API clients over its
    # overlap, but a console session opened with it ends.
    fourth = key(console.data, "acme", "match")
    f = signed_in(console.base, fourth)
    admin(console.data, "key", "rotate", fourth.split("_")[1], "--overlap", "3600")
    r = f.get("/console/")
    assert r.status_code == 303 and "rotated" in r.headers["location"]
    shown = f.get(r.headers["location"]).text  # the server's own note is shown
    assert "your key was rotated: sign in with the new one" in shown
    # Anyone else's text in a link to the sign-in page is not (a phishing page on ours).
    forged = f.get("/console/signin?note=Your+account+is+locked:+call+555-0100").text
    assert "555-0100" not in forged and "Sign in" in forged
    # Rotating or revoking through the console drops the key's sessions at once.
    third = key(console.data, "acme", "match")
    t = signed_in(console.base, third)
    op = signed_in(console.base, console.operator)
    r = op.post(f"/console/keys/{third.split('_')[1]}/rotate", data={"csrf": session_csrf(op)})
    assert r.status_code == 200 and "shown once" in r.text
    assert t.get("/console/").status_code == 303


def test_a_created_key_is_shown_once(console: Console) -> None:
    c = signed_in(console.base, console.tenant_admin)
    r = c.post("/console/tenants/acme/keys",
               data={"csrf": session_csrf(c), "roles": "match", "name": "ci"})  # fmt: skip
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = re.search(r'value="(hmk_[^"]+)"', r.text)
    assert secret is not None
    assert secret.group(1) not in c.get("/console/tenants/acme").text
    # A tenant admin cannot mint an operator key, nor one for another tenant.
    r = c.post("/console/tenants/acme/keys", data={"csrf": session_csrf(c), "roles": "operator"})
    assert r.status_code in (400, 403)
    r = c.post("/console/tenants/globex/keys", data={"csrf": session_csrf(c), "roles": "match"})
    assert r.status_code == 404


def test_headers_cookie_and_escaping(console: Console, tmp_path: Path) -> None:
    c = client(console.base)
    r = sign_in(c, console.operator)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie.split("hm_signin")[0]  # plain HTTP on loopback
    page = c.get("/console/tenants")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
    # Also on what no page made: a 404, a wrong method, the static files.
    for r in (c.get("/console/nowhere"), c.put("/console/tenants"),
              c.get("/console/static/console.css")):  # fmt: skip
        assert r.headers.get("content-security-policy") == csp, r.status_code
        assert r.headers["x-content-type-options"] == "nosniff"
    admin(console.data, "tenant", "apply", "xss", "--organisation", "<script>alert(1)</script>",
          "--contact", "a@b.example", "--intended-use", "x")  # fmt: skip
    html = c.get("/console/applications").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert " style=" not in html  # no inline style


def test_wrong_key_and_upload_limit(console: Console) -> None:
    c = client(console.base)
    r = sign_in(c, "hmk_000000000000_" + "A" * 43)
    assert r.status_code == 401 and "hm_session" not in r.cookies
    op = signed_in(console.base, console.operator)
    big = b"\0" * (9 << 20)
    r = op.post("/console/debug/image", data={"csrf": session_csrf(op)},
                files={"image": ("big.png", big, "image/png")})  # fmt: skip
    assert r.status_code == 413


def test_no_keys_yet_no_sessions(tmp_path: Path) -> None:
    """Before the first key exists every local caller is the operator: the console then
    opens no session at all (whatever key is typed), and says how to make one."""
    srv = server_harness.start(tmp_path / "fresh", "--rest-listen", "127.0.0.1:0")
    try:
        base = f"http://127.0.0.1:{srv.rest_port}"
        c = client(base)
        r = sign_in(c, "hmk_000000000000_" + "A" * 43)
        assert r.status_code == 403 and "hashmatch admin bootstrap" in r.text
        assert "hm_session" not in r.cookies
    finally:
        close_clients()
        assert srv.stop() == 0


def test_a_caller_refused_anyway_sends_no_body_to_hold(console: Console) -> None:
    """The key and its role are checked before a form is read: a member's upload over the
    limit to a bank-admin route is refused for the role (403), not read up to the limit
    and refused for its size (413)."""
    member = signed_in(console.base, console.member)
    big = b"\0" * (9 << 20)
    r = member.post("/console/banks/acme:list/import", data={"csrf": session_csrf(member)},
                    files={"file": ("big.csv", big, "text/csv")})  # fmt: skip
    assert r.status_code == 403
