"""`gantry up`'s coordinator and worker never outlive it: Ctrl-C, SIGTERM, SIGHUP or SIGKILL of
`gantry up` leave no process behind (not even a running build's command) and nobody listening
on its port; stopped in order, it says what became of the running build."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import sys

import psutil
import pytest

from tests.e2e.harness import START_TIMEOUT, Cluster, Process, child_env, pid_alive, poll
from tests.net import reserved_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


# The sample builder, but its build runs until it is stopped.
MASTER = """
from pathlib import Path

from coordinator.config import Builder, ForceScheduler, MasterConfig, ShellCommand, SingleBranchScheduler, Worker

HERE = Path(__file__).parent
config = MasterConfig(
    workers=[Worker("local-worker", secret=(HERE / "worker.secret").read_text().strip())],
    builders=[Builder("sample", workers=["local-worker"], steps=[
        ShellCommand(name="forever", command="echo started; exec sleep 600"),
    ])],
    schedulers=[SingleBranchScheduler("main", branch="main", tree_stable_timer=0, builders=["sample"])],
)
"""


def nobody_listens(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
        except OSError as err:
            return err.errno == errno.ECONNREFUSED
        return False


@pytest.mark.parametrize(
    "sig",
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
    ids=["ctrl-c", "sigterm", "sighup", "sigkill"],
)
async def test_nothing_outlives_gantry_up(cluster: Cluster, sig: signal.Signals) -> None:
    data = cluster.tmp / "up-data"
    data.mkdir()
    (data / "master.py").write_text(MASTER)
    with reserved_port() as port:
        up = Process(
            "gantry-up",
            [sys.executable, "-m", "clients.cli", "up", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"],
            cluster.log_dir / "gantry-up.log",
            child_env(),
        )
        cluster.processes.append(up)
        await up.start()
        children: list[psutil.Process] = []
        try:
            await up.wait_line(r"Worker local-worker connected \(pid \d+\)", 3 * START_TIMEOUT)

            def running() -> list[psutil.Process]:
                found = psutil.Process(up.pid).children(recursive=True)
                return found if any("sleep" in c.name() for c in found) else []

            children = await poll(lambda: asyncio.to_thread(running), what="the sample build's command runs")
            assert len(children) >= 3, children  # the coordinator, the worker, the build's command
            assert not nobody_listens(port)

            up.send(sig)
            code = await up.wait_exit(60)
            if sig == signal.SIGKILL:
                assert code == -signal.SIGKILL
            else:
                assert code == 0, up.output()
                assert "Stopping…" in up.output()
                assert "sample/1: " in up.output()  # RETRY, or interrupted: queued again either way
                assert "runs when `gantry up` next starts" in up.output()
            _, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=30)
            assert not alive, f"left running after {sig.name}: {alive}"
            assert not any(pid_alive(c.pid) for c in children)
            assert nobody_listens(port)
        finally:
            await up.stop()
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
