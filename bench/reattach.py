"""The `reattach` scenario: what a lost worker connection, and a coordinator restart, cost.

One worker agent (max_builds=N) reaches the coordinator through a TCP proxy owned by the bench.
N builds run a step printing a numbered line every 0.5 s; mid-step the proxy resets every
connection (as a NAT or firewall restart does). Measured, for N = 1 and N = `reattach_builds`:
- recovery: from the reset until every running build re-attached (the coordinator's
  `step.state` "running" event of each), which includes the agent's reconnect backoff (the
  first retry waits 0.75–1 s);
- extra log bytes: output the agent sent a second time because it was sent before the reset but
  not yet stored (the unacknowledged tail; from the agent's "N bytes sent again" log lines),
  for the slow step and for one step printing about 2 MB/s.
- restart: the same with the coordinator SIGKILLed mid-step and started again (same port, same
  database): from the kill until every running build re-attached on the new coordinator
  (includes its start-up and the agents' reconnect backoff).
Every build must then finish SUCCESS with its stdout stored exactly (no gap, no duplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import struct
import time

import grpc

from bench.harness import BenchError, BuilderSpec, ClusterSpec, Coordinator, start_worker
from bench.metrics import ScenarioResult
from bench.scenarios import Cluster, EventTap, Options, cluster, say, submit_one
from protos.gantry.v1 import common_pb2, logs_pb2, logs_pb2_grpc

TICKS = 16
TICK_COMMAND = f"i=1; while [ $i -le {TICKS} ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.5; done"
EXPECTED = "".join(f"tick {i}\n" for i in range(1, TICKS + 1)).encode()
# About 2 MB/s for 6 s: output in flight at any moment, so a reset leaves an unacknowledged tail.
HEAVY_COMMAND = (
    "i=0; while [ $i -lt 120 ]; do head -c 100000 /dev/zero | tr '\\0' x; echo; i=$((i+1)); sleep 0.05; done"
)
HEAVY_EXPECTED = (b"x" * 100000 + b"\n") * 120
AGAIN = re.compile(r"re-attached command \S+ after output \d+ \((\d+) bytes sent again\)")


class ResettingProxy:
    """Forwards TCP to the coordinator; `reset()` aborts every connection with RST."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    def reset(self) -> None:
        for w in list(self._writers):
            sock = w.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()

    async def close(self) -> None:
        self.reset()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


async def reattach(opts: Options) -> ScenarioResult:
    res = ScenarioResult("reattach")
    for n, metric in ((1, "re-attach, 1 build"), (opts.reattach_builds, "re-attach, N builds")):
        seconds, again, count = await _one_reset(opts, n, TICK_COMMAND, EXPECTED)
        res.values[metric] = seconds * 1000
        res.notes.append(
            f"reattach: {n} running build(s) printing a line per 0.5 s, reset → all re-attached in "
            f"{seconds * 1000:.0f} ms; {count} command(s) re-attached, {again} byte(s) sent again in all"
        )
    for n, metric in ((1, "restart → re-attached, 1 build"), (opts.reattach_builds, "restart → re-attached, N builds")):
        seconds, _, count = await _one_reset(opts, n, TICK_COMMAND, EXPECTED, restart=True)
        res.values[metric] = seconds * 1000
        res.notes.append(
            f"reattach: {n} running build(s), coordinator SIGKILLed and started again → all re-attached in "
            f"{seconds * 1000:.0f} ms ({count} command(s) re-attached)"
        )
    seconds, again, count = await _one_reset(opts, 1, HEAVY_COMMAND, HEAVY_EXPECTED)
    res.values["extra bytes per re-attach"] = again / max(1, count)
    res.notes.append(
        f"reattach: 1 build printing ~2 MB/s, reset → re-attached in {seconds * 1000:.0f} ms, {again:,} byte(s) "
        "sent again (the unacknowledged tail; the window bounds it to 32 chunks of at most 32 KiB)"
    )
    res.notes.append("reattach: every build SUCCESS with its stdout stored byte-exact (no gap, no duplicate)")
    return res


