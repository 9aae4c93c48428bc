"""Stopping a build through `gantry stop`: the interrupt reaches a child process of the step's
shell (the whole process group goes), the build ends CANCELLED, the steps after it are skipped
except the alwaysRun ones, which still run."""

from __future__ import annotations

import os

import pytest

from tests.e2e.harness import CANCELLED, SKIPPED, SUCCESS, Cluster, poll, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its reaper is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_stop_kills_the_shells_child_and_still_runs_always_run_steps(cluster: Cluster) -> None:
    pidfile = cluster.tmp / "child.pid"
    # The shell starts a child (sleep) in the background and waits for it: killing only the
    # shell would leave the sleep running.
    command = f"sleep 300 & echo $! > {pidfile}; wait"
    coord = await cluster.start_coordinator(f"""
config = MasterConfig(
    workers=[Worker("w1", "s1")],
    builders=[Builder("b", workers=["w1"], steps=[
        ShellCommand(name="long", command={command!r}),
        ShellCommand(name="after", command=["echo", "not run"]),
        ShellCommand(name="cleanup", command=["echo", "cleaned"], alwaysRun=True),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
""")
    await cluster.start_worker(coord, "w1", "s1")
    rec = await coord.record(since=0)
    await coord.force("b")

    async def child_started() -> int:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        return int(text) if text.isdigit() else 0

    child = await poll(child_started, what="the step's shell started its child")
    assert _alive(child)

    code, out, err = await run_cli("stop", "b", "1", "--reason", "enough", "--coordinator", coord.address)
    assert code == 0, err

    finished = await rec.wait_kind("build.finished", builder="b", build_number=1)
    assert finished.result == CANCELLED
    build = await coord.get_build("b", 1)
    assert [(s.name, s.result) for s in build.steps] == [
        ("long", CANCELLED), ("after", SKIPPED), ("cleanup", SUCCESS)
    ]

    async def child_gone() -> bool:
        return not _alive(child)

    await poll(child_gone, what=f"the shell's child {child} killed with its process group")
