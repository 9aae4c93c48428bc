"""ETA of a running build, force priority and rebuild, against a real coordinator and worker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from protos.gantry.v1 import control_pb2, status_pb2
from tests.e2e.harness import SUCCESS, TIMEOUT, Cluster, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# One worker, one build at a time. `nap` is a short sleep (the history the ETA learns from);
# `gate` waits until the file named by the build's `gate` property exists, so the test decides
# when a build may finish.
CONFIG = """
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=1)],
    builders=[
        Builder("timed", workers=["w1"], steps=[
            ShellCommand(name="nap", command=["sleep", "0.3"]),
            ShellCommand(name="gate", command=Interpolate(
                "while [ ! -e '%(prop:gate)s' ]; do sleep 0.05; done")),
        ], collapseRequests=False),  # the queue's order is under test: keep every request
    ],
    schedulers=[ForceScheduler("force", builders=["timed"])],
)
"""


async def test_running_build_has_an_eta_and_priority_decides_the_queue(cluster: Cluster, tmp_path: Path) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    at = ("--coordinator", coord.address)

    for number in (1, 2):
        await coord.force("timed", properties={"gate": "/"})
        done = await rec.wait_kind("build.finished", builder="timed", build_number=number)
        assert done.result == SUCCESS

    gate = tmp_path / "open-3"
    await coord.force("timed", properties={"gate": str(gate)})
    await rec.wait_kind("step.started", builder="timed", build_number=3, step_name="gate")
    running = await coord.get_build("timed", 3)
    assert not running.complete
    assert running.HasField("eta")  # from builds 1 and 2, step by step
    assert running.eta.ToNanoseconds() >= running.started_at.ToNanoseconds()
    assert [s.HasField("expected_duration") for s in running.steps] == [True, True]
    nap = running.steps[0].expected_duration.ToNanoseconds() / 1e9
    assert nap >= 0.3  # the median of two real `sleep 0.3` runs

    watch = coord.status.WatchBuild(status_pb2.WatchBuildRequest(builder="timed", number=3))
    head = await asyncio.wait_for(watch.read(), TIMEOUT)
    watch.cancel()
    assert head.HasField("eta") and head.eta == head.build.eta  # WatchBuild: the same estimator
    assert head.build.steps[0].HasField("expected_duration")

    code, out, err = await run_cli("build", "timed", "3", *at)
    assert code == 0, err
    text = out.decode()
    assert "eta" in text and "remaining" in text and "expected" in text

    # The only worker is busy with build 3: queue priority 0, then priority 10.
    code, out, err = await run_cli("force", "timed", "--json", "--property", "gate=/", *at)
    assert code == 0, err
    low = json.loads(out)
    code, out, err = await run_cli("force", "timed", "--json", "--priority", "10", "--property", "gate=/", *at)
    assert code == 0, err
    high = json.loads(out)

    code, out, err = await run_cli("force", "timed", "--priority", "5000", *at)
    assert code == 1 and "priority must be between -1000 and 1000" in err.decode()
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await coord.force("timed", priority=-1001)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    builder = await coord.control.GetBuilder(control_pb2.GetBuilderRequest(name="timed"), timeout=TIMEOUT)
    assert builder.pending_requests == 2
    assert builder.next_expected_start.ToNanoseconds() >= running.started_at.ToNanoseconds()
    code, out, err = await run_cli("builders", *at)
    assert code == 0 and "next start" in out.decode() and "in ~" in out.decode(), (out, err)
    pending = await coord.control.ListPendingRequests(
        control_pb2.ListPendingRequestsRequest(builder="timed"), timeout=TIMEOUT
    )
    starts = [p.expected_start for p in pending.requests]
    assert len(starts) == 2 and 0 < starts[0] <= starts[1], starts  # the queue, in start order

    gate.touch()
    for number in (3, 4, 5):
        done = await rec.wait_kind("build.finished", builder="timed", build_number=number)
        assert done.result == SUCCESS
    fourth, fifth = await coord.get_build("timed", 4), await coord.get_build("timed", 5)
    assert fourth.build_request_id == high["build_request_id"]  # queued later, started first
    assert fifth.build_request_id == low["build_request_id"]
    assert not (await coord.get_build("timed", 5)).HasField("eta")  # finished: no ETA
    idle = await coord.control.GetBuilder(control_pb2.GetBuilderRequest(name="timed"), timeout=TIMEOUT)
    assert idle.pending_requests == 0 and not idle.HasField("next_expected_start")


async def test_rebuild_repeats_the_source_and_properties(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    at = ("--coordinator", coord.address)

    await coord.force("timed", properties={"gate": "/", "flavour": "mint"}, revision="abc123", branch="main",
                      priority=7)
    await rec.wait_kind("build.finished", builder="timed", build_number=1)

    code, out, err = await run_cli("rebuild", "timed", "1", "--wait", *at)
    assert code == 0, (out, err)
    assert "rebuilt timed" in out.decode()
    first, again = await coord.get_build("timed", 1), await coord.get_build("timed", 2)
    assert again.complete and again.result == SUCCESS
    assert again.buildset_id != first.buildset_id
    assert again.reason == "rebuild of timed #1"
    assert [(s.revision, s.branch) for s in again.sourcestamps] == [("abc123", "main")]
    props = {p.name: (json.loads(p.value_json), p.source) for p in again.properties}
    assert props["flavour"] == ("mint", "Force Build Form")
    assert props["revision"][0] == "abc123"
    assert props["rebuilt_buildid"] == (first.id, "Rebuild")
    requests = await coord.control.ListBuildRequests(
        control_pb2.ListBuildRequestsRequest(buildset_id=again.buildset_id), timeout=TIMEOUT
    )
    assert [r.priority for r in requests.requests] == [7]  # the original request's priority

    code, out, err = await run_cli("rebuild", "timed", "99", *at)
    assert code == 1
    assert "no build number 99" in err.decode() and "Traceback" not in err.decode()
    for request, code_ in (
        (control_pb2.RebuildBuildRequest(builder="", number=1), grpc.StatusCode.INVALID_ARGUMENT),
        (control_pb2.RebuildBuildRequest(builder="nope", number=1), grpc.StatusCode.NOT_FOUND),
        (control_pb2.RebuildBuildRequest(builder="timed", number=0), grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await coord.control.RebuildBuild(request, timeout=TIMEOUT)
        assert failed.value.code() == code_ and failed.value.details()
    assert len(rec.of_kind("buildset.added")) == 2  # refused before anything was stored
