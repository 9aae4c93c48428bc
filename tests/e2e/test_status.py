"""The status stream end to end: events in order, resuming from an event id with nothing missed
or repeated (also across a coordinator restart, on SQLite and PostgreSQL), and filters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.gantry.v1 import logs_pb2, status_pb2
from tests.e2e.harness import SUCCESS, TIMEOUT, Cluster, collect, describe_events, normal, poll

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("b", workers=["w1"], steps=[
            ShellCommand(name="one", command=["echo", "one"]),
            ShellCommand(name="two", command=["echo", "two"]),
        ]),
        Builder("other", workers=["w1"], steps=[ShellCommand(name="x", command="true")]),
    ],
    schedulers=[
        SingleBranchScheduler("main", branch="main", tree_stable_timer=0, builders=["b"]),
        ForceScheduler("force", builders=["b", "other"]),
    ],
)
"""
BUILD_KINDS = [
    "buildset.added",
    "buildrequest.added",
    "build.started",
    "step.started",
    "build.state",  # the running build reads as its running step
    "step.finished",
    "step.started",
    "build.state",
    "step.finished",
    "build.finished",
    "buildset.finished",
]


def key(events: list) -> list[tuple]:
    return [normal(e) for e in events]


async def test_events_of_a_build_arrive_in_order(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=-1)  # live only: the worker's connection is not replayed

    [change_id] = (await coord.submit({"comments": "go"})).change_ids
    done = await rec.wait_kind("buildset.finished")
    assert done.result == SUCCESS
    # (The worker's own connection event may or may not be recorded just before the change.)
    events = [
        e for e in rec.events[: rec.events.index(done) + 1] if not e.kind.startswith("worker.")
    ]
    ids = [e.id for e in events]
    assert ids == sorted(set(ids)), "ids must increase strictly"
    assert [e.kind for e in events] == ["change.added", *BUILD_KINDS], describe_events(events)

    change, bs, req, started, *steps, finished, bs_done = events
    assert json.loads(bs.details_json)["change_ids"] == [change_id]
    assert bs.buildset_id == req.buildset_id == bs_done.buildset_id == done.buildset_id
    assert (started.builder, started.build_number, started.worker) == ("b", 1, "w1")
    assert [(s.kind, s.step_number, s.step_name) for s in steps] == [
        ("step.started", 0, "one"),
        ("build.state", -1, ""),
        ("step.finished", 0, "one"),
        ("step.started", 1, "two"),
        ("build.state", -1, ""),
        ("step.finished", 1, "two"),
    ]
    assert all((s.builder, s.build_number) == ("b", 1) for s in [*steps, finished])
    assert [s.result for s in steps if s.kind == "step.finished"] == [SUCCESS, SUCCESS]
    assert finished.result == SUCCESS
    at = [e.at.ToNanoseconds() for e in events]
    assert at == sorted(at)


