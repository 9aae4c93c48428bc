"""The interfaces through which the domain reaches time and storage (implemented elsewhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from coordinator.domain.events import Event
from coordinator.domain.model import (
    Artifact,
    Build,
    BuildRequest,
    Buildset,
    Change,
    Classified,
    LogChunk,
    LogInfo,
    NewBuildset,
    PropertyValue,
    SchedulerCommit,
    SchedulerRecord,
    Step,
    StepSample,
    WorkerRecord,
)
from coordinator.domain.results import Result


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...


class SecretProvider(Protocol):
    """Where secrets come from (Buildbot's secretsProviders, e.g. SecretInAFile)."""

    def get(self, name: str) -> str | None:
        """The secret's value, or None when this provider does not have it."""
        ...


class HostProcess(Protocol):
    """A command running on the coordinator host (MasterShellCommand)."""

    def interrupt(self, reason: str) -> None: ...

    async def wait(self) -> tuple[int, str]:
        """(exit code, reason): reason is "" for a normal exit, else "interrupted", "timeout",
        "max_time" or "failed to start: ..."; the output has been delivered by then."""
        ...


class HostCommands(Protocol):
    """Runs commands on the coordinator host, each in its own process group."""

    def start(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str,
        env: Mapping[str, str],
        timeout: float,
        max_time: float,
        on_output: Callable[[int, bytes], Awaitable[None]],
    ) -> HostProcess: ...


class Repository(Protocol):
    """Everything the coordinator stores. Every write commits before it returns, records the
    events describing it in the same transaction, and storage then publishes them in id order.
    """

    # changes
    async def add_changes(
        self, changes: Sequence[Change], idempotency_key: str, at: float,
        classified: Sequence[Classified] = (),
    ) -> tuple[list[int], bool]:
        """Store changes (and, in the same transaction, which schedulers took them)."""
        ...

    async def get_change(self, change_id: int) -> Change | None: ...

    async def list_changes(self, limit: int) -> list[Change]: ...

    # change sources: the branch heads a poller saw, stored with the changes it submits
    async def get_change_source_state(self, name: str) -> dict[str, str] | None: ...

    async def add_polled_changes(
        self, name: str, changes: Sequence[Change], state: dict[str, str], at: float,
        previous: dict[str, str] | None, classified: Sequence[Classified] = (),
    ) -> list[int]: ...

    # buildsets and requests
    async def add_buildset(
        self, buildset: NewBuildset | None, at: float, commit: SchedulerCommit | None = None
    ) -> tuple[int, dict[str, int]]:
        """Store a buildset and apply `commit` atomically with it (AlreadyScheduled refuses both)."""
        ...

    async def get_buildset(self, buildset_id: int) -> Buildset | None: ...

    async def unclaimed_requests(self) -> list[BuildRequest]: ...

    async def claim_request(self, request_id: int, coordinator_id: str, at: float) -> bool: ...

    async def release_orphaned_claims(self, coordinator_id: str, at: float) -> int: ...

    # scheduler state
    async def load_scheduler_state(self, names: Sequence[str]) -> dict[str, SchedulerRecord]: ...

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> None: ...

    async def dependent_backlog(self, scheduler: str, upstream: str) -> list[Buildset]:
        """The Dependent `scheduler`'s upstream buildsets (of scheduler `upstream`) that ended
        SUCCESS/WARNINGS and have no downstream buildset yet, oldest first (none the first
        time a Dependent is seen: it starts from the newest buildset)."""
        ...

    async def forget_schedulers(self, configured: Sequence[str], dependents: Sequence[str]) -> dict[str, int]:
        """Drop the pending changes of schedulers not in `configured` and the Dependent
        bookkeeping of ones not in `dependents`: {scheduler: pending changes dropped}."""
        ...

    async def get_buildsets(self, buildset_ids: Sequence[int]) -> dict[int, Buildset]:
        """Several buildsets in one read (those that exist)."""
        ...

    async def collapse_requests(self, into: BuildRequest, request_ids: Sequence[int], at: float) -> list[int]:
        """Complete the still unclaimed ones of `request_ids` as SKIPPED, absorbed by `into`
        (their buildsets finish when complete); returns the ids actually absorbed."""
        ...

    async def list_build_requests(self, builder: str, buildset_id: int, limit: int) -> list[BuildRequest]: ...

    async def cancel_requests(
        self, request_ids: Sequence[int], reason: str, at: float
    ) -> tuple[list[int], dict[int, BuildRequest]]:
        """Complete the unclaimed ones as CANCELLED (event buildrequest.cancelled; a buildset
        whose requests are all done finishes): (ids cancelled, existing requests as they are now)."""
        ...

    # builds, steps, logs
    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[PropertyValue], at: float,
        step_names: Sequence[str] = (),
    ) -> Build:
        """Store the new build (number: the builder's next); with `step_names`, also its steps
        (pending, in `build.steps`) in the same commit, as add_steps would."""
        ...

    async def finish_build(
        self, build: Build, result: Result, state_string: str, at: float, requeue: bool,
        properties: list[PropertyValue] | None = None,
    ) -> None:
        """End the build (and store its final `properties`, when given, in the same commit)."""
        ...

    async def add_steps(self, build: Build, names: Sequence[str]) -> list[Step]: ...

    async def start_step(self, build: Build, step: Step, at: float) -> None: ...

    async def finish_step(
        self, build: Build, step: Step, result: Result, state_string: str, at: float,
        logs: Sequence[int] = (),
    ) -> None:
        """End the step; the step's open `logs` (ids) are marked complete in the same commit."""
        ...

    async def set_build_properties(self, build: Build, properties: list[PropertyValue]) -> None: ...

    async def set_build_state(self, build: Build, state_string: str, at: float) -> None:
        """Persist a running build's state string (e.g. "waiting for lock L"); event build.state."""
        ...

    async def set_step_state(self, build: Build, step: Step, state_string: str, at: float) -> None:
        """Persist a running step's state string; event step.state."""
        ...

    async def set_step_urls(self, build: Build, step: Step, at: float) -> None:
        """Store `step.urls` while the step runs (finish_step stores them too); event step.urls
        (details: urls, all of the step's links as [{name, url}])."""
        ...

    async def add_log(self, step: Step, name: str, type_: str) -> LogInfo: ...

    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]:
        """Queue a chunk for the next group commit; resolves once it is stored."""
        ...

    async def finish_log(self, log_id: int) -> None: ...

    # reads
    async def get_build(self, builder: str, number: int) -> Build | None: ...

    async def list_builds(self, builder: str, limit: int) -> list[Build]: ...

    async def recent_step_durations(self, builder: str, builds: int) -> list[StepSample]:
        """Steps that ran in the builder's last `builds` successful builds (one query)."""
        ...

    async def get_log(self, builder: str, number: int, step: str, log_name: str) -> LogInfo | None: ...

    async def get_log_info(self, log_id: int) -> LogInfo | None: ...

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]: ...

    # workers
    async def worker_connected(self, name: str, info: dict[str, str], at: float) -> None: ...

    async def worker_disconnected(self, name: str, at: float, reason: str) -> None: ...

    async def list_workers(self) -> list[WorkerRecord]: ...

    # events
    async def events_after(self, since_id: int, limit: int) -> list[Event]: ...

    async def last_event_id(self) -> int: ...

    # notifications (written by the notification service through NotificationStore)
    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]: ...

    # artifacts (the bytes live in an ArtifactStore; the database records them)
    async def add_artifact(self, build: Build, step: Step, name: str, size: int, sha256: str, at: float) -> Artifact:
        """Record an artifact of the build (replacing one of the same name)."""
        ...

    async def list_artifacts(self, builder: str, number: int) -> list[Artifact]: ...

    async def get_artifact(self, builder: str, number: int, name: str) -> Artifact | None: ...


