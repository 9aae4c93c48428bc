"""`GantryClient`: a small typed asyncio client for the Gantry coordinator's gRPC API.

    async with GantryClient("localhost:9989") as gantry:
        await gantry.wait_ready(10)
        [change_id] = await gantry.submit_changes([{"author": "a", "repository": "r",
                                                    "branch": "main", "revision": "abc"}])
        async for event in gantry.subscribe(since_event_id=0, kinds=["build.finished"]):
            print(event.builder, event.build_number, event.result)

Every failed call raises a `clients.errors.GantryError`. Streams (`subscribe`, `follow_log`)
resume by themselves after a broken connection, without missing or repeating anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncGenerator, Awaitable, Iterable, Mapping
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import convert, errors, models
from clients.connection import Connection, Tls, open_channel
from protos.gantry.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    changes_pb2,
    changes_pb2_grpc,
    control_pb2,
    control_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
    try_pb2,
    try_pb2_grpc,
)

T = TypeVar("T")

DEFAULT_ADDRESS = "localhost:9989"
# Headroom above grpc's default 4 MiB receive limit for large LogData replies.
_MAX_MESSAGE = 16 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    # Reconnect quickly after a coordinator restart (grpc's default starts at 1 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
# Stream errors after which the client reconnects and resumes. RESOURCE_EXHAUSTED is how the
# coordinator drops a subscriber that reads too slowly.
# `gantry tests` views, by the name the CLI and this library take.
TEST_VIEWS = {
    "failing": control_pb2.TEST_VIEW_FAILING,
    "flaky": control_pb2.TEST_VIEW_FLAKY,
    "slowest": control_pb2.TEST_VIEW_SLOWEST,
    "history": control_pb2.TEST_VIEW_HISTORY,
}
_RESUMABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


class Backoff:
    """Exponential backoff with jitter between `initial` and `maximum` seconds."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def reset(self) -> None:
        self._next = self.initial

    async def wait(self) -> None:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self.maximum, self._next * 2)
        await asyncio.sleep(delay)


