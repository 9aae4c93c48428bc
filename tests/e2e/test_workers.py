"""Workers end to end: authentication, connection state, and a worker killed in the middle of a
step (the build ends RETRY and its request runs again on the other worker)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import pytest

from protos.gantry.v1 import logs_pb2, worker_pb2, worker_pb2_grpc
from tests.e2e.harness import (
    RETRY,
    SUCCESS,
    TIMEOUT,
    Cluster,
    Coordinator,
    describe_events,
    kill_orphan,
    poll,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1"), Worker("w2", "secret2")],
    builders=[Builder("b", workers=["w1", "w2"], steps=[ShellCommand(name="s", command="true")])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""


async def hello(coord: Coordinator, name: str, secret: str) -> worker_pb2.CoordinatorMessage:
    """Open a worker stream by hand and return the coordinator's first answer."""
    stub = worker_pb2_grpc.WorkerServiceStub(coord.channel)
    call = stub.Connect()
    try:
        await call.write(
            worker_pb2.WorkerMessage(
                hello=worker_pb2.Hello(
                    name=name, secret=secret, os="linux", arch="x86_64", max_builds=1, version="e2e"
                )
            )
        )
        return await asyncio.wait_for(call.read(), TIMEOUT)
    finally:
        call.cancel()


async def test_wrong_secret_is_refused_without_revealing_the_name(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    rec = await coord.record(since=0)

    # The real agent, with a wrong secret and with an unknown name: refused, says so plainly.
    wrong = await cluster.start_worker(coord, "w1", "not-the-secret", wait=False)
    ghost = await cluster.start_worker(coord, "ghost", "whatever", wait=False)
    for agent in (wrong, ghost):
        await agent.process.wait_line(r"wrong name or secret")
        assert not any("Traceback" in line for line in agent.process.lines), agent.process.output()
    workers = await coord.workers()
    assert sorted(workers) == ["w1", "w2"]  # an unknown name is not listed
    assert not workers["w1"].connected and not workers["w2"].connected

    # The protocol: UNAUTHENTICATED, with the same message for a wrong secret and a wrong name.
    with pytest.raises(grpc.aio.AioRpcError) as bad_secret:
        await hello(coord, "w1", "not-the-secret")
    with pytest.raises(grpc.aio.AioRpcError) as bad_name:
        await hello(coord, "nobody", "not-the-secret")
    assert bad_secret.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert bad_name.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert bad_secret.value.details() == bad_name.value.details()
    assert "secret1" not in bad_secret.value.details()
    assert not rec.of_kind("worker.connected")

    # The right secret is welcomed.
    welcome = await hello(coord, "w2", "secret2")
    assert welcome.WhichOneof("msg") == "welcome"
    await wrong.process.stop()
    await cluster.start_worker(coord, "w1", "secret1")
    await rec.wait_kind("worker.connected", worker="w1")
    assert (await coord.workers())["w1"].connected


async def test_workers_report_connection_state(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    rec = await coord.record(since=0)
    w1 = await cluster.start_worker(coord, "w1", "secret1", max_builds=1)
    await rec.wait_kind("worker.connected", worker="w1")
    workers = await coord.workers()
    assert workers["w1"].connected and not workers["w2"].connected
    assert workers["w1"].info["os"] and workers["w1"].info["arch"]
    assert workers["w1"].since.seconds > 0

    assert await w1.process.stop(signal.SIGTERM) == 0  # a graceful stop
    await rec.wait_kind("worker.disconnected", worker="w1")
    assert not (await coord.workers())["w1"].connected


async def test_worker_killed_mid_step_retries_the_build_on_the_other_worker(
    cluster: Cluster, tmp_path: Path, db: str | None
) -> None:
    # The step sleeps the first time only (the marker is shared by both workers), so the
    # retried build finishes at once. The marker holds the sleeping command's pid.
    marker = tmp_path / "first-run.pid"
    step = (
        f"if [ -e {marker} ]; then echo second run; "
        f"else echo $$ > {marker}.tmp && mv {marker}.tmp {marker}; echo sleeping; exec sleep 60; fi"
    )
    # missing_timeout=0: a lost worker is given up at once (by default its build would wait
    # for it to come back; tests/e2e/test_reattach.py covers that).
    config = f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1", missing_timeout=0), Worker("w2", "secret2", missing_timeout=0)],
    builders=[Builder("slow", workers=["w1", "w2"], steps=[
        ShellCommand(name="first", command=["echo", "before"]),
        ShellCommand(name="wait", command={step!r}),
        ShellCommand(name="last", command=["echo", "done"]),
    ])],
    schedulers=[ForceScheduler("force", builders=["slow"])],
)
"""
    coord = await cluster.start_coordinator(config, db=db)
    workers = {
        w.name: w for w in await cluster.start_workers(coord, ("w1", "secret1"), ("w2", "secret2"))
    }
    rec = await coord.record(since=0)
    try:
        forced = await coord.force("slow")
        started = await rec.wait_kind("build.started", builder="slow")
        victim, survivor = started.worker, ({"w1", "w2"} - {started.worker}).pop()
        await rec.wait_kind(
            "step.started", builder="slow", build_number=started.build_number, step_name="wait"
        )
        # The step's log is created as its command starts, just after step.started.
        async def has_log() -> bool:
            build = await coord.get_build("slow", started.build_number)
            return any(s.name == "wait" and s.logs for s in build.steps)

        await poll(has_log, what="the wait step's log exists")
        # The command is running once its output says so (read live, through the API).
        follow = coord.logs.FollowLog(
            logs_pb2.ReadLogRequest(
                builder="slow",
                build_number=started.build_number,
                step="wait",
                channel=logs_pb2.STDOUT,
            )
        )
        seen = b""
        async with asyncio.timeout(TIMEOUT):
            async for part in follow:
                seen += part.data
                if b"sleeping" in seen:
                    break
        follow.cancel()

        workers[victim].process.send(signal.SIGKILL)
        first = await rec.wait_kind(
            "build.finished", builder="slow", build_number=started.build_number
        )
        assert first.result == RETRY, describe_events(rec.events)
        await rec.wait_kind("worker.disconnected", worker=victim)
        await rec.wait_kind("buildrequest.retried")

        done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
        assert done.result == SUCCESS, describe_events(rec.events)
        builds = sorted(await coord.list_builds("slow"), key=lambda b: b.number)
        assert [(b.worker, b.result) for b in builds] == [(victim, RETRY), (survivor, SUCCESS)]
        assert {b.build_request_id for b in builds} == {forced.build_request_id}
        retried = await coord.get_build("slow", builds[1].number)
        assert [(s.name, s.result) for s in retried.steps] == [
            ("first", SUCCESS),
            ("wait", SUCCESS),
            ("last", SUCCESS),
        ]
        out = await coord.read_log("slow", retried.number, "wait", logs_pb2.STDOUT)
        assert out == b"second run\n"
        lost = await coord.get_build("slow", builds[0].number)
        assert lost.complete and lost.steps[0].result == SUCCESS
        assert lost.steps[1].complete and lost.steps[1].result != SUCCESS
        workers_now = await coord.workers()
        assert not workers_now[victim].connected and workers_now[survivor].connected
    finally:
        # The killed agent could not stop its command: end that sleep (by its pid) ourselves.
        kill_orphan(marker, "sleep")


async def test_a_silent_worker_is_dropped_by_the_heartbeat_watchdog(cluster: Cluster) -> None:
    """A worker whose stream stays open but says nothing is dropped after three heartbeat
    intervals, and the coordinator's own heartbeats reach a live worker meanwhile."""
    coord = await cluster.start_coordinator(CONFIG, heartbeat=1.0)
    rec = await coord.record(since=0)
    stub = worker_pb2_grpc.WorkerServiceStub(coord.channel)
    call = stub.Connect()
    try:
        await call.write(
            worker_pb2.WorkerMessage(
                hello=worker_pb2.Hello(name="w1", secret="secret1", os="linux", max_builds=1)
            )
        )
        welcome = await asyncio.wait_for(call.read(), TIMEOUT)
        assert welcome.WhichOneof("msg") == "welcome"
        assert welcome.welcome.heartbeat_interval == 1
        # The coordinator heartbeats us; we never answer.
        beat = await asyncio.wait_for(call.read(), TIMEOUT)
        assert beat.WhichOneof("msg") == "heartbeat"
        gone = await rec.wait_kind("worker.disconnected", worker="w1")
        assert "heartbeat" in gone.details_json
        assert not (await coord.workers())["w1"].connected
    finally:
        call.cancel()
