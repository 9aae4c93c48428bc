"""Protobuf <-> domain conversion, in one place."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from coordinator.domain import model
from coordinator.domain.auth import visibility
from coordinator.domain.builds.eta import BuildEstimate
from coordinator.domain.changes.validation import check_property_name, parse_property_value
from coordinator.domain.errors import InvalidArgument
from coordinator.domain.events import Event
from coordinator.domain.ports import Notification
from coordinator.domain.scheduling.force import CodebaseForm, ParameterInfo
from coordinator.domain.scheduling.schedulers import Scheduler
from coordinator.domain.status import case_history
from protos.gantry.v1 import common_pb2, control_pb2, status_pb2


def ts(value: float | None) -> Timestamp | None:
    if value is None:
        return None
    t = Timestamp()
    t.FromNanoseconds(int(value * 1e9))
    return t


# What google.protobuf.Timestamp can hold (years 1 to 9999): a time outside could be stored but
# never answered again (ListChanges would fail converting it back).
_TS_RANGE = (-62135596800, 253402300799)


def from_ts(t: Timestamp) -> float:
    """A client's timestamp, refused when it is not one protobuf can represent."""
    if not _TS_RANGE[0] <= t.seconds <= _TS_RANGE[1] or not 0 <= t.nanos <= 999_999_999:
        raise InvalidArgument(f"timestamp {t.seconds}s {t.nanos}ns is not a valid time (years 1 to 9999)")
    return t.seconds + t.nanos / 1e9


def result_pb(result: model.Result | None) -> Any:
    """The wire value of a result (SUCCESS when unset; `complete` tells them apart)."""
    return 0 if result is None else int(result)


def properties_in(props: list[common_pb2.Property], where: str = "") -> list[model.PropertyValue]:
    out = []
    for p in props:
        check_property_name(p.name, where)
        out.append(model.PropertyValue(p.name, parse_property_value(p.name, p.value_json, where), p.source))
    return out


def property_pb(p: model.PropertyValue) -> common_pb2.Property:
    return common_pb2.Property(name=p.name, value_json=json.dumps(p.value), source=p.source)


def change_in(c: common_pb2.Change, index: int) -> model.Change:
    where = f"change {index}: "
    return model.Change(
        author=c.author,
        committer=c.committer,
        comments=c.comments,
        files=list(c.files),
        revision=c.revision,
        branch=c.branch,
        repository=c.repository,
        project=c.project,
        codebase=c.codebase,
        category=c.category,
        when=from_ts(c.when) if c.HasField("when") else 0.0,
        properties={p.name: p.value for p in properties_in(list(c.properties), where)},
        revlink=c.revlink,
    )


def change_pb(c: model.Change) -> common_pb2.Change:
    return common_pb2.Change(
        id=c.id,
        author=c.author,
        committer=c.committer,
        comments=c.comments,
        files=c.files,
        revision=c.revision,
        branch=c.branch,
        repository=c.repository,
        project=c.project,
        codebase=c.codebase,
        category=c.category,
        when=ts(c.when),
        properties=[property_pb(model.PropertyValue(k, v, "Change")) for k, v in c.properties.items()],
        revlink=c.revlink,
    )


def sourcestamp_pb(s: model.SourceStamp) -> common_pb2.SourceStamp:
    return common_pb2.SourceStamp(
        repository=s.repository, branch=s.branch, revision=s.revision, project=s.project, codebase=s.codebase
    )


def sourcestamp_in(s: common_pb2.SourceStamp) -> model.SourceStamp:
    return model.SourceStamp(
        repository=s.repository, branch=s.branch, revision=s.revision, project=s.project, codebase=s.codebase
    )


def force_parameter_pb(p: ParameterInfo) -> control_pb2.ForceParameter:
    return control_pb2.ForceParameter(
        name=p.name, label=p.label, type=p.type, default_json=json.dumps(p.default), required=p.required,
        regex=p.regex, choices=list(p.choices), multiple=p.multiple,
    )


def force_codebase_pb(c: CodebaseForm) -> control_pb2.ForceCodebase:
    return control_pb2.ForceCodebase(
        codebase=c.codebase, label=c.label, fields=[force_parameter_pb(p) for p in c.fields])


def step_pb(s: model.Step) -> control_pb2.Step:
    return control_pb2.Step(
        id=s.id,
        number=s.number,
        name=s.name,
        state_string=s.state_string,
        started_at=ts(s.started_at),
        finished_at=ts(s.finished_at),
        complete=s.complete,
        result=result_pb(s.result),
        hidden=s.hidden,
        logs=[
            control_pb2.LogInfo(id=lg.id, name=lg.name, type=lg.type, size=lg.size, complete=lg.complete)
            for lg in s.logs
        ],
        urls=[control_pb2.StepUrl(name=n, url=u) for n, u in s.urls],
    )


def result_in(value: int) -> model.Result:
    try:
        return model.Result(value)
    except ValueError:
        raise InvalidArgument(f"unknown result {value}; known: {', '.join(r.name for r in model.Result)}") from None


