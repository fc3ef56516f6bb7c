"""Who may make a call: the key resolved to a Principal, the call's role checked, the
tenant's request rate charged. Both faces admit every call here, before any work."""

from __future__ import annotations

from enum import Enum

from hashmatch.core.calls import CallRecorder
from hashmatch.core.metrics import Metrics
from hashmatch.errors import HashmatchError, PermissionDenied
from hashmatch.tenancy.limits import TenantLimits
from hashmatch.tenancy.model import ANONYMOUS, Principal, Role
from hashmatch.tenancy.service import Tenancy


class Open(Enum):
    PUBLIC = "public"  # no key needed (ApplyTenant): the call acts as no one
    ANY_KEY = "any key"  # any valid key; the tenancy core checks the details


Policy = Role | Open


class Admission:
    def __init__(
        self, tenancy: Tenancy, limits: TenantLimits, metrics: Metrics, calls: CallRecorder
    ) -> None:
        self.tenancy = tenancy
        self.limits = limits
        self.metrics = metrics
        self.calls = calls

    def admit(self, key: str | None, policy: Policy | None, rpc: str) -> Principal:
        """The caller, or the refusal (audited and counted). Blocking: a store read, and
        scrypt on a key's first use."""
        try:
            return self._admit(key, policy, rpc)
        except HashmatchError as exc:
            self.metrics.auth_refused(exc.code.value)
            self.calls.refused(rpc, exc)
            raise

    def _admit(self, key: str | None, policy: Policy | None, rpc: str) -> Principal:
        if policy is None:  # a method nobody wrote a policy for is nobody's
            raise PermissionDenied("unknown method")
        if policy is Open.PUBLIC:  # any key sent is ignored
            self.limits.check_public()
            return ANONYMOUS
        principal = self.tenancy.authenticate(key)
        if isinstance(policy, Role):
            principal.require(policy)
        self.limits.check_rate(principal)
        self.metrics.tenant_request(principal.tenant_id, rpc)
        return principal