async def test_resuming_from_an_event_id_misses_and_repeats_nothing(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    everything = await coord.record(since=0)

    first = await coord.force("b")
    await everything.wait_kind("buildset.finished", buildset_id=first.buildset_id)

    # A client reads part of the history, up to the first build's start, then goes away ...
    seen = await collect(coord.status, 0, lambda e: e.kind == "build.started")
    last_seen = seen[-1].id
    # ... while a second build runs from start to finish.
    second = await coord.force("b")
    await everything.wait_kind("buildset.finished", buildset_id=second.buildset_id)
    # It comes back, resuming from the last id it saw; then a third build happens live.
    resumed = await coord.record(since=last_seen)
    end_of_second = everything.events[-1].id
    await resumed.wait_for(lambda e: e.id >= end_of_second, what=f"replay up to {end_of_second}")
    third = await coord.force("b")
    await resumed.wait_kind("buildset.finished", buildset_id=third.buildset_id)
    await everything.wait_kind("buildset.finished", buildset_id=third.buildset_id)

    combined = seen + resumed.events
    assert key(combined) == key(everything.events[: len(combined)]), describe_events(combined)
    assert [e.id for e in combined] == sorted({e.id for e in combined}), "missed or repeated"
    builds = [(e.build_number, e.result) for e in combined if e.kind == "build.finished"]
    assert builds == [(1, SUCCESS), (2, SUCCESS), (3, SUCCESS)]

    # -1 means "only new": nothing of the past is replayed.
    live = await coord.record(since=-1)
    fourth = await coord.force("b")
    await live.wait_kind("buildset.finished", buildset_id=fourth.buildset_id)
    assert live.events[0].kind == "buildset.added"
    assert live.events[0].id > end_of_second


async def test_subscription_filters_by_builder_and_kind(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    finished_only = await coord.record(since=0, kinds=["build.finished"])
    other_only = await coord.record(since=0, builders=["other"])
    everything = await coord.record(since=0)

    a = await coord.force("b")
    b = await coord.force("other")
    await everything.wait_kind("buildset.finished", buildset_id=a.buildset_id)
    await everything.wait_kind("buildset.finished", buildset_id=b.buildset_id)
    await finished_only.wait_kind("build.finished", builder="other")
    await finished_only.wait_kind("build.finished", builder="b")
    await other_only.wait_kind("buildset.finished", buildset_id=b.buildset_id)

    assert {e.kind for e in finished_only.events} == {"build.finished"}
    assert sorted(e.builder for e in finished_only.events) == ["b", "other"]
    assert "b" not in {e.builder for e in other_only.events}, describe_events(other_only.events)
    assert other_only.of_kind("build.finished", builder="other")
    # Events tied to no builder (a worker connecting) pass a builder filter.
    assert other_only.of_kind("worker.connected", worker="w1")


async def test_restart_keeps_history_and_event_ids(cluster: Cluster, db: str | None) -> None:
    coord = await cluster.start_coordinator(CONFIG, db=db)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    [change_id] = (await coord.submit({"comments": "before the restart"})).change_ids
    done = await rec.wait_kind("buildset.finished")
    assert done.result == SUCCESS
    before = await collect(coord.status, 0, lambda e: e.id == done.id)

    await coord.restart()  # SIGTERM, then the same data dir, database and port

    # A watcher resuming from the last id it saw before the restart gets exactly what followed.
    resumed = await coord.record(since=done.id)
    reconnected = await resumed.wait_kind("worker.connected", worker="w1")
    forced = await coord.force("b")
    after = await resumed.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert after.result == SUCCESS
    assert all(e.id > done.id for e in resumed.events)
    history = await collect(coord.status, 0, lambda e: e.id == after.id)
    assert key(history[: len(before)]) == key(before), "history changed across the restart"
    assert key(history[len(before) :]) == key(resumed.events[: len(history) - len(before)])
    assert normal(reconnected) in key(history)

    # The builds, their steps, logs and changes are all still there; numbering goes on.
    builds = await coord.list_builds("b")
    assert [(b.number, b.result) for b in builds] == [(2, SUCCESS), (1, SUCCESS)]
    first = await coord.get_build("b", 1)
    assert [c.id for c in first.changes] == [change_id]
    assert [s.name for s in first.steps] == ["one", "two"]
    assert await coord.read_log("b", 1, "two", logs_pb2.STDOUT) == b"two\n"
    [started] = [e for e in history if e.kind == "build.started" and e.build_number == 2]
    assert started.id > done.id



GATED = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[
        Builder("g", workers=["w1"], steps=[
            ShellCommand(name="gate", command="while [ ! -e {gate} ]; do sleep 0.05; done"),
            ShellCommand(name="after", command=["echo", "after"]),
        ]),
        Builder("other", workers=["w1"], steps=[ShellCommand(name="x", command="true")]),
    ],
    schedulers=[ForceScheduler("force", builders=["g", "other"])],
)
"""


async def _all(call: Any) -> list[Any]:
    return [u async for u in call]


async def _rest(call: Any) -> list[Any]:
    """The remaining messages of a stream already read with read()."""
    got = []
    while (msg := await call.read()) is not grpc.aio.EOF:
        got.append(msg)
    return got


async def _events(call: Any, until: Any) -> list[status_pb2.Event]:
    got = []
    async for e in call:
        got.append(e)
        if until(e):
            break
    call.cancel()
    return got


async def test_watch_build_gives_full_state_then_updates_until_finished(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.touch()  # the first build passes straight through
    coord = await cluster.start_coordinator(GATED.replace("{gate}", str(gate)))
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=-1)
    first = await coord.force("g")
    await rec.wait_kind("buildset.finished", buildset_id=first.buildset_id)

    gate.unlink()  # the second build waits in its first step until the gate is back
    second = await coord.force("g")
    await rec.wait_kind("step.started", buildset_id=second.buildset_id, step_name="gate")
    call = coord.status.WatchBuild(status_pb2.WatchBuildRequest(builder="g", number=2))
    head = await asyncio.wait_for(call.read(), TIMEOUT)
    assert not head.HasField("event")  # the first message is the state, not an event
    assert head.build.number == 2 and not head.build.complete
    assert [s.name for s in head.build.steps] == ["gate", "after"]
    assert any(p.name == "buildnumber" for p in head.build.properties)
    assert head.HasField("eta")  # running, with a successful predecessor
    gate.touch()
    rest = await asyncio.wait_for(_rest(call), TIMEOUT)
    kinds = [u.event.kind for u in rest]
    assert kinds[-1] == "build.finished" and kinds.count("build.finished") == 1
    assert "step.finished" in kinds and "step.started" in kinds
    last = rest[-1]
    assert last.build.complete and last.build.result == SUCCESS
    assert [s.result for s in last.build.steps] == [SUCCESS, SUCCESS]
    assert [lg.name for lg in last.build.steps[0].logs] == ["stdio"]
    assert not last.HasField("eta")

    # A finished build: its state once, then the stream ends.
    done = await asyncio.wait_for(
        _all(coord.status.WatchBuild(status_pb2.WatchBuildRequest(builder="g", number=1))), TIMEOUT
    )
    assert len(done) == 1 and done[0].build.complete


async def test_subscribe_filters_by_buildset_and_worker(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    coord = await cluster.start_coordinator(GATED.replace("{gate}", str(gate)))
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=-1)
    a = await coord.force("g")
    b = await coord.force("other")
    await rec.wait_kind("buildset.finished", buildset_id=a.buildset_id)
    await rec.wait_kind("buildset.finished", buildset_id=b.buildset_id)

    only_a = await asyncio.wait_for(_events(
        coord.status.Subscribe(status_pb2.SubscribeRequest(since_event_id=0, buildset_id=a.buildset_id)),
        lambda e: e.kind == "buildset.finished",
    ), TIMEOUT)
    assert {e.buildset_id for e in only_a} == {a.buildset_id}
    assert [e.kind for e in only_a][-1] == "buildset.finished"
    on_w1 = await asyncio.wait_for(_events(
        coord.status.Subscribe(status_pb2.SubscribeRequest(since_event_id=0, worker="w1")),
        lambda e: e.kind == "build.finished" and e.buildset_id == b.buildset_id,
    ), TIMEOUT)
    assert {e.worker for e in on_w1} == {"w1"}
    assert {e.kind for e in on_w1} >= {"worker.connected", "build.started", "step.started"}


BIG_LOG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("big", workers=["w1"], steps=[ShellCommand(
        name="print",
        command=[
            "python3", "-c", "import sys; b=b'x'*1023+b'\\\\n'; [sys.stdout.buffer.write(b) for _ in range(20480)]"
        ],
    )])],
    schedulers=[ForceScheduler("force", builders=["big"])],
)
"""


async def test_a_slow_subscriber_is_dropped_without_slowing_builds_and_resumes(cluster: Cluster) -> None:
    """A subscriber that stops reading while 5 000 events and a 20 MiB log go by (buffer: 50
    events): the build is unaffected, the subscriber's stream ends with RESOURCE_EXHAUSTED after
    an in-order prefix, and resuming from its last id yields the rest, nothing missed or repeated."""
    coord = await cluster.start_coordinator(BIG_LOG, extra_args=["--subscriber-buffer", "50"])
    await cluster.start_worker(coord, "w1", "secret1")
    slow = coord.status.Subscribe(status_pb2.SubscribeRequest(since_event_id=0))
    first = await asyncio.wait_for(slow.read(), TIMEOUT)  # registered; now it stops reading

    await coord.force("big")
    for batch in range(5):
        await coord.submit(*[{"branch": "elsewhere", "revision": f"{batch}-{i}"} for i in range(1000)])

    async def finished() -> Any:
        build = await coord.get_build("big", 1)
        return build if build.complete else None

    build = await poll(finished, what="the big-log build finished")
    assert build.result == SUCCESS
    assert build.steps[0].logs[0].size >= 20 * 1024 * 1024

    got = [first]
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        while (msg := await asyncio.wait_for(slow.read(), TIMEOUT)) is not grpc.aio.EOF:
            got.append(msg)
    assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "resubscribe" in (ended.value.details() or "")
    ids = [e.id for e in got]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # an in-order prefix, no gap
    assert len(ids) < 5000

    marker = (await coord.submit({"branch": "elsewhere", "revision": "marker"})).change_ids[0]
    rest = await asyncio.wait_for(_events(
        coord.status.Subscribe(status_pb2.SubscribeRequest(since_event_id=ids[-1])),
        lambda e: e.kind == "change.added" and json.loads(e.details_json)["change_id"] == marker,
    ), TIMEOUT)
    every = [e.id for e in got + rest]
    assert every == list(range(ids[0], every[-1] + 1))  # resumed: nothing missed or repeated
    kinds = {e.kind for e in got + rest}
    assert {"build.finished", "step.finished", "change.added"} <= kinds
