import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos.gantry.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TestView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEST_VIEW_FAILING: _ClassVar[TestView]
    TEST_VIEW_FLAKY: _ClassVar[TestView]
    TEST_VIEW_SLOWEST: _ClassVar[TestView]
    TEST_VIEW_HISTORY: _ClassVar[TestView]
TEST_VIEW_FAILING: TestView
TEST_VIEW_FLAKY: TestView
TEST_VIEW_SLOWEST: TestView
TEST_VIEW_HISTORY: TestView

class ForceBuildRequest(_message.Message):
    __slots__ = ("builder", "branch", "revision", "repository", "reason", "owner", "properties", "project", "priority", "sourcestamps", "scheduler")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SOURCESTAMPS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    builder: str
    branch: str
    revision: str
    repository: str
    reason: str
    owner: str
    properties: _containers.RepeatedCompositeFieldContainer[_common_pb2.Property]
    project: str
    priority: int
    sourcestamps: _containers.RepeatedCompositeFieldContainer[_common_pb2.SourceStamp]
    scheduler: str
    def __init__(self, builder: _Optional[str] = ..., branch: _Optional[str] = ..., revision: _Optional[str] = ..., repository: _Optional[str] = ..., reason: _Optional[str] = ..., owner: _Optional[str] = ..., properties: _Optional[_Iterable[_Union[_common_pb2.Property, _Mapping]]] = ..., project: _Optional[str] = ..., priority: _Optional[int] = ..., sourcestamps: _Optional[_Iterable[_Union[_common_pb2.SourceStamp, _Mapping]]] = ..., scheduler: _Optional[str] = ...) -> None: ...

class ForceBuildResponse(_message.Message):
    __slots__ = ("buildset_id", "build_request_id")
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    buildset_id: int
    build_request_id: int
    def __init__(self, buildset_id: _Optional[int] = ..., build_request_id: _Optional[int] = ...) -> None: ...

class RebuildBuildRequest(_message.Message):
    __slots__ = ("builder", "number")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    builder: str
    number: int
    def __init__(self, builder: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class RebuildBuildResponse(_message.Message):
    __slots__ = ("buildset_id", "build_request_id")
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    BUILD_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    buildset_id: int
    build_request_id: int
    def __init__(self, buildset_id: _Optional[int] = ..., build_request_id: _Optional[int] = ...) -> None: ...

class StopBuildRequest(_message.Message):
    __slots__ = ("builder", "number", "reason")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    builder: str
    number: int
    reason: str
    def __init__(self, builder: _Optional[str] = ..., number: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class StopBuildResponse(_message.Message):
    __slots__ = ("stopped",)
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    stopped: bool
    def __init__(self, stopped: _Optional[bool] = ...) -> None: ...

class ListBuildersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBuildersResponse(_message.Message):
    __slots__ = ("builders",)
    BUILDERS_FIELD_NUMBER: _ClassVar[int]
    builders: _containers.RepeatedCompositeFieldContainer[Builder]
    def __init__(self, builders: _Optional[_Iterable[_Union[Builder, _Mapping]]] = ...) -> None: ...

class GetBuilderRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Builder(_message.Message):
    __slots__ = ("name", "workers", "steps", "pending_requests", "description", "tags", "next_expected_start", "force_scheduler", "force_parameters", "force_codebases", "force_codebase_forms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PENDING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_EXPECTED_START_FIELD_NUMBER: _ClassVar[int]
    FORCE_SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    FORCE_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    FORCE_CODEBASES_FIELD_NUMBER: _ClassVar[int]
    FORCE_CODEBASE_FORMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    workers: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedScalarFieldContainer[str]
    pending_requests: int
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    next_expected_start: _timestamp_pb2.Timestamp
    force_scheduler: str
    force_parameters: _containers.RepeatedCompositeFieldContainer[ForceParameter]
    force_codebases: _containers.RepeatedCompositeFieldContainer[_common_pb2.SourceStamp]
    force_codebase_forms: _containers.RepeatedCompositeFieldContainer[ForceCodebase]
    def __init__(self, name: _Optional[str] = ..., workers: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[str]] = ..., pending_requests: _Optional[int] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., next_expected_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., force_scheduler: _Optional[str] = ..., force_parameters: _Optional[_Iterable[_Union[ForceParameter, _Mapping]]] = ..., force_codebases: _Optional[_Iterable[_Union[_common_pb2.SourceStamp, _Mapping]]] = ..., force_codebase_forms: _Optional[_Iterable[_Union[ForceCodebase, _Mapping]]] = ...) -> None: ...

class ForceCodebase(_message.Message):
    __slots__ = ("codebase", "label", "fields")
    CODEBASE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    codebase: str
    label: str
    fields: _containers.RepeatedCompositeFieldContainer[ForceParameter]
    def __init__(self, codebase: _Optional[str] = ..., label: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[ForceParameter, _Mapping]]] = ...) -> None: ...

