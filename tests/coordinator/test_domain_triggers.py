"""Trigger / Triggerable / Dependent in the domain: a real BuildRunner and the coordinator's
scheduling objects (as app.py composes them) on the in-memory storage, a fake worker, and events
published by hand on a real EventBus."""

from __future__ import annotations

import asyncio
import itertools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coordinator.config.loader import ConfigError, load_config
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.runner import BuildRunner, BuildServices
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from coordinator.domain.events import Event, EventBus
from coordinator.domain.model import (
    Build,
    JournalEntry,
    NewBuildset,
    PropertyValue,
    SourceStamp,
)
from coordinator.domain.properties.renderables import Interpolate
from coordinator.domain.results import Result
from coordinator.domain.scheduling.build_control import BuildControl
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.downstream import Downstream
from coordinator.domain.scheduling.force import ForceScheduler
from coordinator.domain.scheduling.triggerable import BuildsetFollower, Dependent, Triggerable
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.steps.trigger import Trigger
from coordinator.domain.steps.trigger_port import Triggered
from coordinator.domain.workers.sessions import WorkerRegistry
from tests.coordinator.fakes import Changes, FakeClock, RecordingStorage, dispatcher_on


class FakePort:
    """A TriggerPort that records what was triggered and follows it with a real follower."""

    def __init__(self) -> None:
        self.follower = BuildsetFollower()
        self.calls: list[tuple[str, list[SourceStamp], dict[str, Any], bool, tuple[str, int]]] = []
        self.ids = itertools.count(10)
        self.triggered = Changes()
        self.stopped: list[tuple[int, str]] = []
        self.journal: JournalEntry | None = None
        self.followed: list[int] = []

    async def trigger(
        self, scheduler: str, sourcestamps: Sequence[SourceStamp], properties: Sequence[PropertyValue],
        *, wait: bool, parent: tuple[str, int], journal: JournalEntry | None = None,
    ) -> Triggered:
        if scheduler == "nope":
            raise LookupError("no scheduler named 'nope'")
        self.calls.append((scheduler, list(sourcestamps), {p.name: p.value for p in properties}, wait, parent))
        bs_id = next(self.ids)
        t = Triggered(scheduler, bs_id, {"child": bs_id * 10})
        async def stop(reason: str) -> None:
            self.stopped.append((bs_id, reason))

        t.stop = stop
        if wait:
            self.follower.follow(t)
        if journal is not None:  # stored with the buildset, as the real port does
            self.journal = journal.with_buildset(bs_id, t.requests)
        self.triggered.bump()
        return t

    async def follow(self, scheduler: str, buildset_id: int, requests: dict[str, int], *, wait: bool) -> Triggered:
        self.followed.append(buildset_id)
        t = Triggered(scheduler, buildset_id, dict(requests))
        if wait:
            self.follower.follow(t)
        self.triggered.bump()
        return t

    def finish(self, bs_id: int, result: Result, *builds: int) -> None:
        for n in builds:
            self.follower.on_event(Event("build.started", 0.0, builder="child", build_number=n, buildset_id=bs_id))
        self.follower.on_event(Event("buildset.finished", 0.0, buildset_id=bs_id, result=result))


def runner(step: Trigger, port: FakePort, props: dict[str, Any] | None = None,
           stamps: Sequence[SourceStamp] = ()) -> tuple[BuildRunner, RecordingStorage]:
    repo = RecordingStorage()
    build = Build(id=1, builder="parent", number=7, worker="w", build_request_id=1, buildset_id=1, started_at=0.0,
                  properties=[PropertyValue(k, v, "test") for k, v in (props or {}).items()])
    repo.adopt(build)
    r = BuildRunner(build, [step], "parent", None,  # type: ignore[arg-type]  # Trigger steps use no worker
                    BuildServices(repo.builds, repo.logs, LogWatchers(), FakeClock(), trigger_port=port), stamps)
    return r, repo


