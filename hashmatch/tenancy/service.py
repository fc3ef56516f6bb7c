"""The tenancy core: authentication, tenants' lifecycle and keys, with who-may-do-what.

Transports (the gRPC AdminService, the `hashmatch admin` CLI) are thin layers over this.
Object-level rule: a tenant admin asking about another tenant or its keys gets NotFound,
the same answer as for one that does not exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable

from hashmatch.config import AuthConfig
from hashmatch.errors import BadParameter, NotFound, PermissionDenied, Unauthenticated, Unavailable
from hashmatch.tenancy.clock import now_iso
from hashmatch.tenancy.limits import TokenBucket
from hashmatch.tenancy.model import (
    OPEN_PRINCIPAL,
    OPERATOR_TENANT,
    ApiKey,
    Principal,
    Role,
    Tenant,
    TenantAction,
    TenantState,
    check_tenant_id,
    format_key,
    hash_secret,
    new_key_id,
    new_secret,
    secret_matches,
    split_key,
)
from hashmatch.tenancy.store import QuickReads, TenantStore, WouldBlock

# What the local CLI acts as (it holds the data dir, so it is the operator).
LOCAL_OPERATOR = Principal(OPERATOR_TENANT, frozenset(Role), key_id="local")
INVALID_KEY = "invalid API key"
MISSING_KEY = (
    "an API key is required: send 'authorization: Bearer <key>'"
    " or 'ocp-apim-subscription-key: <key>' metadata"
)
_MAX_TEXT = 2000
_MAX_FAILURE_BUCKETS = 100_000
MAX_OVERLAP_S = 30 * 86_400.0


def _fingerprint(key_id: str, secret: str) -> bytes:
    """What a verified key is remembered by (never the key itself)."""
    return hashlib.sha256(f"{key_id}:{secret}".encode()).digest()


def _keyed(caller: Principal, what: str) -> None:
    """Granting access needs a key: in open mode (no key exists yet) any local caller is
    the operator, and must not mint itself a key that outlives the operator's bootstrap."""
    if caller.open:
        raise PermissionDenied(
            f"cannot {what} without an API key: create the first one with"
            " `hashmatch admin bootstrap` on the server's data dir"
        )


