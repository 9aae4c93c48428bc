"""Thin servicers for changes, control, status and logs: protobuf in, domain call, protobuf out."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc

from coordinator.api import convert
from coordinator.domain.errors import InvalidArgument
from coordinator.domain.events import EventFilter
from coordinator.domain.scheduling.build_control import BuildControl
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.intake import ChangeIntake
from coordinator.domain.status.case_history import CaseHistory
from coordinator.domain.status.feed import LogReader, StatusFeed
from coordinator.domain.status.queries import Queries
from protos.gantry.v1 import (
    changes_pb2,
    changes_pb2_grpc,
    common_pb2,
    control_pb2,
    control_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
)

Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class ChangeServicer(changes_pb2_grpc.ChangeServiceServicer):
    def __init__(self, intake: ChangeIntake) -> None:
        self.intake = intake

    async def SubmitChanges(self, request: changes_pb2.SubmitChangesRequest, context: Ctx) -> Any:
        changes = [convert.change_in(c, i) for i, c in enumerate(request.changes)]
        ids, duplicate = await self.intake.submit_changes(changes, request.idempotency_key)
        return changes_pb2.SubmitChangesResponse(change_ids=ids, duplicate=duplicate)


class ControlServicer(control_pb2_grpc.ControlServiceServicer):
    def __init__(
        self, builds: BuildControl, schedulers: SchedulerControl, queries: Queries, tests: CaseHistory
    ) -> None:
        self.builds = builds
        self.schedulers = schedulers
        self.queries = queries
        self.tests = tests

    async def ForceBuild(self, request: control_pb2.ForceBuildRequest, context: Ctx) -> Any:
        bs_id, req_id = await self.builds.force_build(
            request.builder,
            reason=request.reason,
            owner=request.owner,
            branch=request.branch,
            revision=request.revision,
            repository=request.repository,
            project=request.project,
            properties=convert.properties_in(list(request.properties)),
            priority=request.priority if request.HasField("priority") else None,
            sourcestamps=[convert.sourcestamp_in(s) for s in request.sourcestamps],
            scheduler=request.scheduler,
        )
        return control_pb2.ForceBuildResponse(buildset_id=bs_id, build_request_id=req_id)

    async def RebuildBuild(self, request: control_pb2.RebuildBuildRequest, context: Ctx) -> Any:
        bs_id, req_id = await self.builds.rebuild_build(request.builder, request.number)
        return control_pb2.RebuildBuildResponse(buildset_id=bs_id, build_request_id=req_id)

    async def StopBuild(self, request: control_pb2.StopBuildRequest, context: Ctx) -> Any:
        stopped = await self.builds.stop_build(request.builder, request.number, request.reason)
        return control_pb2.StopBuildResponse(stopped=stopped)

    async def ListBuilders(self, request: control_pb2.ListBuildersRequest, context: Ctx) -> Any:
        return control_pb2.ListBuildersResponse(
            builders=[await self._builder(b.name) for b in self.queries.list_builders()]
        )

    async def GetBuilder(self, request: control_pb2.GetBuilderRequest, context: Ctx) -> Any:
        return await self._builder(request.name)

    async def _builder(self, name: str) -> control_pb2.Builder:
        b = self.queries.builder(name)
        form = self.builds.force_form(b.name)
        return control_pb2.Builder(
            force_scheduler=form.scheduler,
            force_parameters=[convert.force_parameter_pb(p) for p in form.parameters],
            force_codebases=[convert.sourcestamp_pb(s) for s in form.codebases],
            force_codebase_forms=[convert.force_codebase_pb(c) for c in form.codebase_forms],
            name=b.name,
            workers=list(b.workers),
            steps=[s.name for s in b.steps],
            pending_requests=self.queries.pending_count(b.name),
            description=b.description,
            tags=list(b.tags),
            next_expected_start=convert.ts(await self.queries.next_expected_start(b.name)),
        )

    async def ListBuilds(self, request: control_pb2.ListBuildsRequest, context: Ctx) -> Any:
        builds = await self.queries.list_builds(
            request.builder, request.limit, before_id=request.before_id,
            results=[convert.result_in(r) for r in request.results], with_steps=request.with_steps,
            branch=request.branch,
        )
        return control_pb2.ListBuildsResponse(
            builds=[convert.build_pb(b, full=False, steps=request.with_steps) for b in builds]
        )

    async def GetBuild(self, request: control_pb2.GetBuildRequest, context: Ctx) -> Any:
        _require(request.builder, "builder")
        build = await self.queries.get_build(request.builder, request.number)
        return convert.build_pb(build, full=True, estimate=await self.queries.estimate(build))

    async def ListWorkers(self, request: control_pb2.ListWorkersRequest, context: Ctx) -> Any:
        workers = await self.queries.list_workers()
        return control_pb2.ListWorkersResponse(workers=[convert.worker_pb(w) for w in workers])

    async def ListChanges(self, request: control_pb2.ListChangesRequest, context: Ctx) -> Any:
        changes = await self.queries.list_changes(request.limit)
        return control_pb2.ListChangesResponse(changes=[convert.change_pb(c) for c in changes])

    async def ListNotifications(self, request: control_pb2.ListNotificationsRequest, context: Ctx) -> Any:
        items = await self.queries.list_notifications(request.limit, request.state)
        return control_pb2.ListNotificationsResponse(notifications=[convert.notification_pb(n) for n in items])

    async def ListPendingRequests(self, request: control_pb2.ListPendingRequestsRequest, context: Ctx) -> Any:
        pending = await self.queries.list_pending(request.builder)
        return control_pb2.ListPendingRequestsResponse(requests=[convert.pending_pb(p) for p in pending])

    async def ListBuildRequests(self, request: control_pb2.ListBuildRequestsRequest, context: Ctx) -> Any:
        reqs = await self.queries.list_build_requests(request.builder, request.buildset_id, request.limit)
        return control_pb2.ListBuildRequestsResponse(requests=[convert.build_request_pb(r) for r in reqs])

    async def CancelBuildRequest(self, request: control_pb2.CancelBuildRequestRequest, context: Ctx) -> Any:
        req = await self.builds.cancel_build_request(request.request_id, request.reason)
        return control_pb2.CancelBuildRequestResponse(request=convert.build_request_pb(req))

    async def ListArtifacts(self, request: control_pb2.ListArtifactsRequest, context: Ctx) -> Any:
        _require(request.builder, "builder")
        items = await self.queries.list_artifacts(request.builder, request.number)
        return control_pb2.ListArtifactsResponse(artifacts=[convert.artifact_pb(a) for a in items])

    async def ListTests(self, request: control_pb2.ListTestsRequest, context: Ctx) -> Any:
        report = await self.tests.report(
            request.builder, convert.test_view_in(request.view), builds=request.builds, limit=request.limit,
            name=request.name,
        )
        return convert.test_report_pb(report)

    async def DownloadArtifact(self, request: control_pb2.DownloadArtifactRequest, context: Ctx) -> Any:
        _require(request.builder, "builder")
        artifact, chunks = await self.queries.open_artifact(request.builder, request.number, request.name)
        yield control_pb2.ArtifactChunk(artifact=convert.artifact_pb(artifact))
        async for data in chunks:
            yield control_pb2.ArtifactChunk(data=data)

    async def GetChange(self, request: control_pb2.GetChangeRequest, context: Ctx) -> common_pb2.Change:
        return convert.change_pb(await self.queries.get_change(request.id))

    async def ListSchedulers(self, request: control_pb2.ListSchedulersRequest, context: Ctx) -> Any:
        return control_pb2.ListSchedulersResponse(
            schedulers=[convert.scheduler_pb(s) for s in self.schedulers.list_schedulers()]
        )

    async def SetSchedulerEnabled(self, request: control_pb2.SetSchedulerEnabledRequest, context: Ctx) -> Any:
        _require(request.name, "name")
        return convert.scheduler_pb(await self.schedulers.set_scheduler_enabled(request.name, request.enabled))


class StatusServicer(status_pb2_grpc.StatusServiceServicer):
    def __init__(self, feed: StatusFeed) -> None:
        self.feed = feed

    async def Subscribe(self, request: status_pb2.SubscribeRequest, context: Ctx) -> Any:
        async def subscribed() -> None:
            # Tells the client its subscription is live: what happens from now on reaches it.
            await context.send_initial_metadata(())

        flt = EventFilter(
            frozenset(request.builders), frozenset(request.kinds), request.buildset_id, request.worker
        )
        async for event in self.feed.follow(request.since_event_id, flt, subscribed):
            if event is None:
                await context.abort(  # raises
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "subscriber too slow: its buffer overflowed; resubscribe from the last event id received",
                )
            else:
                yield convert.event_pb(event)


    async def WatchBuild(self, request: status_pb2.WatchBuildRequest, context: Ctx) -> Any:
        _require(request.builder, "builder")
        async for update in self.feed.watch_build(request.builder, request.number):
            yield status_pb2.BuildUpdate(
                event=None if update.event is None else convert.event_pb(update.event),
                build=convert.build_pb(update.build, full=True, estimate=update.estimate),
                eta=convert.ts(update.eta),
            )


class LogServicer(logs_pb2_grpc.LogServiceServicer):
    def __init__(self, reader: LogReader) -> None:
        self.reader = reader

    async def ReadLog(self, request: logs_pb2.ReadLogRequest, context: Ctx) -> Any:
        log_id = await self._log_id(request)
        return _log_data(await self.reader.read(log_id, request.offset, request.limit, request.channel))

    async def FollowLog(self, request: logs_pb2.ReadLogRequest, context: Ctx) -> Any:
        log_id = await self._log_id(request)
        async for part in self.reader.follow(log_id, request.offset, request.channel):
            yield _log_data(part)

    async def _log_id(self, request: logs_pb2.ReadLogRequest) -> int:
        _require(request.builder, "builder")
        _require(request.step, "step")
        if request.offset < 0 or request.limit < 0:
            raise InvalidArgument("offset and limit must not be negative")
        info = await self.reader.find(request.builder, request.build_number, request.step, request.log or "stdio")
        return info.id


def _log_data(part: Any) -> logs_pb2.LogData:
    return logs_pb2.LogData(
        data=part.data,
        offset=part.offset,
        eof=part.eof,
        segments=[logs_pb2.LogSegment(channel=ch, data=d) for ch, d in part.segments],
        times=[logs_pb2.LogTimeMark(offset=o, unix_ms=ms) for o, ms in part.times],
    )


def _require(value: str, field: str) -> None:
    if not value:
        raise InvalidArgument(f"{field} is required")

