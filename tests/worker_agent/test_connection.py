"""The agent against an in-process fake coordinator (a real grpc.aio server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import platform
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.gantry.v1 import worker_pb2, worker_pb2_grpc
from tests.worker_agent.fakes import wait_gone
from worker_agent import __version__
from worker_agent.backoff import Backoff
from worker_agent.connection import run_agent
from worker_agent.options import AgentOptions

SECRET = "s3cret"


class Conn:
    """One Connect call as seen by the fake coordinator."""

    def __init__(
        self, context: grpc.aio.ServicerContext, hello: worker_pb2.Hello, notify: Callable[[], None]
    ) -> None:
        self.context = context
        self.notify = notify
        self.hello = hello
        self.received: list[worker_pb2.WorkerMessage] = []

    async def send(self, **fields: Any) -> None:
        await self.context.write(worker_pb2.CoordinatorMessage(**fields))

    async def recv(self) -> worker_pb2.WorkerMessage | None:
        msg = await self.context.read()
        if msg is grpc.aio.EOF:
            return None
        self.received.append(msg)
        self.notify()
        return msg

    def finished(self) -> worker_pb2.CommandFinished | None:
        return next((m.finished for m in self.received if m.HasField("finished")), None)

    def output(self, channel: int) -> bytes:
        return b"".join(
            m.output.data
            for m in self.received
            if m.HasField("output") and m.output.channel == channel
        )


Script = Callable[[Conn], Awaitable[object]]


class FakeCoordinator(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(self, script: Script, heartbeat_interval: int = 10, window: int = 4) -> None:
        self.script = script
        self.welcome = worker_pb2.Welcome(
            heartbeat_interval=heartbeat_interval, window=window, version="fake"
        )
        self.connections: list[Conn] = []
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def Connect(  # noqa: N802 (grpc's name)
        self, request_iterator: object, context: grpc.aio.ServicerContext
    ) -> None:
        first = await context.read()
        conn = Conn(context, first.hello, self.notify)
        self.connections.append(conn)
        self.notify()
        if not first.HasField("hello") or first.hello.secret != SECRET:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong worker name or secret")
        await conn.send(welcome=self.welcome)
        try:
            await self.script(conn)
        finally:
            self.notify()


async def run_one_command(conn: Conn, start: worker_pb2.StartCommand) -> None:
    """Start `start`, ack every chunk, stop at CommandFinished."""
    await conn.send(start=start)
    while (msg := await conn.recv()) is not None:
        if msg.HasField("output"):
            await conn.send(
                ack=worker_pb2.Ack(command_id=msg.output.command_id, seq=msg.output.seq)
            )
        if msg.HasField("finished"):
            return


@asynccontextmanager
async def serving(coordinator: FakeCoordinator) -> AsyncIterator[str]:
    server = grpc.aio.server()
    worker_pb2_grpc.add_WorkerServiceServicer_to_server(coordinator, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@asynccontextmanager
async def agent(address: str, basedir: Path, secret: str = SECRET) -> AsyncIterator[None]:
    opts = AgentOptions(
        coordinator=address,
        name="w1",
        secret=secret,
        basedir=basedir,
        max_builds=2,
        labels=("linux", "big"),
        backoff_min=0.05,
        backoff_max=0.2,
    )
    task = asyncio.create_task(run_agent(opts))
    try:
        yield
    finally:
        task.cancel()
        async with asyncio.timeout(10):
            with pytest.raises(asyncio.CancelledError):
                await task


class LogWatcher(logging.Handler):
    """Collects log messages and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.text = ""
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"
        self._changed.set()  # records come from the event loop thread

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="gantry.worker")
    return caplog


