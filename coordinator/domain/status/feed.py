"""The read side of status: event streams that resume by id, and logs that can be followed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from coordinator.domain.auth import visibility
from coordinator.domain.builds.eta import BuildEstimate, EtaEstimator
from coordinator.domain.builds.lookup import find_build, missing_build, step_number
from coordinator.domain.errors import EventsPruned, InvalidArgument, NotFound
from coordinator.domain.events import KINDS, Event, EventBus, EventFilter, SubscriberOverflow
from coordinator.domain.model import DELETED_LOG, Build, LogInfo
from coordinator.domain.ports import BuildReads, EventLog, LogReads
from coordinator.domain.steps.logs import LogWatchers

REPLAY_PAGE = 500
MAX_READ = 1024 * 1024  # ALL reads carry the bytes twice (data + segments): stay under gRPC's 4 MiB default


class StatusFeed:
    """Replays stored events after an id, then follows live ones: nothing missed or repeated.

    Retention may have deleted the oldest events (eventHorizon): a stream resuming from an id
    below what was deleted fails with EventsPruned (FAILED_PRECONDITION) rather than silently
    skip what it missed; one from id 0 ("from the start") starts at the oldest event kept.
    """

    def __init__(
        self, events: EventLog, builds: BuildReads, bus: EventBus, buffer: int = 10_000,
        estimator: EtaEstimator | None = None,
    ) -> None:
        self.events = events
        self.builds = builds
        self.bus = bus
        self.estimator = estimator
        self.buffer = buffer

    async def follow(
        self,
        since_id: int,
        flt: EventFilter | None = None,
        on_subscribed: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Event | None]:
        """Yields events in id order; yields None once if the consumer fell too far behind.
        `on_subscribed` runs once live events are being captured (so a client can act then)."""
        flt = flt or EventFilter()
        # The caller's visibility, fixed now: the stream outlives the call's first step.
        flt = flt.narrowed(visibility.current())
        unknown = sorted(flt.kinds - set(KINDS))
        if unknown:
            raise InvalidArgument(
                f"unknown event kind(s) {', '.join(unknown)}; known kinds: {', '.join(KINDS)}"
            )
        # Subscribe before reading history, so nothing committed in between can be missed.
        with self.bus.subscribe(flt, self.buffer) as sub:
            # Fix the starting point at subscription time: events published while the
            # signal below is awaited are in `sub` and must not count as already seen.
            last = self.bus.last_id if since_id < 0 else since_id
            if on_subscribed is not None:
                await on_subscribed()
            # Only new events (since < 0): nothing to replay — an event committed but not yet
            # published is still on its way through the bus, which `sub` already hears. This
            # spares the database one query per subscriber when thousands connect at once.
            if since_id >= 0:
                pruned = await self.events.pruned_through()
                if since_id == 0:
                    last = pruned  # from the start: the start is the oldest event kept
                elif since_id < pruned:
                    raise EventsPruned(since_id, pruned)
            while since_id >= 0:
                before = last
                page = await self.events.events_after(last, REPLAY_PAGE)
                if page and page[0].id != before + 1:
                    # A gap (ids may skip), or the janitor deleted events while this replays.
                    pruned = await self.events.pruned_through()
                    if pruned > before:
                        raise EventsPruned(before, pruned)
                for event in page:
                    last = event.id
                    if flt.matches(event):
                        yield flt.shown(event)
                if len(page) < REPLAY_PAGE:
                    break
            while True:
                try:
                    event = await sub.get()
                except SubscriberOverflow:
                    yield None
                    return
                if event.id <= last:
                    continue  # already replayed from the database
                last = event.id
                yield flt.shown(event)


    async def watch_build(self, builder: str, number: int) -> AsyncIterator[BuildUpdate]:
        """The build's state now, then after each of its events, until its build.finished.

        The state read after an event may already be the finished one (events are published
        after their commit, and a later commit can land before an earlier event is handled), so
        the end is the build.finished event itself, not the first complete state."""
        flt = EventFilter(frozenset([builder]))
        sub = self.bus.subscribe(flt, self.buffer)
        try:
            build = await self._build(builder, number)
            yield BuildUpdate(None, build, await self._eta(build))
            finished = build.complete
            while not finished:
                try:
                    event = await sub.get()
                except SubscriberOverflow:
                    # Fell behind: the state read next is still exact; resume live from there
                    # (its build.finished may be among the events lost: a complete state ends it).
                    sub.close()
                    sub = self.bus.subscribe(flt, self.buffer)
                    event = None
                if event is not None and event.build_number != number:
                    continue
                build = await self._build(builder, number)
                yield BuildUpdate(event, build, await self._eta(build))
                finished = event.kind == "build.finished" if event is not None else build.complete
        finally:
            sub.close()  # the current subscription: after an overflow, not the first one

    async def _build(self, builder: str, number: int) -> Build:
        return await find_build(self.builds, builder, number)

    async def _eta(self, build: Build) -> BuildEstimate | None:
        """The per-step estimate while the build runs (cached history: no query per event)."""
        if build.complete or self.estimator is None:
            return None
        return await self.estimator.estimate(build)


@dataclass
class BuildUpdate:
    event: Event | None
    build: Build
    estimate: BuildEstimate | None

    @property
    def eta(self) -> float | None:
        return None if self.estimate is None else self.estimate.eta


@dataclass
class LogPart:
    data: bytes
    offset: int
    eof: bool
    segments: list[tuple[int, bytes]] = field(default_factory=list)
    # (offset, unix ms): the time of the bytes from each offset on, in the coordinates of
    # `offset`; the first at `offset` when `data` is not empty; [] for logs without times.
    times: list[tuple[int, int]] = field(default_factory=list)


class LogReader:
    def __init__(self, logs: LogReads, watchers: LogWatchers, builds: BuildReads) -> None:
        self.logs = logs
        self.watchers = watchers
        self.builds = builds  # to say what is missing when a log is not found

    async def find(self, builder: str, number: int, step: str, log: str) -> LogInfo:
        """The log `log` of `step` (a name or a number) of build builder/number; NotFound
        names what is missing: the build, the step, or the log (with what there is)."""
        if not visibility.sees(builder):
            raise missing_build(builder, number)
        result: LogInfo | None = await self.logs.get_log(builder, number, step, log)
        if result is not None and result.type == DELETED_LOG:
            raise NotFound(f"the log {log!r} of step {step!r} of build {builder}/{number} was deleted (logHorizon)")
        if result is not None:
            return result
        what = f"build {builder}/{number}"
        build = await find_build(self.builds, builder, number)
        match = [s for s in build.steps if (str(s.number) if step_number(step) is not None else s.name) == step]
        if not match:
            steps = ", ".join(f"{s.number} {s.name}" for s in build.steps) or "none"
            raise NotFound(f"{what} has no step {step} (its steps: {steps})")
        logs = ", ".join(sorted({i.name for s in match for i in s.logs})) or "none yet"
        raise NotFound(f"step {step!r} of {what} has no log {log!r} (its logs: {logs})")

    async def read(self, log_id: int, offset: int, limit: int, channel: int) -> LogPart:
        limit = min(limit or MAX_READ, MAX_READ)
        info = await self.logs.get_log_info(log_id)
        complete = bool(info and info.complete)  # read before the chunks: then they are all there
        chunks = await self.logs.read_log(log_id, offset, limit, channel)
        segments: list[tuple[int, bytes]] = []
        times: list[tuple[int, int]] = []
        total = 0
        for c in chunks:
            start = c.channel_offset if channel else c.offset
            lo = max(0, offset - start)
            hi = min(len(c.data), offset + limit - start)
            if hi > lo:
                piece = c.data[lo:hi]
                segments.append((c.channel, piece))
                total += len(piece)
                _add_times(times, c.marks, start, lo, hi)
        data = b"".join(p for _, p in segments)
        # Segments only for ALL (as the API documents): for one channel they would repeat `data`
        # and double the message.
        return LogPart(data=data, offset=offset, eof=complete and total < limit,
                       segments=segments if channel == 0 else [], times=times)

    async def follow(self, log_id: int, offset: int, channel: int) -> AsyncIterator[LogPart]:
        while True:
            part = await self.read(log_id, offset, MAX_READ, channel)
            if part.data or part.eof:
                yield part
            offset += len(part.data)
            if part.eof:
                return
            if not part.data:
                await self.watchers.wait(log_id, timeout=0.5)


def _add_times(times: list[tuple[int, int]], marks: tuple[int, ...], start: int, lo: int, hi: int) -> None:
    """Append the time marks of chunk bytes [lo, hi) (the chunk starts at `start`) as absolute
    (offset, ms), the first at start+lo; a mark repeating the time in effect is left out, so
    a steady log has one mark per change of time, not per chunk."""
    if not marks:
        return
    at = marks[1]  # the time in effect at lo: that of the last mark at or before it
    i = 2
    while i < len(marks) and marks[i] <= lo:
        at = marks[i + 1]
        i += 2
    if not times or times[-1][1] != at:
        times.append((start + lo, at))
    while i < len(marks) and marks[i] < hi:
        if times[-1][1] != marks[i + 1]:
            times.append((start + marks[i], marks[i + 1]))
        i += 2
