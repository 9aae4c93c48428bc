"""Trigger / Triggerable and Dependent end to end: real coordinator and worker processes."""

from __future__ import annotations

import asyncio
import json
import signal

import grpc
import pytest

from protos.gantry.v1 import control_pb2, status_pb2
from tests.e2e.harness import (
    CANCELLED,
    FAILURE,
    SUCCESS,
    TIMEOUT,
    Cluster,
    describe_events,
    run_cli,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
up = ForceScheduler("force-up", builders=["up"])
config = MasterConfig(
    # w2 never connects (its builds stay queued); w3 connects when a test decides.
    workers=[Worker("w1", "secret1", max_builds=4), Worker("w2", "secret2"), Worker("w3", "secret3")],
    builders=[
        Builder("parent-wait", workers=["w1"], steps=[
            ShellCommand(name="prep", command=["echo", "prep"]),
            Trigger(schedulerNames=["children"], waitForFinish=True, copy_properties=["color"],
                    set_properties={"flavour": Interpolate("%(prop:buildername)s-x")}),
            ShellCommand(name="after-trigger", command=["echo", "after"]),
        ]),
        Builder("parent-nowait", workers=["w1"], steps=[
            Trigger(name="fire", schedulerNames=["children"], copy_properties=["color"]),
        ]),
        Builder("child", workers=["w1"], steps=[
            ShellCommand(name="check", command='echo "flavour=$F color=$C"; test "$C" != red',
                         env={"F": Property("flavour", ""), "C": Property("color", "")}),
        ]),
        Builder("parent-slow", workers=["w1"], steps=[
            Trigger(schedulerNames=["slow"], waitForFinish=True),
        ]),
        Builder("child-queued", workers=["w2"], steps=[ShellCommand(name="never", command=["true"])]),
        Builder("child-slow", workers=["w3"], steps=[
            ShellCommand(name="block", command=["python3", "-c", "import time; time.sleep(600)"]),
        ]),
        Builder("up", workers=["w1"], steps=[
            ShellCommand(name="verdict", command=["test", Property("ok", "yes"), "=", "yes"]),
        ]),
        Builder("down", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "down"])]),
    ],
    schedulers=[
        ForceScheduler("force", builders=["parent-wait", "parent-nowait", "parent-slow", "child-queued"]),
        Triggerable("children", ["child"]),
        Triggerable("slow", ["child-slow", "child-queued"]),
        up,
        Dependent("after-up", upstream=up, builderNames=["down"]),
    ],
)
"""


async def test_trigger_waits_for_the_triggered_build_and_takes_its_failure(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1", max_builds=4)
    rec = await coord.record()

    forced = await coord.force("parent-wait", {"color": "red"})
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == FAILURE, describe_events(rec.events)
    [child_done] = rec.of_kind("build.finished", builder="child")
    assert child_done.result == FAILURE
    [parent_done] = rec.of_kind("build.finished", builder="parent-wait")
    parent = await coord.get_build("parent-wait", parent_done.build_number)
    steps = {s.name: s for s in parent.steps}
    assert steps["trigger"].result == FAILURE
    # The triggering step finished only after the triggered build did.
    step_done = rec.of_kind("step.finished", builder="parent-wait", step_name="trigger")[0]
    assert step_done.id > child_done.id
    assert [(u.name, u.url) for u in steps["trigger"].urls] == [
        (f"child #{child_done.build_number}", f"builders/child/builds/{child_done.build_number}")
    ]

    child = await coord.get_build("child", child_done.build_number)
    props = {p.name: (p.value_json, p.source) for p in child.properties}
    assert props["color"] == ('"red"', "Trigger")  # copy_properties
    assert props["flavour"] == ('"parent-wait-x"', "Trigger")  # set_properties, rendered in the parent
    assert props["scheduler"][0] == '"children"'
    assert "Triggerable" in child.reason and f"parent-wait/{parent.number}" in child.reason

    # `gantry build` shows the link.
    code, out, err = await run_cli("build", "parent-wait", str(parent.number), "--coordinator", coord.address)
    assert code == 0, err
    assert f"builders/child/builds/{child_done.build_number}" in out.decode()


async def test_trigger_without_wait_succeeds_at_once(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1", max_builds=4)
    rec = await coord.record()

    forced = await coord.force("parent-nowait", {"color": "red"})
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS, describe_events(rec.events)
    added = [e for e in rec.of_kind("buildset.added") if e.buildset_id != forced.buildset_id]
    assert len(added) == 1
    child_set = added[0].buildset_id
    child_done = await rec.wait_kind("buildset.finished", buildset_id=child_set)
    assert child_done.result == FAILURE  # the child failed, the trigger did not wait for it
    [parent_done] = rec.of_kind("build.finished", builder="parent-nowait")
    parent = await coord.get_build("parent-nowait", parent_done.build_number)
    [step] = parent.steps
    assert step.result == SUCCESS and step.state_string == "triggered children"
    assert len(step.urls) == 1 and step.urls[0].url.startswith("buildrequests/")


async def test_dependent_builds_after_upstream_success_only(cluster: Cluster, db: str | None) -> None:
    coord = await cluster.start_coordinator(CONFIG, db=db)
    await cluster.start_worker(coord, "w1", "secret1", max_builds=4)
    rec = await coord.record()

    failed = await coord.force("up", {"ok": "no"}, branch="feature", revision="bad")
    done = await rec.wait_kind("buildset.finished", buildset_id=failed.buildset_id)
    assert done.result == FAILURE

    good = await coord.force("up", {"ok": "yes"}, branch="feature", revision="abc123")
    done = await rec.wait_kind("buildset.finished", buildset_id=good.buildset_id)
    assert done.result == SUCCESS
    down_done = await rec.wait_kind("build.finished", builder="down")
    assert down_done.result == SUCCESS
    # Only the successful upstream buildset had a downstream one (the failed one finished first).
    assert len(rec.of_kind("build.started", builder="down")) == 1
    down = await coord.get_build("down", down_done.build_number)
    assert [(s.branch, s.revision) for s in down.sourcestamps] == [("feature", "abc123")]
    assert f"buildset {good.buildset_id}" in down.reason

    # Killed and started again: the start-up catch-up finds the upstream buildset handled and
    # makes no second downstream; a new upstream success still gets exactly one.
    await coord.stop(signal.SIGKILL)
    await coord.start()
    rec = await coord.record(since=0)
    again = await coord.force("up", {"ok": "yes"}, revision="def456")
    await rec.wait_kind("buildset.finished", buildset_id=again.buildset_id)
    await rec.wait_for(lambda e: e.kind == "build.finished" and e.builder == "down" and e.build_number == 2)
    downstream = [json.loads(e.details_json)["reason"] for e in rec.of_kind("buildset.added")
                  if json.loads(e.details_json)["scheduler"] == "after-up"]
    assert downstream == [f"downstream of buildset {good.buildset_id} (scheduler 'force-up')",
                          f"downstream of buildset {again.buildset_id} (scheduler 'force-up')"]


async def test_stopping_the_triggering_build_stops_its_build_and_cancels_its_queued_request(
    cluster: Cluster,
) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1", max_builds=4)
    rec = await coord.record()

    forced = await coord.force("parent-slow")
    await rec.wait_kind("step.started", builder="parent-slow", step_name="trigger")
    [parent_started] = rec.of_kind("build.started", builder="parent-slow")
    # Watch the parent before the triggered build can start (its worker w3 is not connected yet).
    watch = coord.status.WatchBuild(
        status_pb2.WatchBuildRequest(builder="parent-slow", number=parent_started.build_number)
    )
    first = await asyncio.wait_for(watch.read(), TIMEOUT)
    assert [list(s.urls) for s in first.build.steps] == [[]]
    await cluster.start_worker(coord, "w3", "secret3")
    await rec.wait_kind("step.started", builder="child-slow", step_name="block")
    [child_started] = rec.of_kind("build.started", builder="child-slow")

    # The link reaches the watcher at once, while the trigger step still waits.
    link = f"builders/child-slow/builds/{child_started.build_number}"
    while True:
        update = await asyncio.wait_for(watch.read(), TIMEOUT)
        if update.event.kind == "step.urls":
            break
    watch.cancel()
    assert not update.build.complete and not update.build.steps[0].complete
    assert [u.url for u in update.build.steps[0].urls] == [link]
    assert json.loads(update.event.details_json) == {"urls": [{"name": f"child-slow #{child_started.build_number}",
                                                              "url": link}]}

    stopped = await coord.control.StopBuild(
        control_pb2.StopBuildRequest(builder="parent-slow", number=parent_started.build_number, reason="enough")
    )
    assert stopped.stopped
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == CANCELLED, describe_events(rec.events)
    child_done = await rec.wait_kind("build.finished", builder="child-slow")
    assert child_done.result == CANCELLED
    # The triggered request that had not started (child-queued: no worker) is cancelled too.
    cancelled = await rec.wait_kind("buildrequest.cancelled", builder="child-queued")
    assert "the triggering build parent-slow was stopped" in json.loads(cancelled.details_json)["reason"]
    child_set = await rec.wait_kind("buildset.finished", buildset_id=child_started.buildset_id)
    assert child_set.result == CANCELLED
    requests = await coord.control.ListBuildRequests(
        control_pb2.ListBuildRequestsRequest(builder="child-queued"), timeout=TIMEOUT
    )
    assert [(r.complete, r.result) for r in requests.requests] == [(True, CANCELLED)]
    builder = await coord.control.GetBuilder(control_pb2.GetBuilderRequest(name="child-queued"), timeout=TIMEOUT)
    assert builder.pending_requests == 0
    parent = await coord.get_build("parent-slow", parent_started.build_number)
    [step] = parent.steps
    assert step.result == CANCELLED
    assert [u.url for u in step.urls] == [link]


async def test_cancel_a_pending_build_request(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1", max_builds=4)
    rec = await coord.record()
    at = ("--coordinator", coord.address)

    queued = await coord.force("child-queued")  # only w2 may run it, and w2 is not connected
    code, out, err = await run_cli("cancel", str(queued.build_request_id), "--reason", "not today", *at)
    assert code == 0, err
    assert out.decode().strip() == (
        f"cancelled build request {queued.build_request_id} (child-queued, buildset {queued.buildset_id})"
    )
    event = await rec.wait_kind("buildrequest.cancelled", builder="child-queued")
    assert json.loads(event.details_json) == {"request_id": queued.build_request_id, "reason": "not today"}
    done = await rec.wait_kind("buildset.finished", buildset_id=queued.buildset_id)
    assert done.result == CANCELLED
    builder = await coord.control.GetBuilder(control_pb2.GetBuilderRequest(name="child-queued"), timeout=TIMEOUT)
    assert builder.pending_requests == 0

    code, out, err = await run_cli("cancel", str(queued.build_request_id), *at)
    assert code == 1 and "is already complete (result cancelled)" in err.decode()
    assert "Traceback" not in err.decode()
    code, out, err = await run_cli("cancel", "987654", *at)
    assert code == 1 and "no build request with id 987654" in err.decode()

    running = await coord.force("parent-slow")  # its build starts on w1 at once
    await rec.wait_kind("build.started", builder="parent-slow")
    for request, status in (
        (
            control_pb2.CancelBuildRequestRequest(request_id=running.build_request_id),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (control_pb2.CancelBuildRequestRequest(request_id=987654), grpc.StatusCode.NOT_FOUND),
        (control_pb2.CancelBuildRequestRequest(request_id=0), grpc.StatusCode.INVALID_ARGUMENT),
        (control_pb2.CancelBuildRequestRequest(request_id=queued.build_request_id, reason="x" * 2000),
         grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await coord.control.CancelBuildRequest(request, timeout=TIMEOUT)
        assert failed.value.code() == status and failed.value.details()
        if status == grpc.StatusCode.FAILED_PRECONDITION:
            assert "has already started on builder 'parent-slow'; stop its build instead" in failed.value.details()
