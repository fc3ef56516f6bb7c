"""The console's parts on their own: sessions (idle expiry, per-key revocation, a bound on
their number), forms held in memory, the same-origin check and the import progress."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.datastructures import UploadFile
from starlette.requests import Request

from hashmatch.banks.formats import Format
from hashmatch.banks.model import BankSettings
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.console import sessions
from hashmatch.console.forms import read_form
from hashmatch.console.imports import ImportJob, ImportJobs
from hashmatch.console.security import same_origin, token_ok
from hashmatch.console.sessions import SessionStore
from hashmatch.core.banks import BankOps
from hashmatch.core.calls import CallRecorder
from hashmatch.errors import NotFound, TooLarge
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.model import OPERATOR_TENANT, Principal, Role


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_when_idle_and_die_with_their_key() -> None:
    clock = Clock()
    store = SessionStore(idle_s=60, clock=clock)
    a, b = store.open("key-a", "a"), store.open("key-b", "b")
    assert a.id != b.id and len(a.id) >= 43 and a.csrf != b.csrf
    clock.now = 59
    assert store.get(a.id) is a  # used: the idle clock starts again
    clock.now = 100
    assert store.get(a.id) is a and store.get(b.id) is None  # b idle for 100 s
    assert store.close_key("a") == 1 and store.get(a.id) is None
    assert store.get(None) is None and store.get("") is None
    # However busy, a session lasts max_s at most.
    busy = SessionStore(idle_s=60, max_s=150, clock=clock)
    s = busy.open("k", "k")
    for t in range(150, 301, 50):
        clock.now = t
        assert (busy.get(s.id) is not None) == (t - 100 <= 150)


def test_sessions_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    clock = Clock()
    store = SessionStore(idle_s=60, clock=clock)
    made = []
    for i in range(5):
        clock.now = i
        made.append(store.open(f"k{i}", f"{i}"))
    assert [store.get(s.id) is not None for s in made] == [False, False, True, True, True]


def test_one_keys_sign_ins_push_out_only_its_own_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sessions, "MAX_PER_KEY", 2)
    clock = Clock()
    store = SessionStore(idle_s=600, clock=clock)
    operator = store.open("op-key", "op")
    for i in range(50):
        clock.now = i + 1
        store.open("member-key", "member")
    assert store.get(operator.id) is not None
    assert sum(1 for s in store._sessions.values() if s.key_id == "member") == 2


def test_one_tenant_s_many_keys_push_out_only_its_own_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tenant admin mints keys without limit: 20 sessions a key would still let it push
    everyone out of a full store, the operator included. Each tenant has a share."""
    monkeypatch.setattr(sessions, "MAX_PER_TENANT", 5)
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 8)
    clock = Clock()
    store = SessionStore(idle_s=600, clock=clock)
    operator = store.open("op-key", "op", "operator")
    other = store.open("b-key", "b", "globex")
    for i in range(50):
        clock.now = i + 1
        store.open(f"k{i}", f"key{i}", "acme")
    assert store.get(operator.id) is not None and store.get(other.id) is not None
    assert sum(1 for s in store._sessions.values() if s.tenant == "acme") == 5


def _request(body: bytes, ctype: str, headers: dict[str, str] | None = None) -> Request:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    raw = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": "POST", "path": "/console/x", "headers": raw,
             "scheme": "http", "server": ("127.0.0.1", 8080), "query_string": b""}  # fmt: skip
    return Request(scope, receive)


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\ntok\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_uploads_stay_in_memory() -> None:
    data = bytes(range(256)) * 16384  # 4 MiB: Starlette would spool this to disk
    body, ctype = _multipart(data)
    form = asyncio.run(read_form(_request(body, ctype), 8 << 20))
    upload = form["image"]
    assert isinstance(upload, UploadFile) and form["csrf"] == "tok"
    assert not upload.file._rolled  # type: ignore[attr-defined]  # never a file on disk
    assert asyncio.run(upload.read()) == data
    asyncio.run(form.close())
    with pytest.raises(TooLarge):
        asyncio.run(read_form(_request(body, ctype), 1 << 20))


def test_same_origin_and_tokens() -> None:
    def check(headers: dict[str, str]) -> bool:
        return same_origin(_request(b"", "application/x-www-form-urlencoded", headers))

    assert check({"origin": "http://127.0.0.1:8080"})
    assert check({"referer": "http://127.0.0.1:8080/console/banks"})
    assert not check({"origin": "http://127.0.0.1:8081"})
    assert not check({"origin": "null"})
    assert not check({"referer": "https://evil.example/console/"})
    assert not check({})
    assert token_ok("abc", "abc") and not token_ok("abd", "abc") and not token_ok("", "")
    assert not token_ok(None, "abc")


def test_import_progress_and_ownership(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from hashmatch.console import imports

    seen: list[int] = []  # what the progress bar said at each of the feeder's writes
    watched: list[ImportJob] = []

    class Writes:
        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        def write(self, fd: int, data: memoryview) -> int:
            if watched:
                seen.append(int(watched[0].to_json()["read"]))  # type: ignore[call-overload]
            return os.write(fd, data)

    monkeypatch.setattr(imports, "os", Writes())
    store = SqliteBankStore(tmp_path / "banks.sqlite3")
    store.create_bank("b", BankSettings())
    ops = BankOps(store, BankAccess(store))
    jobs = ImportJobs(ops, CallRecorder(None))
    operator = Principal(OPERATOR_TENANT, frozenset(Role), key_id="k")
    tenant = Principal("acme", frozenset(Role) - {Role.OPERATOR}, key_id="t")
    rows = "".join(f"{i:064x},l\n" for i in range(1, 30_001)).encode()  # ~2 MB: many writes
    job = jobs.start(operator, "b", rows, Format.CSV)
    watched.append(job)
    assert job.finished.wait(120)
    final = job.to_json()
    assert final["state"] == "done" and final["read"] == final["total"] == len(rows)
    assert final["report"] == {"added": 30_000, "revived": 0, "updated": 0, "unchanged": 0,
                               "duplicates": 0, "errors": 0}  # fmt: skip
    assert len(set(seen)) > 10 and seen == sorted(seen)  # the bar moved on its way, forward
    with pytest.raises(NotFound):  # another tenant's import is nobody's
        jobs.get(tenant, job.id)
    with pytest.raises(NotFound):  # a bank it cannot see: refused before any thread
        jobs.start(tenant, "b", rows, Format.CSV)
    # A file the importer stops reading early (not XML): the feeder, blocked on a full
    # pipe, is let go, and the row error is the report's.
    store.create_bank("acme:x", BankSettings(owner="acme"))
    bad = jobs.start(tenant, "acme:x", b"\xff" * 300_000, Format.NCMEC)
    assert bad.finished.wait(30)
    assert bad.read < bad.total and bad.report is not None and bad.report.error_count == 1
    store.close()
