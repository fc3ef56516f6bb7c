from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportFile(_message.Message):
    __slots__ = ("name", "content", "classification", "viewed_by_esp", "publicly_available", "upload_ip", "upload_time", "match_details")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    VIEWED_BY_ESP_FIELD_NUMBER: _ClassVar[int]
    PUBLICLY_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_IP_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    MATCH_DETAILS_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    classification: str
    viewed_by_esp: bool
    publicly_available: bool
    upload_ip: str
    upload_time: str
    match_details: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ..., classification: _Optional[str] = ..., viewed_by_esp: _Optional[bool] = ..., publicly_available: _Optional[bool] = ..., upload_ip: _Optional[str] = ..., upload_time: _Optional[str] = ..., match_details: _Optional[str] = ...) -> None: ...

class FileReportRequest(_message.Message):
    __slots__ = ("idempotency_key", "incident_type", "incident_time", "reporter_email", "reporter_first_name", "reporter_last_name", "org_name", "reportee_name", "reportee_ip", "platform", "additional_info", "files", "test")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_TIME_FIELD_NUMBER: _ClassVar[int]
    REPORTER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    REPORTER_LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_NAME_FIELD_NUMBER: _ClassVar[int]
    REPORTEE_NAME_FIELD_NUMBER: _ClassVar[int]
    REPORTEE_IP_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_INFO_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    incident_type: str
    incident_time: str
    reporter_email: str
    reporter_first_name: str
    reporter_last_name: str
    org_name: str
    reportee_name: str
    reportee_ip: str
    platform: str
    additional_info: str
    files: _containers.RepeatedCompositeFieldContainer[ReportFile]
    test: bool
    def __init__(self, idempotency_key: _Optional[str] = ..., incident_type: _Optional[str] = ..., incident_time: _Optional[str] = ..., reporter_email: _Optional[str] = ..., reporter_first_name: _Optional[str] = ..., reporter_last_name: _Optional[str] = ..., org_name: _Optional[str] = ..., reportee_name: _Optional[str] = ..., reportee_ip: _Optional[str] = ..., platform: _Optional[str] = ..., additional_info: _Optional[str] = ..., files: _Optional[_Iterable[_Union[ReportFile, _Mapping]]] = ..., test: _Optional[bool] = ...) -> None: ...

class ReportState(_message.Message):
    __slots__ = ("id", "status", "reason", "endpoint_report_id", "attempts", "test", "created_at", "updated_at", "file_names")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAMES_FIELD_NUMBER: _ClassVar[int]
    id: int
    status: str
    reason: str
    endpoint_report_id: str
    attempts: int
    test: bool
    created_at: str
    updated_at: str
    file_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[int] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., endpoint_report_id: _Optional[str] = ..., attempts: _Optional[int] = ..., test: _Optional[bool] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., file_names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetReportRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class ListReportsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListReportsResponse(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[ReportState]
    def __init__(self, reports: _Optional[_Iterable[_Union[ReportState, _Mapping]]] = ...) -> None: ...

class RetractReportRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...
