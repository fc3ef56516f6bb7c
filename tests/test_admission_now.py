"""Admission on the event loop: the same answers as on the key-check threads, given at
once where nothing has to wait, and left to the threads (None) where something would."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest

from hashmatch.config import AuthConfig
from hashmatch.errors import Overloaded, PermissionDenied, Unauthenticated
from hashmatch.tenancy.limits import QUOTA_BLOCK, TenantLimits
from hashmatch.tenancy.model import OPEN_PRINCIPAL, Principal, Role, TenantAction
from hashmatch.tenancy.service import LOCAL_OPERATOR, Tenancy
from hashmatch.tenancy.sqlite_store import SqliteTenantStore
from hashmatch.tenancy.store import QuickReads
from tests.conftest import TenantOpener


def _tenant_with_key(tenancy: Tenancy) -> tuple[str, str]:
    tenancy.apply("acme", "Org", "a@b.c", "scanning")
    tenancy.decide(LOCAL_OPERATOR, "acme", TenantAction.APPROVE)
    record, secret = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    return record.id, secret


def test_a_verified_key_is_admitted_now_and_a_change_elsewhere_seen_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.sqlite3"
    server = Tenancy(SqliteTenantStore(path), AuthConfig())
    assert server.authenticate_now(None) is OPEN_PRINCIPAL  # no key yet: open, as before
    # The operator's CLI is another process with its own connection to the same file.
    cli = Tenancy(SqliteTenantStore(path), AuthConfig())
    key_id, secret = _tenant_with_key(cli)
    with pytest.raises(Unauthenticated):
        server.authenticate_now(None)  # a key exists now: auth is on, here too
    assert server.authenticate_now(secret) is None  # never verified here: scrypt first
    assert server.authenticate(secret).tenant_id == "acme"
    now = server.authenticate_now(secret)
    assert now is not None and now == server.authenticate(secret)
    wrong = f"hmk_{key_id}_{'0' * 43}"  # another secret for the same id: never verified
    assert server.authenticate_now(wrong) is None
    with pytest.raises(Unauthenticated):
        server.authenticate(wrong)
    with pytest.raises(Unauthenticated):  # not a key at all: refused at once
        server.authenticate_now("hmk_nonsense")
    cli.decide(LOCAL_OPERATOR, "acme", TenantAction.SUSPEND)
    with pytest.raises(PermissionDenied):
        server.authenticate_now(secret)
    cli.decide(LOCAL_OPERATOR, "acme", TenantAction.REINSTATE)
    assert server.authenticate_now(secret) is not None
    cli.revoke_key(LOCAL_OPERATOR, key_id)
    with pytest.raises(Unauthenticated):
        server.authenticate_now(secret)


def test_a_busy_store_or_one_without_quick_reads_leaves_it_to_the_threads(
    open_tenant_store: TenantOpener,
) -> None:
    store = open_tenant_store()
    tenancy = Tenancy(store, AuthConfig())
    _, secret = _tenant_with_key(tenancy)
    tenancy.authenticate(secret)
    if not isinstance(store, QuickReads):  # PostgreSQL: a read is a round trip
        assert tenancy.authenticate_now(secret) is None
        return
    assert tenancy.authenticate_now(secret) is not None
    assert isinstance(store, SqliteTenantStore)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:  # another thread in the middle of a quick read
        with store._quick_lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(10)
        assert tenancy.authenticate_now(secret) is None
    finally:
        release.set()
        t.join()
    # A writer holding the database (another process's long transaction) does not stall
    # a quick read in WAL mode; the answer stays current.
    other = SqliteTenantStore(store.path)
    other._db.execute("BEGIN IMMEDIATE")
    try:
        assert tenancy.authenticate_now(secret) is not None
    finally:
        other._db.execute("ROLLBACK")
        other.close()


def test_last_used_times_due_go_to_the_threads(tmp_path: Path) -> None:
    tenancy = Tenancy(SqliteTenantStore(tmp_path / "t.sqlite3"), AuthConfig())
    key_id, secret = _tenant_with_key(tenancy)
    tenancy.authenticate(secret)
    tenancy.config = AuthConfig(last_used_interval_s=0.0)
    assert tenancy.authenticate_now(secret) is None  # a write is due: not on the loop
    tenancy.authenticate(secret)  # the thread's call writes them
    assert tenancy.store.get_key(key_id).last_used_at is not None


def test_a_rate_check_now_never_asks_the_shared_buckets(tmp_path: Path) -> None:
    asked: list[str] = []

    class Shared:
        def lease_tokens(self, bucket: str, *args: Any) -> tuple[float, float]:
            asked.append(bucket)
            return 2.0, 0.0

    limits = TenantLimits(SqliteTenantStore(tmp_path / "t.sqlite3"), AuthConfig(),
                          shared=Shared())  # fmt: skip
    who = Principal("acme", frozenset({Role.MATCH}), rate_per_second=10.0)
    assert limits.check_rate(who, wait=False) is False and asked == []
    assert limits.check_rate(who) is True and asked == ["acme"]  # a lease of 2: one used
    assert limits.check_rate(who, wait=False) is True  # the lease's second token
    assert limits.check_rate(who, wait=False) is False and asked == ["acme"]
    local = TenantLimits(SqliteTenantStore(tmp_path / "u.sqlite3"),
                         AuthConfig(rate_per_second=10.0, burst=1.0))  # fmt: skip
    assert local.check_rate(who, wait=False) is True
    with pytest.raises(Overloaded):
        local.check_rate(who, wait=False)  # refused at once, as on a thread


def _quota_of_100(
    open_tenant_store: TenantOpener, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, TenantLimits, Principal]:
    """A store, its limits and a tenant with 100 items a month, in May 2031."""
    from hashmatch.tenancy import limits as limits_module

    store = open_tenant_store()
    who = Principal("acme", frozenset({Role.MATCH}), rate_per_second=1.0, monthly_items=100)
    monkeypatch.setattr(limits_module, "this_month", lambda: "2031-05")
    return store, TenantLimits(store, AuthConfig()), who


def test_quota_is_charged_a_block_ahead_and_given_back(
    open_tenant_store: TenantOpener, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hashmatch.tenancy import limits as limits_module

    store, limits, who = _quota_of_100(open_tenant_store, monkeypatch)
    month = "2031-05"
    assert limits.charge_items(who, 1, wait=False) is False  # nothing ahead: a write
    assert store.usage("acme", month) == 0
    assert limits.charge_items(who, 1) is True
    assert store.usage("acme", month) == QUOTA_BLOCK  # one write for a block
    for _ in range(QUOTA_BLOCK - 1):
        assert limits.charge_items(who, 1, wait=False) is True
    assert limits.charge_items(who, 1, wait=False) is False  # the block is used up
    assert store.usage("acme", month) == QUOTA_BLOCK
    limits.charge_items(who, 3)
    limits.flush()  # shutdown: what was charged ahead and not used goes back
    assert store.usage("acme", month) == QUOTA_BLOCK + 3
    # A block that does not fit the quota: charged exactly, to the last item.
    limits.charge_items(who, 60)
    assert store.usage("acme", month) == 95
    for _ in range(5):
        limits.charge_items(who, 1)
    with pytest.raises(Overloaded, match="monthly quota"):
        limits.charge_items(who, 1)
    assert store.usage("acme", month) == 100
    # A new month: what the last one had ahead goes back to it, not to the new one.
    limits.charge_items(dataclasses.replace(who, monthly_items=10**6), 1)
    monkeypatch.setattr(limits_module, "this_month", lambda: "2031-06")
    limits.charge_items(who, 2)
    assert store.usage("acme", "2031-05") == 101
    assert store.usage("acme", "2031-06") == QUOTA_BLOCK


def test_quota_spends_what_is_held_before_asking_for_more(
    open_tenant_store: TenantOpener, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, limits, who = _quota_of_100(open_tenant_store, monkeypatch)
    limits.charge_items(who, 49)  # a call larger than a block: charged exactly
    limits.charge_items(who, 1)  # a block ahead: 81 counted, 31 of them held
    limits.charge_items(who, 11)  # from what is held: 61 used, 20 held
    assert store.usage("acme", "2031-05") == 81
    limits.charge_items(who, 25)  # 20 held + 5 from the store: 86 used, not refused
    assert store.usage("acme", "2031-05") == 86
    limits.charge_items(who, 14)
    with pytest.raises(Overloaded, match="monthly quota"):
        limits.charge_items(who, 1)
    limits.flush()
    assert store.usage("acme", "2031-05") == 100


def test_concurrent_callers_buy_one_block_and_flush_survives_a_lost_store(
    open_tenant_store: TenantOpener, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from hashmatch.errors import Unavailable
    from hashmatch.tenancy import limits as limits_module

    store = open_tenant_store()
    monkeypatch.setattr(limits_module, "this_month", lambda: "2031-05")
    real_charge = store.charge_usage

    def slow_charge(*args: Any) -> Any:
        time.sleep(0.05)  # every caller short of credit is inside at once
        return real_charge(*args)

    monkeypatch.setattr(store, "charge_usage", slow_charge)
    limits = TenantLimits(store, AuthConfig())
    who = Principal("acme", frozenset({Role.MATCH}), rate_per_second=1.0, monthly_items=10**6)
    start = threading.Barrier(8)

    def one_call() -> None:
        start.wait()
        limits.charge_items(who, 1)

    threads = [threading.Thread(target=one_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 8 <= store.usage("acme", "2031-05") <= 8 + QUOTA_BLOCK - 1
    other = dataclasses.replace(who, tenant_id="globex")
    limits.charge_items(other, 1)
    real_add = store.add_usage

    def lost_for_acme(tenant: str, *args: Any) -> Any:
        if tenant == "acme":
            raise Unavailable("the database is unreachable")
        return real_add(tenant, *args)

    monkeypatch.setattr(store, "add_usage", lost_for_acme)
    limits.flush()  # acme's stays counted high; globex's still goes back
    assert store.usage("globex", "2031-05") == 1
    monkeypatch.setattr(store, "add_usage", real_add)
    limits.flush()  # kept, so given back once the store takes it
    assert store.usage("acme", "2031-05") == 8
