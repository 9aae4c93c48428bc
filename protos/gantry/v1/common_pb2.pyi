import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Result(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUCCESS: _ClassVar[Result]
    WARNINGS: _ClassVar[Result]
    FAILURE: _ClassVar[Result]
    SKIPPED: _ClassVar[Result]
    EXCEPTION: _ClassVar[Result]
    RETRY: _ClassVar[Result]
    CANCELLED: _ClassVar[Result]
SUCCESS: Result
WARNINGS: Result
FAILURE: Result
SKIPPED: Result
EXCEPTION: Result
RETRY: Result
CANCELLED: Result

class Property(_message.Message):
    __slots__ = ("name", "value_json", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_JSON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value_json: str
    source: str
    def __init__(self, name: _Optional[str] = ..., value_json: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class SourceStamp(_message.Message):
    __slots__ = ("repository", "branch", "revision", "project", "codebase")
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CODEBASE_FIELD_NUMBER: _ClassVar[int]
    repository: str
    branch: str
    revision: str
    project: str
    codebase: str
    def __init__(self, repository: _Optional[str] = ..., branch: _Optional[str] = ..., revision: _Optional[str] = ..., project: _Optional[str] = ..., codebase: _Optional[str] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("id", "author", "committer", "comments", "files", "revision", "branch", "repository", "project", "codebase", "category", "when", "properties", "revlink")
    ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    COMMITTER_FIELD_NUMBER: _ClassVar[int]
    COMMENTS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CODEBASE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    REVLINK_FIELD_NUMBER: _ClassVar[int]
    id: int
    author: str
    committer: str
    comments: str
    files: _containers.RepeatedScalarFieldContainer[str]
    revision: str
    branch: str
    repository: str
    project: str
    codebase: str
    category: str
    when: _timestamp_pb2.Timestamp
    properties: _containers.RepeatedCompositeFieldContainer[Property]
    revlink: str
    def __init__(self, id: _Optional[int] = ..., author: _Optional[str] = ..., committer: _Optional[str] = ..., comments: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ..., revision: _Optional[str] = ..., branch: _Optional[str] = ..., repository: _Optional[str] = ..., project: _Optional[str] = ..., codebase: _Optional[str] = ..., category: _Optional[str] = ..., when: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., properties: _Optional[_Iterable[_Union[Property, _Mapping]]] = ..., revlink: _Optional[str] = ...) -> None: ...
