from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TenantState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_STATE_UNSPECIFIED: _ClassVar[TenantState]
    APPLIED: _ClassVar[TenantState]
    APPROVED: _ClassVar[TenantState]
    REJECTED: _ClassVar[TenantState]
    SUSPENDED: _ClassVar[TenantState]

class TenantAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_ACTION_UNSPECIFIED: _ClassVar[TenantAction]
    APPROVE: _ClassVar[TenantAction]
    REJECT: _ClassVar[TenantAction]
    SUSPEND: _ClassVar[TenantAction]
    REINSTATE: _ClassVar[TenantAction]
TENANT_STATE_UNSPECIFIED: TenantState
APPLIED: TenantState
APPROVED: TenantState
REJECTED: TenantState
SUSPENDED: TenantState
TENANT_ACTION_UNSPECIFIED: TenantAction
APPROVE: TenantAction
REJECT: TenantAction
SUSPEND: TenantAction
REINSTATE: TenantAction

class Tenant(_message.Message):
    __slots__ = ("id", "organisation", "contact", "intended_use", "state", "reason", "applied_at", "updated_at", "rate_per_second", "monthly_items")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    INTENDED_USE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_ITEMS_FIELD_NUMBER: _ClassVar[int]
    id: str
    organisation: str
    contact: str
    intended_use: str
    state: TenantState
    reason: str
    applied_at: str
    updated_at: str
    rate_per_second: float
    monthly_items: int
    def __init__(self, id: _Optional[str] = ..., organisation: _Optional[str] = ..., contact: _Optional[str] = ..., intended_use: _Optional[str] = ..., state: _Optional[_Union[TenantState, str]] = ..., reason: _Optional[str] = ..., applied_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., rate_per_second: _Optional[float] = ..., monthly_items: _Optional[int] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "tenant_id", "name", "roles", "created_at", "expires_at", "revoked_at", "last_used_at", "replaced_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant_id: str
    name: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    created_at: str
    expires_at: str
    revoked_at: str
    last_used_at: str
    replaced_by: str
    def __init__(self, id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., created_at: _Optional[str] = ..., expires_at: _Optional[str] = ..., revoked_at: _Optional[str] = ..., last_used_at: _Optional[str] = ..., replaced_by: _Optional[str] = ...) -> None: ...

class ApplyTenantRequest(_message.Message):
    __slots__ = ("tenant_id", "organisation", "contact", "intended_use")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    INTENDED_USE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    organisation: str
    contact: str
    intended_use: str
    def __init__(self, tenant_id: _Optional[str] = ..., organisation: _Optional[str] = ..., contact: _Optional[str] = ..., intended_use: _Optional[str] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: TenantState
    def __init__(self, state: _Optional[_Union[TenantState, str]] = ...) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants",)
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[Tenant]
    def __init__(self, tenants: _Optional[_Iterable[_Union[Tenant, _Mapping]]] = ...) -> None: ...

class SetTenantStateRequest(_message.Message):
    __slots__ = ("tenant_id", "action", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    action: TenantAction
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., action: _Optional[_Union[TenantAction, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("tenant_id", "roles", "name")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    name: str
    def __init__(self, tenant_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., name: _Optional[str] = ...) -> None: ...

class CreatedKey(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("key_id", "overlap_seconds")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    overlap_seconds: int
    def __init__(self, key_id: _Optional[str] = ..., overlap_seconds: _Optional[int] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("tenant_id", "key_id", "roles")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    key_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("tenant_id", "start", "end")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    start: str
    end: str
    def __init__(self, tenant_id: _Optional[str] = ..., start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class TenantUsage(_message.Message):
    __slots__ = ("tenant_id", "calls", "images", "hashes", "matched_items", "matches_by_bank", "reports_filed", "errors")
    class MatchesByBankEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    MATCHED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MATCHES_BY_BANK_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    calls: int
    images: int
    hashes: int
    matched_items: int
    matches_by_bank: _containers.ScalarMap[str, int]
    reports_filed: int
    errors: int
    def __init__(self, tenant_id: _Optional[str] = ..., calls: _Optional[int] = ..., images: _Optional[int] = ..., hashes: _Optional[int] = ..., matched_items: _Optional[int] = ..., matches_by_bank: _Optional[_Mapping[str, int]] = ..., reports_filed: _Optional[int] = ..., errors: _Optional[int] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("usage",)
    USAGE_FIELD_NUMBER: _ClassVar[int]
    usage: _containers.RepeatedCompositeFieldContainer[TenantUsage]
    def __init__(self, usage: _Optional[_Iterable[_Union[TenantUsage, _Mapping]]] = ...) -> None: ...
