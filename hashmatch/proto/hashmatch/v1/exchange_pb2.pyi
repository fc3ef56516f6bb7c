from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExchangeStatus(_message.Message):
    __slots__ = ("last_run_at", "last_success_at", "last_error", "last_error_at", "upstream_time", "added", "removed", "skipped", "errors", "feedback_pending")
    LAST_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_AT_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_TIME_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_PENDING_FIELD_NUMBER: _ClassVar[int]
    last_run_at: str
    last_success_at: str
    last_error: str
    last_error_at: str
    upstream_time: float
    added: int
    removed: int
    skipped: int
    errors: int
    feedback_pending: int
    def __init__(self, last_run_at: _Optional[str] = ..., last_success_at: _Optional[str] = ..., last_error: _Optional[str] = ..., last_error_at: _Optional[str] = ..., upstream_time: _Optional[float] = ..., added: _Optional[int] = ..., removed: _Optional[int] = ..., skipped: _Optional[int] = ..., errors: _Optional[int] = ..., feedback_pending: _Optional[int] = ...) -> None: ...

class Exchange(_message.Message):
    __slots__ = ("name", "type", "bank", "environment", "url", "credentials_env", "privacy_groups", "feedback_upstream", "paused", "created_at", "status", "status_text")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BANK_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_ENV_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_GROUPS_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_TEXT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    bank: str
    environment: str
    url: str
    credentials_env: _containers.RepeatedScalarFieldContainer[str]
    privacy_groups: _containers.RepeatedScalarFieldContainer[str]
    feedback_upstream: bool
    paused: bool
    created_at: str
    status: ExchangeStatus
    status_text: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., bank: _Optional[str] = ..., environment: _Optional[str] = ..., url: _Optional[str] = ..., credentials_env: _Optional[_Iterable[str]] = ..., privacy_groups: _Optional[_Iterable[str]] = ..., feedback_upstream: _Optional[bool] = ..., paused: _Optional[bool] = ..., created_at: _Optional[str] = ..., status: _Optional[_Union[ExchangeStatus, _Mapping]] = ..., status_text: _Optional[str] = ...) -> None: ...

class AddExchangeRequest(_message.Message):
    __slots__ = ("name", "type", "bank", "environment", "url", "credentials_env", "privacy_groups", "feedback_upstream")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BANK_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_ENV_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_GROUPS_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_UPSTREAM_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    bank: str
    environment: str
    url: str
    credentials_env: _containers.RepeatedScalarFieldContainer[str]
    privacy_groups: _containers.RepeatedScalarFieldContainer[str]
    feedback_upstream: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., bank: _Optional[str] = ..., environment: _Optional[str] = ..., url: _Optional[str] = ..., credentials_env: _Optional[_Iterable[str]] = ..., privacy_groups: _Optional[_Iterable[str]] = ..., feedback_upstream: _Optional[bool] = ...) -> None: ...

class ListExchangesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListExchangesResponse(_message.Message):
    __slots__ = ("exchanges",)
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    exchanges: _containers.RepeatedCompositeFieldContainer[Exchange]
    def __init__(self, exchanges: _Optional[_Iterable[_Union[Exchange, _Mapping]]] = ...) -> None: ...

class GetExchangeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SyncExchangeRequest(_message.Message):
    __slots__ = ("name", "full")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    name: str
    full: bool
    def __init__(self, name: _Optional[str] = ..., full: _Optional[bool] = ...) -> None: ...

class SyncReport(_message.Message):
    __slots__ = ("exchange", "pages", "added", "revived", "updated", "unchanged", "removed", "skipped", "feedback_sent", "seconds", "error", "busy", "feedback_error")
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REVIVED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_SENT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BUSY_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_ERROR_FIELD_NUMBER: _ClassVar[int]
    exchange: str
    pages: int
    added: int
    revived: int
    updated: int
    unchanged: int
    removed: int
    skipped: int
    feedback_sent: int
    seconds: float
    error: str
    busy: bool
    feedback_error: str
    def __init__(self, exchange: _Optional[str] = ..., pages: _Optional[int] = ..., added: _Optional[int] = ..., revived: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., removed: _Optional[int] = ..., skipped: _Optional[int] = ..., feedback_sent: _Optional[int] = ..., seconds: _Optional[float] = ..., error: _Optional[str] = ..., busy: _Optional[bool] = ..., feedback_error: _Optional[str] = ...) -> None: ...

class SetExchangePausedRequest(_message.Message):
    __slots__ = ("name", "paused")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    paused: bool
    def __init__(self, name: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class RemoveExchangeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveExchangeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
