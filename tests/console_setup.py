"""A real server with the console on loopback, its tenants, keys and banks, and signed-in
HTTP clients: what the console's HTTP and browser tests share."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from hashmatch.banks.model import BankSettings, NewEntry, SignalType, Visibility
from hashmatch.storage.datadir import DataDir
from tests import server_harness
from tests.tenancy_setup import admin, key, tenant

# Flood quarantine after 2 distinct contents (one tenant is enough), suspending; limits
# high enough for a test's many page loads.
ENV = {
    "HASHMATCH_FLOOD_MAX_DISTINCT": "2",
    "HASHMATCH_FLOOD_MIN_TENANTS": "1",
    "HASHMATCH_FLOOD_SUSPEND": "true",
    "HASHMATCH_AUTH_RATE_PER_SECOND": "1000",
    "HASHMATCH_AUTH_BURST": "2000",
    "HASHMATCH_CONSOLE_MAX_UPLOAD_BYTES": str(8 << 20),
}
ACME_VALUE = bytes(range(32))  # in acme:list
GLOBEX_SHARED_VALUE = bytes(range(100, 132))  # in globex:shared, shared with acme
GLOBEX_PRIVATE_VALUE = bytes(range(200, 232))
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    server: server_harness.ServerProcess
    base: str
    operator: str
    member: str  # acme, match only
    tenant_admin: str  # acme, tenant-admin + bank-admin
    globex: str  # globex, tenant-admin + bank-admin + match

    @property
    def data(self) -> Path:
        return self.server.data_dir


def populate(data: Path) -> dict[str, str]:
    admin(data, "bootstrap")
    tenant(data, "acme", "approve")
    tenant(data, "globex", "approve")
    tenant(data, "applicant")
    keys = {
        "operator": (data / "operator.key").read_text().strip(),
        "member": key(data, "acme", "match"),
        "tenant_admin": key(data, "acme", "tenant-admin", "bank-admin"),
        "globex": key(data, "globex", "tenant-admin", "bank-admin", "match"),
    }
    store = DataDir(data).open_banks()
    try:
        store.create_bank("acme:list", BankSettings(owner="acme"))
        store.write_entries("acme:list", [NewEntry(SignalType.PDQ, ACME_VALUE, "acme-label")])
        store.create_bank("globex:private", BankSettings(owner="globex"))
        store.write_entries("globex:private", [NewEntry(SignalType.PDQ, GLOBEX_PRIVATE_VALUE)])
        shared = BankSettings(owner="globex", visibility=Visibility.SHARED,
                              shared_with=frozenset({"acme"}))  # fmt: skip
        store.create_bank("globex:shared", shared)
        store.write_entries("globex:shared", [NewEntry(SignalType.PDQ, GLOBEX_SHARED_VALUE)])
    finally:
        store.close()
    return keys


@contextmanager
def console_server(
    data: Path,
    env: dict[str, str] | None = None,
    before: Callable[[Path], None] = lambda data: None,
) -> Iterator[Console]:
    """`before`: more set-up on the data dir, before the server starts."""
    keys = populate(data)
    before(data)
    srv = server_harness.start(data, "--rest-listen", "127.0.0.1:0", env={**ENV, **(env or {})})
    try:
        assert srv.rest_port is not None
        yield Console(srv, f"http://127.0.0.1:{srv.rest_port}", **keys)
    finally:
        assert srv.stop() == 0


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m is not None, "no CSRF field on the page"
    return m.group(1)


_OPEN: list[httpx.Client] = []


def client(base: str, **options: object) -> httpx.Client:
    """A browser-like client: sends its Origin, follows nothing by itself (closed by
    close_clients, after each test)."""
    options.setdefault("headers", {"Origin": base})
    c = httpx.Client(base_url=base, timeout=30, **options)  # type: ignore[arg-type]
    _OPEN.append(c)
    return c


def close_clients() -> None:
    while _OPEN:
        _OPEN.pop().close()


def sign_in(c: httpx.Client, api_key: str) -> httpx.Response:
    token = csrf_of(c.get("/console/signin").text)
    return c.post("/console/signin", data={"csrf": token, "key": api_key})


def signed_in(base: str, api_key: str) -> httpx.Client:
    c = client(base)
    r = sign_in(c, api_key)
    assert r.status_code == 303 and r.headers["location"] == "/console/", r.text
    return c


def session_csrf(c: httpx.Client) -> str:
    return csrf_of(c.get("/console/").text)
