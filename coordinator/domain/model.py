"""The nouns of the domain, as immutable-ish records returned by storage and used by logic."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from coordinator.domain.results import Result

__all__ = ["Result"]  # re-exported for adapters


@dataclass(frozen=True)
class PropertyValue:
    name: str
    value: Any
    source: str


@dataclass
class Change:
    author: str
    revision: str
    branch: str
    repository: str
    committer: str = ""
    comments: str = ""
    files: list[str] = field(default_factory=list)
    project: str = ""
    codebase: str = ""
    category: str = ""
    when: float = 0.0
    properties: dict[str, Any] = field(default_factory=dict)
    revlink: str = ""
    id: int = 0


@dataclass(frozen=True)
class SourceStamp:
    repository: str = ""
    branch: str = ""
    revision: str = ""
    project: str = ""
    codebase: str = ""
    # A try job's change (scheduling/try_.py): `git diff --binary` output, base64-encoded (the
    # stamps are stored as JSON), applied by the source step with `git apply` (paths a/..., b/...).
    patch: str = ""
    patch_author: str = ""
    patch_comment: str = ""


@dataclass
class NewBuildset:
    """What a scheduler asks for; storage turns it into a buildset and one request per builder."""

    reason: str
    scheduler: str
    builders: list[str]
    sourcestamps: list[SourceStamp]
    properties: list[PropertyValue] = field(default_factory=list)
    change_ids: list[int] = field(default_factory=list)
    priority: int = 0


@dataclass
class BuildRequest:
    id: int
    buildset_id: int
    builder: str
    priority: int
    submitted_at: float
    claimed: bool = False
    complete: bool = False
    result: Result | None = None
    # The request whose build absorbed this one (collapseRequests); 0 if none.
    absorbed_by: int = 0
    completed_at: float | None = None
    # Loaded for collapseRequests functions (its source stamps, properties, changes).
    buildset: Buildset | None = field(default=None, compare=False, repr=False)


@dataclass
class PendingRequest:
    """An unstarted build request and why it has not started yet."""

    id: int
    builder: str
    buildset_id: int
    priority: int
    submitted_at: float
    reason: str
    # When it is expected to start (0: unknown); filled by a StartEstimator when one is wired.
    expected_start: float = 0.0


@dataclass
class Buildset:
    id: int
    reason: str
    scheduler: str
    submitted_at: float
    sourcestamps: list[SourceStamp]
    properties: list[PropertyValue]
    change_ids: list[int]
    complete: bool = False
    result: Result | None = None


DELETED_LOG = "d"  # the type of a log whose contents retention deleted (as Buildbot marks them)


@dataclass
class LogInfo:
    id: int
    step_id: int
    name: str
    type: str  # "s" stdio, "t" text, DELETED_LOG
    size: int = 0
    complete: bool = False


@dataclass
class Step:
    id: int
    build_id: int
    number: int
    name: str
    state_string: str = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    result: Result | None = None
    hidden: bool = False
    logs: list[LogInfo] = field(default_factory=list)
    urls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.finished_at is not None


@dataclass
class Build:
    id: int
    builder: str
    number: int
    worker: str
    build_request_id: int
    buildset_id: int
    started_at: float
    finished_at: float | None = None
    result: Result | None = None
    state_string: str = "starting"
    steps: list[Step] = field(default_factory=list)
    properties: list[PropertyValue] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    reason: str = ""
    sourcestamps: list[SourceStamp] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)  # filled by get_build

    @property
    def complete(self) -> bool:
        return self.finished_at is not None


@dataclass
class WorkerRecord:
    """A worker as the status API shows it."""

    name: str
    connected: bool
    since: float | None
    max_builds: int  # effective: the configuration's, lowered by the agent's --max-builds
    info: dict[str, str] = field(default_factory=dict)
    running_builds: list[str] = field(default_factory=list)
    capacity_reason: str = ""  # where max_builds comes from: "config" or "agent --max-builds; config N"
    state: str = "active"  # "active", "paused" or "draining" (WorkerHold)
    state_reason: str = ""


@dataclass
class WorkerHold:
    """An operator's hold on a worker: "paused" (no new builds) or "draining" (no new builds,
    then the agent exits when idle). Stored, so it survives a coordinator restart."""

    state: str
    reason: str
    at: float


@dataclass
class LogChunk:
    """A stored piece of a log: its bytes and where they sit in the log and in their channel."""

    channel: int  # 1 stdout, 2 stderr, 3 header (text logs use 1)
    data: bytes
    offset: int  # offset in the whole log (all channels, arrival order)
    channel_offset: int  # offset within its own channel
    # When its bytes were produced: flattened (offset in `data`, unix ms) pairs, the first at 0;
    # () for chunks stored before Gantry recorded times.
    marks: tuple[int, ...] = ()


@dataclass
class Artifact:
    """A file a build stored on the coordinator (FileUpload/DirectoryUpload without masterdest)."""

    builder: str
    number: int
    step: str
    name: str
    size: int
    sha256: str
    created_at: float


@dataclass(frozen=True)
class CaseResult:
    """One test case of a JUnit report, as the Test step read it."""

    name: str
    classname: str = ""
    outcome: str = "passed"  # passed | failed | error | skipped
    duration: float | None = None  # seconds; None when the report has no time
    message: str = ""  # the failure/error message (bounded), "" when it passed

    @property
    def full_name(self) -> str:
        return f"{self.classname}.{self.name}" if self.classname else self.name

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "error")


@dataclass(frozen=True)
class CaseRun:
    """A test case as one build of a builder ran it (what test history is made of)."""

    number: int  # the build number
    revision: str  # the revision the build tested ("" when unknown)
    case: CaseResult


@dataclass(frozen=True)
class StepSample:
    """One finished step of a recent successful build (a build without steps has step_name "")."""

    build_number: int
    build_duration: float
    step_name: str
    step_duration: float | None


@dataclass(frozen=True)
class Classified:
    """Scheduler `scheduler` accepted change number `index` of a submission."""

    index: int
    scheduler: str
    key: str  # the gathering (AnyBranchScheduler: codebase + branch; else "")
    important: bool


@dataclass
class PendingChange:
    change: Change
    key: str
    important: bool
    classified_at: float


@dataclass
class SchedulerCommit:
    """Committed together with a scheduler's buildset: consume these classified changes and/or
    move `last_run` forward, and/or record that this is the Dependent's buildset for upstream
    buildset `upstream_buildset_id` (with no buildset: that the Dependent skipped it). If any
    change was already consumed, last_run is not older, or the upstream buildset already has its
    downstream, the whole transaction (buildset included) is refused with AlreadyScheduled."""

    scheduler: str
    change_ids: list[int] = field(default_factory=list)
    last_run: float | None = None
    upstream_buildset_id: int = 0
    # A Trigger step's journal entry, stored with the buildset it triggered (its id and request
    # ids filled in by JournalEntry.with_buildset): a resumed Trigger never triggers twice.
    journal: JournalEntry | None = None


@dataclass(frozen=True)
class JournalEntry:
    """What one action of a running step did (a command, a file primitive, a trigger), stored
    when it ended so that a build resumed after a coordinator restart replays the step's run()
    up to where it was without doing any of it again (coordinator/domain/builds/journal.py).

    `index` counts the step's actions from 0; `fingerprint` identifies what was asked (a replay
    asking something else cannot continue). A command's output is not copied here: it is the
    chunks [first_chunk, end_chunk) of the step's log `log_name`, already stored. `data` is JSON:
    a file primitive's result, a trigger's buildset and requests."""

    build_id: int
    step_number: int
    index: int
    kind: str  # "command", "master", "file", "trigger"
    fingerprint: str
    command_id: str = ""
    rc: int = 0
    reason: str = ""
    log_name: str = ""
    first_chunk: int = 0
    end_chunk: int = 0
    data: str = ""

    def with_buildset(self, buildset_id: int, requests: dict[str, int]) -> JournalEntry:
        """The entry of a trigger whose buildset was just stored (in the same transaction)."""
        return replace(self, data=json.dumps({"buildset": buildset_id, "requests": requests}, sort_keys=True))


@dataclass
class SchedulerRecord:
    """A scheduler's stored state as loaded at start (or when it is enabled again)."""

    name: str
    enabled: bool = True
    last_run: float | None = None
    pending: list[PendingChange] = field(default_factory=list)
