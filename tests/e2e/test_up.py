"""`gantry up`: a coordinator and a worker come up, the sample build goes green, and Ctrl-C
stops everything."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import grpc
import psutil
import pytest

from protos.gantry.v1 import control_pb2, control_pb2_grpc
from tests.e2e.harness import (
    CHANNEL_OPTIONS,
    START_TIMEOUT,
    SUCCESS,
    Cluster,
    Process,
    child_env,
    pid_alive,
    poll,
)
from tests.net import reserved_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def test_gantry_up_reaches_a_green_sample_build_and_stops_on_ctrl_c(cluster: Cluster) -> None:
    with reserved_port() as port:  # `gantry up` needs a number; held so no one else takes it
        await _up_until_ctrl_c(cluster, f"127.0.0.1:{port}")


async def _up_until_ctrl_c(cluster: Cluster, listen: str) -> None:
    data = cluster.tmp / "up-data"
    up = Process(
        "gantry-up",
        [sys.executable, "-m", "clients.cli", "up", "--data-dir", str(data), "--listen", listen],
        cluster.log_dir / "gantry-up.log",
        child_env(),
    )
    cluster.processes.append(up)
    await up.start()
    children: dict[int, psutil.Process] = {}  # what `gantry up` started, to check (and clean up)

    def note_children() -> None:
        with contextlib.suppress(psutil.Error):
            children.update((c.pid, c) for c in psutil.Process(up.pid).children(recursive=True))

    try:
        async with grpc.aio.insecure_channel(listen, options=CHANNEL_OPTIONS) as channel:
            control = control_pb2_grpc.ControlServiceStub(channel)

            async def green_sample() -> list[control_pb2.Build]:
                assert up.returncode is None, f"gantry up exited with {up.returncode}"
                note_children()
                try:
                    reply = await control.ListBuilds(
                        control_pb2.ListBuildsRequest(builder="sample"), timeout=5
                    )
                except grpc.aio.AioRpcError as err:
                    if err.code() in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                    ):
                        return []
                    raise
                return [b for b in reply.builds if b.complete and b.result == SUCCESS]

            builds = await poll(green_sample, 3 * START_TIMEOUT, "a green sample build")
            assert builds[0].builder == "sample" and builds[0].worker == "local-worker"
            workers = await control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=10)
            assert [(w.name, w.connected) for w in workers.workers] == [("local-worker", True)]
        await up.wait_line("Press Ctrl-C", START_TIMEOUT)
        note_children()
        assert len(children) >= 2, children  # the coordinator and the worker
        assert (data / "master.py").exists() and (data / "worker.secret").exists()

        up.send(signal.SIGINT)
        assert await up.wait_exit(60) == 0, up.output()
        _, alive = await asyncio.to_thread(psutil.wait_procs, list(children.values()), timeout=10)
        assert not alive, f"children left running after Ctrl-C: {alive}"
        assert not any(pid_alive(pid) for pid in children)
    finally:
        # If `gantry up` failed, its children (in sessions of their own) would outlive it.
        await up.stop()
        for child in children.values():
            with contextlib.suppress(psutil.Error):
                child.terminate()
        await asyncio.to_thread(psutil.wait_procs, list(children.values()), timeout=10)
        for child in children.values():
            with contextlib.suppress(psutil.Error):
                child.kill()
