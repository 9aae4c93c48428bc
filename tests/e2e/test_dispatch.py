"""Scheduling against a real coordinator and worker: a lock shared by two builders, why a
request is pending, and collapsing queued requests — through the API and the `gantry` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protos.gantry.v1 import control_pb2
from tests.e2e.harness import (
    CANCELLED,
    SKIPPED,
    SUCCESS,
    TIMEOUT,
    Cluster,
    Coordinator,
    poll,
    run_cli,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def gate_command(path: Path) -> str:
    """A step that runs until the test creates `path` (the test's way to hold a build)."""
    return f"while [ ! -f {path} ]; do sleep 0.05; done"


async def build_of(coord: Coordinator, builder: str, number: int) -> control_pb2.Build | None:
    builds = await coord.list_builds(builder)
    return next((b for b in builds if b.number == number), None)


async def test_a_lock_shared_by_two_builders_serializes_them(cluster: Cluster) -> None:
    gate = cluster.tmp / "gate-a"
    coord = await cluster.start_coordinator(f"""
deploy = MasterLock("deploy")
config = MasterConfig(
    workers=[Worker("w1", "s1", max_builds=2)],
    builders=[
        Builder("a", workers=["w1"], locks=[deploy.access("exclusive")],
                steps=[ShellCommand(name="hold", command={gate_command(gate)!r})]),
        Builder("b", workers=["w1"], locks=[deploy.access("exclusive")],
                steps=[ShellCommand(name="quick", command="true")]),
    ],
    schedulers=[ForceScheduler("force", builders=["a", "b"])],
)
""")
    await cluster.start_worker(coord, "w1", "s1", max_builds=2)
    await coord.force("a")
    await poll(lambda: _step_running(coord, "a", 1), what="a/1 runs its step")
    await coord.force("b")

    async def b_waits() -> bool:
        b = await build_of(coord, "b", 1)
        return b is not None and b.state_string == "waiting for lock deploy"

    await poll(b_waits, what="b/1 waits for the lock")
    code, out, _ = await run_cli("build", "b", "1", "--coordinator", coord.address)
    assert code == 0 and "waiting for lock deploy" in out.decode()
    b1 = await coord.get_build("b", 1)
    assert b1.steps[0].started_at.seconds == 0, "b's step must not start while a holds the lock"

    gate.touch()

    await poll(lambda: _finished(coord, "a", 1), what="a/1 ends")
    await poll(lambda: _finished(coord, "b", 1), what="b/1 ends")
    a1, b1 = await coord.get_build("a", 1), await coord.get_build("b", 1)
    assert a1.result == SUCCESS and b1.result == SUCCESS
    assert b1.steps[0].started_at.ToNanoseconds() >= a1.finished_at.ToNanoseconds()
    events = await coord.record(since=0)
    state = await events.wait_kind("build.state", builder="b")
    assert json.loads(state.details_json)["state_string"] == "waiting for lock deploy"


async def _step_running(coord: Coordinator, builder: str, number: int) -> bool:
    b = await build_of(coord, builder, number)
    if b is None:
        return False
    full = await coord.get_build(builder, number)
    return bool(full.steps) and full.steps[0].HasField("started_at")


async def test_gantry_pending_says_no_worker_connected(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator("""
config = MasterConfig(
    workers=[Worker("w1", "s1")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand("true")])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
""")
    forced = await coord.force("b")
    at = ("--coordinator", coord.address)
    code, out, err = await run_cli("pending", "--json", *at)
    assert code == 0, err.decode()
    [entry] = json.loads(out)["pending"]
    assert (entry["id"], entry["builder"], entry["buildset_id"], entry["reason"]) == (
        forced.build_request_id, "b", forced.buildset_id, "no worker connected")
    code, out, _ = await run_cli("pending", "b", *at)
    assert code == 0 and "no worker connected" in out.decode()
    code, _, err = await run_cli("pending", "nosuch", *at)
    assert code != 0 and "no builder named 'nosuch'" in err.decode() and "Traceback" not in err.decode()


async def test_queued_requests_collapse_into_the_next_build(cluster: Cluster) -> None:
    gate = cluster.tmp / "gate-c"
    coord = await cluster.start_coordinator(f"""
config = MasterConfig(
    workers=[Worker("w1", "s1")],
    builders=[Builder("c", workers=["w1"], steps=[ShellCommand(name="hold", command={gate_command(gate)!r})])],
    schedulers=[SingleBranchScheduler("main", branch="main", tree_stable_timer=0, builders=["c"])],
)
""")
    await cluster.start_worker(coord, "w1", "s1")
    await coord.submit({})
    await poll(lambda: _step_running(coord, "c", 1), what="c/1 runs")
    for _ in range(3):
        await coord.submit({})
    at = ("--coordinator", coord.address)

    async def three_pending() -> list[dict]:
        code, out, _ = await run_cli("pending", "c", "--json", *at)
        items = json.loads(out)["pending"] if code == 0 else []
        return items if len(items) == 3 else []

    pending = await poll(three_pending, what="three queued requests")
    assert {p["reason"] for p in pending} == {"all 1 workers busy"}
    gate.touch()

    async def settled() -> list[control_pb2.BuildRequest]:
        resp = await coord.control.ListBuildRequests(
            control_pb2.ListBuildRequestsRequest(builder="c"), timeout=TIMEOUT)
        reqs = list(resp.requests)
        return reqs if len(reqs) == 4 and all(r.complete for r in reqs) else []

    reqs = sorted(await poll(settled, what="every request complete"), key=lambda r: r.id)
    second, absorbed = reqs[1], reqs[2:]
    assert [(r.result, r.absorbed_by) for r in absorbed] == [(SKIPPED, second.id)] * 2
    assert (reqs[0].absorbed_by, second.absorbed_by) == (0, 0)
    builds = await coord.list_builds("c")
    assert sorted(b.build_request_id for b in builds) == [reqs[0].id, second.id]
    code, out, _ = await run_cli("requests", "--builder", "c", "--json", *at)
    listed = {r["id"]: r for r in json.loads(out)["requests"]}
    assert code == 0 and [listed[r.id]["absorbed_by"] for r in absorbed] == [second.id] * 2
    code, out, _ = await run_cli("requests", "--builder", "c", *at)
    assert code == 0 and out.decode().count("skipped") == 2


async def test_stopping_a_build_that_waits_for_a_worker_lock_cancels_it(cluster: Cluster) -> None:
    gate = cluster.tmp / "gate-s"
    coord = await cluster.start_coordinator(f"""
disk = WorkerLock("disk")
config = MasterConfig(
    workers=[Worker("w1", "s1", max_builds=2)],
    builders=[
        Builder("a", workers=["w1"], steps=[
            ShellCommand(name="hold", command={gate_command(gate)!r}, locks=[disk.access("exclusive")])]),
        Builder("b", workers=["w1"], steps=[
            ShellCommand(name="needs-disk", command="true", locks=[disk.access("exclusive")])]),
    ],
    schedulers=[ForceScheduler("force", builders=["a", "b"])],
)
""")
    await cluster.start_worker(coord, "w1", "s1", max_builds=2)
    await coord.force("a")
    await poll(lambda: _step_running(coord, "a", 1), what="a/1 holds the lock")
    await coord.force("b")

    async def step_waits() -> bool:
        if await build_of(coord, "b", 1) is None:
            return False
        b = await coord.get_build("b", 1)
        return b.steps[0].state_string == "waiting for lock disk"

    await poll(step_waits, what="b/1's step waits for the lock")
    stopped = await coord.control.StopBuild(
        control_pb2.StopBuildRequest(builder="b", number=1, reason="not now"), timeout=TIMEOUT)
    assert stopped.stopped

    await poll(lambda: _finished(coord, "b", 1), what="b/1 ends")
    b1 = await coord.get_build("b", 1)
    assert b1.result == CANCELLED and b1.steps[0].result == CANCELLED
    gate.touch()
    await poll(lambda: _finished(coord, "a", 1), what="a/1 ends")
    assert (await coord.get_build("a", 1)).result == SUCCESS


async def _finished(coord: Coordinator, builder: str, number: int) -> bool:
    b = await build_of(coord, builder, number)
    return b is not None and b.HasField("finished_at")


async def test_worker_labels_pick_the_worker_that_advertised_them(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator("""
config = MasterConfig(
    workers=[Worker("mac", "s1"), Worker("linux", "s2")],
    builders=[
        Builder("b", workers=["mac", "linux"], worker_labels=["linux"], collapseRequests=False,
                steps=[ShellCommand("true")]),
        Builder("gpu", workers=["mac", "linux"], worker_labels=["gpu"], steps=[ShellCommand("true")]),
    ],
    schedulers=[ForceScheduler("force", builders=["b", "gpu"])],
)
""")
    await cluster.start_worker(coord, "mac", "s1", labels=["mac"])
    await cluster.start_worker(coord, "linux", "s2", labels=["linux", "docker"])
    for _ in range(3):
        await coord.force("b")
    forced = await coord.force("gpu")

    async def three_done() -> list[control_pb2.Build]:
        builds = await coord.list_builds("b")
        return builds if len(builds) == 3 and all(b.HasField("finished_at") for b in builds) else []

    assert {b.worker for b in await poll(three_done, what="b's builds")} == {"linux"}
    resp = await coord.control.ListPendingRequests(control_pb2.ListPendingRequestsRequest(), timeout=TIMEOUT)
    assert [(p.id, p.reason) for p in resp.requests] == [
        (forced.build_request_id, "no connected worker has labels [gpu]")]