async def test_runs_a_command_and_streams_its_output(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    done = asyncio.Event()

    async def script(conn: Conn) -> None:
        start = worker_pb2.StartCommand(command_id="b1-s1", argv=["echo", "hi"], builder_dir="b1")
        await run_one_command(conn, start)
        done.set()
        await conn.recv()  # hold the stream open until the agent goes

    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address, agent(address, tmp_path):
        async with asyncio.timeout(15):
            await done.wait()
    conn = coordinator.connections[0]
    hello = conn.hello
    assert (hello.name, hello.secret, hello.max_builds) == ("w1", SECRET, 2)
    assert (hello.os, hello.arch) == (platform.system().lower(), platform.machine())
    assert list(hello.labels) == ["linux", "big"] and hello.version == __version__
    assert conn.output(1) == b"hi\n", conn.output(3)
    assert conn.output(3).startswith(f"echo hi\n in dir {tmp_path / 'b1' / 'build'}\n".encode())
    chunks = [m.output for m in conn.received if m.HasField("output")]
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    finished = conn.finished()
    assert finished is not None
    assert (finished.command_id, finished.rc, finished.reason) == ("b1-s1", 0, "")
    assert finished.last_seq == len(chunks)
    assert f"connected to {address} as w1" in logs.text
    assert "running b1: echo hi" in logs.text


async def test_wrong_secret_is_logged_and_retried(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    coordinator = FakeCoordinator(script=lambda conn: conn.recv())
    async with serving(coordinator) as address, agent(address, tmp_path, secret="not-the-secret"):
        await coordinator.wait_for(lambda: len(coordinator.connections) >= 3)
    assert "coordinator refused worker w1: wrong name or secret (will retry in " in logs.text
    assert "connected to" not in logs.text
    assert "not-the-secret" not in logs.text  # a secret is never logged


async def test_interrupt_reaches_the_command(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        start = worker_pb2.StartCommand(command_id="c", shell_command="echo up; sleep 100")
        await conn.send(start=start)
        while (msg := await conn.recv()) is not None:
            if msg.HasField("output"):
                await conn.send(ack=worker_pb2.Ack(command_id="c", seq=msg.output.seq))
                if msg.output.data == b"up\n":
                    await conn.send(
                        interrupt=worker_pb2.InterruptCommand(command_id="c", reason="stop")
                    )
            if msg.HasField("finished"):
                break
        await conn.recv()

    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address, agent(address, tmp_path):
        await coordinator.wait_for(
            lambda: any(c.finished() is not None for c in coordinator.connections)
        )
    conn = coordinator.connections[0]
    finished = conn.finished()
    assert finished is not None
    assert (finished.rc, finished.reason) == (-1, "interrupted")
    assert b"interrupted: stop\n" in conn.output(3)


async def test_lost_connection_kills_commands_and_reconnects(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    async def script(conn: Conn) -> None:
        if len(coordinator.connections) > 1:
            await conn.recv()  # second connection: just stay
            return
        start = worker_pb2.StartCommand(command_id="c", shell_command="echo $$; exec sleep 100")
        await conn.send(start=start)
        while not conn.output(1).endswith(b"\n"):
            await conn.recv()
        # returning ends the stream: the coordinator went away

    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address, agent(address, tmp_path):
        await coordinator.wait_for(lambda: len(coordinator.connections) >= 2)
        # The agent reconnects only after it killed and reaped the commands.
        pid = int(coordinator.connections[0].output(1))
        await wait_gone(pid)
    assert f"lost connection to {address}; reconnecting in " in logs.text
    assert list(coordinator.connections[1].hello.running_command_ids) == []


async def test_silent_coordinator_is_detected(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    async def script(conn: Conn) -> None:
        if len(coordinator.connections) == 1:
            # Read (the agent's heartbeats) but never send anything.
            while await conn.recv() is not None:
                pass
        else:
            await conn.recv()

    coordinator = FakeCoordinator(script, heartbeat_interval=1)
    async with serving(coordinator) as address, agent(address, tmp_path):
        await coordinator.wait_for(lambda: len(coordinator.connections) >= 2, timeout=10)
    first = coordinator.connections[0]
    assert any(m.HasField("heartbeat") for m in first.received)
    assert "nothing from the coordinator for 3s" in logs.text


async def test_unreachable_coordinator_is_retried(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    # A bound socket that never listens: connecting to it is refused, and no one else can
    # take the port meanwhile.
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{reserved.getsockname()[1]}"
    watcher = LogWatcher()
    logging.getLogger("gantry.worker").addHandler(watcher)
    try:
        async with agent(address, tmp_path):
            message = f"could not connect to {address}; reconnecting in"
            await watcher.wait_for(lambda: watcher.text.count(message) >= 2)
    finally:
        logging.getLogger("gantry.worker").removeHandler(watcher)
        reserved.close()


async def test_a_kept_command_reattaches_and_resends_only_what_was_not_stored(tmp_path: Path) -> None:
    """The stream drops mid-command; the agent keeps the command, says so in Hello, and after
    Reattach(stored_seq) resends exactly the chunks after it, then the end."""
    go_on = tmp_path / "go-on"
    cmd = f"echo one; echo two; while [ ! -e {go_on} ]; do sleep 0.05; done; echo three"
    stored = 0

    async def script(conn: Conn) -> None:
        nonlocal stored
        if len(coordinator.connections) == 1:
            start = worker_pb2.StartCommand(command_id="c", shell_command=cmd, missing_timeout=60)
            await conn.send(start=start)
            while b"two\n" not in conn.output(1):
                msg = await conn.recv()
                # Store and acknowledge only the header: what follows must come again.
                if msg is not None and msg.HasField("output") and msg.output.channel == 3 and not stored:
                    stored = msg.output.seq
                    await conn.send(ack=worker_pb2.Ack(command_id="c", seq=stored))
            return  # the stream ends: the coordinator went away
        go_on.touch()
        await conn.send(reattach=worker_pb2.Reattach(command_id="c", stored_seq=stored))
        await run_acking(conn)

    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address, agent(address, tmp_path):
        await coordinator.wait_for(
            lambda: len(coordinator.connections) >= 2 and coordinator.connections[1].finished() is not None
        )
    second = coordinator.connections[1]
    (kept,) = second.hello.commands
    assert (kept.command_id, kept.finished) == ("c", False) and kept.last_seq >= 2
    assert list(second.hello.running_command_ids) == ["c"]
    resent = [m.output for m in second.received if m.HasField("output")]
    assert resent[0].seq == stored + 1  # nothing stored is sent again
    assert [c.seq for c in resent] == list(range(stored + 1, stored + 1 + len(resent)))
    assert b"".join(c.data for c in resent if c.channel == 1) == b"one\ntwo\nthree\n"
    finished = second.finished()
    assert finished is not None and finished.rc == 0 and finished.last_seq == resent[-1].seq
    assert not (tmp_path / ".gantry-spool").exists() or not any((tmp_path / ".gantry-spool").iterdir())
    # Times survive the spool: a chunk sent again carries the times it was read at, not the
    # resend's; "three" was printed after the first connection had ended, so it is later.
    before = {m.output.seq: list(m.output.time_marks)
              for m in coordinator.connections[0].received if m.HasField("output")}
    assert all(c.time_marks and c.time_marks[0] == 0 for c in resent)
    again = [c for c in resent if c.seq in before]
    assert again and all(list(c.time_marks) == before[c.seq] for c in again)
    two = next(c for c in resent if c.channel == 1 and b"two" in c.data)
    three = next(c for c in resent if c.channel == 1 and b"three" in c.data)
    assert three.time_marks[1] > two.time_marks[-1]  # flattened (offset, ms) pairs


async def test_a_command_not_reattached_within_its_missing_timeout_is_killed(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    async def script(conn: Conn) -> None:
        if len(coordinator.connections) == 1:
            start = worker_pb2.StartCommand(
                command_id="c", shell_command="echo $$; exec sleep 100", missing_timeout=0.5
            )
            await conn.send(start=start)
            while not conn.output(1).endswith(b"\n"):
                await conn.recv()
            return
        await conn.recv()  # later connections: never re-attach

    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address, agent(address, tmp_path):
        await coordinator.wait_for(lambda: conn_pid(coordinator) is not None)
        await wait_gone(conn_pid(coordinator) or 0)
    assert "coordinator not back within 0.5s" in logs.text


async def test_abandon_kills_a_kept_command(tmp_path: Path) -> None:
    async def script(conn: Conn) -> None:
        if len(coordinator.connections) == 1:
            start = worker_pb2.StartCommand(
                command_id="c", shell_command="echo $$; exec sleep 100", missing_timeout=60
            )
            await conn.send(start=start)
            while not conn.output(1).endswith(b"\n"):
                await conn.recv()
            return
        await conn.send(abandon=worker_pb2.AbandonCommand(command_id="c", reason="build gave up"))
        await conn.recv()

    coordinator = FakeCoordinator(script)
    async with serving(coordinator) as address, agent(address, tmp_path):
        await coordinator.wait_for(lambda: len(coordinator.connections) >= 2)
        assert [c.command_id for c in coordinator.connections[1].hello.commands] == ["c"]
        await wait_gone(conn_pid(coordinator) or 0)


def conn_pid(coordinator: FakeCoordinator) -> int | None:
    out = coordinator.connections[0].output(1) if coordinator.connections else b""
    return int(out) if out.endswith(b"\n") else None


async def run_acking(conn: Conn) -> None:
    """Ack every chunk and the end, until CommandFinished."""
    while (msg := await conn.recv()) is not None:
        if msg.HasField("output"):
            await conn.send(ack=worker_pb2.Ack(command_id=msg.output.command_id, seq=msg.output.seq))
        if msg.HasField("finished"):
            f = msg.finished
            await conn.send(ack=worker_pb2.Ack(command_id=f.command_id, seq=f.last_seq, finished=True))
            await conn.recv()
            return


def test_backoff_doubles_to_the_cap_with_jitter_and_resets() -> None:
    top = Backoff(1.0, 60.0, rng=lambda: 0.0)
    assert [top.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    top.reset()
    assert top.next_delay() == 1
    assert [top.next_delay(cap=3) for _ in range(4)] == [2, 3, 3, 3]  # capped while commands wait
    assert top.next_delay() == 32  # the doubling went on underneath
    low = Backoff(1.0, 60.0, rng=lambda: 0.999)
    delays = [low.next_delay() for _ in range(8)]
    assert all(0.75 * d <= x < d for x, d in zip(delays, [1, 2, 4, 8, 16, 32, 60, 60], strict=True))
