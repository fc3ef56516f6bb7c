from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ItemCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OK: _ClassVar[ItemCode]
    BAD_PARAMETER: _ClassVar[ItemCode]
    NOT_AN_IMAGE: _ClassVar[ItemCode]
    CORRUPT_IMAGE: _ClassVar[ItemCode]
    SIZE_OUT_OF_RANGE: _ClassVar[ItemCode]
    TOO_LARGE: _ClassVar[ItemCode]
    INTERNAL: _ClassVar[ItemCode]
    RESOURCE_EXHAUSTED: _ClassVar[ItemCode]
    DEADLINE_EXCEEDED: _ClassVar[ItemCode]
    UNREADABLE: _ClassVar[ItemCode]
    NOT_FOUND: _ClassVar[ItemCode]
    ALREADY_EXISTS: _ClassVar[ItemCode]
    UNAUTHENTICATED: _ClassVar[ItemCode]
    PERMISSION_DENIED: _ClassVar[ItemCode]
    UNAVAILABLE: _ClassVar[ItemCode]

class SignalType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_TYPE_UNSPECIFIED: _ClassVar[SignalType]
    PDQ: _ClassVar[SignalType]
    MD5: _ClassVar[SignalType]
    SHA256: _ClassVar[SignalType]
OK: ItemCode
BAD_PARAMETER: ItemCode
NOT_AN_IMAGE: ItemCode
CORRUPT_IMAGE: ItemCode
SIZE_OUT_OF_RANGE: ItemCode
TOO_LARGE: ItemCode
INTERNAL: ItemCode
RESOURCE_EXHAUSTED: ItemCode
DEADLINE_EXCEEDED: ItemCode
UNREADABLE: ItemCode
NOT_FOUND: ItemCode
ALREADY_EXISTS: ItemCode
UNAUTHENTICATED: ItemCode
PERMISSION_DENIED: ItemCode
UNAVAILABLE: ItemCode
SIGNAL_TYPE_UNSPECIFIED: SignalType
PDQ: SignalType
MD5: SignalType
SHA256: SignalType

