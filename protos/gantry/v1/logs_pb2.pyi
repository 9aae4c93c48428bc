from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALL: _ClassVar[Channel]
    STDOUT: _ClassVar[Channel]
    STDERR: _ClassVar[Channel]
    HEADER: _ClassVar[Channel]
ALL: Channel
STDOUT: Channel
STDERR: Channel
HEADER: Channel

class ReadLogRequest(_message.Message):
    __slots__ = ("builder", "build_number", "step", "log", "offset", "limit", "channel")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    BUILD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    builder: str
    build_number: int
    step: str
    log: str
    offset: int
    limit: int
    channel: Channel
    def __init__(self, builder: _Optional[str] = ..., build_number: _Optional[int] = ..., step: _Optional[str] = ..., log: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ..., channel: _Optional[_Union[Channel, str]] = ...) -> None: ...

class LogData(_message.Message):
    __slots__ = ("data", "offset", "eof", "segments", "times")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    eof: bool
    segments: _containers.RepeatedCompositeFieldContainer[LogSegment]
    times: _containers.RepeatedCompositeFieldContainer[LogTimeMark]
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., eof: _Optional[bool] = ..., segments: _Optional[_Iterable[_Union[LogSegment, _Mapping]]] = ..., times: _Optional[_Iterable[_Union[LogTimeMark, _Mapping]]] = ...) -> None: ...

class LogTimeMark(_message.Message):
    __slots__ = ("offset", "unix_ms")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    offset: int
    unix_ms: int
    def __init__(self, offset: _Optional[int] = ..., unix_ms: _Optional[int] = ...) -> None: ...

class LogSegment(_message.Message):
    __slots__ = ("channel", "data")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    data: bytes
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., data: _Optional[bytes] = ...) -> None: ...