async def test_wait_for_finish_takes_the_worst_result_and_links_the_builds() -> None:
    port = FakePort()
    r, repo = runner(Trigger(["a", "b"], waitForFinish=True), port)
    task = asyncio.ensure_future(r.run())
    await port.triggered.until(lambda: len(port.calls) == 2)
    port.finish(10, Result.SUCCESS, 1)
    # The first build is linked (stored) while the step still waits for the second buildset.
    await repo.progress.until(lambda: bool(repo.step_urls))
    assert repo.step_urls == [("trigger", [("child #1", "builders/child/builds/1")])]
    assert not task.done()
    port.finish(11, Result.FAILURE, 2)
    result, state = await task
    assert result == Result.FAILURE and state == "failed trigger"
    step = r.build.steps[0]
    assert step.urls == [("child #1", "builders/child/builds/1"), ("child #2", "builders/child/builds/2")]
    assert repo.step_results == [(1, "trigger", Result.FAILURE)]
    assert len(port.follower) == 0
    assert [c[4] for c in port.calls] == [("parent", 7), ("parent", 7)]


async def test_without_wait_the_step_succeeds_at_once_and_links_the_requests() -> None:
    port = FakePort()
    r, _ = runner(Trigger(["a"]), port)
    result, _ = await r.run()
    assert result == Result.SUCCESS
    assert r.build.steps[0].urls == [("child: build request 100", "buildrequests/100")]
    assert port.calls[0][3] is False and len(port.follower) == 0


async def test_stopping_the_build_stops_waiting() -> None:
    port = FakePort()
    r, repo = runner(Trigger(["a"], waitForFinish=True), port)
    task = asyncio.ensure_future(r.run())
    await port.triggered.until(lambda: len(port.calls) == 1)
    port.follower.on_event(Event("build.started", 0.0, builder="child", build_number=3, buildset_id=10))
    r.stop("user asked")
    result, _ = await task
    assert result == Result.CANCELLED
    assert repo.step_results == [(1, "trigger", Result.CANCELLED)]
    assert r.build.steps[0].urls == [("child #3", "builders/child/builds/3")]
    assert len(port.follower) == 0  # nothing left behind for a buildset nobody waits for
    assert port.stopped == [(10, "the triggering build parent was stopped")]


async def test_unknown_scheduler_at_run_time_is_an_exception() -> None:
    r, _ = runner(Trigger(["nope"]), FakePort())
    assert (await r.run())[0] == Result.EXCEPTION


STAMPS = [SourceStamp("repo-a", "main", "r1", codebase="a"), SourceStamp("repo-b", "dev", "r2", codebase="b")]


@pytest.mark.parametrize(
    ("kwargs", "got", "expected"),
    [
        ({}, {"a": "g1"}, [("a", "main", "g1"), ("b", "dev", "r2")]),  # updateSourceStamp (default)
        ({}, "g9", [("a", "main", "r1"), ("b", "dev", "r2")]),  # a plain got_revision is codebase ''
        ({"updateSourceStamp": False}, {"a": "g1"}, [("a", "main", "r1"), ("b", "dev", "r2")]),
        ({"alwaysUseLatest": True}, {"a": "g1"}, [("a", "main", ""), ("b", "dev", "")]),
        ({"sourceStamps": [{"codebase": "x", "branch": Interpolate("%(prop:br)s"), "revision": "1"}]}, None,
         [("x", "rel", "1")]),
    ],
)
async def test_source_stamps_of_the_triggered_buildset(kwargs: dict[str, Any], got: Any,
                                                       expected: list[tuple[str, str, str]]) -> None:
    port = FakePort()
    props = {"br": "rel"} | ({} if got is None else {"got_revision": got})
    r, _ = runner(Trigger(["t"], **kwargs), port, props, STAMPS)
    assert (await r.run())[0] == Result.SUCCESS
    assert [(s.codebase, s.branch, s.revision) for s in port.calls[0][1]] == expected


