from protos.gantry.v1 import control_pb2 as _control_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JanitorRequest(_message.Message):
    __slots__ = ("dry_run",)
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    def __init__(self, dry_run: _Optional[bool] = ...) -> None: ...

class JanitorResponse(_message.Message):
    __slots__ = ("counts", "batches", "reclaimed", "dry_run")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[JanitorCount]
    batches: int
    reclaimed: str
    dry_run: bool
    def __init__(self, counts: _Optional[_Iterable[_Union[JanitorCount, _Mapping]]] = ..., batches: _Optional[int] = ..., reclaimed: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class JanitorCount(_message.Message):
    __slots__ = ("builder", "kind", "count")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    builder: str
    kind: str
    count: int
    def __init__(self, builder: _Optional[str] = ..., kind: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ReconfigRequest(_message.Message):
    __slots__ = ("dry_run",)
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    def __init__(self, dry_run: _Optional[bool] = ...) -> None: ...

class ReconfigResponse(_message.Message):
    __slots__ = ("config_file", "changes", "notes", "applied")
    CONFIG_FILE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    config_file: str
    changes: _containers.RepeatedCompositeFieldContainer[ConfigChange]
    notes: _containers.RepeatedScalarFieldContainer[str]
    applied: bool
    def __init__(self, config_file: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[ConfigChange, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ..., applied: _Optional[bool] = ...) -> None: ...

class ConfigChange(_message.Message):
    __slots__ = ("kind", "change", "names")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    change: str
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[str] = ..., change: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkerHoldRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
