"""Builds that survive a lost worker connection (real processes, real network faults).

The worker runs in its own network namespace where this machine allows it (the link is cut by
setting the veth down: a blackhole both ways), else behind a TCP proxy of the test that resets
every connection. A step that prints a line per 100 ms is cut off in its middle:
- a short cut: the agent keeps the command running, reconnects, re-attaches; the build succeeds
  and the stored log is exactly the command's output;
- a cut past the grace period (missing_timeout=3): the build ends RETRY, the agent kills the
  orphaned process group, and the request runs again once the worker is back;
- connections reset until the command has finished: its exit code and the output it spooled
  while disconnected arrive on re-attach.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from protos.gantry.v1 import logs_pb2, status_pb2
from tests.e2e.faults import Link, link_for_test
from tests.e2e.harness import (
    RETRY,
    SUCCESS,
    TIMEOUT,
    Cluster,
    Coordinator,
    WorkerProcess,
    describe_events,
    kill_orphan,
    poll,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LINES = 100
EXPECTED = b"".join(b"line %d\n" % i for i in range(1, LINES + 1))
# A line per 100 ms, numbered; `printf` keeps it byte-exact and shell-portable.
PRINT_LINES = f"i=1; while [ $i -le {LINES} ]; do printf 'line %d\\n' $i; i=$((i+1)); sleep 0.1; done"


def config(step: str, worker_args: str = "") -> str:
    return f"""
config = MasterConfig(
    workers=[Worker("w1", "secret1"{worker_args})],
    builders=[Builder("b", workers=["w1"], steps=[
        ShellCommand(name="before", command=["echo", "before"]),
        ShellCommand(name="lines", command={step!r}),
        ShellCommand(name="after", command=["echo", "after"]),
    ])],
    schedulers=[ForceScheduler("force", builders=["b"])],
)
"""


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    """The worker's own network namespace where this machine allows it, else a proxy."""
    async with link_for_test() as made:
        yield made


async def start(cluster: Cluster, link: Link, body: str, heartbeat: float = 1) -> tuple[Coordinator, WorkerProcess]:
    # Heartbeats every second by default: a blackholed peer is noticed within about 3 s.
    # On a namespace's veth address the coordinator listens beyond loopback: plaintext and no
    # auth need saying so (--insecure), as they would on any private network.
    insecure = [] if link.coordinator_host.startswith("127.") else ["--insecure"]
    coord = await cluster.start_coordinator(
        body, heartbeat=heartbeat, listen_host=link.coordinator_host, extra_args=insecure
    )
    address = await link.worker_address(coord.address)
    worker = await cluster.start_worker(coord, "w1", "secret1", address=address, wrap=link.wrap)
    return coord, worker


async def wait_output(coord: Coordinator, number: int, needle: bytes) -> None:
    """Follow the lines step's stored stdout until `needle` is in it (the step is mid-way)."""

    async def has_log() -> bool:  # created as the command starts, just after step.started
        build = await coord.get_build("b", number)
        return any(s.name == "lines" and s.logs for s in build.steps)

    await poll(has_log, what="the lines step's log exists")
    follow = coord.logs.FollowLog(
        logs_pb2.ReadLogRequest(builder="b", build_number=number, step="lines", channel=logs_pb2.STDOUT)
    )
    seen = b""
    try:
        async with asyncio.timeout(TIMEOUT):
            async for part in follow:
                seen += part.data
                if needle in seen:
                    return
    finally:
        follow.cancel()
    raise AssertionError(f"{needle!r} never came: {seen!r}")


async def test_a_5s_cut_mid_step_reattaches_and_the_log_is_exact(cluster: Cluster, link: Link) -> None:
    coord, worker = await start(cluster, link, config(PRINT_LINES))
    rec = await coord.record(since=0)
    forced = await coord.force("b")
    started = await rec.wait_kind("step.started", builder="b", step_name="lines")
    await wait_output(coord, started.build_number, b"line 5\n")

    await link.cut()
    await asyncio.sleep(5)  # the fault itself: five seconds without a network
    await link.restore()

    finished = await rec.wait_kind("build.finished", builder="b", build_number=started.build_number)
    assert finished.result == SUCCESS, describe_events(rec.events)
    assert await coord.read_log("b", started.build_number, "lines", logs_pb2.STDOUT) == EXPECTED
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS
    assert [b.number for b in await coord.list_builds("b")] == [started.build_number]  # no re-run
    # It was a real disconnect, shown while it lasted, and the command re-attached.
    texts = states(rec.of_kind("step.state", builder="b", build_number=started.build_number))
    assert "worker disconnected, waiting up to 300 s" in texts, texts
    assert "re-attached command" in worker.process.output()