async def test_copy_and_set_properties() -> None:
    port = FakePort()
    step = Trigger(["t"], copy_properties=["color", "missing"],
                   set_properties={"flavour": Interpolate("%(prop:color)s-x"), "n": 3})
    r, _ = runner(step, port, {"color": "red", "other": 1})
    await r.run()
    assert port.calls[0][2] == {"color": "red", "flavour": "red-x", "n": 3}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedulerNames": []}, "schedulerNames must name at least one"),
        ({"alwaysUseLatest": True, "updateSourceStamp": True}, "cannot both be True"),
        ({"sourceStamps": [{"branch": "x"}], "alwaysUseLatest": True}, "sourceStamps cannot be combined"),
        ({"sourceStamps": [{"tag": "x"}]}, "unknown key(s) tag"),
        ({"waitForFinish": "yes"}, "waitForFinish must be True or False"),
    ],
)
def test_trigger_options_are_checked(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("schedulerNames", ["t"])
    assert any(message in e for e in Trigger(**kwargs).errors), Trigger(**kwargs).errors


def test_triggerable_buildset_fills_codebase_defaults_and_trigger_properties_win() -> None:
    sched = Triggerable("t", ["x", "y"], codebases={"app": {"branch": "main"}, "lib": {"repository": "L",
                        "branch": "stable", "revision": "v1"}}, properties={"color": "blue", "keep": 1})
    bs = sched.buildset_for([SourceStamp("A", "feature", "abc", codebase="app"),
                             SourceStamp("O", "b", "c", codebase="other")],
                            [PropertyValue("color", "red", "Trigger")], ("parent", 2))
    assert bs.builders == ["x", "y"] and bs.scheduler == "t" and "parent/2" in bs.reason
    assert [(s.codebase, s.repository, s.branch, s.revision) for s in bs.sourcestamps] == [
        ("app", "A", "feature", "abc"), ("lib", "L", "stable", "v1"), ("other", "O", "b", "c"),
    ]
    props = {p.name: (p.value, p.source) for p in bs.properties}
    assert props["color"] == ("red", "Trigger") and props["keep"] == (1, "Scheduler")
    assert props["scheduler"] == ("t", "Scheduler")


# ------------------------------------------------------------------------------- the service


@dataclass
class Service:
    """The objects under test, composed as app.py does."""

    dispatcher: Dispatcher
    submitter: BuildsetSubmitter
    schedulers: SchedulerControl
    downstream: Downstream
    builds: BuildControl


def service(*schedulers: Any) -> tuple[Service, RecordingStorage, EventBus]:
    repo, bus, clock = RecordingStorage(), EventBus(), FakeClock()
    workers = WorkerRegistry(clock.now, repo.workers)
    dispatcher = dispatcher_on(repo, workers, clock)
    submitter = BuildsetSubmitter(repo.buildsets, repo.book, clock, dispatcher)
    control = SchedulerControl(repo.schedulers, clock, submitter)
    control.configure(list(schedulers))
    downstream = Downstream(repo.buildsets, submitter, control, dispatcher)
    dispatcher.trigger_port = downstream
    bus.add_listener(downstream.on_event)
    builds = BuildControl(repo.builds, repo.buildsets, submitter, control, dispatcher)
    return Service(dispatcher, submitter, control, downstream, builds), repo, bus


@pytest.mark.parametrize("result", [Result.SUCCESS, Result.WARNINGS, Result.FAILURE, Result.CANCELLED])
async def test_dependent_follows_successful_upstream_buildsets_only(result: Result) -> None:
    up = ForceScheduler("up", ["u"])
    other = ForceScheduler("other", ["u"])
    svc, repo, bus = service(up, other, Dependent("down", upstream=up, builderNames=["d"]))
    stamps = [SourceStamp("R", "main", "abc", codebase="")]
    up_id, _ = await svc.submitter.submit(NewBuildset("r", "up", ["u"], stamps))
    other_id, _ = await svc.submitter.submit(NewBuildset("r", "other", ["u"], stamps))
    bus.publish([Event("buildset.finished", 0.0, buildset_id=other_id, result=Result.SUCCESS),
                 Event("buildset.finished", 0.0, buildset_id=up_id, result=result)])
    await svc.downstream.aclose()  # waits for the background work
    downstream = [bs for bs in repo.submitted if bs.scheduler == "down"]
    if result in (Result.SUCCESS, Result.WARNINGS):
        [bs] = downstream
        assert bs.builders == ["d"] and bs.sourcestamps == stamps and f"buildset {up_id}" in bs.reason
    else:
        assert downstream == []


async def test_service_trigger_follows_the_buildset_through_bus_events() -> None:
    svc, repo, bus = service(Triggerable("t", ["c"]), ForceScheduler("f", ["c"]))
    t = await svc.downstream.trigger("t", [SourceStamp(branch="main")], [PropertyValue("x", 1, "Trigger")], wait=True,
                          parent=("p", 1))
    assert repo.submitted[0].scheduler == "t" and list(t.requests) == ["c"] and t.requests["c"] in repo.requests
    bus.publish([Event("build.started", 0.0, builder="c", build_number=4, buildset_id=t.buildset_id),
                 Event("buildset.finished", 0.0, buildset_id=t.buildset_id, result=Result.WARNINGS)])
    assert t.finished is not None and await t.finished == Result.WARNINGS
    assert t.builds == [("c", 4)]
    with pytest.raises(LookupError, match="not a Triggerable"):
        await svc.downstream.trigger("f", [], [], wait=False, parent=("p", 1))
    with pytest.raises(LookupError, match="no scheduler named 'zzz'.*Triggerable schedulers: t"):
        await svc.downstream.trigger("zzz", [], [], wait=False, parent=("p", 1))


async def test_stopping_a_triggered_buildset_cancels_its_requests_that_have_not_started() -> None:
    svc, repo, bus = service(Triggerable("t", ["c", "d"]))
    t = await svc.downstream.trigger("t", [], [], wait=True, parent=("p", 1))
    assert svc.dispatcher.pending_count("c") == 1 and svc.dispatcher.pending_count("d") == 1
    started = t.requests["c"]
    repo.claim_elsewhere(started, "c1")  # its build started (the runner itself is not under test here)
    await t.stop("the triggering build p was stopped")
    assert repo.requests[t.requests["d"]].result == Result.CANCELLED
    assert not repo.requests[started].complete  # started: stopped through its build, not cancelled
    assert svc.dispatcher.pending_count("d") == 0  # dropped from the queue at once


async def test_cancel_build_request_explains_what_cannot_be_cancelled() -> None:
    svc, repo, _ = service(ForceScheduler("f", ["c"]))
    _, reqs = await svc.submitter.submit(NewBuildset("r", "f", ["c"], []))
    _, started = await svc.submitter.submit(NewBuildset("r", "f", ["c"], []))
    repo.claim_elsewhere(started["c"], "c1")
    assert svc.dispatcher.pending_count("c") == 2
    req = await svc.builds.cancel_build_request(reqs["c"], "")
    assert req.complete and req.result == Result.CANCELLED
    assert svc.dispatcher.next_pending("c") is not None and svc.dispatcher.next_pending("c").id == started["c"]  # type: ignore[union-attr]
    with pytest.raises(FailedPrecondition, match=f"build request {reqs['c']} is already complete .result cancelled"):
        await svc.builds.cancel_build_request(reqs["c"], "")
    with pytest.raises(FailedPrecondition, match="has already started on builder 'c'; stop its build instead"):
        await svc.builds.cancel_build_request(started["c"], "")
    with pytest.raises(NotFound, match="no build request with id 12345"):
        await svc.builds.cancel_build_request(12345, "")
    with pytest.raises(InvalidArgument, match="request_id must be a positive"):
        await svc.builds.cancel_build_request(0, "")


# ------------------------------------------------------------------------------- checkconfig


def test_checkconfig_reports_bad_triggers_and_dependents(tmp_path: Path) -> None:
    path = tmp_path / "master.py"
    path.write_text(textwrap.dedent('''\
        from coordinator.config import *
        f = ForceScheduler("f", ["b"])
        stray = ForceScheduler("stray", ["b"])
        config = MasterConfig(
            workers=[Worker("w", "s")],
            builders=[Builder("b", workers=["w"], steps=[
                Trigger(["t", "missing"]),
                Trigger(["f"], name="t2"),
                Trigger([], name="t3"),
            ])],
            schedulers=[
                f,
                Triggerable("t", ["b"], codebases="app"),
                Dependent("d1", upstream="f", builderNames=["b"]),
                Dependent("d2", upstream=stray, builderNames=["b"]),
            ],
        )
    '''))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    messages = [(p.line, p.message) for p in info.value.problems]
    assert messages == [
        (9, "step 't3' of builder 'b': schedulerNames must name at least one Triggerable scheduler"),
        (13, "scheduler 't': codebases must be a dict of codebase name -> defaults, or a list of names, not 'app'"),
        (14, "scheduler 'd1': upstream must be a scheduler object (not its name), not 'f'"),
        (7, "step 'trigger' of builder 'b' triggers unknown scheduler 'missing' (Triggerable schedulers: t)"),
        (8, "step 't2' of builder 'b' triggers 'f', not a Triggerable (Triggerable schedulers: t)"),
        (15, "scheduler 'd2': its upstream scheduler 'stray' is not in the configuration's schedulers"),
    ]
