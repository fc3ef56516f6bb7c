"""Who may make a call: the key resolved to a Principal, the call's role checked, the
tenant's request rate charged. Both faces admit every call here, before any work."""

from __future__ import annotations

import asyncio
import ipaddress
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import overload

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
AUTH_THREADS = 2


class Admission:
    def __init__(
        self, tenancy: Tenancy, limits: TenantLimits, metrics: Metrics, calls: CallRecorder
    ) -> None:
        self.tenancy = tenancy
        self.limits = limits
        self.metrics = metrics
        self.calls = calls
        # Key checks (a store read; scrypt on a key's first use) on threads of their own:
        # guessed keys cannot take the threads that hash and match.
        self._pool = ThreadPoolExecutor(AUTH_THREADS, "hashmatch-auth")

    async def admit_async(
        self, key: str | None, policy: Policy | None, rpc: str, peer: str = ""
    ) -> Principal:
        """admit, on the event loop itself where nothing has to wait (a key verified
        here before, its record read by the store's quick read, a rate token at hand);
        otherwise on the key-check threads."""
        principal = self.admit_now(key, policy, rpc, peer)
        if principal is not None:
            return principal
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.admit, key, policy, rpc, peer)

    def admit_now(
        self, key: str | None, policy: Policy | None, rpc: str, peer: str = ""
    ) -> Principal | None:
        """The same answer as admit, or None where it would have to wait."""
        try:
            return self._admit(key, policy, rpc, peer, now=True)
        except HashmatchError as exc:
            self.metrics.auth_refused(exc.code.value)
            self.calls.refused(rpc, exc)
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def admit(self, key: str | None, policy: Policy | None, rpc: str, peer: str = "") -> Principal:
        """The caller, or the refusal (audited and counted). `peer` is the caller's
        address as the face has it ("ipv4:127.0.0.1:5000", "127.0.0.1"). Blocking: a store
        read, and scrypt on a key's first use."""
        try:
            return self._admit(key, policy, rpc, peer)
        except HashmatchError as exc:
            self.metrics.auth_refused(exc.code.value)
            self.calls.refused(rpc, exc)
            raise

    @overload
    def _admit(self, key: str | None, policy: Policy | None, rpc: str, peer: str) -> Principal: ...
    @overload
    def _admit(
        self, key: str | None, policy: Policy | None, rpc: str, peer: str, now: bool
    ) -> Principal | None: ...
    def _admit(
        self, key: str | None, policy: Policy | None, rpc: str, peer: str, now: bool = False
    ) -> Principal | None:
        if policy is None:  # a method nobody wrote a policy for is nobody's
            raise PermissionDenied("unknown method")
        if policy is Open.PUBLIC:  # any key sent is ignored
            if now:
                return None  # rare calls (ApplyTenant): not worth a second path
            self.limits.check_public()
            return ANONYMOUS
        if now:
            quick = self.tenancy.authenticate_now(key)
            if quick is None:
                return None
            principal = quick
        else:
            principal = self.tenancy.authenticate(key, peer_host(peer))
        if principal.open and not is_loopback(peer):
            # No key exists yet: every caller would be the operator. Only this machine.
            raise PermissionDenied(
                "this server has no API keys yet and answers only local callers: create"
                " the first key with `hashmatch admin bootstrap`"
            )
        if isinstance(policy, Role):
            principal.require(policy)
        if not self.limits.check_rate(principal, wait=not now):
            return None
        self.metrics.tenant_request(principal.tenant_id, rpc)
        return principal


def peer_host(peer: str) -> str:
    """The host of a face's peer address: "ipv4:1.2.3.4:port", "ipv6:[::1]:port",
    "unix:...", or a bare host."""
    if peer.startswith("unix:"):
        return "unix"
    host = peer.removeprefix("ipv4:").removeprefix("ipv6:")
    if host.startswith("["):
        return host[1 : host.find("]")]
    if peer.startswith("ipv4:") or host.count(":") == 1:
        return host.rsplit(":", 1)[0]
    return host


def is_loopback(peer: str) -> bool:
    """Whether a face's peer address is this machine."""
    host = peer_host(peer)
    if host in ("unix", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
