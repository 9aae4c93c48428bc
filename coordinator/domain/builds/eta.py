"""Estimates: when a running build will finish (per step, from the builder's recent successful
builds) and when queued build requests can expect to start.

The history of a builder is read with one query (`HistorySource.recent_step_durations`) and cached
per builder; the cache entry is dropped when a build of that builder finishes (the app feeds
`EtaEstimator.on_event` from the event bus), so status reads never query per event.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from coordinator.domain.events import Event
from coordinator.domain.model import Build, StepSample
from coordinator.domain.ports import HistorySource

HISTORY_BUILDS = 10  # recent successful builds of a builder that the estimates look at


@dataclass
class BuilderHistory:
    """Median durations of a builder's recent successful builds and of their steps by name."""

    build_duration: float | None = None
    steps: dict[str, float] = field(default_factory=dict)
    typical_step: float | None = None  # median of every step: the guess for a step never seen

    @classmethod
    def from_samples(cls, samples: Sequence[StepSample]) -> BuilderHistory:
        builds: dict[int, float] = {}
        per_step: dict[str, list[float]] = {}
        for s in samples:
            builds[s.build_number] = s.build_duration
            if s.step_name and s.step_duration is not None:
                per_step.setdefault(s.step_name, []).append(max(0.0, s.step_duration))
        if not builds:
            return cls()
        every = [d for ds in per_step.values() for d in ds]
        return cls(
            build_duration=statistics.median(max(0.0, d) for d in builds.values()),
            steps={name: statistics.median(ds) for name, ds in per_step.items()},
            typical_step=statistics.median(every) if every else None,
        )

    @property
    def empty(self) -> bool:
        return self.build_duration is None

    def expected(self, step_name: str) -> float | None:
        """The step's expected duration: its median, else the builder's typical step."""
        if self.empty:
            return None
        return self.steps.get(step_name, self.typical_step)

    def eta(self, build: Build, now: float) -> float | None:
        """When the running `build` should finish; None without history or once it finished.

        Finished steps count nothing more; the running step its expected duration minus what it
        has already run (at least nothing); steps not started their expected duration. A build
        whose steps are not known yet is expected to take the builder's median build duration.
        """
        if self.empty or build.complete or self.build_duration is None:
            return None
        if not build.steps:
            return max(now, build.started_at + self.build_duration)
        remaining = 0.0
        for step in build.steps:
            if step.complete:
                continue
            expected = self.expected(step.name) or 0.0
            if step.started_at is not None:
                remaining += max(0.0, expected - (now - step.started_at))
            else:
                remaining += expected
        return now + remaining


class EtaEstimator:
    """Per-builder cached history; `on_event` drops a builder's entry when one of its builds
    finishes, so the next estimate reads the new history once."""

    def __init__(self, source: HistorySource, clock: Callable[[], float], builds: int = HISTORY_BUILDS) -> None:
        self.source = source
        self.clock = clock
        self.builds = builds
        self._cache: dict[str, BuilderHistory] = {}
        self._generation: dict[str, int] = {}

    def on_event(self, event: Event) -> None:
        if event.kind == "build.finished" and event.builder:
            self._cache.pop(event.builder, None)
            self._generation[event.builder] = self._generation.get(event.builder, 0) + 1

    async def history(self, builder: str) -> BuilderHistory:
        cached = self._cache.get(builder)
        if cached is not None:
            return cached
        generation = self._generation.get(builder, 0)
        history = BuilderHistory.from_samples(await self.source.recent_step_durations(builder, self.builds))
        # A build that finished while we read must not be hidden behind an older answer.
        if self._generation.get(builder, 0) == generation:
            self._cache[builder] = history
        return history

    async def estimate(self, build: Build) -> BuildEstimate:
        """The build's ETA (None when unknown or finished) and each step's expected duration."""
        history = await self.history(build.builder)
        expected = {s.name: d for s in build.steps if (d := history.expected(s.name)) is not None}
        return BuildEstimate(history.eta(build, self.clock()), expected)


@dataclass(frozen=True)
class BuildEstimate:
    eta: float | None
    step_durations: dict[str, float]  # by step name; steps without an estimate are absent


def expected_starts(
    pending: Sequence[int],
    worker_slots: int,
    running_build_etas: Sequence[float | None],
    estimated_build_duration: float | None | Callable[[int], float | None],
    now: float,
) -> dict[int, float]:
    """When each queued request can expect to start, in a simple model.

    `pending` are request ids in dispatch order (priority, then FIFO); `worker_slots` is how many
    builds the workers can run at once, `running_build_etas` the ETAs of the builds occupying
    some of those slots (None: unknown — taken as `now` plus `estimated_build_duration` when that
    is a number, else the slot never frees). A slot frees at its running build's ETA (never
    before `now`), then the next request takes it for its estimated duration (a number, or a
    function of the request id; None: unknown). Requests from the first one whose start would
    depend on an unknown duration on are left out, as are all when there are no slots.

    Pure and self-contained: for one builder, `pending` is its queue, `worker_slots` the
    `max_builds` of its connected workers and `running_build_etas` the ETAs of the builds on
    them (`Queries.next_expected_start` does this for the queue's head).
    """
    if worker_slots <= 0:
        return {}

    def duration(request_id: int) -> float | None:
        if callable(estimated_build_duration):
            return estimated_build_duration(request_id)
        return estimated_build_duration

    unknown = float("inf")
    # A running build's own duration is only known as a number, not per request.
    fallback = None if callable(estimated_build_duration) else estimated_build_duration
    frees: list[float] = []
    for eta in list(running_build_etas)[:worker_slots]:
        if eta is not None:
            frees.append(max(now, eta))
        else:
            frees.append(now + fallback if fallback is not None else unknown)
    frees.extend([now] * (worker_slots - len(frees)))
    heapq.heapify(frees)
    starts: dict[int, float] = {}
    for request_id in pending:
        start = heapq.heappop(frees)
        if start == unknown:
            break
        starts[request_id] = start
        d = duration(request_id)
        heapq.heappush(frees, start + d if d is not None else unknown)
    return starts