async def _one_reset(
    opts: Options, n: int, command: str, expected: bytes, restart: bool = False
) -> tuple[float, int, int]:
    spec = ClusterSpec(workers=[("w0", "secret-w0", n)], builders=[BuilderSpec("tick", ["w0"], command)])
    with socket.socket() as held:  # a port of our own, so the restarted coordinator gets it again
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        listen = ("--listen", f"127.0.0.1:{held.getsockname()[1]}")
        async with cluster(f"reattach-{n}", opts, spec, [], coord_args=listen) as cl:
            return await _run(opts, cl, spec, listen, n, expected, restart)


async def _run(
    opts: Options, cl: Cluster, spec: ClusterSpec, listen: tuple[str, ...], n: int, expected: bytes, restart: bool
) -> tuple[float, int, int]:
    proxy = ResettingProxy(cl.coord.address)
    first = cl.coord
    worker = start_worker(cl.ws.path, await proxy.start(), "w0", "secret-w0", n)
    cl.workers.append(worker)
    tap = EventTap(cl.channel, ["step.started", "step.state", "build.finished"])
    tap.keep_all = True
    tap.start()
    try:
        await cl.wait_workers(1, 60)
        for i in range(n):
            await submit_one(cl, i)

        def started() -> int:
            return sum(1 for _, ev in tap.events if ev.kind == "step.started")

        await tap.wait(lambda: started() >= n, 120, f"{n} steps to start")
        await asyncio.sleep(1.5)  # output flowing, mid-step
        if tap.builds_finished:
            raise BenchError("a build finished before the reset: raise TICKS")
        t0 = time.time()
        if restart:
            cl.coord.proc.signal(signal.SIGKILL)
            await asyncio.to_thread(cl.coord.proc.popen.wait, 30)
            await tap.close()
            cl.coord = Coordinator(cl.ws.path, spec, listen)
            await asyncio.to_thread(cl.coord.wait_ready, 60)
            await cl.channel.close(grace=None)
            cl.channel = grpc.aio.insecure_channel(cl.coord.address)
            tap = EventTap(cl.channel, ["step.started", "step.state", "build.finished"])
            tap.keep_all = True
            tap.start()
            say(opts, f"coordinator restarted under {n} running build(s)")
        else:
            proxy.reset()
            say(opts, f"reset {n} running build(s)")

        def back() -> list[float]:
            return [
                at
                for at, ev in tap.events
                if ev.kind == "step.state"
                and ev.at.seconds + ev.at.nanos / 1e9 >= t0
                and json.loads(ev.details_json)["state_string"] == "running"
            ]

        await tap.wait(lambda: len(back()) >= n, 120, f"{n} builds to re-attach")
        seconds = max(back()) - t0  # arrival times: what a client sees
        await tap.wait(lambda: len(tap.builds_finished) >= n, 120, f"{n} builds to finish")
        logs = logs_pb2_grpc.LogServiceStub(cl.channel)
        for _, fin in tap.builds_finished:
            if fin.result != common_pb2.SUCCESS:
                raise BenchError(f"build {fin.build_number} ended {common_pb2.Result.Name(fin.result)}")
            data = b""
            while True:
                page = await logs.ReadLog(
                    logs_pb2.ReadLogRequest(
                        builder="tick", build_number=fin.build_number, step="run", channel=logs_pb2.STDOUT,
                        offset=len(data),
                    ),
                    timeout=30,
                )
                data += page.data
                if page.eof or not page.data:
                    break
            if data != expected:
                raise BenchError(f"build {fin.build_number}: stored stdout differs from the output")
    finally:
        await tap.close()
        await proxy.close()
        if cl.coord is not first:  # the cluster stops the one it started
            await asyncio.to_thread(cl.coord.stop)
            await cl.channel.close(grace=None)
    found = [int(m.group(1)) for m in AGAIN.finditer(worker.stderr_path.read_text(errors="replace"))]
    return seconds, sum(found), len(found)