def _text(name: str, value: str, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise BadParameter(f"{name} is required")
    if len(value) > _MAX_TEXT:
        raise BadParameter(f"{name}: at most {_MAX_TEXT} characters")
    return value


class Tenancy:
    def __init__(
        self,
        store: TenantStore,
        config: AuthConfig,
        on_verify: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.config = config
        self._on_verify = on_verify  # each scrypt verification (a metric)
        # sha256 of a whole key -> its id, for keys whose secret verified (scrypt runs once
        # per key and process; the record's state is still read on every call).
        self._verified: dict[bytes, str] = {}
        # The last record read of each verified key and its tenant: what authenticates it
        # while the store is unreachable (a lost database), so matching goes on.
        self._last_read: dict[str, tuple[ApiKey, Tenant]] = {}
        self._used: dict[str, str] = {}
        # Failed verifications per (key id, source), and per ("", source).
        self._failures: dict[tuple[str, str], TokenBucket] = {}
        self._flushed_at = time.monotonic()
        self._lock = threading.Lock()
        self._auth_on = config.required

    # -- authentication ------------------------------------------------------------------
    def auth_enabled(self) -> bool:
        if not self._auth_on:
            with contextlib.suppress(Unavailable):  # unreachable: as it was last known
                self._auth_on = self.store.has_keys()  # once a key exists, auth stays on
        return self._auth_on

    def authenticate(self, key: str | None, source: str = "") -> Principal:
        """The caller behind a key (blocking: a store read, scrypt on first sight).
        `source` is the caller's address: wrong secrets are throttled per source (and
        per key id from that source), so guessing from one place cannot lock the right
        key out for everybody else."""
        if not self.auth_enabled():
            # Open mode: no key exists, so none could be checked; any sent is ignored
            # (PhotoDNA clients always send one).
            return OPEN_PRINCIPAL
        key_id, secret = self._split(key)
        found = self._key_and_tenant(key_id)
        if found is None:
            raise Unauthenticated(INVALID_KEY)
        record, tenant = found
        now = now_iso()
        if not record.usable_at(now):  # revoked or expired: no scrypt spent on it
            raise Unauthenticated(INVALID_KEY)
        fingerprint = _fingerprint(key_id, secret)
        with self._lock:
            known = self._verified.get(fingerprint) == key_id
        if not known:
            self._verify(key_id, secret, record, source)
            with self._lock:
                self._verified[fingerprint] = key_id
                self._last_read[key_id] = found
        self._note_use(key_id, now)
        return self._principal(key_id, record, tenant)

    def authenticate_now(self, key: str | None) -> Principal | None:
        """authenticate without waiting, for the event loop: a key already verified
        here, its record read now by the store's quick read (the same answer, state
        included, as authenticate); None where that would wait (no quick reads, a
        busy store, scrypt not yet run, last-used times due to be written)."""
        store = self.store
        if not isinstance(store, QuickReads):
            return None
        try:
            if not self._auth_on and not store.has_keys_now():
                return OPEN_PRINCIPAL
            self._auth_on = True
            key_id, secret = self._split(key)
            with self._lock:
                known = self._verified.get(_fingerprint(key_id, secret)) == key_id
            if not known or self._use_due():
                return None
            found = store.key_and_tenant_now(key_id)
        except WouldBlock:
            return None
        with self._lock:
            if found is None:
                self._last_read.pop(key_id, None)
            else:
                self._last_read[key_id] = found
        if found is None:
            raise Unauthenticated(INVALID_KEY)
        record, tenant = found
        now = now_iso()
        if not record.usable_at(now):
            raise Unauthenticated(INVALID_KEY)
        with self._lock:
            self._used[key_id] = now
        return self._principal(key_id, record, tenant)

    @staticmethod
    def _split(key: str | None) -> tuple[str, str]:
        if key is None:
            raise Unauthenticated(MISSING_KEY)
        return split_key(key)

    def _principal(self, key_id: str, record: ApiKey, tenant: Tenant) -> Principal:
        if tenant.state is not TenantState.APPROVED:
            raise PermissionDenied(f"tenant {tenant.id!r} is {tenant.state.value}, not approved")
        return Principal(
            tenant.id,
            record.roles,
            key_id=key_id,
            rate_per_second=tenant.rate_per_second or self.config.rate_per_second,
            monthly_items=tenant.monthly_items or self.config.monthly_items,
        )

    def _key_and_tenant(self, key_id: str) -> tuple[ApiKey, Tenant] | None:
        """The key's record, read now; while the store is unreachable, the last one read
        (a key never verified here is not let in then: Unavailable)."""
        try:
            found = self.store.key_and_tenant(key_id)
        except Unavailable:
            with self._lock:
                last = self._last_read.get(key_id)
            if last is None:
                raise
            return last
        with self._lock:
            if found is None:
                self._last_read.pop(key_id, None)
            elif key_id in self._last_read:
                self._last_read[key_id] = found
        return found

    def _verify(self, key_id: str, secret: str, record: ApiKey, source: str) -> None:
        """scrypt costs ~50 ms and 16 MiB: wrong secrets are throttled (answered at once,
        unverified) per source and per key id from that source, so guessing cannot tie
        the server up; the right key from elsewhere is never held back."""
        now_s = time.monotonic()
        with self._lock:
            buckets = (
                self._failures.setdefault((key_id, source), TokenBucket(1.0, 5.0, 5.0, now_s)),
                self._failures.setdefault(("", source), TokenBucket(5.0, 20.0, 20.0, now_s)),
            )
            throttled = any(b.refill(now_s) < 1.0 for b in buckets)
            if len(self._failures) > _MAX_FAILURE_BUCKETS:  # many sources: forget the oldest
                for old in list(self._failures)[: len(self._failures) // 2]:
                    del self._failures[old]
        if throttled:
            raise Unauthenticated(INVALID_KEY)
        self._on_verify()
        if not secret_matches(secret, record.salt, record.digest):
            with self._lock:
                for b in buckets:
                    b.take(now_s)
            raise Unauthenticated(INVALID_KEY)

    def _use_due(self) -> bool:
        return time.monotonic() - self._flushed_at >= self.config.last_used_interval_s

    def _note_use(self, key_id: str, now: str) -> None:
        """last-used times, written at most every last_used_interval_s (not per call)."""
        with self._lock:
            self._used[key_id] = now
            if not self._use_due():
                return
            pending, self._used = self._used, {}
            self._flushed_at = time.monotonic()
        try:
            self.store.touch_keys(pending)
        except Unavailable:  # advisory: kept for the next write, the call goes on
            with self._lock:
                self._used = {**pending, **self._used}

    def flush(self) -> None:
        with self._lock:
            pending, self._used = self._used, {}
        self.store.touch_keys(pending)

    # -- tenants -------------------------------------------------------------------------
    def apply(self, tenant_id: str, organisation: str, contact: str, intended_use: str) -> Tenant:
        check_tenant_id(tenant_id)
        if tenant_id == OPERATOR_TENANT:
            raise BadParameter(f"tenant id {OPERATOR_TENANT!r} is reserved")
        now = now_iso()
        return self.store.add_tenant(
            Tenant(
                id=tenant_id,
                organisation=_text("organisation", organisation),
                contact=_text("contact", contact),
                intended_use=_text("intended use", intended_use),
                state=TenantState.APPLIED,
                applied_at=now,
                updated_at=now,
            )
        )

    def _own_tenant(self, caller: Principal, tenant_id: str) -> str:
        """The tenant a call is about: any for operators, only its own for a tenant admin."""
        tenant_id = tenant_id or caller.tenant_id
        if Role.OPERATOR in caller.roles:
            return tenant_id
        if Role.TENANT_ADMIN not in caller.roles:
            raise PermissionDenied("this key lacks the 'tenant-admin' role")
        if tenant_id != caller.tenant_id:
            raise NotFound(f"no tenant {tenant_id!r}")
        return tenant_id

    def get_tenant(self, caller: Principal, tenant_id: str) -> Tenant:
        return self.store.get_tenant(self._own_tenant(caller, tenant_id))

    def list_tenants(self, caller: Principal, state: TenantState | None = None) -> list[Tenant]:
        caller.require(Role.OPERATOR)
        return self.store.list_tenants(state)

    def decide(
        self, caller: Principal, tenant_id: str, action: TenantAction, reason: str = ""
    ) -> Tenant:
        _keyed(caller, "decide on a tenant")
        caller.require(Role.OPERATOR)
        if tenant_id == OPERATOR_TENANT:
            raise BadParameter("the operator tenant's state is fixed")
        tenant = self.store.get_tenant(tenant_id)
        state = action.next_state(tenant.state)
        return self.store.set_tenant_state(tenant_id, state, _text("reason", reason, False))

    def set_limits(
        self,
        caller: Principal,
        tenant_id: str,
        rate_per_second: float | None,
        monthly_items: int | None,
    ) -> Tenant:
        _keyed(caller, "set a tenant's limits")
        caller.require(Role.OPERATOR)
        # not (x >= 0) catches NaN too; inf would be no limit at all
        if rate_per_second is not None and not 0 <= rate_per_second < math.inf:
            raise BadParameter("rate_per_second must be a number >= 0 (0: the server's default)")
        if monthly_items is not None and monthly_items < 0:
            raise BadParameter("monthly_items must be >= 0 (0: the server's default)")
        return self.store.set_tenant_limits(tenant_id, rate_per_second, monthly_items)

    # -- keys ----------------------------------------------------------------------------
    def _new_key(
        self, tenant_id: str, roles: Iterable[Role], name: str, now: str
    ) -> tuple[ApiKey, str]:
        roles = frozenset(roles)
        if Role.OPERATOR in roles and tenant_id != OPERATOR_TENANT:
            raise BadParameter("only the operator tenant's keys may hold the operator role")
        secret, salt = new_secret(), secrets.token_bytes(16)
        key = ApiKey(
            id=new_key_id(),
            tenant_id=tenant_id,
            name=_text("name", name, False),
            roles=roles,
            salt=salt,
            digest=hash_secret(secret, salt),
            created_at=now,
        )
        self.store.add_key(key)
        self._auth_on = True
        return key, format_key(key.id, secret)

    def create_key(
        self, caller: Principal, tenant_id: str, roles: Iterable[Role], name: str = ""
    ) -> tuple[ApiKey, str]:
        """The stored record and the whole key (shown once)."""
        _keyed(caller, "create a key")
        tenant_id = self._own_tenant(caller, tenant_id)
        roles = frozenset(roles)
        if not roles:
            raise BadParameter("a key needs at least one role")
        if Role.OPERATOR in roles:
            caller.require(Role.OPERATOR)
        self.store.get_tenant(tenant_id)  # NotFound for an unknown tenant
        return self._new_key(tenant_id, roles, name, now_iso())

    def list_keys(self, caller: Principal, tenant_id: str = "") -> list[ApiKey]:
        return self.store.list_keys(self._own_tenant(caller, tenant_id))

    def _key_of(self, caller: Principal, key_id: str) -> ApiKey:
        try:
            key = self.store.get_key(key_id)
        except NotFound:
            raise NotFound(f"no key {key_id!r}") from None
        try:
            self._own_tenant(caller, key.tenant_id)
        except NotFound:
            raise NotFound(f"no key {key_id!r}") from None
        return key

    def rotate_key(
        self, caller: Principal, key_id: str, overlap_s: float | None = None
    ) -> tuple[ApiKey, str]:
        """A new key with the same tenant and roles; the old one works `overlap_s` more."""
        _keyed(caller, "rotate a key")
        old = self._key_of(caller, key_id)
        if old.revoked_at is not None:
            raise BadParameter(f"key {key_id!r} is revoked")
        overlap = self.config.rotation_overlap_s if overlap_s is None else overlap_s
        # Checked before the new key is made: a refused rotation leaves no key behind.
        if not 0 <= overlap <= MAX_OVERLAP_S:
            raise BadParameter(f"overlap must be 0 to {MAX_OVERLAP_S:.0f} seconds (30 days)")
        new, whole = self._new_key(old.tenant_id, old.roles, old.name, now_iso())
        self.store.retire_key(old.id, now_iso(overlap), new.id)
        return new, whole

    def revoke_key(self, caller: Principal, key_id: str) -> ApiKey:
        """Effective at once: every call reads the key's state."""
        self._key_of(caller, key_id)
        return self.store.revoke_key(key_id, now_iso())

    def bootstrap(self) -> tuple[ApiKey, str]:
        """The operator tenant (approved) and a key with every role."""
        try:
            self.store.get_tenant(OPERATOR_TENANT)
        except NotFound:
            now = now_iso()
            self.store.add_tenant(
                Tenant(
                    OPERATOR_TENANT,
                    "this installation",
                    "",
                    "operating this hashmatch server",
                    TenantState.APPROVED,
                    applied_at=now,
                    updated_at=now,
                )
            )
        return self._new_key(OPERATOR_TENANT, frozenset(Role), "bootstrap", now_iso())
