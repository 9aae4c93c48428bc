"""Pause, drain and resume with real processes: `gantry worker pause|drain|resume`, a hold that
survives a coordinator restart, a drained agent that exits, and an agent's own SIGTERM drain
(a second SIGTERM stops it now, its build RETRY)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e.harness import RETRY, SUCCESS, Cluster, Coordinator, poll, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def config(gate: Path) -> str:
    return f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=2)],
    builders=[Builder("b", workers=["w1"], steps=[
        ShellCommand(name="gate", command="while [ ! -e {gate} ]; do sleep 0.05; done"),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""


async def workers_json(coord: Coordinator) -> dict[str, dict]:
    code, out, err = await run_cli("workers", "--json", "--coordinator", coord.address)
    assert code == 0, err
    return {w["name"]: w for w in json.loads(out)["workers"]}


async def pending_reasons(coord: Coordinator) -> list[str]:
    code, out, err = await run_cli("pending", "--json", "--coordinator", coord.address)
    assert code == 0, err
    return [p["reason"] for p in json.loads(out)["pending"]]


async def test_pause_survives_a_restart_and_drain_makes_the_agent_exit(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    coord = await cluster.start_coordinator(config(gate))
    w1 = await cluster.start_worker(coord, "w1", "secret1")
    at = ("--coordinator", coord.address)

    code, out, err = await run_cli("worker", "pause", "w1", "--reason", "disk full", *at)
    assert code == 0, err
    assert out.decode().startswith("worker w1 paused: no new builds")
    forced = await coord.force("b")
    assert await pending_reasons(coord) == ["worker w1 paused"]

    await coord.restart()  # the hold is stored
    await poll(lambda: _connected(coord), what="w1 reconnects")
    workers = await workers_json(coord)
    assert (workers["w1"]["state"], workers["w1"]["state_reason"]) == ("paused", "disk full")
    assert await pending_reasons(coord) == ["worker w1 paused"]
    code, out, _ = await run_cli("workers", *at, env={"COLUMNS": "200"})
    assert "paused: disk full" in out.decode()

    code, out, err = await run_cli("worker", "resume", "w1", *at)
    assert code == 0 and "worker w1 active" in out.decode(), err
    rec = await coord.record(since=0)
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS

    code, out, err = await run_cli("worker", "drain", "w1", *at)
    assert code == 0, err
    assert await w1.process.wait_exit() == 0  # idle: told to exit at once
    assert "exiting: the coordinator says: drained" in w1.process.output()

    code, _, err = await run_cli("worker", "pause", "nope", *at)
    assert code == 1 and "no worker named 'nope' (configured workers: w1)" in err.decode()


async def _connected(coord: Coordinator) -> bool:
    return (await coord.workers())["w1"].connected


async def test_an_agent_drains_on_sigterm_and_stops_on_the_second(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    coord = await cluster.start_coordinator(config(gate))
    w1 = await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    first = await coord.force("b")
    await rec.wait_kind("step.started", builder="b", build_number=1)

    w1.process.send(signal.SIGTERM)
    await poll(lambda: _state(coord, "draining"), what="w1 draining")
    second = await coord.force("b")
    assert await pending_reasons(coord) == ["worker w1 draining"]
    gate.touch()  # the running build finishes; then the agent is told to exit
    done = await rec.wait_kind("buildset.finished", buildset_id=first.buildset_id)
    assert done.result == SUCCESS
    assert await w1.process.wait_exit() == 0
    assert [e.worker for e in rec.of_kind("build.started")] == ["w1"]  # the second never started there

    # A new agent process takes builds again (the drain was the old one's); the second build
    # runs. Two SIGTERMs while a build runs: it is stopped now and the build ends RETRY.
    gate.unlink()
    w1 = await cluster.start_worker(coord, "w1", "secret1")
    await rec.wait_kind("step.started", builder="b", build_number=2)
    w1.process.send(signal.SIGTERM)
    await poll(lambda: _state(coord, "draining"), what="w1 draining again")
    w1.process.send(signal.SIGTERM)
    assert await w1.process.wait_exit() == 0
    ended = await rec.wait_kind("build.finished", builder="b", build_number=2)
    assert ended.result == RETRY
    assert second.buildset_id  # its request went back to the queue (no worker connected now)
    assert await pending_reasons(coord) == ["no worker connected"]


async def _state(coord: Coordinator, state: str) -> bool:
    return bool((await coord.workers())["w1"].state == state)
