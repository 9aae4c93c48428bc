"""More real network faults between a worker and its coordinator, during a running step.

test_reattach.py cuts the worker's veth with `ip link set down` for 5 s; these make the other
faults of issue 9, with the same step (a line per 100 ms) and the same checks (the build
succeeds, runs once, and the stored log is the command's output byte for byte):
- delay and loss on the worker's veth, both ways, while the step prints;
- the cut made with iptables DROP both ways inside the worker's namespace;
- a 60 s cut in the middle of a step (the grace period is the default 300 s);
- a slow link with a real kernel queue (tbf: 64 kbit/s, up to 3 s of queueing delay), where
  kernels have no netem: output faster than the link is delayed and slowed, never lost, and the
  worker is never taken for gone.
Delay, loss and iptables need the worker's own network namespace: without one those tests skip
and say why. The 60 s cut falls back to the test's TCP proxy, as test_reattach's do.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from protos.gantry.v1 import logs_pb2
from tests.e2e.faults import FaultUnavailable, Link, NetnsLink, link_for_test, netns_link
from tests.e2e.harness import SUCCESS, Cluster, describe_events
from tests.e2e.test_reattach import EXPECTED, PRINT_LINES, config, start, states, wait_output

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@asynccontextmanager
async def own_netns(cut_with: str = "link") -> AsyncIterator[NetnsLink]:
    try:
        async with netns_link(cut_with) as link:
            yield link
    except FaultUnavailable as e:
        pytest.skip(f"needs the worker in its own network namespace: {e}")


async def run_and_check(
    cluster: Cluster, link: Link, step: str, expected: bytes, fault: Callable[[], Awaitable[None]],
    heartbeat: float = 1,
) -> tuple[list[str], str]:
    """Force the build, make `fault` once line 5 is stored, and check the build and its log.
    Returns the lines step's state strings and what the worker's agent logged."""
    coord, worker = await start(cluster, link, config(step), heartbeat)
    rec = await coord.record(since=0)
    forced = await coord.force("b")
    started = await rec.wait_kind("step.started", builder="b", step_name="lines")
    await wait_output(coord, started.build_number, b"line 5\n")
    await fault()
    finished = await rec.wait_kind("build.finished", builder="b", build_number=started.build_number)
    assert finished.result == SUCCESS, describe_events(rec.events)
    assert await coord.read_log("b", started.build_number, "lines", logs_pb2.STDOUT) == expected
    done = await rec.wait_kind("buildset.finished", buildset_id=forced.buildset_id)
    assert done.result == SUCCESS
    assert [b.number for b in await coord.list_builds("b")] == [started.build_number]  # no re-run
    texts = states(rec.of_kind("step.state", builder="b", build_number=started.build_number))
    return texts, worker.process.output()


def cut_for(link: Link, seconds: float) -> Callable[[], Awaitable[None]]:
    """The fault: the link cut both ways for `seconds` (the sleep is the fault's length)."""

    async def fault() -> None:
        await link.cut()
        try:
            await asyncio.sleep(seconds)
        finally:
            await link.restore()

    return fault


@pytest.mark.parametrize("how", ["netem", "iptables-loss"])
async def test_delay_and_loss_during_a_step_keep_the_log_exact(cluster: Cluster, how: str) -> None:
    async with own_netns() as link:
        if how == "netem":
            if not link.netem_available():
                pytest.skip("this kernel has no netem qdisc (sch_netem): delay cannot be made")

            async def fault() -> None:  # stays on until the build has finished
                await link.impair(delay_ms=200, jitter_ms=50, loss_percent=7)

        else:  # real packet loss both ways, also where the kernel has no netem
            if shutil.which("iptables") is None:
                pytest.skip("`iptables` is not installed (Debian package iptables; .ci/run installs it)")

            async def fault() -> None:
                await link.lose(loss_percent=7)

        await run_and_check(cluster, link, PRINT_LINES, EXPECTED, fault)
        if how == "iptables-loss":
            assert link.dropped() > 0  # the loss was real: packets were dropped


async def test_an_iptables_drop_both_ways_mid_step_reattaches(cluster: Cluster) -> None:
    async with own_netns(cut_with="iptables") as link:
        texts, output = await run_and_check(cluster, link, PRINT_LINES, EXPECTED, cut_for(link, 5))
    assert "worker disconnected, waiting up to 300 s" in texts, texts
    assert "re-attached command" in output


async def test_a_60s_cut_mid_step_reattaches_and_the_log_is_exact(cluster: Cluster) -> None:
    # A 3 s step: it ends during the cut, its output and exit code wait in the agent's spool.
    lines = 30
    step = PRINT_LINES.replace("-le 100 ]", f"-le {lines} ]")
    assert step != PRINT_LINES
    expected = b"".join(b"line %d\n" % i for i in range(1, lines + 1))
    async with link_for_test() as link:
        texts, output = await run_and_check(cluster, link, step, expected, cut_for(link, 60))
    assert "worker disconnected, waiting up to 300 s" in texts, texts
    assert "re-attached command" in output


async def test_a_slow_delaying_link_keeps_the_log_exact_without_a_disconnect(cluster: Cluster) -> None:
    # 100 lines of 1000 bytes in 10 s (80 kbit/s) through a 64 kbit/s link: the queue fills
    # (up to 3 s of delay), the agent's flow control slows the command down.
    pad = "x" * 990
    lines = PRINT_LINES.replace("'line %d\\n'", f"'{pad} line %d\\n'")  # a line still ends "line N\\n"
    assert lines != PRINT_LINES
    expected = b"".join(b"%s line %d\n" % (pad.encode(), i) for i in range(1, 101))
    async with own_netns() as link:

        async def fault() -> None:  # stays on until the build has finished
            await link.shape(rate="64kbit", burst="4kb", latency="3s")

        # Heartbeats every 5 s: a peer is taken for gone after 15 s of silence, more than the
        # queue's delay; a disconnect would show in the states and the agent's log.
        texts, output = await run_and_check(cluster, link, lines, expected, fault, heartbeat=5)
        assert link.overlimits() > 0  # the delay was real: packets waited in the queue
    assert not any(t.startswith("worker disconnected") for t in texts), texts
    assert "lost connection" not in output, output
