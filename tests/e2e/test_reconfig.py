"""`gantry reconfig` (and SIGHUP) on a running coordinator: the plan, applying it while a build
runs (it finishes with its old definition; the worker stays connected), a bad file refused with
FILE:LINE and nothing changed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from protos.gantry.v1 import control_pb2
from tests.e2e.harness import SUCCESS, Cluster, Coordinator, config_source, poll, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def config(gate: Path, *, new: bool) -> str:
    b_steps = 'ShellCommand(name="wait", command="while [ ! -e {gate} ]; do sleep 0.05; done")'
    if new:
        b_steps += ', ShellCommand(name="added", command=["echo", "new definition"])'
    builders = ["a", "b"] if not new else ["b", "c"]
    defs = {
        "a": 'Builder("a", workers=["w1"], steps=[ShellCommand(name="x", command=["true"])])',
        "b": f'Builder("b", workers=["w1"], steps=[{b_steps.format(gate=gate)}])',
        "c": 'Builder("c", workers=["w1", "w2"], steps=[ShellCommand(name="y", command=["true"])])',
    }
    workers = 'Worker("w1", "secret1", max_builds=2)' + (', Worker("w2", "secret2")' if new else "")
    return f"""
config = MasterConfig(
    workers=[{workers}],
    builders=[{", ".join(defs[b] for b in builders)}],
    schedulers=[ForceScheduler("force", builders={builders!r})],
)
"""


async def builder_names(coord: Coordinator) -> list[str]:
    reply = await coord.control.ListBuilders(control_pb2.ListBuildersRequest())
    return sorted(b.name for b in reply.builders)


async def test_reconfig_plans_applies_and_refuses_a_bad_file(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    coord = await cluster.start_coordinator(config(gate, new=False))
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    at = ("--coordinator", coord.address)
    running = await coord.force("b")
    await rec.wait_kind("step.started", builder="b", build_number=1)

    coord.config_path.write_text(config_source(config(gate, new=True)))
    code, out, err = await run_cli("reconfig", "--dry-run", *at)
    assert code == 0, err
    text = out.decode()
    for line in (
        "builders added: c",
        "builders removed: a",
        "builders changed: b",
        "workers added: w2",
        "schedulers changed: force",
        "dry run: nothing applied",
    ):
        assert line in text, text
    assert await builder_names(coord) == ["a", "b"]

    code, out, err = await run_cli("reconfig", "--json", *at)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["applied"] is True
    assert {"kind": "builders", "change": "added", "names": ["c"]} in plan["changes"]
    assert await builder_names(coord) == ["b", "c"]

    # The running build finishes with the definition it started with; new ones get the new one.
    gate.touch()
    done = await rec.wait_kind("buildset.finished", buildset_id=running.buildset_id)
    assert done.result == SUCCESS
    assert [s.name for s in (await coord.get_build("b", 1)).steps] == ["wait"]
    again = await coord.force("b")
    assert (await rec.wait_kind("buildset.finished", buildset_id=again.buildset_id)).result == SUCCESS
    assert [s.name for s in (await coord.get_build("b", 2)).steps] == ["wait", "added"]
    forced_c = await coord.force("c")
    assert (await rec.wait_kind("buildset.finished", buildset_id=forced_c.buildset_id)).result == SUCCESS
    assert rec.of_kind("worker.disconnected") == []  # w1 stayed connected throughout

    # A bad file: refused with FILE:LINE, nothing changes.
    good = coord.config_path.read_text()
    coord.config_path.write_text(good + "\nbroken = (\n")
    code, out, err = await run_cli("reconfig", *at)
    assert code == 1
    lines = len((good + "\nbroken = (\n").splitlines())
    assert f"{coord.config_path}:{lines}: syntax error" in err.decode(), err.decode()
    assert "nothing changed" in err.decode()
    assert await builder_names(coord) == ["b", "c"]

    # SIGHUP reloads too (as Buildbot's reconfig sends it).
    coord.config_path.write_text(good.replace('"c", workers', '"d", workers').replace("'c'", "'d'"))
    assert coord.process is not None
    coord.process.send(signal.SIGHUP)

    async def has_d() -> bool:
        return await builder_names(coord) == ["b", "d"]

    await poll(has_d, what="builder d after SIGHUP")


async def test_a_changed_scheduler_keeps_its_pending_changes_and_timer(cluster: Cluster) -> None:
    body = """
config = MasterConfig(
    workers=[Worker("w1", "secret1")],
    builders=[Builder("b", workers=["w1"], steps=[ShellCommand(command=["true"])]),
              Builder("c", workers=["w1"], steps=[ShellCommand(command=["true"])])],
    schedulers=[SingleBranchScheduler("main", branch="main", tree_stable_timer=3600, builders={builders!r})],
)
"""
    coord = await cluster.start_coordinator(body.format(builders=["b"]))
    await coord.submit({"comments": "waits an hour for the tree to be stable"})

    async def next_fire() -> int:
        reply = await coord.control.ListSchedulers(control_pb2.ListSchedulersRequest())
        return int(next(s for s in reply.schedulers if s.name == "main").next_fire.seconds)

    before = await poll(next_fire, what="the tree-stable timer runs")
    coord.config_path.write_text(config_source(body.format(builders=["b", "c"])))
    code, out, err = await run_cli("reconfig", "--coordinator", coord.address)
    assert code == 0 and "schedulers changed: main" in out.decode(), err
    # The new scheduler object took the stored pending change, its timer resumed where it was.
    assert abs(await next_fire() - before) <= 1  # (whole seconds of the same fire time)
    reply = await coord.control.ListSchedulers(control_pb2.ListSchedulersRequest())
    assert list(next(s for s in reply.schedulers if s.name == "main").builders) == ["b", "c"]


async def test_a_reconfig_that_fails_while_applying_changes_nothing(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    coord = await cluster.start_coordinator(config(gate, new=False))
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    # Valid (checkconfig passes), but its scheduler cannot start: the failure comes after the
    # workers and builders were swapped, and must take them back.
    broken = config(gate, new=True).replace("max_builds=2", "max_builds=3").replace(
        "schedulers=[ForceScheduler(", "schedulers=[Broken("
    )
    assert "Broken(" in broken
    coord.config_path.write_text(config_source(
        "class Broken(ForceScheduler):\n"
        "    def start(self, rt, record):\n"
        "        raise RuntimeError('the license server is down')\n\n" + broken
    ))
    code, _, _ = await run_cli("checkconfig", str(coord.config_path))
    assert code == 0
    code, out, err = await run_cli("reconfig", "--coordinator", coord.address)
    assert code == 1
    message = err.decode()
    assert "nothing changed: applying the configuration failed (RuntimeError: the license server is down)" in message
    assert "the previous configuration is back in effect" in message
    # Everything is as before: builders, the worker's capacity, the scheduler (it still forces a).
    assert await builder_names(coord) == ["a", "b"]
    assert (await coord.workers())["w1"].max_builds == 2
    forced = await coord.force("a")
    assert (await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)).result == SUCCESS
    assert rec.of_kind("worker.disconnected") == []
    # Fixed, the same change applies.
    coord.config_path.write_text(config_source(config(gate, new=True)))
    code, out, err = await run_cli("reconfig", "--coordinator", coord.address)
    assert code == 0, err
    assert await builder_names(coord) == ["b", "c"]
