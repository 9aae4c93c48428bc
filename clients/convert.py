"""The one place where protobuf messages become `clients.models` objects and back.

Also `to_jsonable`, which turns those objects into plain JSON values for `--json` output.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2

from clients import models
from clients.errors import InvalidArgument
from protos.gantry.v1 import common_pb2, control_pb2, logs_pb2, status_pb2

_FINISHED_SUFFIX = ".finished"


# -- scalars ---------------------------------------------------------------------------------


def time_from_proto(message: Any, field_name: str) -> datetime | None:
    """The timestamp field as an aware UTC datetime, or None when unset."""
    if not message.HasField(field_name):
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field_name)
    return ts.ToDatetime(tzinfo=UTC)


def time_to_proto(value: datetime | float | int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # naive means local time, as everywhere in Python
        ts.FromDatetime(value.astimezone(UTC))
    else:
        ts.FromNanoseconds(int(float(value) * 1e9))
    return ts


def encode_value(value: object) -> str:
    """A property value as the JSON text the API carries."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidArgument("INVALID_ARGUMENT", f"property value {value!r}: {err}") from None


def decode_value(value_json: str) -> Any:
    try:
        return json.loads(value_json)
    except ValueError:
        return value_json  # a coordinator bug should not hide the value from the user


def decode_details(details_json: str) -> dict[str, Any]:
    if not details_json:
        return {}
    value = decode_value(details_json)
    return value if isinstance(value, dict) else {"value": value}


def properties_to_proto(properties: Mapping[str, object], source: str = "") -> list[Any]:
    return [
        common_pb2.Property(name=name, value_json=encode_value(value), source=source)
        for name, value in properties.items()
    ]


def codebases_to_proto(codebases: Mapping[str, Mapping[str, str]]) -> list[common_pb2.SourceStamp]:
    """``{"lib": {"branch": "dev"}}`` -> one SourceStamp per codebase."""
    return [common_pb2.SourceStamp(codebase=name, **dict(fields)) for name, fields in codebases.items()]


# -- messages -> models ----------------------------------------------------------------------


def property_from_proto(msg: common_pb2.Property) -> models.Property:
    return models.Property(msg.name, decode_value(msg.value_json), msg.source)


def sourcestamp_from_proto(msg: common_pb2.SourceStamp) -> models.SourceStamp:
    return models.SourceStamp(msg.repository, msg.branch, msg.revision, msg.project, msg.codebase)


def change_from_proto(msg: common_pb2.Change) -> models.Change:
    return models.Change(
        id=msg.id,
        author=msg.author,
        committer=msg.committer,
        comments=msg.comments,
        files=tuple(msg.files),
        revision=msg.revision,
        branch=msg.branch,
        repository=msg.repository,
        project=msg.project,
        codebase=msg.codebase,
        category=msg.category,
        when=time_from_proto(msg, "when"),
        properties={p.name: decode_value(p.value_json) for p in msg.properties},
        revlink=msg.revlink,
    )


def builder_from_proto(msg: control_pb2.Builder) -> models.Builder:
    return models.Builder(
        name=msg.name,
        workers=tuple(msg.workers),
        steps=tuple(msg.steps),
        pending_requests=msg.pending_requests,
        description=msg.description,
        tags=tuple(msg.tags),
        next_expected_start=time_from_proto(msg, "next_expected_start"),
        force_scheduler=msg.force_scheduler,
        force_parameters=tuple(
            models.ForceParameter(
                p.name, p.label, p.type, decode_value(p.default_json), p.required, p.regex,
                tuple(p.choices), p.multiple,
            )
            for p in msg.force_parameters
        ),
        force_codebases=tuple(sourcestamp_from_proto(s) for s in msg.force_codebases),
    )


