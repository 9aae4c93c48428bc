"""Worker capacity: the configuration's max_builds decides; the agent's flag may only lower it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import SUCCESS, Cluster, poll, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def config(gate: Path) -> str:
    # Each build holds its slot until the test creates the gate file: four running at once is
    # then a fact the test observes, not a timing.
    return f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1", max_builds=4), Worker("w2", "secret2", max_builds=4)],
    builders=[
        Builder("wait", workers=["w1"], steps=[
            ShellCommand(name="gate", command="while [ ! -e {gate} ]; do sleep 0.05; done"),
        ]),
    ],
    schedulers=[ForceScheduler("force", builders=["wait"])],
)
"""


async def test_an_agent_without_max_builds_runs_as_many_builds_as_configured(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    coord = await cluster.start_coordinator(config(gate))
    await cluster.start_worker(coord, "w1", "secret1")  # no --max-builds
    await cluster.start_worker(coord, "w2", "secret2", max_builds=2)
    rec = await coord.record(since=0)
    forced = [await coord.force("wait") for _ in range(5)]

    async def four_running() -> bool:
        return len((await coord.workers())["w1"].running_builds) == 4

    await poll(four_running, what="four builds running on w1")
    workers = await coord.workers()
    assert (workers["w1"].max_builds, workers["w1"].capacity_reason) == (4, "config")
    assert (workers["w2"].max_builds, workers["w2"].capacity_reason) == (
        2,
        "agent --max-builds; config 4",
    )
    code, out, err = await run_cli("workers", "--coordinator", coord.address, env={"COLUMNS": "200"})
    assert code == 0, err
    text = out.decode()
    assert "4 (config)" in text, text
    assert "2 (agent --max-builds; config 4)" in text, text
    # The fifth waits: the configured four is a ceiling too.
    assert len(rec.of_kind("build.started")) == 4

    gate.touch()
    for f in forced:
        done = await rec.wait_kind("buildset.finished", buildset_id=f.buildset_id)
        assert done.result == SUCCESS


async def test_a_reconfigured_max_builds_applies_to_a_connected_worker_at_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    one = config(gate).replace('Worker("w1", "secret1", max_builds=4)', 'Worker("w1", "secret1", max_builds=1)')
    assert one != config(gate)
    coord = await cluster.start_coordinator(one)
    await cluster.start_worker(coord, "w1", "secret1")
    rec = await coord.record(since=0)
    forced = [await coord.force("wait") for _ in range(3)]
    await rec.wait_kind("build.started", builder="wait")
    assert (await coord.workers())["w1"].max_builds == 1

    coord.config_path.write_text(coord.config_path.read_text().replace("max_builds=1", "max_builds=3"))
    code, out, err = await run_cli("reconfig", "--coordinator", coord.address)
    assert code == 0, err

    async def three_running() -> bool:  # on the same connection: nothing waits for a reconnect
        return len((await coord.workers())["w1"].running_builds) == 3

    await poll(three_running, what="three builds running on w1 after the reconfig")
    assert ((await coord.workers())["w1"].max_builds, rec.of_kind("worker.disconnected")) == (3, [])
    gate.touch()
    for f in forced:
        assert (await rec.wait_kind("buildset.finished", buildset_id=f.buildset_id)).result == SUCCESS
