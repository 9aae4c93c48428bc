"""Trigger / Triggerable and Dependent end to end: real coordinator and worker processes."""

from __future__ import annotations

import pytest

from protos.gantry.v1 import control_pb2
from tests.e2e.harness import CANCELLED, FAILURE, SUCCESS, Cluster, describe_events, poll, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = """
up = ForceScheduler("force-up", builders=["up"])
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=4)],
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
        Builder("child-slow", workers=["w1"], steps=[
            ShellCommand(name="block", command=["python3", "-c", "import time; time.sleep(600)"]),
        ]),
        Builder("up", workers=["w1"], steps=[
            ShellCommand(name="verdict", command=["test", Property("ok", "yes"), "=", "yes"]),
        ]),
        Builder("down", workers=["w1"], steps=[ShellCommand(name="hello", command=["echo", "down"])]),
    ],
    schedulers=[
        ForceScheduler("force", builders=["parent-wait", "parent-nowait", "parent-slow"]),
        Triggerable("children", ["child"]),
        Triggerable("slow", ["child-slow"]),
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


async def test_stopping_the_triggering_build_stops_the_wait_and_the_triggered_build(cluster: Cluster) -> None:
    coord = await cluster.start_coordinator(CONFIG)
    await cluster.start_worker(coord, "w1", "secret1", max_builds=4)
    rec = await coord.record()

    forced = await coord.force("parent-slow")
    await rec.wait_kind("step.started", builder="child-slow", step_name="block")
    [parent_started] = rec.of_kind("build.started", builder="parent-slow")
    [child_started] = rec.of_kind("build.started", builder="child-slow")

    async def linked() -> list[str]:
        running = await coord.get_build("parent-slow", parent_started.build_number)
        return [u.url for s in running.steps for u in s.urls]

    # The link to the triggered build shows while the trigger step still waits.
    assert await poll(linked, what="link to the triggered build") == [
        f"builders/child-slow/builds/{child_started.build_number}"
    ]
    stopped = await coord.control.StopBuild(
        control_pb2.StopBuildRequest(builder="parent-slow", number=parent_started.build_number, reason="enough")
    )
    assert stopped.stopped
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == CANCELLED, describe_events(rec.events)
    child_done = await rec.wait_kind("build.finished", builder="child-slow")
    assert child_done.result == CANCELLED
    parent = await coord.get_build("parent-slow", parent_started.build_number)
    [step] = parent.steps
    assert step.result == CANCELLED
    assert [u.url for u in step.urls] == [f"builders/child-slow/builds/{child_done.build_number}"]