class ForceParameter(_message.Message):
    __slots__ = ("name", "label", "type", "default_json", "required", "regex", "choices", "multiple")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    REGEX_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    MULTIPLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    type: str
    default_json: str
    required: bool
    regex: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    multiple: bool
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ..., type: _Optional[str] = ..., default_json: _Optional[str] = ..., required: _Optional[bool] = ..., regex: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., multiple: _Optional[bool] = ...) -> None: ...

class ListBuildsRequest(_message.Message):
    __slots__ = ("builder", "limit", "before_id", "results", "with_steps", "branch")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    WITH_STEPS_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    builder: str
    limit: int
    before_id: int
    results: _containers.RepeatedScalarFieldContainer[_common_pb2.Result]
    with_steps: bool
    branch: str
    def __init__(self, builder: _Optional[str] = ..., limit: _Optional[int] = ..., before_id: _Optional[int] = ..., results: _Optional[_Iterable[_Union[_common_pb2.Result, str]]] = ..., with_steps: _Optional[bool] = ..., branch: _Optional[str] = ...) -> None: ...

class ListBuildsResponse(_message.Message):
    __slots__ = ("builds",)
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    builds: _containers.RepeatedCompositeFieldContainer[Build]
    def __init__(self, builds: _Optional[_Iterable[_Union[Build, _Mapping]]] = ...) -> None: ...

