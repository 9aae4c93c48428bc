import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos.gantry.v1 import common_pb2 as _common_pb2
from protos.gantry.v1 import control_pb2 as _control_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscribeRequest(_message.Message):
    __slots__ = ("since_event_id", "builders", "kinds", "buildset_id", "worker")
    SINCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    BUILDERS_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    since_event_id: int
    builders: _containers.RepeatedScalarFieldContainer[str]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    buildset_id: int
    worker: str
    def __init__(self, since_event_id: _Optional[int] = ..., builders: _Optional[_Iterable[str]] = ..., kinds: _Optional[_Iterable[str]] = ..., buildset_id: _Optional[int] = ..., worker: _Optional[str] = ...) -> None: ...

class WatchBuildRequest(_message.Message):
    __slots__ = ("builder", "number")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    builder: str
    number: int
    def __init__(self, builder: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class BuildUpdate(_message.Message):
    __slots__ = ("event", "build", "eta")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    event: Event
    build: _control_pb2.Build
    eta: _timestamp_pb2.Timestamp
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ..., build: _Optional[_Union[_control_pb2.Build, _Mapping]] = ..., eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "kind", "at", "builder", "build_number", "buildset_id", "step_number", "step_name", "result", "worker", "details_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    BUILD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: str
    at: _timestamp_pb2.Timestamp
    builder: str
    build_number: int
    buildset_id: int
    step_number: int
    step_name: str
    result: _common_pb2.Result
    worker: str
    details_json: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., builder: _Optional[str] = ..., build_number: _Optional[int] = ..., buildset_id: _Optional[int] = ..., step_number: _Optional[int] = ..., step_name: _Optional[str] = ..., result: _Optional[_Union[_common_pb2.Result, str]] = ..., worker: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...
