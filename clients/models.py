"""Plain Python views of the Gantry API objects, as returned by `GantryClient`.

They are frozen dataclasses with `datetime` times (UTC, None when unset) and decoded JSON
property values, so scripts never need to touch protobuf. Conversion lives in `convert.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class Result(enum.IntEnum):
    """Build and step results, with Buildbot's codes."""

    SUCCESS = 0
    WARNINGS = 1
    FAILURE = 2
    SKIPPED = 3
    EXCEPTION = 4
    RETRY = 5
    CANCELLED = 6


class Channel(enum.IntEnum):
    """Channels of a stdio log (`ALL` interleaves them in arrival order)."""

    ALL = 0
    STDOUT = 1
    STDERR = 2
    HEADER = 3


def _span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True)
class Property:
    name: str
    value: Any
    source: str = ""


@dataclass(frozen=True)
class SourceStamp:
    repository: str = ""
    branch: str = ""
    revision: str = ""
    project: str = ""
    codebase: str = ""


@dataclass(frozen=True)
class Change:
    """A source change. The first four fields are required when submitting; `id` is ignored."""

    author: str
    repository: str
    branch: str
    revision: str
    comments: str = ""
    committer: str = ""
    files: tuple[str, ...] = ()
    project: str = ""
    codebase: str = ""
    category: str = ""
    when: datetime | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    revlink: str = ""
    id: int = 0


@dataclass(frozen=True)
class ForceParameter:
    """A typed parameter of a builder's ForceScheduler (a property a forced build takes)."""

    name: str
    label: str = ""
    type: str = "string"
    default: Any = ""
    required: bool = False
    regex: str = ""
    choices: tuple[str, ...] = ()
    multiple: bool = False


@dataclass(frozen=True)
class Builder:
    name: str
    workers: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    pending_requests: int = 0
    description: str = ""
    tags: tuple[str, ...] = ()
    next_expected_start: datetime | None = None  # of its next queued request, when estimable
    force_scheduler: str = ""
    force_parameters: tuple[ForceParameter, ...] = ()
    force_codebases: tuple[SourceStamp, ...] = ()


@dataclass(frozen=True)
class LogInfo:
    id: int
    name: str
    type: str
    size: int
    complete: bool


@dataclass(frozen=True)
class StepUrl:
    name: str
    url: str


@dataclass(frozen=True)
class Step:
    id: int
    number: int
    name: str
    state_string: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    complete: bool = False
    result: Result | None = None  # None until complete
    logs: tuple[LogInfo, ...] = ()
    urls: tuple[StepUrl, ...] = ()
    hidden: bool = False
    expected_duration: float | None = None  # seconds, while the build runs and history exists

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish; None unless both are known."""
        return _span(self.started_at, self.finished_at)


@dataclass(frozen=True)
class Build:
    id: int
    builder: str
    number: int
    worker: str = ""
    build_request_id: int = 0
    buildset_id: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    complete: bool = False
    result: Result | None = None  # None while running
    state_string: str = ""
    steps: tuple[Step, ...] = ()
    properties: tuple[Property, ...] = ()
    changes: tuple[Change, ...] = ()
    reason: str = ""
    sourcestamps: tuple[SourceStamp, ...] = ()
    eta: datetime | None = None  # estimated completion while running (GetBuild, WatchBuild)
    artifacts: tuple[Artifact, ...] = ()

    @property
    def duration(self) -> float | None:
        return _span(self.started_at, self.finished_at)


@dataclass(frozen=True)
class Artifact:
    """A file a build stored on the coordinator (see `gantry artifacts` / `gantry download`)."""

    name: str
    step: str = ""
    size: int = 0
    sha256: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class TestRun:
    """One test case as one build ran it (`gantry tests`)."""

    __test__ = False  # not a pytest test class

    name: str
    outcome: str
    build_number: int
    revision: str = ""
    duration: float | None = None
    message: str = ""


@dataclass(frozen=True)
class TestSummary:
    """One test across the builds `gantry tests` looked at."""

    __test__ = False

    latest: TestRun
    runs: int = 0
    failures: int = 0
    flips: int = 0
    failing_since: int = 0  # 0: its latest run did not fail
    newly_failing: bool = False
    mean_duration: float | None = None


@dataclass(frozen=True)
class TestReport:
    """What ListTests answered: the tests (or one test's runs) over a window of builds."""

    __test__ = False

    builds: int
    tests: tuple[TestSummary, ...] = ()
    runs: tuple[TestRun, ...] = ()


@dataclass(frozen=True)
class BuildUpdate:
    """One message of WatchBuild: the event (None at first) and the build's state after it."""

    event: Event | None
    build: Build
    eta: datetime | None = None  # estimated completion while running


@dataclass(frozen=True)
class Worker:
    name: str
    connected: bool = False
    since: datetime | None = None
    running_builds: tuple[str, ...] = ()
    max_builds: int = 0
    info: dict[str, str] = field(default_factory=dict)
    capacity_reason: str = ""  # where max_builds comes from ("config", "agent --max-builds; config 4")
    state: str = "active"  # "active", "paused" (no new builds) or "draining" (then the agent exits)
    state_reason: str = ""


@dataclass(frozen=True)
class Notification:
    """A message a notifier queued (mail or HTTP push) and what became of it."""

    id: int
    notifier: str
    kind: str
    key: str
    state: str  # "pending", "sent" or "failed"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    created_at: datetime | None = None
    sent_at: datetime | None = None
    summary: str = ""


@dataclass(frozen=True)
class Scheduler:
    """A configured scheduler and its run-time state."""

    name: str
    kind: str
    enabled: bool
    builders: list[str] = field(default_factory=list)
    next_fire: datetime | None = None  # when its next timer fires, if one is armed


@dataclass(frozen=True)
class PendingRequest:
    """An unstarted build request and why it has not started yet."""

    id: int
    builder: str
    buildset_id: int
    priority: int = 0
    submitted_at: datetime | None = None
    reason: str = ""
    expected_start: datetime | None = None  # None when unknown


@dataclass(frozen=True)
class BuildRequest:
    """One builder x one buildset; `absorbed_by` names the request whose build absorbed it."""

    id: int
    buildset_id: int
    builder: str
    priority: int = 0
    submitted_at: datetime | None = None
    claimed: bool = False
    complete: bool = False
    result: Result | None = None
    absorbed_by: int = 0
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Event:
    """One status event. `result` is set only for `*.finished` events."""

    id: int
    kind: str
    at: datetime | None = None
    builder: str = ""
    build_number: int = 0
    buildset_id: int = 0
    step_number: int = -1
    step_name: str = ""
    result: Result | None = None
    worker: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    offset: int
    eof: bool
    segments: tuple[tuple[Channel, bytes], ...] = ()
    # (offset, unix ms): when the bytes from each offset on were produced, in offset order
    # (offsets as `offset`'s); () for logs stored before Gantry kept times.
    times: tuple[tuple[int, int], ...] = ()


class TryResult(NamedTuple):
    """What `submit_try` created: the buildset, its request per builder, the TryScheduler."""

    buildset_id: int
    build_request_ids: dict[str, int]
    scheduler: str


class ForceResult(NamedTuple):
    """What `force_build` created; unpacks as `(buildset_id, build_request_id)`."""

    buildset_id: int
    build_request_id: int
