"""Value types of tenancy: tenants and their lifecycle, roles, API keys, the caller.

Keys look like `hmk_<id>_<secret>`: the id (12 hex digits) is public and names the stored
record; the secret (32 random bytes, base64url) is shown once and stored only as a salted
scrypt hash, compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from hashmatch.errors import BadParameter, PermissionDenied, Unauthenticated

# The installation's own organisation: holds the operator keys. Banks it owns have the
# owner "" (what `hashmatch bank create` writes), so its keys act on those.
OPERATOR_TENANT = "operator"
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
KEY_PREFIX = "hmk"
_KEY = re.compile(r"^hmk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")

# scrypt: 16 MiB and ~50 ms per verification; verified keys are remembered per process.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1


class TenantState(StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class TenantAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"

    def next_state(self, current: TenantState) -> TenantState:
        allowed = _TRANSITIONS[self]
        if current not in allowed[0]:
            raise BadParameter(
                f"cannot {self.value} a tenant that is {current.value}"
                f" (only {', '.join(s.value for s in allowed[0])})"
            )
        return allowed[1]


_TRANSITIONS = {
    TenantAction.APPROVE: ((TenantState.APPLIED,), TenantState.APPROVED),
    TenantAction.REJECT: ((TenantState.APPLIED,), TenantState.REJECTED),
    TenantAction.SUSPEND: ((TenantState.APPROVED,), TenantState.SUSPENDED),
    TenantAction.REINSTATE: ((TenantState.SUSPENDED,), TenantState.APPROVED),
}


class Role(StrEnum):
    MATCH = "match"  # MatchService: match and hash
    BANK_ADMIN = "bank-admin"  # BankService on the tenant's own banks
    REPORT = "report"  # reporting (the Report API; no RPC needs it yet)
    TENANT_ADMIN = "tenant-admin"  # the tenant's own keys
    OPERATOR = "operator"  # every tenant's lifecycle and keys (operator tenant only)


def parse_roles(names: object) -> frozenset[Role]:
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if not isinstance(names, list | tuple | set | frozenset):
        raise BadParameter("roles: a list of role names")
    try:
        roles = frozenset(Role(str(n).strip()) for n in names)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise BadParameter(f"roles are {choices}; got {sorted(map(str, names))}") from None
    if not roles:
        raise BadParameter("a key needs at least one role")
    return roles


def check_tenant_id(tenant_id: str) -> str:
    if not _TENANT_ID.fullmatch(tenant_id):  # "$" would let a trailing newline in
        raise BadParameter(f"tenant id {tenant_id!r}: 1-63 of lower-case letters, digits, '-', '_'")
    return tenant_id


@dataclass(frozen=True)
class Tenant:
    id: str
    organisation: str
    contact: str
    intended_use: str
    state: TenantState
    reason: str = ""
    applied_at: str = ""
    updated_at: str = ""
    rate_per_second: float = 0.0  # 0: the server's default
    monthly_items: int = 0  # 0: the server's default

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "organisation": self.organisation,
            "contact": self.contact,
            "intended_use": self.intended_use,
            "state": self.state.value,
            "reason": self.reason,
            "applied_at": self.applied_at,
            "updated_at": self.updated_at,
            "rate_per_second": self.rate_per_second,
            "monthly_items": self.monthly_items,
        }


@dataclass(frozen=True)
class ApiKey:
    """A stored key record: never the secret, only its salted hash."""

    id: str
    tenant_id: str
    name: str
    roles: frozenset[Role]
    salt: bytes
    digest: bytes
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None
    replaced_by: str | None = None

    def usable_at(self, now: str) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "roles": sorted(r.value for r in self.roles),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "replaced_by": self.replaced_by,
        }


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant's key with its roles, or the open local operator."""

    tenant_id: str
    roles: frozenset[Role]
    key_id: str = ""
    open: bool = False  # no key exists and auth is not required: the pre-auth behaviour
    rate_per_second: float = 0.0  # the tenant's limits (0: none, the operator)
    monthly_items: int = 0

    @property
    def is_operator(self) -> bool:
        return self.tenant_id == OPERATOR_TENANT

    @property
    def match_tenant(self) -> str | None:
        """The tenant matching runs as: None (every bank) only in open mode."""
        if self.open:
            return None
        return "" if self.is_operator else self.tenant_id

    @property
    def bank_owner(self) -> str:
        """The owner value of the banks this caller owns."""
        return "" if self.is_operator else self.tenant_id

    @property
    def report_owner(self) -> str:
        """The tenant a report this caller files belongs to ("" in open mode)."""
        return "" if self.open else self.tenant_id

    @property
    def reports_of(self) -> str | None:
        """Whose reports this caller sees: its tenant's (None: all, open mode only)."""
        return None if self.open else self.tenant_id

    @property
    def limited(self) -> bool:
        return not self.open and not self.is_operator

    def require(self, role: Role) -> None:
        if self.open or role in self.roles:
            return
        raise PermissionDenied(f"this key lacks the {role.value!r} role")


OPEN_PRINCIPAL = Principal(OPERATOR_TENANT, frozenset(Role), open=True)
# The caller of a call that needs no key (ApplyTenant): no tenant, no role.
ANONYMOUS = Principal("", frozenset())


def new_key_id() -> str:
    return secrets.token_hex(6)


def new_secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def format_key(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def split_key(key: str) -> tuple[str, str]:
    """(id, secret) of a well-formed key, or Unauthenticated (never echoing the key)."""
    m = _KEY.fullmatch(key.strip())
    if m is None:
        raise Unauthenticated("invalid API key")
    return m.group(1), m.group(2)


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32, maxmem=1 << 26
    )


def secret_matches(secret: str, salt: bytes, digest: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret, salt), digest)
