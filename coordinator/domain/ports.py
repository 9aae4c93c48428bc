"""The interfaces through which the domain reaches time and storage (implemented elsewhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from coordinator.domain.events import Event
from coordinator.domain.model import (
    Artifact,
    Build,
    BuildRequest,
    Buildset,
    CaseResult,
    CaseRun,
    Change,
    Classified,
    JournalEntry,
    LogChunk,
    LogInfo,
    NewBuildset,
    PropertyValue,
    SchedulerCommit,
    SchedulerRecord,
    Step,
    StepSample,
    WorkerHold,
    WorkerRecord,
)
from coordinator.domain.results import Result

T = TypeVar("T")


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


# ---------------------------------------------------------------- storage, by role
#
# Each consumer states what it uses: a port per role, implemented by storage's per-concept stores
# (SQL) and by MemoryStorage (storage/memory.py). Every write commits before it returns, with the
# events the domain passed for it (`events=`: a list, or for an insert a function of the stored
# rows) in the same transaction; storage then publishes them in id order.


class Ledger(Protocol):
    """Requests, buildsets and the build rows that settle them, inside one transaction: the
    bookkeeping rules (domain/builds/bookkeeping.py) decide through it, storage only applies.
    Synchronous, because it runs inside the storage transaction."""

    def requests(self, request_ids: Sequence[int]) -> dict[int, BuildRequest]:
        """Those of the requests that exist, as they are now (one read)."""
        ...

    def request_results(self, buildset_id: int) -> list[Result | None]:
        """The result of each of the buildset's requests, None for one not complete yet."""
        ...

    def complete_request(self, request_id: int, result: Result, at: float, *, unclaimed_only: bool) -> bool:
        """Complete the request; with `unclaimed_only`, only if nobody claimed or completed it
        (one conditional write: a claim and this never both win). Whether it was completed."""
        ...

    def unclaim_request(self, request_id: int) -> None: ...

    def unclaim_all(self, coordinator_id: str, keep: Collection[int] = ()) -> int:
        """Release every incomplete request `coordinator_id` claimed (but those in `keep`); how many."""
        ...

    def record_collapse(self, request_id: int, into_id: int, at: float) -> None: ...

    def complete_buildset(self, buildset_id: int, result: Result, at: float) -> None: ...

    def finish_build(
        self, build: Build, result: Result, state_string: str, at: float, properties: list[PropertyValue] | None
    ) -> None: ...

    def running_builds(self, coordinator_id: str) -> list[Build]:
        """Unfinished builds whose request `coordinator_id` claimed."""
        ...

    def end_running_steps(self, build: Build, result: Result, state_string: str, at: float) -> None: ...

    def emit(self, event: Event) -> None: ...


class Bookkeeper(Protocol):
    async def record(self, decide: Callable[[Ledger], T]) -> T:
        """Run `decide` in one transaction and commit what it did and emitted."""
        ...


class ChangeIntakeStore(Protocol):
    """What change intake stores: changes (at most once per idempotency key) with the schedulers
    that took them, and what each change source has seen."""

    async def add_changes(
        self, changes: Sequence[Change], idempotency_key: str, at: float,
        classified: Sequence[Classified], events: Callable[[list[Change]], list[Event]],
    ) -> tuple[list[int], bool]:
        """(ids, whether the key had been seen: then nothing is stored and no event written)."""
        ...

    async def get_change_source_state(self, name: str) -> dict[str, str] | None: ...

    async def add_polled_changes(
        self, name: str, changes: Sequence[Change], state: dict[str, str], at: float,
        previous: dict[str, str] | None, classified: Sequence[Classified],
        events: Callable[[list[Change]], list[Event]],
    ) -> list[int]:
        """Store the changes and `name`'s new state atomically, only if the stored state is still
        `previous` (else FailedPrecondition: another coordinator polled first)."""
        ...


class BuildsetStore(Protocol):
    """What submitting a buildset stores."""

    async def add_buildset(
        self, buildset: NewBuildset | None, at: float, commit: SchedulerCommit | None,
        events: Callable[[int, list[BuildRequest]], list[Event]],
    ) -> tuple[int, dict[str, int]]:
        """Store a buildset, its requests and `commit` atomically (AlreadyScheduled refuses all);
        buildset None stores only the commit and returns (0, {})."""
        ...


class BuildsetReads(Protocol):
    async def get_buildset(self, buildset_id: int) -> Buildset | None: ...


class RequestReads(BuildsetReads, Protocol):
    async def list_build_requests(
        self, builder: str, buildset_id: int, limit: int, *, among: Collection[str] | None = None
    ) -> list[BuildRequest]:
        """Newest first; `among` (when not None) keeps only requests of those builders."""
        ...


