"""A recording MessageSink for runner tests (no grpc)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from protos.gantry.v1 import worker_pb2
from worker_agent.runner import CommandRunner


class RecordingSink:
    """Records every message; optionally acks each chunk as it arrives (a fast coordinator)."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.runner: CommandRunner | None = None
        self.messages: list[worker_pb2.WorkerMessage] = []
        self.acked = 0
        self.max_in_flight = 0
        self._changed = asyncio.Event()

    async def send(self, msg: worker_pb2.WorkerMessage) -> None:
        self.messages.append(msg)
        if msg.HasField("output"):
            self.max_in_flight = max(self.max_in_flight, msg.output.seq - self.acked)
            if self.auto_ack:
                self.ack(msg.output.seq)
        self._changed.set()

    def ack(self, seq: int) -> None:
        assert self.runner is not None
        self.acked = max(self.acked, seq)
        self.runner.ack(seq)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    @property
    def chunks(self) -> list[worker_pb2.OutputChunk]:
        return [m.output for m in self.messages if m.HasField("output")]

    def data(self, channel: int) -> bytes:
        return b"".join(c.data for c in self.chunks if c.channel == channel)

    def header(self) -> str:
        return self.data(3).decode()

    @property
    def finished(self) -> list[worker_pb2.CommandFinished]:
        return [m.finished for m in self.messages if m.HasField("finished")]


async def wait_gone(pid: int, timeout: float = 5.0) -> None:
    """Return once process `pid` has terminated (zombie or reaped); a pidfd is readable then.

    Needed because a SIGKILLed process closes its pipes slightly before it is a zombie.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(pidfd, _set_once, exited)
    try:
        async with asyncio.timeout(timeout):
            await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
