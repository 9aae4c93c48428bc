from protos.gantry.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitTryRequest(_message.Message):
    __slots__ = ("builders", "repository", "branch", "revision", "project", "codebase", "patch", "author", "comment", "properties", "scheduler")
    BUILDERS_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CODEBASE_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    builders: _containers.RepeatedScalarFieldContainer[str]
    repository: str
    branch: str
    revision: str
    project: str
    codebase: str
    patch: bytes
    author: str
    comment: str
    properties: _containers.RepeatedCompositeFieldContainer[_common_pb2.Property]
    scheduler: str
    def __init__(self, builders: _Optional[_Iterable[str]] = ..., repository: _Optional[str] = ..., branch: _Optional[str] = ..., revision: _Optional[str] = ..., project: _Optional[str] = ..., codebase: _Optional[str] = ..., patch: _Optional[bytes] = ..., author: _Optional[str] = ..., comment: _Optional[str] = ..., properties: _Optional[_Iterable[_Union[_common_pb2.Property, _Mapping]]] = ..., scheduler: _Optional[str] = ...) -> None: ...

class SubmitTryResponse(_message.Message):
    __slots__ = ("buildset_id", "build_request_ids", "scheduler")
    class BuildRequestIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    buildset_id: int
    build_request_ids: _containers.ScalarMap[str, int]
    scheduler: str
    def __init__(self, buildset_id: _Optional[int] = ..., build_request_ids: _Optional[_Mapping[str, int]] = ..., scheduler: _Optional[str] = ...) -> None: ...
