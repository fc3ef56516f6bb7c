from . import match_pb2 as _match_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Visibility(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VISIBILITY_UNSPECIFIED: _ClassVar[Visibility]
    PRIVATE: _ClassVar[Visibility]
    SHARED: _ClassVar[Visibility]
    PUBLIC: _ClassVar[Visibility]

class BankKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BANK_KIND_UNSPECIFIED: _ClassVar[BankKind]
    BLOCK: _ClassVar[BankKind]
    ALLOW: _ClassVar[BankKind]

class ShareState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHARE_STATE_UNSPECIFIED: _ClassVar[ShareState]
    INVITED: _ClassVar[ShareState]
    ACCEPTED: _ClassVar[ShareState]

class DistancePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTANCE_POLICY_UNSPECIFIED: _ClassVar[DistancePolicy]
    EXACT: _ClassVar[DistancePolicy]
    BUCKETED: _ClassVar[DistancePolicy]
    HIDDEN: _ClassVar[DistancePolicy]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    CONFIRMED: _ClassVar[Verdict]
    FALSE_POSITIVE: _ClassVar[Verdict]
VISIBILITY_UNSPECIFIED: Visibility
PRIVATE: Visibility
SHARED: Visibility
PUBLIC: Visibility
BANK_KIND_UNSPECIFIED: BankKind
BLOCK: BankKind
ALLOW: BankKind
SHARE_STATE_UNSPECIFIED: ShareState
INVITED: ShareState
ACCEPTED: ShareState
DISTANCE_POLICY_UNSPECIFIED: DistancePolicy
EXACT: DistancePolicy
BUCKETED: DistancePolicy
HIDDEN: DistancePolicy
VERDICT_UNSPECIFIED: Verdict
CONFIRMED: Verdict
FALSE_POSITIVE: Verdict

class Bank(_message.Message):
    __slots__ = ("name", "owner", "visibility", "shared_with", "kind", "signal_types", "pdq_threshold", "min_quality", "enabled", "created_at", "updated_at", "counts", "accepted_by", "share_state", "distance_policy")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPES_FIELD_NUMBER: _ClassVar[int]
    PDQ_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_QUALITY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_BY_FIELD_NUMBER: _ClassVar[int]
    SHARE_STATE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_POLICY_FIELD_NUMBER: _ClassVar[int]
    name: str
    owner: str
    visibility: Visibility
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    kind: BankKind
    signal_types: _containers.RepeatedScalarFieldContainer[_match_pb2.SignalType]
    pdq_threshold: int
    min_quality: int
    enabled: bool
    created_at: str
    updated_at: str
    counts: _containers.ScalarMap[str, int]
    accepted_by: _containers.RepeatedScalarFieldContainer[str]
    share_state: ShareState
    distance_policy: DistancePolicy
    def __init__(self, name: _Optional[str] = ..., owner: _Optional[str] = ..., visibility: _Optional[_Union[Visibility, str]] = ..., shared_with: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[BankKind, str]] = ..., signal_types: _Optional[_Iterable[_Union[_match_pb2.SignalType, str]]] = ..., pdq_threshold: _Optional[int] = ..., min_quality: _Optional[int] = ..., enabled: _Optional[bool] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ..., accepted_by: _Optional[_Iterable[str]] = ..., share_state: _Optional[_Union[ShareState, str]] = ..., distance_policy: _Optional[_Union[DistancePolicy, str]] = ...) -> None: ...