def step_from_proto(msg: control_pb2.Step) -> models.Step:
    return models.Step(
        id=msg.id,
        number=msg.number,
        name=msg.name,
        state_string=msg.state_string,
        started_at=time_from_proto(msg, "started_at"),
        finished_at=time_from_proto(msg, "finished_at"),
        complete=msg.complete,
        result=models.Result(msg.result) if msg.complete else None,
        logs=tuple(
            models.LogInfo(log.id, log.name, log.type, log.size, log.complete) for log in msg.logs
        ),
        urls=tuple(models.StepUrl(u.name, u.url) for u in msg.urls),
        hidden=msg.hidden,
        expected_duration=(
            msg.expected_duration.ToNanoseconds() / 1e9 if msg.HasField("expected_duration") else None
        ),
    )


def build_from_proto(msg: control_pb2.Build) -> models.Build:
    return models.Build(
        id=msg.id,
        builder=msg.builder,
        number=msg.number,
        worker=msg.worker,
        build_request_id=msg.build_request_id,
        buildset_id=msg.buildset_id,
        started_at=time_from_proto(msg, "started_at"),
        finished_at=time_from_proto(msg, "finished_at"),
        complete=msg.complete,
        result=models.Result(msg.result) if msg.complete else None,
        state_string=msg.state_string,
        steps=tuple(step_from_proto(s) for s in msg.steps),
        properties=tuple(property_from_proto(p) for p in msg.properties),
        changes=tuple(change_from_proto(c) for c in msg.changes),
        reason=msg.reason,
        sourcestamps=tuple(sourcestamp_from_proto(s) for s in msg.sourcestamps),
        eta=time_from_proto(msg, "eta"),
        artifacts=tuple(artifact_from_proto(a) for a in msg.artifacts),
    )


def artifact_from_proto(msg: control_pb2.Artifact) -> models.Artifact:
    return models.Artifact(
        name=msg.name, step=msg.step, size=msg.size, sha256=msg.sha256,
        created_at=time_from_proto(msg, "created_at"),
    )


def _seconds(msg: Any, field: str) -> float | None:
    return getattr(msg, field).ToNanoseconds() / 1e9 if msg.HasField(field) else None


def test_run_from_proto(msg: control_pb2.TestRun) -> models.TestRun:
    return models.TestRun(
        name=msg.name, outcome=msg.outcome, build_number=msg.build_number, revision=msg.revision,
        duration=_seconds(msg, "duration"), message=msg.message,
    )


def test_report_from_proto(msg: control_pb2.ListTestsResponse) -> models.TestReport:
    tests = tuple(
        models.TestSummary(
            latest=test_run_from_proto(t.latest), runs=t.runs, failures=t.failures, flips=t.flips,
            failing_since=t.failing_since, newly_failing=t.newly_failing,
            mean_duration=_seconds(t, "mean_duration"),
        )
        for t in msg.tests
    )
    return models.TestReport(msg.builds, tests, tuple(test_run_from_proto(r) for r in msg.runs))


def worker_from_proto(msg: control_pb2.Worker) -> models.Worker:
    return models.Worker(
        name=msg.name,
        connected=msg.connected,
        since=time_from_proto(msg, "since"),
        running_builds=tuple(msg.running_builds),
        max_builds=msg.max_builds,
        info=dict(msg.info),
        capacity_reason=msg.capacity_reason,
        state=msg.state or "active",
        state_reason=msg.state_reason,
    )


def notification_from_proto(msg: control_pb2.Notification) -> models.Notification:
    return models.Notification(
        id=msg.id,
        notifier=msg.notifier,
        kind=msg.kind,
        key=msg.key,
        state=msg.state,
        attempts=msg.attempts,
        next_attempt_at=time_from_proto(msg, "next_attempt_at"),
        last_error=msg.last_error,
        created_at=time_from_proto(msg, "created_at"),
        sent_at=time_from_proto(msg, "sent_at"),
        summary=msg.summary,
    )