class GetBuildRequest(_message.Message):
    __slots__ = ("builder", "number")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    builder: str
    number: int
    def __init__(self, builder: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class Build(_message.Message):
    __slots__ = ("id", "builder", "number", "worker", "build_request_id", "buildset_id", "started_at", "finished_at", "complete", "result", "state_string", "steps", "properties", "changes", "reason", "sourcestamps", "eta", "artifacts")
    ID_FIELD_NUMBER: _ClassVar[int]
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    BUILD_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STATE_STRING_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCESTAMPS_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    id: int
    builder: str
    number: int
    worker: str
    build_request_id: int
    buildset_id: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    complete: bool
    result: _common_pb2.Result
    state_string: str
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    properties: _containers.RepeatedCompositeFieldContainer[_common_pb2.Property]
    changes: _containers.RepeatedCompositeFieldContainer[_common_pb2.Change]
    reason: str
    sourcestamps: _containers.RepeatedCompositeFieldContainer[_common_pb2.SourceStamp]
    eta: _timestamp_pb2.Timestamp
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    def __init__(self, id: _Optional[int] = ..., builder: _Optional[str] = ..., number: _Optional[int] = ..., worker: _Optional[str] = ..., build_request_id: _Optional[int] = ..., buildset_id: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete: _Optional[bool] = ..., result: _Optional[_Union[_common_pb2.Result, str]] = ..., state_string: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., properties: _Optional[_Iterable[_Union[_common_pb2.Property, _Mapping]]] = ..., changes: _Optional[_Iterable[_Union[_common_pb2.Change, _Mapping]]] = ..., reason: _Optional[str] = ..., sourcestamps: _Optional[_Iterable[_Union[_common_pb2.SourceStamp, _Mapping]]] = ..., eta: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("id", "number", "name", "state_string", "started_at", "finished_at", "complete", "result", "logs", "urls", "hidden", "expected_duration")
    ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_STRING_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    URLS_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DURATION_FIELD_NUMBER: _ClassVar[int]
    id: int
    number: int
    name: str
    state_string: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    complete: bool
    result: _common_pb2.Result
    logs: _containers.RepeatedCompositeFieldContainer[LogInfo]
    urls: _containers.RepeatedCompositeFieldContainer[StepUrl]
    hidden: bool
    expected_duration: _duration_pb2.Duration
    def __init__(self, id: _Optional[int] = ..., number: _Optional[int] = ..., name: _Optional[str] = ..., state_string: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete: _Optional[bool] = ..., result: _Optional[_Union[_common_pb2.Result, str]] = ..., logs: _Optional[_Iterable[_Union[LogInfo, _Mapping]]] = ..., urls: _Optional[_Iterable[_Union[StepUrl, _Mapping]]] = ..., hidden: _Optional[bool] = ..., expected_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StepUrl(_message.Message):
    __slots__ = ("name", "url")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class LogInfo(_message.Message):
    __slots__ = ("id", "name", "type", "size", "complete")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    type: str
    size: int
    complete: bool
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., size: _Optional[int] = ..., complete: _Optional[bool] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ("name", "connected", "since", "running_builds", "max_builds", "info", "capacity_reason", "state", "state_reason")
    class InfoEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_BUILDS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUILDS_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    connected: bool
    since: _timestamp_pb2.Timestamp
    running_builds: _containers.RepeatedScalarFieldContainer[str]
    max_builds: int
    info: _containers.ScalarMap[str, str]
    capacity_reason: str
    state: str
    state_reason: str
    def __init__(self, name: _Optional[str] = ..., connected: _Optional[bool] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., running_builds: _Optional[_Iterable[str]] = ..., max_builds: _Optional[int] = ..., info: _Optional[_Mapping[str, str]] = ..., capacity_reason: _Optional[str] = ..., state: _Optional[str] = ..., state_reason: _Optional[str] = ...) -> None: ...

class ListChangesRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListChangesResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[_common_pb2.Change]
    def __init__(self, changes: _Optional[_Iterable[_Union[_common_pb2.Change, _Mapping]]] = ...) -> None: ...

class GetChangeRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class ListNotificationsRequest(_message.Message):
    __slots__ = ("limit", "state")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    limit: int
    state: str
    def __init__(self, limit: _Optional[int] = ..., state: _Optional[str] = ...) -> None: ...

class ListNotificationsResponse(_message.Message):
    __slots__ = ("notifications",)
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("id", "notifier", "kind", "key", "state", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at", "summary")
    ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFIER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    id: int
    notifier: str
    kind: str
    key: str
    state: str
    attempts: int
    next_attempt_at: _timestamp_pb2.Timestamp
    last_error: str
    created_at: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    summary: str
    def __init__(self, id: _Optional[int] = ..., notifier: _Optional[str] = ..., kind: _Optional[str] = ..., key: _Optional[str] = ..., state: _Optional[str] = ..., attempts: _Optional[int] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[str] = ...) -> None: ...

class ListSchedulersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSchedulersResponse(_message.Message):
    __slots__ = ("schedulers",)
    SCHEDULERS_FIELD_NUMBER: _ClassVar[int]
    schedulers: _containers.RepeatedCompositeFieldContainer[Scheduler]
    def __init__(self, schedulers: _Optional[_Iterable[_Union[Scheduler, _Mapping]]] = ...) -> None: ...

class Scheduler(_message.Message):
    __slots__ = ("name", "kind", "enabled", "builders", "next_fire")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    BUILDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIRE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    enabled: bool
    builders: _containers.RepeatedScalarFieldContainer[str]
    next_fire: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., enabled: _Optional[bool] = ..., builders: _Optional[_Iterable[str]] = ..., next_fire: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetSchedulerEnabledRequest(_message.Message):
    __slots__ = ("name", "enabled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    name: str
    enabled: bool
    def __init__(self, name: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class ListPendingRequestsRequest(_message.Message):
    __slots__ = ("builder",)
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    builder: str
    def __init__(self, builder: _Optional[str] = ...) -> None: ...

class ListPendingRequestsResponse(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PendingRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[PendingRequest, _Mapping]]] = ...) -> None: ...

class PendingRequest(_message.Message):
    __slots__ = ("id", "builder", "buildset_id", "priority", "submitted_at", "reason", "expected_start")
    ID_FIELD_NUMBER: _ClassVar[int]
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_FIELD_NUMBER: _ClassVar[int]
    id: int
    builder: str
    buildset_id: int
    priority: int
    submitted_at: _timestamp_pb2.Timestamp
    reason: str
    expected_start: float
    def __init__(self, id: _Optional[int] = ..., builder: _Optional[str] = ..., buildset_id: _Optional[int] = ..., priority: _Optional[int] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., expected_start: _Optional[float] = ...) -> None: ...

class ListBuildRequestsRequest(_message.Message):
    __slots__ = ("builder", "buildset_id", "limit")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    builder: str
    buildset_id: int
    limit: int
    def __init__(self, builder: _Optional[str] = ..., buildset_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListBuildRequestsResponse(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[BuildRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[BuildRequest, _Mapping]]] = ...) -> None: ...

class BuildRequest(_message.Message):
    __slots__ = ("id", "buildset_id", "builder", "priority", "submitted_at", "claimed", "complete", "result", "absorbed_by", "completed_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    BUILDSET_ID_FIELD_NUMBER: _ClassVar[int]
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ABSORBED_BY_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    buildset_id: int
    builder: str
    priority: int
    submitted_at: _timestamp_pb2.Timestamp
    claimed: bool
    complete: bool
    result: _common_pb2.Result
    absorbed_by: int
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., buildset_id: _Optional[int] = ..., builder: _Optional[str] = ..., priority: _Optional[int] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., claimed: _Optional[bool] = ..., complete: _Optional[bool] = ..., result: _Optional[_Union[_common_pb2.Result, str]] = ..., absorbed_by: _Optional[int] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ("builder", "number")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    builder: str
    number: int
    def __init__(self, builder: _Optional[str] = ..., number: _Optional[int] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ("artifacts",)
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "step", "size", "sha256", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    step: str
    size: int
    sha256: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., step: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DownloadArtifactRequest(_message.Message):
    __slots__ = ("builder", "number", "name")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    builder: str
    number: int
    name: str
    def __init__(self, builder: _Optional[str] = ..., number: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class ArtifactChunk(_message.Message):
    __slots__ = ("data", "artifact")
    DATA_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    artifact: Artifact
    def __init__(self, data: _Optional[bytes] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ...) -> None: ...

class CancelBuildRequestRequest(_message.Message):
    __slots__ = ("request_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    reason: str
    def __init__(self, request_id: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelBuildRequestResponse(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: BuildRequest
    def __init__(self, request: _Optional[_Union[BuildRequest, _Mapping]] = ...) -> None: ...

class ListTestsRequest(_message.Message):
    __slots__ = ("builder", "view", "name", "builds", "limit")
    BUILDER_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    builder: str
    view: TestView
    name: str
    builds: int
    limit: int
    def __init__(self, builder: _Optional[str] = ..., view: _Optional[_Union[TestView, str]] = ..., name: _Optional[str] = ..., builds: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class TestRun(_message.Message):
    __slots__ = ("name", "outcome", "duration", "message", "build_number", "revision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BUILD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    outcome: str
    duration: _duration_pb2.Duration
    message: str
    build_number: int
    revision: str
    def __init__(self, name: _Optional[str] = ..., outcome: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., message: _Optional[str] = ..., build_number: _Optional[int] = ..., revision: _Optional[str] = ...) -> None: ...

class TestSummary(_message.Message):
    __slots__ = ("latest", "runs", "failures", "flips", "failing_since", "newly_failing", "mean_duration")
    LATEST_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    FLIPS_FIELD_NUMBER: _ClassVar[int]
    FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    NEWLY_FAILING_FIELD_NUMBER: _ClassVar[int]
    MEAN_DURATION_FIELD_NUMBER: _ClassVar[int]
    latest: TestRun
    runs: int
    failures: int
    flips: int
    failing_since: int
    newly_failing: bool
    mean_duration: _duration_pb2.Duration
    def __init__(self, latest: _Optional[_Union[TestRun, _Mapping]] = ..., runs: _Optional[int] = ..., failures: _Optional[int] = ..., flips: _Optional[int] = ..., failing_since: _Optional[int] = ..., newly_failing: _Optional[bool] = ..., mean_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListTestsResponse(_message.Message):
    __slots__ = ("builds", "tests", "runs")
    BUILDS_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    builds: int
    tests: _containers.RepeatedCompositeFieldContainer[TestSummary]
    runs: _containers.RepeatedCompositeFieldContainer[TestRun]
    def __init__(self, builds: _Optional[int] = ..., tests: _Optional[_Iterable[_Union[TestSummary, _Mapping]]] = ..., runs: _Optional[_Iterable[_Union[TestRun, _Mapping]]] = ...) -> None: ...
