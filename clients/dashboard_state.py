"""The state behind `gantry watch`'s live dashboard: running builds (with their current step and
an ETA), queued requests per builder, recent results and workers.

It is built from a snapshot of the API (`load_builders`, `load_builds`, `load_workers`, plus
`load_history` / `load_build` for ETAs and current steps) and kept current by `apply(event)`.
Everything here is pure (no I/O, no rich, times passed in), so it is tested by feeding it events;
`dashboard.py` renders it and drives it from the coordinator.

Applying an event that the snapshot already reflects is harmless (builds are keyed by
builder/number); the only counters, the queued requests, are re-synced from ListBuilders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from clients.models import Build, Builder, Event, Result, Worker

RECENT_LIMIT = 10  # finished builds shown
ETA_SAMPLES = 5  # successful builds averaged for an ETA
_DURATION_KEYS = ("duration", "duration_s", "duration_seconds", "elapsed")

BuildKey = tuple[str, int]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _event_duration(event: Event) -> float | None:
    for key in _DURATION_KEYS:
        value = event.details.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def parse_build_label(label: str) -> BuildKey | None:
    """"runtests/7" -> ("runtests", 7); None if it is not of that form."""
    builder, sep, number = label.rpartition("/")
    if not sep or not builder or not number.isdigit():
        return None
    return builder, int(number)


@dataclass
class RunningBuild:
    builder: str
    number: int
    worker: str = ""
    started_at: datetime | None = None
    step_number: int = -1  # the latest step that started (-1: none yet)
    step_name: str = ""
    step_done: bool = False  # that step has finished and the next one has not started
    seen_start: bool = False  # its build.started came through the stream (so will its steps)
    step_started_at: datetime | None = None  # when the latest step started
    # The coordinator's per-step estimate (GetBuild): step names in order and, by name, how
    # long each is expected to take (from the builder's recent successful builds).
    step_names: tuple[str, ...] = ()
    expected: dict[str, float] = field(default_factory=dict)
    estimate_loaded: bool = False
    waiting: str = ""  # what it waits for ("waiting for lock L"), from build.state / step.state

    @property
    def key(self) -> BuildKey:
        return (self.builder, self.number)

    @property
    def label(self) -> str:
        return f"{self.builder}/{self.number}"

    def elapsed(self, now: datetime) -> float | None:
        return _seconds(self.started_at, now)

    def _step(self, number: int, name: str, done: bool, at: datetime | None = None) -> None:
        if number > self.step_number:
            self.step_number, self.step_name, self.step_done = number, name, done
            self.step_started_at = at
        elif number == self.step_number:
            self.step_name = name or self.step_name
            self.step_done = self.step_done or done


@dataclass(frozen=True)
class FinishedBuild:
    builder: str
    number: int
    result: Result
    duration: float | None = None
    state_string: str = ""
    worker: str = ""
    finished_at: datetime | None = None

    @property
    def key(self) -> BuildKey:
        return (self.builder, self.number)

    @property
    def label(self) -> str:
        return f"{self.builder}/{self.number}"


@dataclass
class WorkerStatus:
    name: str
    connected: bool = False
    max_builds: int = 0


@dataclass
class DashboardState:
    """What the dashboard shows; `builders` (empty: all) filters everything builder-related."""

    builders: frozenset[str] = frozenset()
    recent_limit: int = RECENT_LIMIT
    eta_samples: int = ETA_SAMPLES
    running: dict[BuildKey, RunningBuild] = field(default_factory=dict)
    queued: dict[str, int] = field(default_factory=dict)  # builder -> unclaimed requests
    recent: list[FinishedBuild] = field(default_factory=list)  # newest first
    workers: dict[str, WorkerStatus] = field(default_factory=dict)
    # builder -> durations of its latest successful builds, newest first
    history: dict[str, list[float]] = field(default_factory=dict)
    builder_workers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    last_event_id: int = 0
    last_event_at: datetime | None = None
    problem: str = ""  # the last failed refresh, shown until one succeeds
    _history_loaded: set[str] = field(default_factory=set)
    _done: set[BuildKey] = field(default_factory=set)  # every build seen finished

    @classmethod
    def for_builders(cls, builders: Iterable[str] = ()) -> DashboardState:
        return cls(builders=frozenset(builders))

    def wants(self, builder: str) -> bool:
        return not self.builders or builder in self.builders

    # -- snapshot ----------------------------------------------------------------------------

    def load_builders(self, builders: Iterable[Builder]) -> None:
        """Pending request counts (ListBuilders): replaces what the events counted."""
        wanted = [b for b in builders if self.wants(b.name)]
        self.queued = {b.name: b.pending_requests for b in wanted}
        self.builder_workers = {b.name: b.workers for b in wanted}

    def load_builds(self, builds: Iterable[Build]) -> None:
        """Builds from ListBuilds: running ones join Running, finished ones Recent."""
        for build in builds:
            if not self.wants(build.builder):
                continue
            key = (build.builder, build.number)
            if build.complete:
                self._finish(
                    key,
                    FinishedBuild(
                        build.builder, build.number, build.result or Result.SUCCESS,
                        build.duration, build.state_string, build.worker, build.finished_at,
                    ),
                    sort=True,
                )
            elif key not in self._done:
                run = self.running.setdefault(key, RunningBuild(build.builder, build.number))
                run.worker = build.worker or run.worker
                run.started_at = run.started_at or build.started_at

    def load_build(self, build: Build) -> None:
        """One build in detail (GetBuild): its start time and current step."""
        key = (build.builder, build.number)
        if build.complete:
            self.load_builds([build])
            return
        run = self.running.get(key)
        if run is None:
            return
        run.worker = run.worker or build.worker
        run.started_at = run.started_at or build.started_at
        for step in build.steps:
            if step.started_at is not None or step.complete:
                run._step(step.number, step.name, step.complete, step.started_at)
        if build.steps:
            run.estimate_loaded = True
            run.step_names = tuple(s.name for s in build.steps)
            run.expected = {s.name: s.expected_duration for s in build.steps if s.expected_duration is not None}

    def load_workers(self, workers: Iterable[Worker]) -> None:
        """ListWorkers: who is connected; their running builds join Running if unknown."""
        self.workers = {}
        for worker in workers:
            self.workers[worker.name] = WorkerStatus(worker.name, worker.connected, worker.max_builds)
            for label in worker.running_builds:
                key = parse_build_label(label)
                if key is None or not self.wants(key[0]) or key in self._done:
                    continue
                run = self.running.setdefault(key, RunningBuild(*key))
                run.worker = run.worker or worker.name

    def load_history(self, builder: str, builds: Iterable[Build]) -> None:
        """The builder's recent builds (newest first), for its ETA."""
        durations = [
            d for b in builds
            if b.builder == builder and b.complete and b.result is Result.SUCCESS
            and (d := b.duration) is not None
        ]
        self.history[builder] = durations[: self.eta_samples]
        self._history_loaded.add(builder)

    def builders_needing_history(self) -> set[str]:
        """Builders with a running build whose past durations have not been loaded."""
        return {run.builder for run in self.running.values()} - self._history_loaded

    def builds_needing_detail(self) -> list[BuildKey]:
        """Running builds from the snapshot whose start time or current step is unknown."""
        return [
            k for k, run in self.running.items()
            if not run.seen_start and (run.started_at is None or run.step_number < 0)
        ]

    def builds_needing_estimate(self) -> list[BuildKey]:
        """Running builds past their first step whose per-step estimate has not been read,
        of builders with a successful build to estimate from (one GetBuild per build)."""
        return [
            k for k, run in self.running.items()
            if run.step_number >= 0 and not run.estimate_loaded and self.history.get(run.builder)
        ]

    # -- events ------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Update the state with one event of the stream."""
        if event.id > self.last_event_id:
            self.last_event_id = event.id
        self.last_event_at = event.at or self.last_event_at
        kind = event.kind
        if kind.startswith("worker."):
            status = self.workers.setdefault(event.worker, WorkerStatus(event.worker))
            if kind == "worker.connected":
                status.connected = True
            elif kind == "worker.disconnected":
                status.connected = False
            return
        if not event.builder or not self.wants(event.builder):
            return
        builder = event.builder
        key = (builder, event.build_number)
        if kind in ("buildrequest.added", "buildrequest.retried"):
            self.queued[builder] = self.queued.get(builder, 0) + 1
        elif kind == "build.started":
            self.queued[builder] = max(0, self.queued.get(builder, 0) - 1)
            if key in self._done:  # the snapshot already saw it finish
                return
            run = self.running.setdefault(key, RunningBuild(builder, event.build_number))
            run.worker = event.worker or run.worker
            run.started_at = event.at or run.started_at
            run.seen_start = True
        elif kind in ("buildrequest.collapsed", "buildrequest.cancelled"):
            self.queued[builder] = max(0, self.queued.get(builder, 0) - 1)
        elif kind in ("build.state", "step.state"):
            if key in self._done:
                return
            run = self.running.setdefault(key, RunningBuild(builder, event.build_number))
            text = str(event.details.get("state_string", ""))
            run.waiting = text if text.startswith("waiting") else ""
        elif kind in ("step.started", "step.finished"):
            if key in self._done:
                return
            run = self.running.setdefault(key, RunningBuild(builder, event.build_number))
            run.worker = run.worker or event.worker
            run._step(event.step_number, event.step_name, kind == "step.finished", event.at)
        elif kind == "build.finished":
            seen = key in self._done  # the snapshot (or its history) already counted it
            current = self.running.get(key)
            duration = _event_duration(event)
            if duration is None and current is not None:
                duration = _seconds(current.started_at, event.at)
            result = event.result if event.result is not None else Result.SUCCESS
            self._finish(
                key,
                FinishedBuild(
                    builder, event.build_number, result, duration,
                    str(event.details.get("state_string", "")),
                    event.worker or (current.worker if current else ""), event.at,
                ),
            )
            if result is Result.SUCCESS and duration is not None and not seen:
                past = self.history.setdefault(builder, [])
                past.insert(0, duration)
                del past[self.eta_samples:]

    # -- derived -----------------------------------------------------------------------------

    def running_builds(self) -> list[RunningBuild]:
        """Running builds, oldest first (unknown start times last)."""
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(self.running.values(), key=lambda r: (r.started_at or far, r.builder, r.number))

    def queued_builders(self) -> list[tuple[str, int]]:
        """(builder, pending) for builders with pending requests, most first."""
        return sorted(((b, n) for b, n in self.queued.items() if n > 0), key=lambda x: (-x[1], x[0]))

    def worker_builds(self, worker: str) -> list[str]:
        return sorted(r.label for r in self.running.values() if r.worker == worker)

    def shown_workers(self) -> list[WorkerStatus]:
        """All workers, or with a builder filter those that can run the filtered builders."""
        names = set(self.workers)
        if self.builders and self.builder_workers:
            allowed = {w for ws in self.builder_workers.values() for w in ws}
            allowed |= {r.worker for r in self.running.values()}
            names &= allowed
        return [self.workers[n] for n in sorted(names)]

    def eta_estimate(self, builder: str) -> float | None:
        """The average duration of the builder's last (up to `eta_samples`) successful builds."""
        past = self.history.get(builder, [])[: self.eta_samples]
        return sum(past) / len(past) if past else None

    def remaining(self, run: RunningBuild, now: datetime) -> float | None:
        """Estimated seconds left; None when unknown. With the coordinator's per-step estimate:
        the expected durations of the steps still to run, the running one less what it has run
        (0 when all are overdue). Without it: the builder's average build less the elapsed time
        (negative when overdue)."""
        if run.expected:
            return self._steps_remaining(run, now)
        estimate = self.eta_estimate(run.builder)
        elapsed = run.elapsed(now)
        if estimate is None or elapsed is None:
            return None
        return estimate - elapsed

    @staticmethod
    def _steps_remaining(run: RunningBuild, now: datetime) -> float:
        total = 0.0
        for number, name in enumerate(run.step_names):
            expected = run.expected.get(name)
            if expected is None or number < run.step_number:
                continue
            if number == run.step_number:
                if run.step_done:
                    continue
                total += max(0.0, expected - (_seconds(run.step_started_at, now) or 0.0))
            else:
                total += expected
        return total

    # -- internals ---------------------------------------------------------------------------

    def _finish(self, key: BuildKey, finished: FinishedBuild, sort: bool = False) -> None:
        self.running.pop(key, None)
        self._done.add(key)
        self.recent = [finished, *(f for f in self.recent if f.key != key)]
        if sort:
            far = datetime.min.replace(tzinfo=UTC)
            self.recent.sort(key=lambda f: f.finished_at or far, reverse=True)
        del self.recent[self.recent_limit:]
