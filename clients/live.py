"""Following one build live from the event stream, shared by `gantry up` and `gantry force --wait`.

The caller starts an `EventPump` *before* triggering the build (so no event is missed), then
runs a `BuildFollower` with a target: the buildset it forced, or the change it submitted (the
scheduler creates the buildset asynchronously). The follower turns events into a `BuildState`
and tells a display about each transition. If the stream stays quiet for a while it reconciles
with the API (GetBuild/ListBuilds), so a missed event costs a short delay, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from clients import fmt
from clients.client import GantryClient
from clients.errors import CoordinatorUnavailable
from clients.models import Build, Event, Result
from clients.render import event_duration

# How a running step's state string starts while its worker is disconnected (the coordinator
# keeps the build for the worker's grace period).
WORKER_AWAY = "worker disconnected"


@dataclass
class StepState:
    number: int
    name: str
    started_at: datetime | None = None
    result: Result | None = None
    duration: float | None = None
    state_string: str = ""
    urls: list[tuple[str, str]] = field(default_factory=list)  # (name, url), as the step adds them


@dataclass
class BuildState:
    """What the follower knows so far. `builder` is empty until a build has started."""

    buildset_id: int | None = None
    builder: str = ""
    number: int = 0
    worker: str = ""
    started_at: datetime | None = None
    steps: dict[int, StepState] = field(default_factory=dict)
    result: Result | None = None
    state_string: str = ""
    duration: float | None = None
    done: bool = False


@dataclass(frozen=True)
class Target:
    """The build to follow: by buildset id, or by a change id that a scheduler will pick up."""

    buildset_id: int | None = None
    change_id: int | None = None
    builders: tuple[str, ...] = ()


class Display(Protocol):
    """Shows transitions: "buildset", "build.started", "step.started", "step.urls" (the step
    added a link: the newest is last in `step.urls`), "step.finished", "build.retry",
    "build.finished", "buildset.finished"."""

    def note(self, kind: str, state: BuildState, step: StepState | None = None) -> None: ...


class EventSource(Protocol):
    async def get(self, wait: float) -> Event | None: ...


class EventPump:
    """Reads a subscription in a background task into a queue, so that waiting for the next
    event can time out without cancelling the stream."""

    _FAILED = object()

    def __init__(self, client: GantryClient, builders: Iterable[str] = ()) -> None:
        self._client = client
        self._builders = tuple(builders)
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, within: float = 30.0) -> None:
        """Subscribe to new events and wait (up to `within` s) until the stream is established."""
        self._task = asyncio.create_task(self._run())
        waiter = asyncio.create_task(self._connected.wait())
        await asyncio.wait({waiter, self._task}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            if self._error is not None:
                raise self._error
            raise CoordinatorUnavailable(
                "UNAVAILABLE", f"could not subscribe to events within {within:g}s"
            )

    async def _run(self) -> None:
        try:
            async for event in self._client.subscribe(
                since_event_id=-1, builders=self._builders, connected=self._connected
            ):
                self._queue.put_nowait(event)
        except Exception as err:  # handed to the reader by get()
            self._error = err
            self._queue.put_nowait(self._FAILED)

    async def get(self, wait: float) -> Event | None:
        """The next event, or None if none arrived within `wait` seconds."""
        try:
            item = await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return None
        if item is self._FAILED:
            assert self._error is not None
            raise self._error
        assert isinstance(item, Event)
        return item

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class BuildFollower:
    """Follows the build of `target` until it finishes (a RETRY is followed by the next try)."""

    def __init__(
        self,
        client: GantryClient,
        events: EventSource,
        display: Display,
        target: Target,
        reconcile_after: float = 3.0,
    ) -> None:
        self._client = client
        self._events = events
        self._display = display
        self._target = target
        self._reconcile_after = reconcile_after
        self._retried: set[tuple[str, int]] = set()
        self.state = BuildState(buildset_id=target.buildset_id)

    async def run(self) -> BuildState:
        while not self.state.done:
            event = await self._events.get(self._reconcile_after)
            if event is None:
                await self._reconcile()
            else:
                await self._apply(event)
        return self.state

    # -- events ------------------------------------------------------------------------------

    async def _apply(self, ev: Event) -> None:
        state = self.state
        if state.buildset_id is None:
            change_ids = ev.details.get("change_ids") or []
            if ev.kind == "buildset.added" and self._target.change_id in change_ids:
                state.buildset_id = ev.buildset_id
                self._display.note("buildset", state)
            return
        if ev.kind == "build.started" and not state.builder and ev.buildset_id == state.buildset_id:
            if self._wanted(ev.builder) and (ev.builder, ev.build_number) not in self._retried:
                self._begin(ev.builder, ev.build_number, ev.worker, ev.at)
            return
        if ev.kind == "buildset.finished" and ev.buildset_id == state.buildset_id:
            if state.builder:
                await self._reconcile()  # our build.finished should have come first: check
            if not state.done:
                state.result, state.done = ev.result, True
                self._display.note("buildset.finished", state)
            return
        if not state.builder or (ev.builder, ev.build_number) != (state.builder, state.number):
            return
        if ev.kind == "step.started":
            self._step_started(ev.step_number, ev.step_name, ev.at)
        elif ev.kind == "step.urls":
            step = self._step_started(ev.step_number, ev.step_name, None, quiet=True)
            urls = ev.details.get("urls")
            step.urls = [(str(u.get("name", "")), str(u.get("url", ""))) for u in urls if isinstance(u, dict)] \
                if isinstance(urls, list) else step.urls
            if step.urls:
                self._display.note("step.urls", self.state, step)
        elif ev.kind == "step.state":
            self._step_state(ev.step_number, ev.step_name, str(ev.details.get("state_string", "")))
        elif ev.kind == "step.finished":
            step = self._step_started(ev.step_number, ev.step_name, None, quiet=True)
            duration = event_duration(ev)
            if duration is None and step.started_at and ev.at:
                duration = fmt.elapsed_since(step.started_at, ev.at)
            self._step_finished(step, ev.result, duration, str(ev.details.get("state_string", "")))
        elif ev.kind == "build.finished":
            duration = event_duration(ev)
            if duration is None and state.started_at and ev.at:
                duration = fmt.elapsed_since(state.started_at, ev.at)
            self._finished(ev.result, str(ev.details.get("state_string", "")), duration)

    def _wanted(self, builder: str) -> bool:
        return not self._target.builders or builder in self._target.builders

    def _begin(self, builder: str, number: int, worker: str, at: datetime | None) -> None:
        state = self.state
        state.builder, state.number, state.worker, state.started_at = builder, number, worker, at
        state.steps = {}
        self._display.note("build.started", state)

    def _step_started(
        self, number: int, name: str, at: datetime | None, quiet: bool = False
    ) -> StepState:
        step = self.state.steps.get(number)
        if step is None:
            step = self.state.steps[number] = StepState(number, name, at)
            if not quiet:
                self._display.note("step.started", self.state, step)
        elif step.started_at is None:
            step.started_at = at
        return step

    def _step_state(self, number: int, name: str, text: str) -> None:
        """A running step's state changed; say so when its worker went away or came back."""
        step = self._step_started(number, name, None, quiet=True)
        if step.result is not None:
            return
        was_waiting = step.state_string.startswith(WORKER_AWAY)
        step.state_string = text
        if text.startswith(WORKER_AWAY):
            self._display.note("step.waiting", self.state, step)
        elif was_waiting:
            self._display.note("step.resumed", self.state, step)

    def _step_finished(
        self, step: StepState, result: Result | None, duration: float | None, state_string: str
    ) -> None:
        if step.result is not None:
            return
        step.result = result if result is not None else Result.SUCCESS
        step.duration, step.state_string = duration, state_string
        self._display.note("step.finished", self.state, step)

    def _finished(self, result: Result | None, state_string: str, duration: float | None) -> None:
        state = self.state
        if state.done:
            return
        state.result = result if result is not None else Result.SUCCESS
        state.state_string, state.duration = state_string, duration
        if state.result is Result.RETRY:
            # The request goes back to the queue: follow the buildset's next build.
            self._display.note("build.retry", state)
            self._retried.add((state.builder, state.number))
            state.builder, state.number, state.worker, state.result = "", 0, "", None
            return
        state.done = True
        self._display.note("build.finished", state)

    # -- reconciliation ----------------------------------------------------------------------

    async def _reconcile(self) -> None:
        """The stream was quiet: ask the API where things stand, in case we missed events."""
        state = self.state
        if state.buildset_id is None:
            if self._target.change_id is None:
                return
            found = await self._find_buildset_of_change(self._target.change_id)
            if found is None:
                return
            state.buildset_id = found
            self._display.note("buildset", state)
        if not state.builder:
            build = await self._find_build_of_buildset(state.buildset_id)
            if build is None:
                return
            self._begin(build.builder, build.number, build.worker, build.started_at)
        self._apply_snapshot(await self._client.get_build(state.builder, state.number))

    async def _candidate_builds(self, limit: int) -> list[Build]:
        if not self._target.builders:
            return await self._client.list_builds("", limit)
        builds: list[Build] = []
        for builder in self._target.builders:
            builds += await self._client.list_builds(builder, limit)
        return builds

    async def _find_buildset_of_change(self, change_id: int) -> int | None:
        for summary in await self._candidate_builds(5):
            build = await self._client.get_build(summary.builder, summary.number)
            if any(change.id == change_id for change in build.changes):
                return build.buildset_id
        return None

    async def _find_build_of_buildset(self, buildset_id: int) -> Build | None:
        candidates = [
            b
            for b in await self._candidate_builds(50)
            if b.buildset_id == buildset_id
            and self._wanted(b.builder)
            and (b.builder, b.number) not in self._retried
        ]
        return min(candidates, key=lambda b: b.number, default=None)

    def _apply_snapshot(self, build: Build) -> None:
        self.state.worker = build.worker or self.state.worker
        for step in build.steps:
            if step.started_at is None and not step.complete:
                continue
            known = self._step_started(step.number, step.name, step.started_at)
            if step.complete:
                self._step_finished(known, step.result, step.duration, step.state_string)
        if build.complete:
            self._finished(build.result, build.state_string, build.duration)
