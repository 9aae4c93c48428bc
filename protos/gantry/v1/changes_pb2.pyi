from protos.gantry.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitChangesRequest(_message.Message):
    __slots__ = ("changes", "idempotency_key")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[_common_pb2.Change]
    idempotency_key: str
    def __init__(self, changes: _Optional[_Iterable[_Union[_common_pb2.Change, _Mapping]]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SubmitChangesResponse(_message.Message):
    __slots__ = ("change_ids", "duplicate")
    CHANGE_IDS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    change_ids: _containers.RepeatedScalarFieldContainer[int]
    duplicate: bool
    def __init__(self, change_ids: _Optional[_Iterable[int]] = ..., duplicate: _Optional[bool] = ...) -> None: ...