class ItemStatus(_message.Message):
    __slots__ = ("code", "message", "photodna_code")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PHOTODNA_CODE_FIELD_NUMBER: _ClassVar[int]
    code: ItemCode
    message: str
    photodna_code: int
    def __init__(self, code: _Optional[_Union[ItemCode, str]] = ..., message: _Optional[str] = ..., photodna_code: _Optional[int] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("content_id", "data")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    data: bytes
    def __init__(self, content_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class MatchOptions(_message.Message):
    __slots__ = ("banks", "max_distance", "dihedral", "omit_signatures", "test")
    BANKS_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    OMIT_SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    banks: _containers.RepeatedScalarFieldContainer[str]
    max_distance: int
    dihedral: bool
    omit_signatures: bool
    test: bool
    def __init__(self, banks: _Optional[_Iterable[str]] = ..., max_distance: _Optional[int] = ..., dihedral: _Optional[bool] = ..., omit_signatures: _Optional[bool] = ..., test: _Optional[bool] = ...) -> None: ...

class Signatures(_message.Message):
    __slots__ = ("pdq", "quality", "md5", "sha256", "pdq_dihedral", "width", "height")
    PDQ_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PDQ_DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    pdq: bytes
    quality: int
    md5: bytes
    sha256: bytes
    pdq_dihedral: _containers.RepeatedScalarFieldContainer[bytes]
    width: int
    height: int
    def __init__(self, pdq: _Optional[bytes] = ..., quality: _Optional[int] = ..., md5: _Optional[bytes] = ..., sha256: _Optional[bytes] = ..., pdq_dihedral: _Optional[_Iterable[bytes]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Match(_message.Message):
    __slots__ = ("bank", "entry_id", "label", "distance", "signal_type", "source", "variant", "value", "suppressed_by")
    BANK_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_BY_FIELD_NUMBER: _ClassVar[int]
    bank: str
    entry_id: int
    label: str
    distance: int
    signal_type: SignalType
    source: str
    variant: str
    value: bytes
    suppressed_by: Suppressor
    def __init__(self, bank: _Optional[str] = ..., entry_id: _Optional[int] = ..., label: _Optional[str] = ..., distance: _Optional[int] = ..., signal_type: _Optional[_Union[SignalType, str]] = ..., source: _Optional[str] = ..., variant: _Optional[str] = ..., value: _Optional[bytes] = ..., suppressed_by: _Optional[_Union[Suppressor, _Mapping]] = ...) -> None: ...

class Suppressor(_message.Message):
    __slots__ = ("bank", "entry_id", "distance")
    BANK_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    bank: str
    entry_id: int
    distance: int
    def __init__(self, bank: _Optional[str] = ..., entry_id: _Optional[int] = ..., distance: _Optional[int] = ...) -> None: ...

class ItemResult(_message.Message):
    __slots__ = ("content_id", "status", "signatures", "is_match", "matches", "tracking_id", "matches_left_out")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    IS_MATCH_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHES_LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    status: ItemStatus
    signatures: Signatures
    is_match: bool
    matches: _containers.RepeatedCompositeFieldContainer[Match]
    tracking_id: str
    matches_left_out: int
    def __init__(self, content_id: _Optional[str] = ..., status: _Optional[_Union[ItemStatus, _Mapping]] = ..., signatures: _Optional[_Union[Signatures, _Mapping]] = ..., is_match: _Optional[bool] = ..., matches: _Optional[_Iterable[_Union[Match, _Mapping]]] = ..., tracking_id: _Optional[str] = ..., matches_left_out: _Optional[int] = ...) -> None: ...

class MatchImagesRequest(_message.Message):
    __slots__ = ("images", "options")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    options: MatchOptions
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., options: _Optional[_Union[MatchOptions, _Mapping]] = ...) -> None: ...

class MatchImagesResponse(_message.Message):
    __slots__ = ("results", "tracking_id")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ItemResult]
    tracking_id: str
    def __init__(self, results: _Optional[_Iterable[_Union[ItemResult, _Mapping]]] = ..., tracking_id: _Optional[str] = ...) -> None: ...

class MatchStreamRequest(_message.Message):
    __slots__ = ("image", "options", "images")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    image: Image
    options: MatchOptions
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, image: _Optional[_Union[Image, _Mapping]] = ..., options: _Optional[_Union[MatchOptions, _Mapping]] = ..., images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class MatchStreamResponse(_message.Message):
    __slots__ = ("result", "results")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    result: ItemResult
    results: _containers.RepeatedCompositeFieldContainer[ItemResult]
    def __init__(self, result: _Optional[_Union[ItemResult, _Mapping]] = ..., results: _Optional[_Iterable[_Union[ItemResult, _Mapping]]] = ...) -> None: ...

class HashQuery(_message.Message):
    __slots__ = ("content_id", "signal_type", "value", "pdq_dihedral", "quality")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PDQ_DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    signal_type: SignalType
    value: bytes
    pdq_dihedral: _containers.RepeatedScalarFieldContainer[bytes]
    quality: int
    def __init__(self, content_id: _Optional[str] = ..., signal_type: _Optional[_Union[SignalType, str]] = ..., value: _Optional[bytes] = ..., pdq_dihedral: _Optional[_Iterable[bytes]] = ..., quality: _Optional[int] = ...) -> None: ...

class MatchHashesRequest(_message.Message):
    __slots__ = ("hashes", "options")
    HASHES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedCompositeFieldContainer[HashQuery]
    options: MatchOptions
    def __init__(self, hashes: _Optional[_Iterable[_Union[HashQuery, _Mapping]]] = ..., options: _Optional[_Union[MatchOptions, _Mapping]] = ...) -> None: ...

class MatchHashesResponse(_message.Message):
    __slots__ = ("results", "tracking_id")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ItemResult]
    tracking_id: str
    def __init__(self, results: _Optional[_Iterable[_Union[ItemResult, _Mapping]]] = ..., tracking_id: _Optional[str] = ...) -> None: ...

class HashImagesRequest(_message.Message):
    __slots__ = ("images", "dihedral")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    DIHEDRAL_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    dihedral: bool
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., dihedral: _Optional[bool] = ...) -> None: ...

class HashImagesResponse(_message.Message):
    __slots__ = ("results", "tracking_id")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ItemResult]
    tracking_id: str
    def __init__(self, results: _Optional[_Iterable[_Union[ItemResult, _Mapping]]] = ..., tracking_id: _Optional[str] = ...) -> None: ...