class GantryClient:
    """Async client for one coordinator at `address` ("HOST:PORT")."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 30.0,
        reconnect_backoff: tuple[float, float] = (0.1, 5.0),
        token: str = "",
        tls: Tls | None = None,
    ) -> None:
        self.address = address
        # Sent as `authorization: Bearer TOKEN` with every call (a coordinator may require it).
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self.timeout = timeout
        self._backoff = reconnect_backoff
        self._tls = tls is not None
        self._channel = open_channel(Connection(address, token, tls), _CHANNEL_OPTIONS)
        self._changes = changes_pb2_grpc.ChangeServiceStub(self._channel)
        self._control = control_pb2_grpc.ControlServiceStub(self._channel)
        self._status = status_pb2_grpc.StatusServiceStub(self._channel)
        self._logs = logs_pb2_grpc.LogServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._try = try_pb2_grpc.TryServiceStub(self._channel)

    async def __aenter__(self) -> GantryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; idempotent."""
        await self._channel.close()

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.RpcError as err:
            raise errors.from_rpc_error(err, self.address, tls=self._tls) from None

    # -- readiness ---------------------------------------------------------------------------

    # The explicit timeout is part of the API (it also bounds each health call's deadline).
    async def wait_ready(self, timeout: float = 30.0, service: str = "") -> None:  # noqa: ASYNC109
        """Wait until the coordinator's health service reports SERVING.

        A server without a health status for `service` (NOT_FOUND, UNIMPLEMENTED) counts as
        ready: it answered, which is all we can learn. Raises `CoordinatorUnavailable` after
        `timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        request = health_pb2.HealthCheckRequest(service=service)
        while (remaining := deadline - loop.time()) > 0:
            try:
                response = await self._health.Check(
                    request, timeout=min(remaining, 2.0), wait_for_ready=True
                )
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as err:
                code = err.code()
                if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNIMPLEMENTED):
                    return
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise errors.from_rpc_error(err, self.address, tls=self._tls) from None
            await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
        raise errors.CoordinatorUnavailable(
            "UNAVAILABLE",
            f"the coordinator at {self.address} did not become ready within {timeout:g}s",
        )

    async def _connect(self) -> None:
        """Wait until the channel is connected; if the first attempt to connect fails, raise
        `CoordinatorUnavailable` (streams retry only once they have been connected)."""
        ready = grpc.ChannelConnectivity.READY
        failed = (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)
        try:
            async with asyncio.timeout(self.timeout):
                state = self._channel.get_state(try_to_connect=True)
                while state != ready:
                    if state in failed:
                        raise await self._why_unreachable()
                    await self._channel.wait_for_state_change(state)
                    state = self._channel.get_state(try_to_connect=True)
        except TimeoutError:
            raise errors.CoordinatorUnavailable(
                "UNAVAILABLE", errors.unreachable_message(self.address)
            ) from None

    async def _why_unreachable(self) -> errors.GantryError:
        """The connectivity state says only "failed": one call learns why (a TLS mismatch...)."""
        try:
            await self._health.Check(health_pb2.HealthCheckRequest(), timeout=min(self.timeout, 5.0))
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAVAILABLE:
                return errors.from_rpc_error(err, self.address, tls=self._tls)
        return errors.CoordinatorUnavailable("UNAVAILABLE", errors.unreachable_message(self.address))

    # -- changes -----------------------------------------------------------------------------

    async def submit_changes(
        self,
        changes: Iterable[models.Change | Mapping[str, Any]],
        idempotency_key: str = "",
    ) -> list[int]:
        """Submit changes atomically (oldest first); returns their ids in order."""
        request = changes_pb2.SubmitChangesRequest(
            changes=convert.changes_to_proto(changes), idempotency_key=idempotency_key
        )
        response = await self._call(
            self._changes.SubmitChanges(request, timeout=self.timeout, metadata=self._metadata)
        )
        return list(response.change_ids)

    # -- control -----------------------------------------------------------------------------

    async def force_build(
        self,
        builder: str,
        branch: str = "",
        revision: str = "",
        repository: str = "",
        reason: str = "",
        properties: Mapping[str, object] | None = None,
        owner: str = "",
        project: str = "",
        priority: int | None = None,
        codebases: Mapping[str, Mapping[str, str]] | None = None,
        scheduler: str = "",
    ) -> models.ForceResult:
        """Force a build; returns `(buildset_id, build_request_id)`. `priority` None: the
        ForceScheduler's. `codebases` gives a codebase's branch/revision/repository/project:
        ``{"lib": {"branch": "dev"}}``."""
        request = control_pb2.ForceBuildRequest(
            priority=priority,
            builder=builder,
            branch=branch,
            revision=revision,
            repository=repository,
            reason=reason,
            owner=owner,
            project=project,
            properties=convert.properties_to_proto(properties or {}),
            sourcestamps=convert.codebases_to_proto(codebases or {}),
            scheduler=scheduler,
        )
        response = await self._call(self._control.ForceBuild(request, timeout=self.timeout))
        return models.ForceResult(response.buildset_id, response.build_request_id)

    async def submit_try(
        self,
        builders: Iterable[str],
        patch: bytes,
        *,
        author: str,
        repository: str = "",
        branch: str = "",
        revision: str = "",
        comment: str = "",
        properties: Mapping[str, object] | None = None,
        scheduler: str = "",
    ) -> models.TryResult:
        """Send a try job: `patch` (`git diff --binary` output) on `revision` of `branch`, built
        on `builders` (each listed by a TryScheduler)."""
        request = try_pb2.SubmitTryRequest(
            builders=list(builders), patch=patch, author=author, repository=repository, branch=branch,
            revision=revision, comment=comment, properties=convert.properties_to_proto(properties or {}),
            scheduler=scheduler,
        )
        response = await self._call(self._try.SubmitTry(request, timeout=self.timeout))
        return models.TryResult(response.buildset_id, dict(response.build_request_ids), response.scheduler)

    async def rebuild_build(self, builder: str, number: int) -> models.ForceResult:
        """Rebuild a build (same source stamps and buildset properties, same builder); returns
        the new `(buildset_id, build_request_id)`."""
        request = control_pb2.RebuildBuildRequest(builder=builder, number=number)
        response = await self._call(self._control.RebuildBuild(request, timeout=self.timeout))
        return models.ForceResult(response.buildset_id, response.build_request_id)

    async def stop_build(self, builder: str, number: int, reason: str = "") -> bool:
        """Stop a running build; False when it had already finished."""
        request = control_pb2.StopBuildRequest(builder=builder, number=number, reason=reason)
        response = await self._call(self._control.StopBuild(request, timeout=self.timeout))
        return response.stopped

    async def cancel_build_request(self, request_id: int, reason: str = "") -> models.BuildRequest:
        """Cancel a build request that has not started; returns it, complete and CANCELLED."""
        request = control_pb2.CancelBuildRequestRequest(request_id=request_id, reason=reason)
        response = await self._call(self._control.CancelBuildRequest(request, timeout=self.timeout))
        return convert.build_request_from_proto(response.request)

    async def list_builders(self) -> list[models.Builder]:
        request = control_pb2.ListBuildersRequest()
        response = await self._call(self._control.ListBuilders(request, timeout=self.timeout))
        return [convert.builder_from_proto(b) for b in response.builders]

    async def get_builder(self, name: str) -> models.Builder:
        request = control_pb2.GetBuilderRequest(name=name)
        response = await self._call(self._control.GetBuilder(request, timeout=self.timeout))
        return convert.builder_from_proto(response)

    async def list_builds(self, builder: str = "", limit: int = 20) -> list[models.Build]:
        """Builds, newest first (without steps, properties or changes)."""
        request = control_pb2.ListBuildsRequest(builder=builder, limit=limit)
        response = await self._call(self._control.ListBuilds(request, timeout=self.timeout))
        return [convert.build_from_proto(b) for b in response.builds]

    async def get_build(self, builder: str, number: int) -> models.Build:
        """One build with its steps, properties and changes."""
        request = control_pb2.GetBuildRequest(builder=builder, number=number)
        response = await self._call(self._control.GetBuild(request, timeout=self.timeout))
        return convert.build_from_proto(response)

    async def watch_build(self, builder: str, number: int) -> AsyncGenerator[models.BuildUpdate, None]:
        """The build's full state (with ETA), then its state after each of its events, until it
        finishes: one call instead of polling GetBuild."""
        await self._connect()
        call = self._status.WatchBuild(status_pb2.WatchBuildRequest(builder=builder, number=number))
        try:
            async for message in call:
                yield convert.build_update_from_proto(message)
        except grpc.RpcError as err:
            raise errors.from_rpc_error(err, self.address, tls=self._tls) from None
        finally:
            call.cancel()

    async def list_notifications(
        self, limit: int = 20, state: str = ""
    ) -> list[models.Notification]:
        """Notifications queued by notifiers, newest first."""
        request = control_pb2.ListNotificationsRequest(limit=limit, state=state)
        response = await self._call(self._control.ListNotifications(request, timeout=self.timeout))
        return [convert.notification_from_proto(n) for n in response.notifications]

    async def list_schedulers(self) -> list[models.Scheduler]:
        """The configured schedulers, by name, with enabled and next fire time."""
        response = await self._call(
            self._control.ListSchedulers(control_pb2.ListSchedulersRequest(), timeout=self.timeout)
        )
        return [convert.scheduler_from_proto(s) for s in response.schedulers]

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> models.Scheduler:
        """Enable or disable a scheduler at run time (stored; survives a restart)."""
        request = control_pb2.SetSchedulerEnabledRequest(name=name, enabled=enabled)
        return convert.scheduler_from_proto(
            await self._call(self._control.SetSchedulerEnabled(request, timeout=self.timeout))
        )

    async def list_pending(self, builder: str = "") -> list[models.PendingRequest]:
        """Unstarted build requests in start order, each with why it waits."""
        request = control_pb2.ListPendingRequestsRequest(builder=builder)
        response = await self._call(self._control.ListPendingRequests(request, timeout=self.timeout))
        return [convert.pending_from_proto(p) for p in response.requests]

    async def list_build_requests(
        self, builder: str = "", buildset_id: int = 0, limit: int = 20
    ) -> list[models.BuildRequest]:
        """Build requests, newest first (a collapsed one names the request that absorbed it)."""
        request = control_pb2.ListBuildRequestsRequest(builder=builder, buildset_id=buildset_id, limit=limit)
        response = await self._call(self._control.ListBuildRequests(request, timeout=self.timeout))
        return [convert.build_request_from_proto(r) for r in response.requests]

    async def list_artifacts(self, builder: str, number: int) -> list[models.Artifact]:
        """The files a build stored on the coordinator."""
        request = control_pb2.ListArtifactsRequest(builder=builder, number=number)
        response = await self._call(self._control.ListArtifacts(request, timeout=self.timeout))
        return [convert.artifact_from_proto(a) for a in response.artifacts]

    async def list_tests(
        self, builder: str, view: str = "failing", *, name: str = "", builds: int = 0, limit: int = 0
    ) -> models.TestReport:
        """A builder's test results across its recent builds; `view` is failing, flaky, slowest
        or history (every run of the test `name`)."""
        request = control_pb2.ListTestsRequest(
            builder=builder, view=TEST_VIEWS[view], name=name, builds=builds, limit=limit
        )
        response = await self._call(self._control.ListTests(request, timeout=self.timeout))
        return convert.test_report_from_proto(response)

    async def download_artifact(
        self, builder: str, number: int, name: str
    ) -> AsyncGenerator[models.Artifact | bytes, None]:
        """The artifact's record first (size, sha256), then its bytes in chunks."""
        await self._connect()
        request = control_pb2.DownloadArtifactRequest(builder=builder, number=number, name=name)
        call = self._control.DownloadArtifact(request)
        try:
            async for chunk in call:
                if chunk.HasField("artifact"):
                    yield convert.artifact_from_proto(chunk.artifact)
                if chunk.data:
                    yield chunk.data
        except grpc.RpcError as err:
            raise errors.from_rpc_error(err, self.address, tls=self._tls) from None
        finally:
            call.cancel()

    async def hold_worker(self, action: str, name: str, reason: str = "") -> models.Worker:
        """`action` "pause", "drain" or "resume" the worker `name`; returns it as it is now.
        Pause returns once no build can start on the worker any more."""
        request = admin_pb2.WorkerHoldRequest(name=name, reason=reason)
        call = {"pause": self._admin.PauseWorker, "drain": self._admin.DrainWorker,
                "resume": self._admin.ResumeWorker}[action]
        return convert.worker_from_proto(await self._call(call(request, timeout=self.timeout)))

    async def reconfig(self, dry_run: bool = False) -> admin_pb2.ReconfigResponse:
        """Reload the coordinator's configuration file (or, with `dry_run`, say what it would
        change); a file with errors raises FailedPrecondition naming FILE:LINE of each."""
        request = admin_pb2.ReconfigRequest(dry_run=dry_run)
        response: admin_pb2.ReconfigResponse = await self._call(self._admin.Reconfig(request, timeout=self.timeout))
        return response

    async def run_janitor(self, dry_run: bool = False) -> admin_pb2.JanitorResponse:
        """Apply the Retention rules now (or, with `dry_run`, count what would be deleted)."""
        request = admin_pb2.JanitorRequest(dry_run=dry_run)
        response: admin_pb2.JanitorResponse = await self._call(self._admin.RunJanitor(request, timeout=self.timeout))
        return response

    async def list_workers(self) -> list[models.Worker]:
        request = control_pb2.ListWorkersRequest()
        response = await self._call(self._control.ListWorkers(request, timeout=self.timeout))
        return [convert.worker_from_proto(w) for w in response.workers]

    async def list_changes(self, limit: int = 20) -> list[models.Change]:
        """Changes, newest first."""
        request = control_pb2.ListChangesRequest(limit=limit)
        response = await self._call(self._control.ListChanges(request, timeout=self.timeout))
        return [convert.change_from_proto(c) for c in response.changes]

    async def get_change(self, change_id: int) -> models.Change:
        request = control_pb2.GetChangeRequest(id=change_id)
        response = await self._call(self._control.GetChange(request, timeout=self.timeout))
        return convert.change_from_proto(response)

    # -- logs --------------------------------------------------------------------------------

    async def read_log(
        self,
        builder: str,
        number: int,
        step: str | int,
        log: str = "stdio",
        offset: int = 0,
        limit: int = 0,
        channel: models.Channel = models.Channel.ALL,
    ) -> models.LogChunk:
        """Up to `limit` bytes (0: the server's maximum, 1 MiB) of a log from `offset`."""
        request = _log_request(builder, number, step, log, offset, limit, channel)
        response = await self._call(self._logs.ReadLog(request, timeout=self.timeout))
        return convert.log_chunk_from_proto(response)

    async def follow_log(
        self,
        builder: str,
        number: int,
        step: str | int,
        log: str = "stdio",
        offset: int = 0,
        channel: models.Channel = models.Channel.ALL,
    ) -> AsyncGenerator[bytes, None]:
        """The log's bytes from `offset` as they arrive, until the log is complete.

        Resumes from the last byte received if the connection breaks.
        """
        async for chunk in self.follow_log_chunks(builder, number, step, log, offset, channel):
            yield chunk.data

    async def follow_log_chunks(
        self,
        builder: str,
        number: int,
        step: str | int,
        log: str = "stdio",
        offset: int = 0,
        channel: models.Channel = models.Channel.ALL,
    ) -> AsyncGenerator[models.LogChunk, None]:
        """As follow_log, each piece with its offset and times (`LogChunk.times`)."""
        backoff = Backoff(*self._backoff)
        await self._connect()
        while True:
            request = _log_request(builder, number, step, log, offset, 0, channel)
            call = self._logs.FollowLog(request)
            try:
                async for chunk in call:
                    backoff.reset()
                    # After a resume the server may send bytes we already have: skip them.
                    skip = max(0, offset - chunk.offset)
                    data = chunk.data[skip:]
                    if data:
                        piece = convert.log_chunk_from_proto(chunk)
                        offset = chunk.offset + len(chunk.data)
                        yield dataclasses.replace(piece, data=data, offset=chunk.offset + skip)
                    if chunk.eof:
                        return
                return  # the server ended the stream: the log is complete
            except grpc.RpcError as err:
                if err.code() not in _RESUMABLE:
                    raise errors.from_rpc_error(err, self.address, tls=self._tls) from None
            finally:
                call.cancel()
            await backoff.wait()

    # -- status ------------------------------------------------------------------------------

    async def subscribe(
        self,
        since_event_id: int = -1,
        builders: Iterable[str] = (),
        kinds: Iterable[str] = (),
        *,
        buildset_id: int = 0,
        worker: str = "",
        connected: asyncio.Event | None = None,
    ) -> AsyncGenerator[models.Event, None]:
        """Events with id > `since_event_id` (0: all history, -1: only new), then live ones.

        Runs until the caller stops iterating. When the stream breaks (coordinator restarting,
        network trouble, or the coordinator dropping a subscriber that reads too slowly), it
        reconnects with backoff and resumes after the last event yielded, so the caller sees
        every event once, in order. A coordinator that cannot be reached at all on the first
        attempt raises `CoordinatorUnavailable` at once. `connected`, if given, is set once the
        coordinator has registered the subscription (it then sends initial metadata). With
        `since_event_id=-1`, events published during a reconnect before any event arrived are
        not delivered: pass a real id to be exact.
        """
        last = since_event_id
        builders, kinds = list(builders), list(kinds)
        backoff = Backoff(*self._backoff)
        await self._connect()
        while True:
            request = status_pb2.SubscribeRequest(
                since_event_id=last, builders=builders, kinds=kinds,
                buildset_id=buildset_id, worker=worker,
            )
            call = self._status.Subscribe(request)
            try:
                # The coordinator sends initial metadata once the subscription is registered:
                # from then on nothing published is missed.
                await call.initial_metadata()
                if connected is not None:
                    connected.set()
                async for message in call:
                    backoff.reset()
                    if last >= 0 and message.id <= last:
                        continue  # replayed by the server after a resume: already yielded
                    last = message.id
                    yield convert.event_from_proto(message)
                # A subscription never ends by itself; a clean end means a server shutdown.
            except grpc.RpcError as err:
                if err.code() not in _RESUMABLE:
                    raise errors.from_rpc_error(err, self.address, tls=self._tls) from None
            finally:
                call.cancel()
            await backoff.wait()


def _log_request(
    builder: str,
    number: int,
    step: str | int,
    log: str,
    offset: int,
    limit: int,
    channel: models.Channel,
) -> logs_pb2.ReadLogRequest:
    return logs_pb2.ReadLogRequest(
        builder=builder,
        build_number=number,
        step=str(step),
        log=log,
        offset=offset,
        limit=limit,
        channel=channel.name,  # protobuf accepts enum names
    )