class DownstreamStore(BuildsetReads, Protocol):
    async def dependent_backlog(self, scheduler: str, upstream: str) -> list[Buildset]:
        """The Dependent `scheduler`'s upstream buildsets (of scheduler `upstream`) that ended
        SUCCESS/WARNINGS and have no downstream buildset yet, oldest first (none the first
        time a Dependent is seen: it starts from the newest buildset)."""
        ...


class RequestQueue(BuildsetReads, Protocol):
    """What the dispatcher reads and claims."""

    async def unclaimed_requests(self) -> list[BuildRequest]: ...

    async def claim_request(self, request_id: int, coordinator_id: str, at: float) -> bool:
        """Atomically claim an unclaimed request: exactly one claimer wins."""
        ...

    async def get_buildsets(self, buildset_ids: Sequence[int]) -> dict[int, Buildset]: ...


class SchedulerStateStore(Protocol):
    async def load_scheduler_state(self, names: Sequence[str]) -> dict[str, SchedulerRecord]: ...

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> None: ...

    async def forget_schedulers(self, configured: Sequence[str], dependents: Sequence[str]) -> dict[str, int]:
        """Drop the pending changes of schedulers not in `configured` and the Dependent
        bookkeeping of ones not in `dependents`: {scheduler: pending changes dropped}."""
        ...


class BuildStarter(Protocol):
    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[PropertyValue], at: float,
        step_names: Sequence[str], events: Callable[[Build], list[Event]],
    ) -> Build:
        """Store the new build (number: the builder's next) and its pending steps (in
        `build.steps`) in one commit."""
        ...


class BuildRecorder(Protocol):
    """What a running build records of itself."""

    async def add_steps(self, build: Build, names: Sequence[str], first: int = 0) -> list[Step]:
        """Steps numbered from `first` (a build's steps at its start; later, steps appended)."""
        ...

    async def start_step(self, build: Build, step: Step, at: float, events: Sequence[Event]) -> None: ...

    async def finish_step(
        self, build: Build, step: Step, result: Result, state_string: str, at: float,
        logs: Sequence[int], events: Sequence[Event], properties: Sequence[PropertyValue] | None = None,
    ) -> None:
        """End the step; its open `logs` (ids) are marked complete in the same commit, and the
        build's `properties` (as they are after the step, when given) stored with it, so that a
        build resumed after a coordinator restart continues from them."""
        ...

    async def set_build_state(self, build: Build, state_string: str, events: Sequence[Event]) -> None: ...

    async def set_step_state(self, step: Step, state_string: str, events: Sequence[Event]) -> None: ...

    async def set_step_urls(self, step: Step, events: Sequence[Event]) -> None:
        """Store `step.urls` while the step runs (finish_step stores them too)."""
        ...

    async def add_artifact(self, build: Build, step: Step, name: str, size: int, sha256: str, at: float) -> Artifact:
        """Record an artifact of the build (replacing one of the same name)."""
        ...

    async def add_test_results(
        self, build: Build, step: Step, revision: str, cases: Sequence[CaseResult], journal: Sequence[JournalEntry] = ()
    ) -> None:
        """Store the test cases a step ran (one batched write however many), with the step's
        journal entries in the same transaction."""
        ...


class BuildWriter(BuildStarter, BuildRecorder, Protocol):
    """The dispatcher's: it starts builds and hands their runners the recorder."""


class ChunkStore(Protocol):
    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]:
        """Queue a chunk for the next group commit; resolves once it is stored."""
        ...


class LogRecorder(ChunkStore, Protocol):
    async def add_log(self, step: Step, name: str, type_: str, journal: Sequence[JournalEntry] = ()) -> LogInfo:
        """A new log of the step; `journal` (entries of the step's command journal) is stored in
        the same transaction (a ShellSequence's next command's log carries the last's entry)."""
        ...

    async def finish_log(self, log_id: int) -> None: ...


class BuildReads(Protocol):
    async def get_build(self, builder: str, number: int) -> Build | None:
        """The build with its steps, logs, changes, source stamps and artifacts."""
        ...


class BuildListing(BuildReads, Protocol):
    async def list_builds(
        self, builder: str, limit: int, *, before_id: int = 0, results: Sequence[Result] = (),
        with_steps: bool = False, branch: str = "", among: Collection[str] | None = None,
    ) -> list[Build]:
        """Newest first (by id); `before_id` pages, `results` keeps finished builds with one of
        them, `with_steps` fills the steps (not their logs) in one query for the page, `branch`
        keeps builds whose buildset has a source stamp on that branch, `among` (when not None)
        keeps builds of those builders only (a reader scoped to some builders)."""
        ...

    async def get_artifact(self, builder: str, number: int, name: str) -> Artifact | None: ...