class BankSettings(_message.Message):
    __slots__ = ("owner", "visibility", "set_shared_with", "shared_with", "kind", "signal_types", "pdq_threshold", "min_quality", "enabled", "distance_policy")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    SET_SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPES_FIELD_NUMBER: _ClassVar[int]
    PDQ_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_QUALITY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_POLICY_FIELD_NUMBER: _ClassVar[int]
    owner: str
    visibility: Visibility
    set_shared_with: bool
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    kind: BankKind
    signal_types: _containers.RepeatedScalarFieldContainer[_match_pb2.SignalType]
    pdq_threshold: int
    min_quality: int
    enabled: bool
    distance_policy: DistancePolicy
    def __init__(self, owner: _Optional[str] = ..., visibility: _Optional[_Union[Visibility, str]] = ..., set_shared_with: _Optional[bool] = ..., shared_with: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[BankKind, str]] = ..., signal_types: _Optional[_Iterable[_Union[_match_pb2.SignalType, str]]] = ..., pdq_threshold: _Optional[int] = ..., min_quality: _Optional[int] = ..., enabled: _Optional[bool] = ..., distance_policy: _Optional[_Union[DistancePolicy, str]] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("id", "signal_type", "value", "label", "external_id", "source", "added_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    signal_type: _match_pb2.SignalType
    value: bytes
    label: str
    external_id: str
    source: str
    added_at: str
    def __init__(self, id: _Optional[int] = ..., signal_type: _Optional[_Union[_match_pb2.SignalType, str]] = ..., value: _Optional[bytes] = ..., label: _Optional[str] = ..., external_id: _Optional[str] = ..., source: _Optional[str] = ..., added_at: _Optional[str] = ...) -> None: ...

class RowError(_message.Message):
    __slots__ = ("row", "code", "message")
    ROW_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    row: int
    code: str
    message: str
    def __init__(self, row: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class WriteReport(_message.Message):
    __slots__ = ("added", "revived", "updated", "unchanged", "removed", "errors", "duplicates", "error_count")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REVIVED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    added: int
    revived: int
    updated: int
    unchanged: int
    removed: int
    errors: _containers.RepeatedCompositeFieldContainer[RowError]
    duplicates: int
    error_count: int
    def __init__(self, added: _Optional[int] = ..., revived: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., removed: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RowError, _Mapping]]] = ..., duplicates: _Optional[int] = ..., error_count: _Optional[int] = ...) -> None: ...

class CreateBankRequest(_message.Message):
    __slots__ = ("name", "settings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    settings: BankSettings
    def __init__(self, name: _Optional[str] = ..., settings: _Optional[_Union[BankSettings, _Mapping]] = ...) -> None: ...

class GetBankRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListBanksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBanksResponse(_message.Message):
    __slots__ = ("banks",)
    BANKS_FIELD_NUMBER: _ClassVar[int]
    banks: _containers.RepeatedCompositeFieldContainer[Bank]
    def __init__(self, banks: _Optional[_Iterable[_Union[Bank, _Mapping]]] = ...) -> None: ...

class UpdateBankRequest(_message.Message):
    __slots__ = ("name", "settings")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    settings: BankSettings
    def __init__(self, name: _Optional[str] = ..., settings: _Optional[_Union[BankSettings, _Mapping]] = ...) -> None: ...

class DeleteBankRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteBankResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShareRequest(_message.Message):
    __slots__ = ("bank",)
    BANK_FIELD_NUMBER: _ClassVar[int]
    bank: str
    def __init__(self, bank: _Optional[str] = ...) -> None: ...

class AddEntriesRequest(_message.Message):
    __slots__ = ("bank", "entries")
    BANK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    bank: str
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    def __init__(self, bank: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ...) -> None: ...

class HashValue(_message.Message):
    __slots__ = ("signal_type", "value")
    SIGNAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    signal_type: _match_pb2.SignalType
    value: bytes
    def __init__(self, signal_type: _Optional[_Union[_match_pb2.SignalType, str]] = ..., value: _Optional[bytes] = ...) -> None: ...

class RemoveEntriesRequest(_message.Message):
    __slots__ = ("bank", "values")
    BANK_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    bank: str
    values: _containers.RepeatedCompositeFieldContainer[HashValue]
    def __init__(self, bank: _Optional[str] = ..., values: _Optional[_Iterable[_Union[HashValue, _Mapping]]] = ...) -> None: ...

class RemoveEntriesResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class ListEntriesRequest(_message.Message):
    __slots__ = ("bank", "after_id", "limit")
    BANK_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    bank: str
    after_id: int
    limit: int
    def __init__(self, bank: _Optional[str] = ..., after_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_after_id")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    next_after_id: int
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., next_after_id: _Optional[int] = ...) -> None: ...

class ImportChunk(_message.Message):
    __slots__ = ("bank", "format", "data")
    BANK_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    bank: str
    format: str
    data: bytes
    def __init__(self, bank: _Optional[str] = ..., format: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("bank", "format")
    BANK_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    bank: str
    format: str
    def __init__(self, bank: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("bank", "entry_id", "verdict", "note")
    BANK_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    bank: str
    entry_id: int
    verdict: Verdict
    note: str
    def __init__(self, bank: _Optional[str] = ..., entry_id: _Optional[int] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., note: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("allow_bank",)
    ALLOW_BANK_FIELD_NUMBER: _ClassVar[int]
    allow_bank: str
    def __init__(self, allow_bank: _Optional[str] = ...) -> None: ...
