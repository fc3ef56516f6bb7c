from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VideoHeader(_message.Message):
    __slots__ = ("content_id", "seconds_per_hash", "options", "return_features")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_HASH_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RETURN_FEATURES_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    seconds_per_hash: float
    options: VideoMatchOptions
    return_features: bool
    def __init__(self, content_id: _Optional[str] = ..., seconds_per_hash: _Optional[float] = ..., options: _Optional[_Union[VideoMatchOptions, _Mapping]] = ..., return_features: _Optional[bool] = ...) -> None: ...

class VideoChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: VideoHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[VideoHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class VideoMatchOptions(_message.Message):
    __slots__ = ("banks", "max_distance", "min_quality", "query_match_percent", "target_match_percent")
    BANKS_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    MIN_QUALITY_FIELD_NUMBER: _ClassVar[int]
    QUERY_MATCH_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_MATCH_PERCENT_FIELD_NUMBER: _ClassVar[int]
    banks: _containers.RepeatedScalarFieldContainer[str]
    max_distance: int
    min_quality: int
    query_match_percent: float
    target_match_percent: float
    def __init__(self, banks: _Optional[_Iterable[str]] = ..., max_distance: _Optional[int] = ..., min_quality: _Optional[int] = ..., query_match_percent: _Optional[float] = ..., target_match_percent: _Optional[float] = ...) -> None: ...

class VideoFeature(_message.Message):
    __slots__ = ("frame_number", "timestamp", "pdq", "quality")
    FRAME_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PDQ_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    frame_number: int
    timestamp: float
    pdq: bytes
    quality: int
    def __init__(self, frame_number: _Optional[int] = ..., timestamp: _Optional[float] = ..., pdq: _Optional[bytes] = ..., quality: _Optional[int] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: float
    end: float
    def __init__(self, start: _Optional[float] = ..., end: _Optional[float] = ...) -> None: ...

class VideoMatch(_message.Message):
    __slots__ = ("bank", "video_id", "label", "external_id", "query_match_percent", "target_match_percent", "query_ranges", "target_ranges")
    BANK_FIELD_NUMBER: _ClassVar[int]
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_MATCH_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_MATCH_PERCENT_FIELD_NUMBER: _ClassVar[int]
    QUERY_RANGES_FIELD_NUMBER: _ClassVar[int]
    TARGET_RANGES_FIELD_NUMBER: _ClassVar[int]
    bank: str
    video_id: int
    label: str
    external_id: str
    query_match_percent: float
    target_match_percent: float
    query_ranges: _containers.RepeatedCompositeFieldContainer[TimeRange]
    target_ranges: _containers.RepeatedCompositeFieldContainer[TimeRange]
    def __init__(self, bank: _Optional[str] = ..., video_id: _Optional[int] = ..., label: _Optional[str] = ..., external_id: _Optional[str] = ..., query_match_percent: _Optional[float] = ..., target_match_percent: _Optional[float] = ..., query_ranges: _Optional[_Iterable[_Union[TimeRange, _Mapping]]] = ..., target_ranges: _Optional[_Iterable[_Union[TimeRange, _Mapping]]] = ...) -> None: ...

class HashVideoResponse(_message.Message):
    __slots__ = ("content_id", "features")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    features: _containers.RepeatedCompositeFieldContainer[VideoFeature]
    def __init__(self, content_id: _Optional[str] = ..., features: _Optional[_Iterable[_Union[VideoFeature, _Mapping]]] = ...) -> None: ...

class VideoMatchResponse(_message.Message):
    __slots__ = ("content_id", "is_match", "matches", "features", "tracking_id")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    IS_MATCH_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    is_match: bool
    matches: _containers.RepeatedCompositeFieldContainer[VideoMatch]
    features: _containers.RepeatedCompositeFieldContainer[VideoFeature]
    tracking_id: str
    def __init__(self, content_id: _Optional[str] = ..., is_match: _Optional[bool] = ..., matches: _Optional[_Iterable[_Union[VideoMatch, _Mapping]]] = ..., features: _Optional[_Iterable[_Union[VideoFeature, _Mapping]]] = ..., tracking_id: _Optional[str] = ...) -> None: ...

class MatchVideoHashesRequest(_message.Message):
    __slots__ = ("content_id", "features", "options")
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    content_id: str
    features: _containers.RepeatedCompositeFieldContainer[VideoFeature]
    options: VideoMatchOptions
    def __init__(self, content_id: _Optional[str] = ..., features: _Optional[_Iterable[_Union[VideoFeature, _Mapping]]] = ..., options: _Optional[_Union[VideoMatchOptions, _Mapping]] = ...) -> None: ...