def build_pb(
    b: model.Build, full: bool, estimate: BuildEstimate | None = None, steps: bool = False
) -> control_pb2.Build:
    msg = control_pb2.Build(
        id=b.id,
        builder=b.builder,
        number=b.number,
        worker=b.worker,
        build_request_id=b.build_request_id,
        buildset_id=b.buildset_id,
        started_at=ts(b.started_at),
        finished_at=ts(b.finished_at),
        complete=b.complete,
        result=result_pb(b.result),
        state_string=b.state_string,
        reason=b.reason,
        sourcestamps=[sourcestamp_pb(s) for s in b.sourcestamps],
    )
    if full or steps:
        msg.steps.extend(step_pb(s) for s in b.steps)
    if full:
        msg.properties.extend(property_pb(p) for p in b.properties)
        msg.changes.extend(change_pb(c) for c in b.changes)
        msg.artifacts.extend(artifact_pb(a) for a in b.artifacts)
    if estimate is not None:
        if estimate.eta is not None:
            msg.eta.CopyFrom(ts(estimate.eta))
        for step in msg.steps:
            expected = estimate.step_durations.get(step.name)
            if expected is not None:
                step.expected_duration.CopyFrom(_duration(expected))
    return msg


def _duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def artifact_pb(a: model.Artifact) -> control_pb2.Artifact:
    return control_pb2.Artifact(name=a.name, step=a.step, size=a.size, sha256=a.sha256, created_at=ts(a.created_at))


_TEST_VIEWS = {
    control_pb2.TEST_VIEW_FAILING: case_history.View.FAILING,
    control_pb2.TEST_VIEW_FLAKY: case_history.View.FLAKY,
    control_pb2.TEST_VIEW_SLOWEST: case_history.View.SLOWEST,
    control_pb2.TEST_VIEW_HISTORY: case_history.View.HISTORY,
}


def test_view_in(view: int) -> case_history.View:
    if view not in _TEST_VIEWS:
        raise InvalidArgument(f"unknown test view {view}")
    return _TEST_VIEWS[view]  # type: ignore[index]


def test_run_pb(run: model.CaseRun) -> control_pb2.TestRun:
    c = run.case
    msg = control_pb2.TestRun(
        name=c.full_name, outcome=c.outcome, message=c.message, build_number=run.number, revision=run.revision
    )
    if c.duration is not None:
        msg.duration.CopyFrom(_duration(c.duration))
    return msg


def test_report_pb(report: case_history.CaseReport) -> control_pb2.ListTestsResponse:
    msg = control_pb2.ListTestsResponse(builds=report.builds, runs=[test_run_pb(r) for r in report.runs])
    for s in report.summaries:
        item = msg.tests.add(
            latest=test_run_pb(s.latest), runs=s.runs, failures=s.failures, flips=s.flips,
            failing_since=s.failing_since or 0, newly_failing=s.newly_failing,
        )
        if s.mean_duration is not None:
            item.mean_duration.CopyFrom(_duration(s.mean_duration))
    return msg


def worker_pb(w: model.WorkerRecord) -> control_pb2.Worker:
    return control_pb2.Worker(
        name=w.name,
        connected=w.connected,
        since=ts(w.since),
        running_builds=w.running_builds,
        max_builds=w.max_builds,
        info=w.info,
        capacity_reason=w.capacity_reason,
        state=w.state,
        state_reason=w.state_reason,
    )


def event_pb(e: Event) -> status_pb2.Event:
    return status_pb2.Event(
        id=e.id,
        kind=e.kind,
        at=ts(e.at),
        builder=e.builder,
        build_number=e.build_number,
        buildset_id=e.buildset_id,
        step_number=e.step_number,
        step_name=e.step_name,
        result=result_pb(e.result),
        worker=e.worker,
        details_json=json.dumps(e.details, separators=(",", ":")),
    )


def notification_pb(n: Notification) -> control_pb2.Notification:
    p = n.payload
    if isinstance(p.get("summary"), str):  # commit-status reporters, chat notifiers, IRC
        summary = p["summary"]
    elif n.kind == "mail":
        summary = f"{p.get('subject', '')} -> {', '.join(p.get('to', []))}"
    else:
        try:
            doc = json.loads(p.get("body", "{}"))
        except ValueError:
            doc = {}
        events = [d.get("event", "") for d in (doc if isinstance(doc, list) else [doc])]
        summary = "POST " + ", ".join(e for e in events if e)
    return control_pb2.Notification(
        id=n.id, notifier=n.notifier, kind=n.kind, key=n.key, state=n.state, attempts=n.attempts,
        next_attempt_at=ts(n.next_attempt_at), last_error=n.last_error, created_at=ts(n.created_at),
        sent_at=ts(n.sent_at), summary=summary,
    )


def scheduler_pb(s: Scheduler) -> control_pb2.Scheduler:
    return control_pb2.Scheduler(
        name=s.name, kind=s.kind, enabled=s.enabled, next_fire=ts(s.next_fire_time()),
        builders=[b for b in s.builders if visibility.sees(b)],  # a scoped reader's builders only
    )


def pending_pb(p: model.PendingRequest) -> control_pb2.PendingRequest:
    return control_pb2.PendingRequest(
        id=p.id, builder=p.builder, buildset_id=p.buildset_id, priority=p.priority,
        submitted_at=ts(p.submitted_at), reason=p.reason, expected_start=p.expected_start,
    )


def build_request_pb(r: model.BuildRequest) -> control_pb2.BuildRequest:
    return control_pb2.BuildRequest(
        id=r.id, buildset_id=r.buildset_id, builder=r.builder, priority=r.priority,
        submitted_at=ts(r.submitted_at), claimed=r.claimed, complete=r.complete,
        result=result_pb(r.result), absorbed_by=r.absorbed_by, completed_at=ts(r.completed_at),
    )