class CaseHistorySource(Protocol):
    async def case_runs(self, builder: str, builds: int, names: Sequence[str] | None = None) -> list[CaseRun]:
        """The test cases recorded by the builder's last `builds` builds that recorded any, newest
        build first; only the cases whose full name is in `names` when given (one query)."""
        ...


class HistorySource(Protocol):
    async def recent_step_durations(self, builder: str, builds: int) -> list[StepSample]:
        """Steps that ran in the builder's last `builds` successful builds (one query)."""
        ...


class JournalStore(Protocol):
    """The running steps' command journals (a build resumed after a restart replays its step)."""

    async def record_journal(self, entries: Sequence[JournalEntry]) -> None:
        """Store these entries (one write). Each (build, step, index) is stored once: a resumed
        step only journals the actions after the ones it replayed."""
        ...

    async def step_journal(self, build_id: int, step_number: int) -> list[JournalEntry]:
        """The step's entries, by index."""
        ...


class LogReads(Protocol):
    async def get_log(self, builder: str, number: int, step: str, log_name: str) -> LogInfo | None: ...

    async def get_log_info(self, log_id: int) -> LogInfo | None: ...

    async def read_log(self, log_id: int, offset: int, limit: int, channel: int) -> list[LogChunk]:
        """Chunks covering [offset, offset+limit) of the log, or of one channel when channel>0."""
        ...


class EventLog(Protocol):
    async def events_after(self, since_id: int, limit: int) -> list[Event]: ...

    async def pruned_through(self) -> int:
        """Retention deleted every event up to this id (0: none)."""
        ...


class EventCursor(EventLog, Protocol):
    async def last_event_id(self) -> int: ...


class ChangeReads(Protocol):
    async def get_change(self, change_id: int) -> Change | None: ...

    async def list_changes(self, limit: int) -> list[Change]: ...


class WorkerStatusStore(Protocol):
    async def worker_connected(self, name: str, info: dict[str, str], at: float, events: Sequence[Event]) -> None: ...

    async def worker_disconnected(self, name: str, at: float, events: Sequence[Event]) -> None: ...


class WorkerHoldStore(Protocol):
    """The operators' holds on workers (pause, drain)."""

    async def load_worker_holds(self) -> dict[str, WorkerHold]: ...

    async def set_worker_hold(self, name: str, hold: WorkerHold | None, events: Sequence[Event]) -> None:
        """Store the hold (None: the worker is active again) and its events, in one transaction."""


class WorkerExit(Protocol):
    """The worker stream's side of draining (implemented by the gRPC adapter)."""

    def ask_to_exit(self, worker: str, reason: str) -> bool:
        """Tell the connected agent to exit; False if it is not connected."""
        ...


@dataclass(frozen=True)
class Expiry:
    """What a retention sweep deletes: `kind` ("logs", "artifacts" or "builds") of the builds of
    `builder` finished before `before`, failing ones (FAILURE, EXCEPTION) or the others."""

    builder: str
    kind: str
    before: float
    failed: bool


class RetentionStore(Protocol):
    async def count_expired(self, expiry: Expiry) -> int:
        """How many (logs, artifacts or builds) a sweep would delete."""
        ...

    async def expire(self, expiry: Expiry, limit: int) -> tuple[int, list[tuple[int, str]]]:
        """Delete at most `limit` of them in one write: (how many, the (build number, name) of
        the artifacts whose files are to go). Deleted logs keep their row (type "d")."""
        ...

    async def event_bounds(self) -> tuple[int, int | None]:
        """The last event id, and the lowest notifier cursor (None without notifiers)."""
        ...

    async def count_expired_events(self, before: float, keep_from: int) -> int:
        """How many events expire_events would delete."""
        ...

    async def expire_events(self, before: float, keep_from: int, limit: int) -> int:
        """Delete at most `limit` of the oldest events, in one write: the prefix by id of those
        older than `before` and below id `keep_from`; records how far (`pruned_through`)."""
        ...

    async def reclaim_space(self) -> str:
        """Give the space of deleted rows back (bounded steps); says what it did."""
        ...


class WorkerReads(Protocol):
    async def list_workers(self) -> list[WorkerRecord]: ...


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


class BuildHistory(BuildReads, Protocol):
    """What a notifier asks about a build's neighbours."""

    async def previous_build_result(self, builder: str, number: int) -> Result | None: ...

    async def builds_of_buildset(self, buildset_id: int) -> list[tuple[str, int]]: ...

    async def failing_cases(self, builder: str, number: int, limit: int) -> list[CaseResult]:
        """The build's recorded test cases that failed, in report order, at most `limit`."""
        ...


class NotificationReads(Protocol):
    async def list_notifications(self, limit: int, state: str = "") -> list[Notification]: ...


class Outbox(NotificationReads, Protocol):
    """The notifications' durable outbox and the notifiers' event cursors."""

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