async def test_a_cut_past_the_grace_period_retries_and_kills_the_orphan(
    cluster: Cluster, link: Link, tmp_path: Path
) -> None:
    # The first run writes its pid and prints for a long time; the retried run finishes at once.
    pid_file, marker = tmp_path / "first.pid", tmp_path / "ran-once"
    step = (
        f"if [ -e {marker} ]; then echo second run; exit 0; fi; touch {marker}; "
        f"echo $$ > {pid_file}; while true; do echo tick; sleep 0.1; done"
    )
    coord, worker = await start(cluster, link, config(step, ", missing_timeout=3"))
    rec = await coord.record(since=0)
    forced = await coord.force("b")
    started = await rec.wait_kind("step.started", builder="b", step_name="lines")
    await wait_output(coord, started.build_number, b"tick\n")
    pid = int(pid_file.read_text())
    try:
        await link.cut()
        first = await rec.wait_kind("build.finished", builder="b", build_number=started.build_number)
        assert first.result == RETRY, describe_events(rec.events)
        await rec.wait_kind("buildrequest.retried")
        # The agent gave up on its own (it cannot hear the coordinator): the group is gone.
        await poll(lambda: _gone(pid), what=f"orphaned command {pid} killed")
        assert "abandoning" in worker.process.output()
    finally:
        kill_orphan(pid_file, "sh")
        await link.restore()
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS, describe_events(rec.events)
    builds = sorted(await coord.list_builds("b"), key=lambda b: b.number)
    # The retried build succeeds; with a 3 s grace, a reconnect slowed by TCP after the cut may
    # cost it one more retry first, never a second run of the step (the marker file says so).
    results = [b.result for b in builds]
    assert results[0] == RETRY and results[-1] == SUCCESS and set(results[:-1]) == {RETRY}, results
    texts = states(rec.of_kind("step.state", builder="b", build_number=started.build_number))
    assert "worker disconnected, waiting up to 3 s" in texts, texts


async def test_a_command_that_ends_while_disconnected_reports_on_reattach(cluster: Cluster) -> None:
    short = (
        "printf 'start\\n'; i=1; while [ $i -le 20 ]; do printf 'line %d\\n' $i; i=$((i+1)); sleep 0.1; done; exit 3"
    )
    async with link_for_test(prefer_netns=False) as link:
        coord, worker = await start(cluster, link, config(short))
        rec = await coord.record(since=0)
        await coord.force("b")
        started = await rec.wait_kind("step.started", builder="b", step_name="lines")
        await wait_output(coord, started.build_number, b"start\n")
        await link.cut()  # every connection reset, and new ones refused
        await worker.process.wait_line(r"finished b: exit code 3", TIMEOUT)
        await link.restore()
        finished = await rec.wait_kind("build.finished", builder="b", build_number=started.build_number)
    assert finished.result != RETRY, describe_events(rec.events)
    build = await coord.get_build("b", started.build_number)
    assert [(s.name, s.result) for s in build.steps][:2] == [("before", SUCCESS), ("lines", 2)]
    expected = b"start\n" + b"".join(b"line %d\n" % i for i in range(1, 21))
    assert await coord.read_log("b", started.build_number, "lines", logs_pb2.STDOUT) == expected
    header = await coord.read_log("b", started.build_number, "lines", logs_pb2.HEADER)
    assert b"program finished with exit code 3\n" in header


def states(events: Iterable[status_pb2.Event]) -> list[str]:
    return [json.loads(e.details_json)["state_string"] for e in events]


async def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too (the agent reaps it; until then it holds no resources).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()  # noqa: ASYNC240 (procfs: no disk I/O)
    except OSError:
        return True
    return stat.split(") ", 1)[1].startswith("Z")
