"""The tenancy core without a server: keys, lifecycle, roles, limits, bank access."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hashmatch.banks.model import BankSettings, Visibility
from hashmatch.banks.sqlite_store import SqliteBankStore
from hashmatch.config import AuthConfig
from hashmatch.errors import (
    AlreadyExists,
    BadParameter,
    NotFound,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
)
from hashmatch.tenancy.access import BankAccess
from hashmatch.tenancy.clock import this_month
from hashmatch.tenancy.limits import TenantLimits, TokenBucket
from hashmatch.tenancy.model import OPEN_PRINCIPAL, Principal, Role, TenantAction, TenantState
from hashmatch.tenancy.service import LOCAL_OPERATOR, Tenancy
from hashmatch.tenancy.sqlite_store import SqliteTenantStore
from tests import postgres
from tests.conftest import TenantOpener


@pytest.fixture()
def tenancy(open_tenant_store: TenantOpener) -> Tenancy:
    return Tenancy(open_tenant_store(), AuthConfig())


def _approved(t: Tenancy, tenant_id: str) -> None:
    t.apply(tenant_id, "Org", "a@b.c", "scanning")
    t.decide(LOCAL_OPERATOR, tenant_id, TenantAction.APPROVE)


def test_keys_are_stored_only_as_salted_hashes(tmp_path: Path) -> None:
    tenancy = Tenancy(SqliteTenantStore(tmp_path / "t.sqlite3"), AuthConfig())
    _approved(tenancy, "acme")
    a, secret_a = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    b, secret_b = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    assert secret_a.startswith(f"hmk_{a.id}_") and a.salt != b.salt and a.digest != b.digest
    tenancy.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (secret_a, secret_b):
        assert secret.split("_", 2)[2].encode() not in raw


def test_authentication(tenancy: Tenancy) -> None:
    assert tenancy.authenticate(None) is OPEN_PRINCIPAL  # no key exists yet: open
    assert tenancy.authenticate("anything") is OPEN_PRINCIPAL  # keys sent are ignored
    _approved(tenancy, "acme")
    _, secret = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH, Role.BANK_ADMIN})
    who = tenancy.authenticate(secret)
    assert who.tenant_id == "acme" and who.roles == {Role.MATCH, Role.BANK_ADMIN}
    assert who.match_tenant == "acme" and who.limited
    with pytest.raises(Unauthenticated):
        tenancy.authenticate(None)  # a key exists now: auth is on
    wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    for bad in (wrong, "hmk_0123456789ab_" + "A" * 43, "Bearer nonsense", ""):
        with pytest.raises(Unauthenticated) as exc:
            tenancy.authenticate(bad)
        assert exc.value.message == "invalid API key"
    with pytest.raises(PermissionDenied):
        who.require(Role.OPERATOR)


def test_required_auth_without_keys(open_tenant_store: TenantOpener) -> None:
    t = Tenancy(open_tenant_store(), AuthConfig(required=True))
    with pytest.raises(Unauthenticated):
        t.authenticate(None)


def test_lifecycle(tenancy: Tenancy) -> None:
    t = tenancy.apply("acme", "Org", "a@b.c", "scanning")
    assert t.state is TenantState.APPLIED
    with pytest.raises(AlreadyExists):
        tenancy.apply("acme", "Org", "a@b.c", "scanning")
    with pytest.raises(BadParameter):
        tenancy.apply("operator", "Org", "a@b.c", "scanning")
    with pytest.raises(BadParameter):
        tenancy.apply("Not Valid", "Org", "a@b.c", "scanning")
    _, secret = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    with pytest.raises(PermissionDenied):
        tenancy.authenticate(secret)  # applied, not approved
    with pytest.raises(BadParameter):
        tenancy.decide(LOCAL_OPERATOR, "acme", TenantAction.SUSPEND)  # not approved yet
    tenancy.decide(LOCAL_OPERATOR, "acme", TenantAction.APPROVE, "vetted")
    assert tenancy.authenticate(secret).tenant_id == "acme"
    tenancy.decide(LOCAL_OPERATOR, "acme", TenantAction.SUSPEND)
    with pytest.raises(PermissionDenied):
        tenancy.authenticate(secret)
    t = tenancy.decide(LOCAL_OPERATOR, "acme", TenantAction.REINSTATE, "fixed")
    assert t.state is TenantState.APPROVED and t.reason == "fixed"
    tenancy.apply("nope", "Org", "a@b.c", "scanning")
    assert tenancy.decide(LOCAL_OPERATOR, "nope", TenantAction.REJECT).state is TenantState.REJECTED
    with pytest.raises(BadParameter):
        tenancy.decide(LOCAL_OPERATOR, "nope", TenantAction.APPROVE)


def test_tenant_admins_manage_only_their_own_keys(tenancy: Tenancy) -> None:
    _approved(tenancy, "acme")
    _approved(tenancy, "globex")
    _, s = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.TENANT_ADMIN})
    acme_admin = tenancy.authenticate(s)
    g, _ = tenancy.create_key(LOCAL_OPERATOR, "globex", {Role.MATCH})
    with pytest.raises(NotFound, match="no key"):
        tenancy.revoke_key(acme_admin, g.id)
    with pytest.raises(NotFound, match="no tenant"):
        tenancy.list_keys(acme_admin, "globex")
    with pytest.raises(PermissionDenied):
        tenancy.create_key(acme_admin, "acme", {Role.OPERATOR})
    with pytest.raises(BadParameter):
        tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.OPERATOR})  # operator tenant only
    own, _ = tenancy.create_key(acme_admin, "", {Role.MATCH})
    assert own.tenant_id == "acme"
    with pytest.raises(PermissionDenied):
        tenancy.list_tenants(acme_admin)


def test_rotation_overlap_and_revocation(tenancy: Tenancy) -> None:
    _approved(tenancy, "acme")
    old, old_secret = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    new, new_secret = tenancy.rotate_key(LOCAL_OPERATOR, old.id, overlap_s=3600)
    assert new.roles == old.roles and tenancy.authenticate(old_secret).key_id == old.id
    assert tenancy.authenticate(new_secret).key_id == new.id
    tenancy.rotate_key(LOCAL_OPERATOR, new.id, overlap_s=0)
    with pytest.raises(Unauthenticated):
        tenancy.authenticate(new_secret)  # no overlap: gone at once
    tenancy.revoke_key(LOCAL_OPERATOR, old.id)
    with pytest.raises(Unauthenticated):
        tenancy.authenticate(old_secret)  # verified before, refused now


def test_last_used_is_written_lazily(open_tenant_store: TenantOpener) -> None:
    store = open_tenant_store()
    t = Tenancy(store, AuthConfig(last_used_interval_s=3600))
    _approved(t, "acme")
    k, secret = t.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    for _ in range(3):
        t.authenticate(secret)
    assert store.get_key(k.id).last_used_at is None
    t.flush()
    assert store.get_key(k.id).last_used_at is not None


def test_token_bucket_and_quota(open_tenant_store: TenantOpener) -> None:
    b = TokenBucket(rate=2.0, burst=2.0, tokens=2.0, at=0.0)
    assert [b.take(0.0), b.take(0.0)] == [0.0, 0.0]
    assert b.take(0.0) == pytest.approx(0.5)
    assert b.take(0.5) == 0.0
    now = [0.0]
    store = open_tenant_store()
    limits = TenantLimits(store, AuthConfig(rate_per_second=1, burst=1), clock=lambda: now[0])
    who = Principal("acme", frozenset({Role.MATCH}), rate_per_second=1.0, monthly_items=10)
    limits.check_rate(who)
    with pytest.raises(Overloaded) as exc:
        limits.check_rate(who)
    assert exc.value.retry_after_s == pytest.approx(1.0)
    now[0] = 1.0
    limits.check_rate(who)
    limits.check_rate(dataclasses.replace(who, tenant_id="operator"))  # not limited
    limits.charge_items(who, 10)
    with pytest.raises(Overloaded, match="monthly quota"):
        limits.charge_items(who, 1)


def test_a_quota_holds_across_replicas_charging_at_once(open_tenant_store: TenantOpener) -> None:
    """Two stores on one database (two replicas), four threads each charging one item at a
    time: exactly the quota is granted, and the count says so."""
    stores = [open_tenant_store(), open_tenant_store()]
    who = Principal("acme", frozenset({Role.MATCH}), rate_per_second=1e9, monthly_items=60)
    limits = [TenantLimits(s, AuthConfig()) for s in stores]
    granted = []

    def charge(k: int) -> None:
        for _ in range(25):
            try:
                limits[k % 2].charge_items(who, 1)
                granted.append(1)
            except Overloaded:
                pass

    threads = [threading.Thread(target=charge, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(granted) == 60
    assert stores[0].usage("acme", this_month()) == 60 == stores[1].usage("acme", this_month())
    for s in stores:
        s.close()


def test_bank_access(tmp_path: Path) -> None:
    store = SqliteBankStore(tmp_path / "b.sqlite3")
    access = BankAccess(store)
    acme = Principal("acme", frozenset(Role))
    globex = Principal("globex", frozenset(Role))
    op = Principal("operator", frozenset(Role))
    store.create_bank("acme:mine", BankSettings(owner="acme"))
    store.create_bank("acme:shared", BankSettings(owner="acme", visibility=Visibility.SHARED,
                                                  shared_with=frozenset({"globex"})))  # fmt: skip
    store.create_bank("pub", BankSettings(visibility=Visibility.PUBLIC))
    assert access.owned(acme, "acme:mine").name == "acme:mine"
    for who in (globex, op):
        with pytest.raises(NotFound) as exc:
            access.readable(who, "acme:mine")
        assert exc.value.message == "no bank named 'acme:mine'"
    assert access.readable(globex, "acme:shared").name == "acme:shared"
    with pytest.raises(PermissionDenied):
        access.owned(globex, "acme:shared")
    with pytest.raises(PermissionDenied):
        access.owned(acme, "pub")
    assert access.owned(op, "pub").name == "pub" and access.owned(OPEN_PRINCIPAL, "acme:mine")
    assert access.settings_for(acme, "acme:x", BankSettings(), creating=True).owner == "acme"
    with pytest.raises(BadParameter):
        access.settings_for(acme, "globex:x", BankSettings(), creating=True)
    with pytest.raises(PermissionDenied):
        access.settings_for(acme, "acme:x", BankSettings(owner="globex"), creating=True)
    with pytest.raises(PermissionDenied):
        access.settings_for(acme, "acme:x", BankSettings(visibility=Visibility.PUBLIC), True)
    assert access.settings_for(op, "x", BankSettings(), creating=True).owner == ""
    names = {b.name for b in access.visible(globex, store.list_banks())}
    assert names == {"acme:shared", "pub"}


def test_key_metadata() -> None:
    from hashmatch.proto import admin_pb, bank_pb, pb, report_pb
    from hashmatch.server.auth import POLICY, api_key

    assert api_key([("authorization", "Bearer hmk_x")]) == "hmk_x"
    assert api_key([("authorization", "bearer  hmk_x ")]) == "hmk_x"
    assert api_key([("ocp-apim-subscription-key", "hmk_y")]) == "hmk_y"
    assert api_key([("authorization", "Basic abc"), ("x-other", "1")]) is None
    assert api_key(None) is None
    # Every RPC of every hashmatch service has a policy (a new RPC cannot slip through).
    for mod in (pb, bank_pb, admin_pb, report_pb):
        for service in mod.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                assert f"/{service.full_name}/{m.name}" in POLICY


def test_guessing_a_keys_secret_is_throttled(tenancy: Tenancy) -> None:
    _approved(tenancy, "acme")
    k, secret = tenancy.create_key(LOCAL_OPERATOR, "acme", {Role.MATCH})
    wrong = f"hmk_{k.id}_" + "B" * 43
    for _ in range(8):  # a burst of 5 verified failures, then refused unverified
        with pytest.raises(Unauthenticated):
            tenancy.authenticate(wrong, "10.0.0.9")
    # Past the burst the guessing source waits, even with the right secret ...
    with pytest.raises(Unauthenticated):
        tenancy.authenticate(secret, "10.0.0.9")
    # ... but the right key from anywhere else is not held back,
    assert tenancy.authenticate(secret, "10.0.0.1").key_id == k.id
    # and the guesser's source recovers as its bucket refills.
    tenancy._failures[(k.id, "10.0.0.9")].at -= 2.0
    tenancy._verified.clear()
    assert tenancy.authenticate(secret, "10.0.0.9").key_id == k.id


def test_a_rate_holds_across_replicas(pg_cluster: postgres.Cluster) -> None:
    """Two replicas' limiters over one database admit one tenant's rate together (each
    alone would admit its own burst: twice as much); a lost database falls back to each
    replica's own bucket rather than refusing every call."""
    from hashmatch.tenancy.postgres_store import PostgresTenantStore

    url = pg_cluster.new_database()
    stores = [PostgresTenantStore(url) for _ in range(2)]
    try:
        for rate, burst, calls in ((5.0, 20.0, 80), (1000.0, 400.0, 1600)):
            config = AuthConfig(rate_per_second=rate, burst=burst)
            limits = [TenantLimits(s, config, shared=s) for s in stores]
            who = Principal(f"t{rate:g}", frozenset({Role.MATCH}), rate_per_second=rate,
                            monthly_items=10**9)  # fmt: skip
            admitted, t0 = 0, time.monotonic()
            for k in range(calls):
                try:
                    limits[k % 2].check_rate(who)
                    admitted += 1
                except Overloaded as exc:
                    assert 0 < exc.retry_after_s <= 1 / rate + 0.01
            elapsed = time.monotonic() - t0
            assert burst * 0.9 <= admitted <= burst + rate * elapsed + 1, (admitted, elapsed)
        # A throttled tenant's further calls are refused here, without the database.
        leases: list[str] = []

        class Counting:
            def lease_tokens(self, *args: Any) -> tuple[float, float]:
                leases.append(args[0])
                return stores[0].lease_tokens(*args)

        slow = TenantLimits(stores[0], AuthConfig(rate_per_second=0.5, burst=1),
                            shared=Counting())  # fmt: skip
        who = Principal("slow", frozenset({Role.MATCH}), rate_per_second=0.5)
        slow.check_rate(who)
        for _ in range(100):
            with pytest.raises(Overloaded):
                slow.check_rate(who)
        assert len(leases) == 2
        pg_cluster.stop()
        try:
            local = TenantLimits(stores[0], AuthConfig(rate_per_second=5, burst=3),
                                 shared=stores[0])  # fmt: skip
            who = Principal("down", frozenset({Role.MATCH}), rate_per_second=5.0)
            for _ in range(3):
                local.check_rate(who)
            with pytest.raises(Overloaded):
                local.check_rate(who)
        finally:
            pg_cluster.start()
    finally:
        for s in stores:
            s.close()