# ---------------------------------------------------------------- files on the coordinator


class ByteSink(Protocol):
    """Where transferred bytes land: written in order, then committed (complete and verified)
    or aborted (nothing partial stays behind)."""

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class ArtifactStore(Protocol):
    """The coordinator's files: build artifacts under its data directory, and the files
    FileUpload/DirectoryUpload/FileDownload name (relative paths are under the data directory,
    as Buildbot's are under the master's basedir)."""

    def artifact_sink(self, builder: str, number: int, name: str) -> ByteSink: ...

    def file_sink(self, path: str, mode: int | None) -> ByteSink: ...

    def directory_sink(self, path: str) -> ByteSink:
        """Receives a tar stream; on commit its contents replace the directory `path`."""
        ...

    def file_size(self, path: str) -> int | None:
        """Size of the coordinator file `path`, or None when it is not a readable file."""
        ...

    def read_file(self, path: str) -> AsyncIterator[bytes]: ...

    def read_artifact(self, builder: str, number: int, name: str) -> AsyncIterator[bytes]: ...

    def file_size_of_artifact(self, builder: str, number: int, name: str) -> int | None: ...


# ---------------------------------------------------------------- notifications (mail, http push)


@dataclass
class Notification:
    """A message a notifier queued: delivered in the background, at most once per `key`."""

    id: int
    notifier: str
    kind: str  # "mail" / "http"
    key: str  # unique: "{notifier}:{builder}:{number}:{event}" - never queued twice
    payload: dict[str, Any]
    state: str  # "pending" / "sent" / "failed"
    attempts: int
    next_attempt_at: float
    last_error: str
    created_at: float
    sent_at: float | None = None


class NotificationStore(Protocol):
    """What the notification service needs from storage (on top of reading builds/events)."""

    async def get_build(self, builder: str, number: int) -> Build | None: ...

    async def previous_build_result(self, builder: str, number: int) -> Result | None: ...

    async def builds_of_buildset(self, buildset_id: int) -> list[tuple[str, int]]: ...

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]: ...

    async def events_after(self, since_id: int, limit: int) -> list[Event]: ...

    async def last_event_id(self) -> int: ...

    async def get_notifier_cursor(self, name: str) -> int | None: ...

    async def set_notifier_cursor(self, name: str, event_id: int) -> None: ...

    async def add_notification(
        self, notifier: str, kind: str, key: str, payload: dict[str, Any], at: float
    ) -> bool: ...

    async def claim_due_notifications(
        self, now: float, lease: float, limit: int
    ) -> list[Notification]: ...

    async def notification_sent(self, notification_id: int, at: float) -> None: ...

    async def notification_failed(
        self, notification_id: int, error: str, next_attempt_at: float | None
    ) -> None: ...

    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]: ...