def scheduler_from_proto(msg: control_pb2.Scheduler) -> models.Scheduler:
    return models.Scheduler(
        name=msg.name,
        kind=msg.kind,
        enabled=msg.enabled,
        builders=list(msg.builders),
        next_fire=time_from_proto(msg, "next_fire"),
    )


def pending_from_proto(msg: control_pb2.PendingRequest) -> models.PendingRequest:
    return models.PendingRequest(
        id=msg.id,
        builder=msg.builder,
        buildset_id=msg.buildset_id,
        priority=msg.priority,
        submitted_at=time_from_proto(msg, "submitted_at"),
        reason=msg.reason,
        expected_start=datetime.fromtimestamp(msg.expected_start, UTC) if msg.expected_start else None,
    )


def build_request_from_proto(msg: control_pb2.BuildRequest) -> models.BuildRequest:
    return models.BuildRequest(
        id=msg.id,
        buildset_id=msg.buildset_id,
        builder=msg.builder,
        priority=msg.priority,
        submitted_at=time_from_proto(msg, "submitted_at"),
        claimed=msg.claimed,
        complete=msg.complete,
        result=models.Result(msg.result) if msg.complete else None,
        absorbed_by=msg.absorbed_by,
        completed_at=time_from_proto(msg, "completed_at"),
    )


def event_from_proto(msg: status_pb2.Event) -> models.Event:
    finished = msg.kind.endswith(_FINISHED_SUFFIX)
    return models.Event(
        id=msg.id,
        kind=msg.kind,
        at=time_from_proto(msg, "at"),
        builder=msg.builder,
        build_number=msg.build_number,
        buildset_id=msg.buildset_id,
        step_number=msg.step_number,
        step_name=msg.step_name,
        result=models.Result(msg.result) if finished else None,
        worker=msg.worker,
        details=decode_details(msg.details_json),
    )


def build_update_from_proto(msg: status_pb2.BuildUpdate) -> models.BuildUpdate:
    return models.BuildUpdate(
        event=event_from_proto(msg.event) if msg.HasField("event") else None,
        build=build_from_proto(msg.build),
        eta=time_from_proto(msg, "eta"),
    )


def log_chunk_from_proto(msg: logs_pb2.LogData) -> models.LogChunk:
    return models.LogChunk(
        data=msg.data,
        offset=msg.offset,
        eof=msg.eof,
        segments=tuple((models.Channel(s.channel), s.data) for s in msg.segments),
        times=tuple((t.offset, t.unix_ms) for t in msg.times),
    )


# -- models -> messages ----------------------------------------------------------------------

_CHANGE_FIELDS = {f.name for f in dataclasses.fields(models.Change)}
_CHANGE_TEXT_FIELDS = (
    "author", "committer", "comments", "revision", "branch", "repository", "project",
    "codebase", "category", "revlink",
)


def change_to_proto(change: models.Change | Mapping[str, Any]) -> common_pb2.Change:
    """A change to submit, from a `models.Change` or a dict with the same keys."""
    if isinstance(change, models.Change):
        values: dict[str, Any] = {f: getattr(change, f) for f in _CHANGE_FIELDS}
    else:
        unknown = sorted(set(change) - _CHANGE_FIELDS)
        if unknown:
            raise InvalidArgument("INVALID_ARGUMENT", f"unknown change field(s): {', '.join(unknown)}")
        values = dict(change)
    msg = common_pb2.Change()
    for name in _CHANGE_TEXT_FIELDS:
        if values.get(name):
            setattr(msg, name, str(values[name]))
    msg.files.extend(str(f) for f in values.get("files") or ())
    if values.get("when") is not None:
        msg.when.CopyFrom(time_to_proto(values["when"]))
    msg.properties.extend(properties_to_proto(values.get("properties") or {}))
    return msg


def changes_to_proto(changes: Iterable[models.Change | Mapping[str, Any]]) -> list[Any]:
    return [change_to_proto(c) for c in changes]


# -- JSON output -----------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    """Models, enums, datetimes and bytes as plain JSON values (results by name)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: to_jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value
