"""Object-level authorisation of bank operations.

A tenant sees its own banks, banks shared with it and public banks. A bank it cannot see
is answered exactly as a missing one (NotFound, the store's own message), so probing by
name learns nothing. Seen but not owned: read-only (PermissionDenied on changes, since its
existence is no secret to this caller). The operator tenant owns the installation's banks
(owner ""), not tenants' private ones. Bank names of a tenant start with "<tenant>:", so
one tenant's names never collide with (and so never reveal) another's.
"""

from __future__ import annotations

import dataclasses

from hashmatch.banks.model import (
    DEFAULT_PDQ_THRESHOLD,
    Bank,
    BankSettings,
    DistancePolicy,
    Visibility,
)
from hashmatch.banks.store import BankStore
from hashmatch.errors import BadParameter, NotFound, PermissionDenied
from hashmatch.tenancy.model import Principal


def missing(name: str) -> NotFound:
    """The answer for a bank that does not exist, word for word the store's."""
    return NotFound(f"no bank named {name!r}")


class BankAccess:
    def __init__(
        self,
        store: BankStore,
        max_pdq_threshold: int = DEFAULT_PDQ_THRESHOLD,
        distance_policy: DistancePolicy = DistancePolicy.BUCKETED,
    ) -> None:
        self.store = store
        self.max_pdq_threshold = max_pdq_threshold
        self.distance_policy = distance_policy  # of banks created without one

    def readable(self, caller: Principal, name: str) -> Bank:
        bank = self.store.get_bank(name)
        if caller.open or bank.visible_to(caller.bank_owner):
            return bank
        raise missing(name)

    def owned(self, caller: Principal, name: str) -> Bank:
        bank = self.readable(caller, name)
        if caller.open or bank.owner == caller.bank_owner:
            return bank
        raise PermissionDenied(
            f"bank {name!r}: only its owner reads or changes its entries and settings; this"
            " tenant matches against it"
        )

    def visible(self, caller: Principal, banks: list[Bank]) -> list[Bank]:
        return [b for b in banks if caller.open or b.visible_to(caller.bank_owner)]

    def settings_for(
        self, caller: Principal, name: str, settings: BankSettings, creating: bool
    ) -> BankSettings:
        """The settings a caller may write: owner pinned to the caller, public only for
        the operator, names in the caller's namespace, no threshold over the
        installation's maximum."""
        t = settings.pdq_threshold
        if t is not None and t > self.max_pdq_threshold:
            raise BadParameter(
                f"pdq threshold {t} is over this installation's maximum of"
                f" {self.max_pdq_threshold} bits ([banks] max_pdq_threshold)"
            )
        if creating and settings.distance_policy is None:
            settings = dataclasses.replace(settings, distance_policy=self.distance_policy)
        if caller.open:
            return settings
        if settings.owner is not None and settings.owner != caller.bank_owner:
            raise PermissionDenied(
                "a bank's owner is the tenant whose key created it, and cannot be set"
            )
        if settings.visibility is Visibility.PUBLIC and not caller.is_operator:
            raise PermissionDenied("only the operator makes banks public")
        if creating:
            prefix, sep, _ = name.partition(":")
            if caller.is_operator and sep:
                raise BadParameter("the operator's bank names have no ':' (tenants' do)")
            if not caller.is_operator and (not sep or prefix != caller.tenant_id):
                raise BadParameter(f"a tenant's bank names start with '{caller.tenant_id}:'")
            return dataclasses.replace(settings, owner=caller.bank_owner)
        return dataclasses.replace(settings, owner=None)
