"""`gantry watch`'s dashboard: the state fed with snapshots and events (running builds with their
current step and ETA, queued requests, recent results, workers), its rendering, and the loop
that drives it against a fake coordinator."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import AsyncGenerator, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from rich.console import Console

from clients import commands
from clients.client import GantryClient
from clients.dashboard import DashboardView, eta_text, run_dashboard
from clients.dashboard_state import DashboardState, parse_build_label
from clients.errors import CoordinatorUnavailable
from clients.models import Build, Builder, Event, Result, Step, Worker

T0 = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(event_id: int, kind: str, **kw: Any) -> Event:
    return Event(id=event_id, kind=kind, **kw)


def build(builder: str, number: int, start: float, end: float | None = None,
          result: Result | None = Result.SUCCESS, **kw: Any) -> Build:
    done = end is not None
    return Build(
        id=number, builder=builder, number=number, started_at=at(start),
        finished_at=at(end) if end is not None else None, complete=done,
        result=result if done else None, **kw,
    )


def feed(state: DashboardState, events: Iterable[Event]) -> None:
    for event in events:
        state.apply(event)


# -- the state -------------------------------------------------------------------------------


def test_a_build_goes_from_queued_to_running_to_recent() -> None:
    state = DashboardState()
    feed(state, [
        ev(1, "buildrequest.added", builder="b", buildset_id=1, details={"request_id": 1}),
        ev(2, "buildrequest.added", builder="b", buildset_id=2, details={"request_id": 2}),
    ])
    assert state.queued_builders() == [("b", 2)]

    feed(state, [
        ev(3, "build.started", at=at(0), builder="b", build_number=1, worker="w1"),
        ev(4, "step.started", at=at(1), builder="b", build_number=1, step_number=0,
           step_name="compile", worker="w1"),
    ])
    assert state.queued_builders() == [("b", 1)]
    [run] = state.running_builds()
    assert (run.label, run.worker, run.step_name, run.step_done) == ("b/1", "w1", "compile", False)
    assert run.elapsed(at(12.5)) == 12.5
    assert state.worker_builds("w1") == ["b/1"]

    feed(state, [
        ev(5, "step.finished", at=at(5), builder="b", build_number=1, step_number=0,
           step_name="compile", result=Result.SUCCESS),
    ])
    assert (run.step_name, run.step_done) == ("compile", True)
    feed(state, [
        ev(6, "step.started", at=at(5), builder="b", build_number=1, step_number=1, step_name="test"),
        # A late or repeated event of an earlier step does not move the current step back.
        ev(7, "step.finished", at=at(5), builder="b", build_number=1, step_number=0,
           step_name="compile", result=Result.SUCCESS),
    ])
    assert (run.step_number, run.step_name, run.step_done) == (1, "test", False)

    feed(state, [
        ev(8, "build.finished", at=at(30), builder="b", build_number=1, worker="w1",
           result=Result.FAILURE, details={"state_string": "failed test", "duration": 30.0}),
    ])
    assert state.running == {}
    assert state.worker_builds("w1") == []
    [done] = state.recent
    assert (done.label, done.result, done.duration, done.state_string, done.finished_at) == (
        "b/1", Result.FAILURE, 30.0, "failed test", at(30)
    )
    assert state.last_event_id == 8
    # A failure is no sample for the ETA.
    assert state.eta_estimate("b") is None


def test_a_retried_build_requeues_its_request() -> None:
    state = DashboardState()
    feed(state, [
        ev(1, "buildrequest.added", builder="b", buildset_id=1),
        ev(2, "build.started", at=at(0), builder="b", build_number=1, worker="w1"),
        ev(3, "build.finished", at=at(4), builder="b", build_number=1, result=Result.RETRY,
           details={"state_string": "worker lost"}),
        ev(4, "buildrequest.retried", builder="b", buildset_id=1, details={"build_number": 1}),
    ])
    assert state.queued_builders() == [("b", 1)]
    assert [(f.label, f.result, f.duration) for f in state.recent] == [("b/1", Result.RETRY, 4.0)]


def test_eta_is_the_average_of_the_last_five_successful_builds() -> None:
    state = DashboardState()
    history = [
        build("b", 9, 900, 910),  # 10 s
        build("b", 8, 800, 820, Result.FAILURE),  # failures do not count
        build("b", 7, 700, 720),  # 20 s
        build("b", 6, 600, 630),  # 30 s
        build("b", 5, 500, 540),  # 40 s
        build("b", 4, 400, 450),  # 50 s
        build("b", 3, 300, 1300),  # the 6th success: too old to count
        build("b", 2, 200),  # still running
    ]
    feed(state, [ev(1, "build.started", at=at(1000), builder="b", build_number=10, worker="w")])
    assert state.builders_needing_history() == {"b"}
    [run] = state.running_builds()
    assert state.remaining(run, at(1010)) is None  # no history yet: no ETA

    state.load_history("b", history)
    assert state.builders_needing_history() == set()
    assert state.eta_estimate("b") == 30.0
    assert state.remaining(run, at(1010)) == 20.0
    assert state.remaining(run, at(1045)) == -15.0  # overdue

    # Each success that finishes under our eyes becomes the newest sample.
    feed(state, [
        ev(2, "build.finished", at=at(1070), builder="b", build_number=10,
           result=Result.SUCCESS, details={"duration": 70.0}),
    ])
    assert state.history["b"] == [70.0, 10.0, 20.0, 30.0, 40.0]
    assert state.eta_estimate("b") == 34.0
    assert state.eta_estimate("other") is None


def test_remaining_time_uses_the_coordinators_per_step_estimate() -> None:
    state = DashboardState()
    state.load_history("b", [build("b", 1, 0, 100)])
    feed(state, [
        ev(1, "build.started", at=at(1000), builder="b", build_number=2, worker="w"),
        ev(2, "step.started", at=at(1000), builder="b", build_number=2, step_number=0, step_name="compile"),
    ])
    assert state.builds_needing_estimate() == [("b", 2)]  # one GetBuild, then never again
    state.load_build(Build(
        id=2, builder="b", number=2, worker="w", started_at=at(1000), steps=(
            Step(id=1, number=0, name="compile", started_at=at(1000), expected_duration=10.0),
            Step(id=2, number=1, name="test", expected_duration=30.0),
            Step(id=3, number=2, name="new"),  # never seen: no estimate of its own
        ),
    ))
    assert state.builds_needing_estimate() == []
    [run] = state.running_builds()
    assert state.remaining(run, at(1004)) == 6.0 + 30.0
    assert state.remaining(run, at(1020)) == 30.0  # compile overran: only test is left
    feed(state, [
        ev(3, "step.finished", at=at(1020), builder="b", build_number=2, step_number=0, step_name="compile"),
        ev(4, "step.started", at=at(1021), builder="b", build_number=2, step_number=1, step_name="test"),
    ])
    assert state.remaining(run, at(1031)) == 20.0  # the average (100 s) is not used any more


def test_the_duration_falls_back_to_start_and_finish_times() -> None:
    state = DashboardState()
    feed(state, [
        ev(1, "build.started", at=at(0), builder="b", build_number=1),
        ev(2, "build.finished", at=at(12), builder="b", build_number=1, result=Result.SUCCESS),
    ])
    assert state.recent[0].duration == 12.0
    assert state.eta_estimate("b") == 12.0


def test_snapshot_then_events() -> None:
    state = DashboardState()
    state.load_builders([Builder("b", workers=("w1", "w2"), pending_requests=2),
                         Builder("c", pending_requests=0)])
    state.load_builds([
        build("b", 3, 100, worker="w1"),  # running
        build("b", 2, 50, 80, Result.WARNINGS, state_string="warnings", worker="w2"),
        build("c", 1, 10, 40, Result.FAILURE),
    ])
    state.load_workers([
        Worker("w1", connected=True, running_builds=("b/3", "c/7")),
        Worker("w2", connected=False),
    ])
    assert state.queued_builders() == [("b", 2)]
    assert [r.label for r in state.running_builds()] == ["b/3", "c/7"]  # c/7 from ListWorkers
    assert [(f.label, f.result) for f in state.recent] == [
        ("b/2", Result.WARNINGS), ("c/1", Result.FAILURE)
    ]
    assert [(w.name, w.connected) for w in state.shown_workers()] == [("w1", True), ("w2", False)]
    # c/7's start and step are unknown until its details are read.
    assert state.builds_needing_detail() == [("b", 3), ("c", 7)]
    state.load_build(Build(
        id=7, builder="c", number=7, worker="w1", started_at=at(90), steps=(
            Step(id=1, number=0, name="checkout", complete=True, result=Result.SUCCESS,
                 started_at=at(90), finished_at=at(91)),
            Step(id=2, number=1, name="build", started_at=at(91)),
            Step(id=3, number=2, name="upload"),  # not started
        ),
    ))
    c7 = state.running[("c", 7)]
    assert (c7.started_at, c7.step_name, c7.step_done) == (at(90), "build", False)

    # Events after the snapshot: one the snapshot already reflected is harmless.
    feed(state, [
        ev(10, "build.started", at=at(50), builder="b", build_number=2, worker="w2"),
        ev(11, "build.finished", at=at(80), builder="b", build_number=2,
           result=Result.WARNINGS, details={"duration": 30.0}),
        ev(12, "worker.disconnected", worker="w1"),
        ev(13, "worker.connected", worker="w3"),
    ])
    assert [r.label for r in state.running_builds()] == ["c/7", "b/3"]  # oldest first
    assert [f.label for f in state.recent] == ["b/2", "c/1"]
    assert [(w.name, w.connected) for w in state.shown_workers()] == [
        ("w1", False), ("w2", False), ("w3", True)
    ]
    # A later ListWorkers still listing a build that has finished does not revive it.
    state.load_workers([Worker("w2", connected=True, running_builds=("b/2",))])
    assert ("b", 2) not in state.running
    # ListBuilders is the truth for the queue.
    state.load_builders([Builder("b", pending_requests=5)])
    assert state.queued_builders() == [("b", 5)]


def test_recent_keeps_the_newest_ten() -> None:
    state = DashboardState()
    for n in range(1, 15):
        feed(state, [
            ev(2 * n, "build.started", at=at(n), builder="b", build_number=n),
            ev(2 * n + 1, "build.finished", at=at(n + 0.5), builder="b", build_number=n,
               result=Result.SUCCESS),
        ])
    assert [f.number for f in state.recent] == list(range(14, 4, -1))


def test_the_builder_filter() -> None:
    state = DashboardState.for_builders(["b"])
    state.load_builders([Builder("b", workers=("w1",), pending_requests=1),
                         Builder("other", workers=("w2",), pending_requests=4)])
    state.load_workers([Worker("w1", connected=True), Worker("w2", connected=True, running_builds=("other/1",))])
    feed(state, [
        ev(1, "buildrequest.added", builder="other"),
        ev(2, "build.started", at=at(0), builder="other", build_number=2, worker="w1"),
        ev(3, "build.started", at=at(0), builder="b", build_number=1, worker="w1"),
    ])
    assert state.queued_builders() == []  # b's request was claimed; other is not shown
    assert [r.label for r in state.running_builds()] == ["b/1"]
    assert [w.name for w in state.shown_workers()] == ["w1"]


@pytest.mark.parametrize(
    ("label", "key"), [("b/7", ("b", 7)), ("a/b/12", ("a/b", 12)), ("request:3", None), ("b/x", None)]
)
def test_parse_build_label(label: str, key: tuple[str, int] | None) -> None:
    assert parse_build_label(label) == key


# -- rendering -------------------------------------------------------------------------------


def sample_state() -> DashboardState:
    state = DashboardState()
    state.load_builders([Builder("runtests", workers=("linux-1",), pending_requests=3)])
    state.load_workers([Worker("linux-1", connected=True), Worker("mac-1", connected=False)])
    state.load_history("runtests", [build("runtests", 6, 0, 60)])
    feed(state, [
        ev(40, "build.started", at=at(100), builder="runtests", build_number=7, worker="linux-1"),
        ev(41, "step.started", at=at(101), builder="runtests", build_number=7, step_number=0,
           step_name="compile"),
        ev(42, "build.started", at=at(100), builder="lint", build_number=2, worker="linux-1"),
        ev(43, "build.finished", at=at(95), builder="docs", build_number=4,
           result=Result.FAILURE, details={"duration": 12.0, "state_string": "failed sphinx"}),
    ])
    return state


def render(state: DashboardState, width: int = 120) -> str:
    now = at(120)
    console = Console(record=True, width=width, color_system="truecolor", force_terminal=True)
    console.print(DashboardView(state, "localhost:9989", clock=lambda: now))
    return console.export_text()


@pytest.mark.parametrize("width", [120, 80])
def test_the_dashboard_renders_every_panel(width: int) -> None:
    text = render(sample_state(), width)
    for expected in (
        "Running (2)", "runtests/7", "linux-1", "compile", "20.0s", "~40.0s left",
        "lint/2", "—",
        "Queued (2)", "runtests",
        "Recent", "docs/4", "failure", "12.0s", "failed sphinx",
        "Workers", "mac-1", "yes", "no", "runtests/7", "idle",
        "localhost:9989", "last event #43",
    ):
        assert expected in text, (expected, text)


def test_the_dashboard_colours_results() -> None:
    console = Console(record=True, width=120, color_system="standard", force_terminal=True)
    console.print(DashboardView(sample_state(), clock=lambda: at(120)))
    styled = console.export_text(styles=True)
    assert "\x1b[1;31mfailure" in styled  # bold red
    assert "\x1b[32myes" in styled  # a connected worker in green


def test_an_empty_dashboard_says_so() -> None:
    text = render(DashboardState())
    for expected in ("no builds running", "nothing queued", "no finished builds yet", "no workers"):
        assert expected in text


def test_eta_text() -> None:
    assert eta_text(None).plain == "—"
    assert eta_text(42.0).plain == "~42.0s left"
    assert eta_text(-3).plain == "overdue"


# -- driving it ------------------------------------------------------------------------------


class FakeCoordinator:
    """Enough of `GantryClient` for the dashboard: a snapshot and a scripted event stream."""

    address = "fake:1"

    def __init__(self, events: list[Event], fail: bool = False) -> None:
        self.events = events
        self.fail = fail
        self.calls: list[str] = []
        self.running = build("b", 2, 0)

    async def subscribe(self, since_event_id: int = -1, builders: Iterable[str] = (),
                        kinds: Iterable[str] = (), *, connected: asyncio.Event | None = None,
                        **kw: Any) -> AsyncGenerator[Event, None]:
        if self.fail:
            raise CoordinatorUnavailable("UNAVAILABLE", "cannot reach the coordinator at fake:1")
        self.calls.append(f"subscribe {sorted(builders)}")
        assert connected is not None
        connected.set()
        for event in self.events:
            await asyncio.sleep(0.01)
            yield event
        await asyncio.Event().wait()  # a subscription never ends by itself

    async def list_builders(self) -> list[Builder]:
        self.calls.append("list_builders")
        return [Builder("b", workers=("w1",), pending_requests=1)]

    async def list_workers(self) -> list[Worker]:
        self.calls.append("list_workers")
        return [Worker("w1", connected=True)]

    async def list_builds(self, builder: str = "", limit: int = 20) -> list[Build]:
        self.calls.append(f"list_builds {builder} {limit}")
        return [self.running, build("b", 1, -100, -40)]

    async def get_build(self, builder: str, number: int) -> Build:
        self.calls.append(f"get_build {builder}/{number}")
        step = Step(id=1, number=0, name="compile", started_at=self.running.started_at)
        return replace(self.running, steps=(step,))


async def test_the_dashboard_loop_shows_the_snapshot_and_the_events() -> None:
    now = datetime.now(UTC)
    fake = FakeCoordinator([
        ev(1, "worker.connected", at=now, worker="w2"),
        ev(2, "buildrequest.added", at=now, builder="b", buildset_id=3),
        ev(3, "build.started", at=now, builder="other", build_number=1, worker="w1"),
    ])
    fake.running = replace(build("b", 2, 0, worker="w1"), started_at=now - timedelta(seconds=5))
    console = Console(record=True, width=120, force_terminal=True)
    code = await run_dashboard(cast(GantryClient, fake), console, ["b"], frames=4)
    assert code == 0
    text = console.export_text()
    assert "b/2" in text and "w1" in text
    assert "compile" in text  # b/2's current step, from its details
    assert "left" in text  # its ETA, from b/1's 60 s
    assert "b/1" in text and "success" in text
    assert "Queued (2)" in text  # 1 pending at start + 1 added since
    assert "other/1" not in text  # filtered out
    assert fake.calls[0] == "subscribe ['b']"  # subscribed before the snapshot
    assert "list_builds b 20" in fake.calls  # b's history, for the ETA
    assert fake.calls.count("get_build b/2") == 1


async def test_a_failed_resync_is_shown_and_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    from clients import dashboard

    monkeypatch.setattr(dashboard, "RESYNC_SECONDS", 0.0)
    fake = FakeCoordinator([])
    real_list_workers = fake.list_workers
    failures = iter([False, True])  # the snapshot works, the first re-sync fails, then all work

    async def flaky_list_workers() -> list[Worker]:
        if next(failures, False):
            raise CoordinatorUnavailable("UNAVAILABLE", "cannot reach the coordinator at fake:1")
        return await real_list_workers()

    monkeypatch.setattr(fake, "list_workers", flaky_list_workers)
    console = Console(record=True, width=120, force_terminal=True)
    assert await run_dashboard(cast(GantryClient, fake), console, frames=6) == 0
    frames = console.export_text().split("gantry watch")
    assert any("cannot reach the coordinator" in f for f in frames)
    assert "cannot reach the coordinator" not in frames[-1]
    assert fake.calls.count("list_workers") >= 3


async def test_the_dashboard_reports_an_unreachable_coordinator() -> None:
    console = Console(record=True, width=120, force_terminal=True)
    with pytest.raises(CoordinatorUnavailable):
        await run_dashboard(cast(GantryClient, FakeCoordinator([], fail=True)), console)
    assert console.export_text() == ""


# -- choosing the output ---------------------------------------------------------------------


def watch_args(*argv: str) -> argparse.Namespace:
    from clients import cli

    return cli.build_parser().parse_args(["watch", *argv])


@pytest.mark.parametrize(
    ("argv", "terminal", "dashboard"),
    [
        ((), True, True),
        (("--builder", "b"), True, True),
        ((), False, False),  # piped: one line per event
        (("--lines",), True, False),
        (("--json",), True, False),
        (("--kind", "build.finished"), True, False),
        (("--since", "0"), True, False),
    ],
)
def test_the_dashboard_is_for_terminals(argv: tuple[str, ...], terminal: bool, dashboard: bool) -> None:
    console = Console(file=io.StringIO(), force_terminal=terminal)
    assert commands._wants_dashboard(watch_args(*argv), console) is dashboard
