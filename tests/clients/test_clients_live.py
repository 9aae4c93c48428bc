"""`BuildFollower`: from events (or, when events were missed, from the API) to build progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from clients.client import GantryClient
from clients.live import BuildFollower, BuildState, StepState, Target
from clients.models import Build, Change, Event, Result, Step

T0 = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class ScriptedEvents:
    """Hands out the given events, then reports silence (None) at once: no real waiting."""

    def __init__(self, events: list[Event]) -> None:
        self.events = list(events)

    async def get(self, wait: float) -> Event | None:
        return self.events.pop(0) if self.events else None


class FakeApi:
    def __init__(self, builds: list[Build]) -> None:
        self.builds = builds
        self.calls: list[str] = []

    async def list_builds(self, builder: str = "", limit: int = 20) -> list[Build]:
        self.calls.append(f"list_builds {builder}")
        return [b for b in self.builds if not builder or b.builder == builder][:limit]

    async def get_build(self, builder: str, number: int) -> Build:
        self.calls.append(f"get_build {builder}/{number}")
        return next(b for b in self.builds if (b.builder, b.number) == (builder, number))


class Recorder:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, kind: str, state: BuildState, step: StepState | None = None) -> None:
        label = f"{kind} {state.builder}/{state.number}"
        if step is not None:
            label += f" {step.name}"
            if step.result is not None:
                label += f" {step.result.name} {step.duration}"
        if kind.endswith("finished") and step is None:
            label += f" {state.result.name if state.result else None}"
        self.notes.append(label)


def ev(event_id: int, kind: str, **kw: Any) -> Event:
    return Event(id=event_id, kind=kind, **kw)


def follower(events: list[Event], target: Target, api: FakeApi | None = None) -> tuple[
    BuildFollower, Recorder
]:
    recorder = Recorder()
    client = cast(GantryClient, api or FakeApi([]))
    return BuildFollower(client, ScriptedEvents(events), recorder, target), recorder


async def test_follows_the_build_of_a_submitted_change() -> None:
    b = {"builder": "sample", "build_number": 1, "buildset_id": 7}
    events = [
        ev(1, "change.added", details={"change_id": 5}),
        ev(2, "buildset.added", buildset_id=6, details={"change_ids": [4]}),  # someone else's
        ev(3, "buildset.added", buildset_id=7, details={"change_ids": [5]}),
        ev(4, "build.started", builder="other", build_number=9, buildset_id=6),
        ev(5, "build.started", worker="w", at=at(0), **b),
        ev(6, "step.started", step_number=0, step_name="hello", at=at(1), **b),
        ev(7, "step.finished", step_number=0, step_name="hello", at=at(3),
           result=Result.SUCCESS, **b),
        ev(8, "step.finished", step_number=1, step_name="never", result=Result.SKIPPED,
           details={"duration": 0.0}, **b),
        ev(9, "build.finished", result=Result.WARNINGS, details={"duration": 4.5}, **b),
        ev(10, "buildset.finished", buildset_id=7, result=Result.WARNINGS),
    ]
    f, rec = follower(events, Target(change_id=5))
    state = await f.run()
    assert state.done and state.result is Result.WARNINGS and state.duration == 4.5
    assert (state.builder, state.number, state.worker, state.buildset_id) == ("sample", 1, "w", 7)
    assert rec.notes == [
        "buildset /0",
        "build.started sample/1",
        "step.started sample/1 hello",
        "step.finished sample/1 hello SUCCESS 2.0",
        "step.finished sample/1 never SKIPPED 0.0",
        "build.finished sample/1 WARNINGS",
    ]


async def test_a_retried_build_is_followed_by_the_next_one() -> None:
    first = {"builder": "b", "build_number": 1, "buildset_id": 3}
    second = {"builder": "b", "build_number": 2, "buildset_id": 3}
    events = [
        ev(1, "build.started", **first),
        ev(2, "build.finished", result=Result.RETRY, **first),
        ev(3, "build.started", **second),
        ev(4, "build.finished", result=Result.FAILURE, **second),
    ]
    f, rec = follower(events, Target(buildset_id=3, builders=("b",)))
    state = await f.run()
    assert (state.number, state.result) == (2, Result.FAILURE)
    assert rec.notes == [
        "build.started b/1", "build.retry b/1", "build.started b/2", "build.finished b/2 FAILURE",
    ]


async def test_missed_events_are_recovered_from_the_api() -> None:
    steps = (
        Step(id=1, number=0, name="compile", started_at=at(0), finished_at=at(2), complete=True,
             result=Result.SUCCESS),
        Step(id=2, number=1, name="test", started_at=at(2), finished_at=at(5), complete=True,
             result=Result.FAILURE),
    )
    other = Build(id=1, builder="b", number=1, buildset_id=1, complete=True, result=Result.SUCCESS)
    ours = Build(id=2, builder="b", number=2, buildset_id=2, worker="w", started_at=at(0),
                 finished_at=at(5), complete=True, result=Result.FAILURE, steps=steps,
                 changes=(Change(author="a", repository="r", branch="b", revision="c", id=9),))
    api = FakeApi([ours, other])
    # Only the change event made it: the follower must find the rest by itself.
    f, rec = follower([ev(1, "change.added")], Target(change_id=9), api)
    state = await f.run()
    assert (state.buildset_id, state.number, state.result, state.duration) == (
        2, 2, Result.FAILURE, 5.0
    )
    assert rec.notes == [
        "buildset /0",
        "build.started b/2",
        "step.started b/2 compile",
        "step.finished b/2 compile SUCCESS 2.0",
        "step.started b/2 test",
        "step.finished b/2 test FAILURE 3.0",
        "build.finished b/2 FAILURE",
    ]


async def test_a_buildset_that_finishes_without_a_build_ends_the_wait() -> None:
    events = [ev(1, "buildset.finished", buildset_id=4, result=Result.CANCELLED)]
    f, rec = follower(events, Target(buildset_id=4))
    state = await f.run()
    assert state.done and state.result is Result.CANCELLED and not state.builder
    assert rec.notes == ["buildset.finished /0 CANCELLED"]


async def test_a_link_added_by_a_running_step_is_shown_at_once() -> None:
    b = {"builder": "parent", "build_number": 1, "buildset_id": 3}
    link = {"name": "child #4", "url": "builders/child/builds/4"}
    events = [
        ev(1, "build.started", **b),
        ev(2, "step.started", step_number=0, step_name="trigger", **b),
        ev(3, "step.urls", step_number=0, step_name="trigger", details={"urls": [link]}, **b),
        ev(4, "step.finished", step_number=0, step_name="trigger", result=Result.SUCCESS,
           details={"duration": 1.0}, **b),
        ev(5, "build.finished", result=Result.WARNINGS, **b),
    ]
    f, rec = follower(events, Target(buildset_id=3))
    state = await f.run()
    assert rec.notes == [
        "build.started parent/1", "step.started parent/1 trigger", "step.urls parent/1 trigger",
        "step.finished parent/1 trigger SUCCESS 1.0", "build.finished parent/1 WARNINGS",
    ]
    assert state.steps[0].urls == [("child #4", "builders/child/builds/4")]


async def test_a_step_waiting_for_its_disconnected_worker_is_shown_and_its_return_too() -> None:
    b = {"builder": "b", "build_number": 1, "buildset_id": 3}
    away = {"state_string": "worker disconnected, waiting up to 300 s"}
    events = [
        ev(1, "build.started", **b),
        ev(2, "step.started", step_number=0, step_name="compile", **b),
        ev(3, "step.state", step_number=0, step_name="compile", details=away, **b),
        ev(4, "step.state", step_number=0, step_name="compile", details={"state_string": "running"}, **b),
        ev(5, "step.finished", step_number=0, step_name="compile", result=Result.SUCCESS,
           details={"duration": 1.0}, **b),
        ev(6, "build.finished", result=Result.WARNINGS, **b),
    ]
    f, rec = follower(events, Target(buildset_id=3))
    await f.run()
    assert rec.notes == [
        "build.started b/1", "step.started b/1 compile", "step.waiting b/1 compile",
        "step.resumed b/1 compile", "step.finished b/1 compile SUCCESS 1.0", "build.finished b/1 WARNINGS",
    ]


def test_the_line_display_says_what_the_step_waits_for() -> None:
    import io

    from rich.console import Console

    from clients.live_view import LineDisplay

    out = io.StringIO()
    display = LineDisplay(Console(file=out, width=80))
    state = BuildState(builder="b", number=1)
    step = StepState(0, "compile", state_string="worker disconnected, waiting up to 300 s")
    display.note("step.waiting", state, step)
    step.state_string = "running"
    display.note("step.resumed", state, step)
    assert out.getvalue() == (
        "    ⏸ compile: worker disconnected, waiting up to 300 s\n"
        "    ▸ compile: worker back, step continues\n"
    )
