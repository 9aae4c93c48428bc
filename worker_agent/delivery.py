"""Getting one command's output and end to the coordinator, across reconnects.

The runner appends numbered chunks to the command's Spool; a sender task, bound to the
connection of the moment, sends them in order within the flow-control window, then the
CommandFinished. A lost connection detaches the sender (the command keeps running and
spooling); a Reattach binds a new connection's sink and resends from just after what the
coordinator says it stored, so every chunk is stored exactly once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from protos.gantry.v1 import worker_pb2
from worker_agent.flow import FlowWindow
from worker_agent.spool import Spool


class MessageSink(Protocol):
    """Where a runner's messages go (the connection's outbox, or a fake in tests)."""

    async def send(self, msg: worker_pb2.WorkerMessage) -> None: ...


class Delivery:
    def __init__(self, command_id: str, spool: Spool, window: int) -> None:
        self.command_id = command_id
        self.spool = spool
        self._window = FlowWindow(window)
        self._sender: asyncio.Task[None] | None = None
        self._sent_max = 0  # highest seq ever sent, on any connection
        self._finished: worker_pb2.CommandFinished | None = None
        self._finished_sent = asyncio.Event()
        self._finish_acked = asyncio.Event()

    # -- the connection's side
    @property
    def attached(self) -> bool:
        return self._sender is not None and not self._sender.done()

    @property
    def finished(self) -> worker_pb2.CommandFinished | None:
        return self._finished

    def attach(self, sink: MessageSink, stored_seq: int | None = None) -> int:
        """Send through `sink` from now on, starting after `stored_seq` (default: what was
        acknowledged); the chunks after it that an earlier sink sent are sent again. Returns how
        many bytes that is (sent before, not stored: the cost of the reconnect)."""
        self.detach()
        if stored_seq is not None:
            self.spool.ack(stored_seq)
        again = self.spool.bytes_between(self.spool.acked, self._sent_max)
        self._window.reset(self.spool.acked)
        self._finished_sent.clear()
        self._sender = asyncio.create_task(self._send_loop(sink), name=f"send {self.command_id}")
        return again

    def detach(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None

    def ack(self, seq: int, finished: bool = False) -> None:
        self._window.ack(seq)
        self.spool.ack(self._window.acked)
        if finished and self._finished is not None:
            self._finish_acked.set()

    async def finish_acknowledged(self) -> None:
        await self._finish_acked.wait()

    # -- the runner's side
    @property
    def last_seq(self) -> int:
        return self.spool.last_seq

    async def append(self, channel: int, data: bytes, marks: tuple[int, ...] = ()) -> None:
        await self.spool.append(channel, data, marks)

    async def finish(self, finished: worker_pb2.CommandFinished) -> None:
        """Record the end; return once it was sent (on whichever connection)."""
        self._finished = finished
        self.spool.seal()
        await self._finished_sent.wait()

    async def _send_loop(self, sink: MessageSink) -> None:
        seq = self.spool.acked
        while True:
            if seq < self.spool.last_seq:
                await self._window.wait_for_room()
                seq += 1
                record = self.spool.read_record(seq)
                if record is None:  # acknowledged meanwhile (a resend overtaken by its ack)
                    continue
                channel, data, marks = record
                self._window.note_sent(seq)
                self._sent_max = max(self._sent_max, seq)
                chunk = worker_pb2.OutputChunk(
                    command_id=self.command_id, seq=seq, channel=channel, data=data, time_marks=marks
                )
                await sink.send(worker_pb2.WorkerMessage(output=chunk))
            elif self._finished is not None:
                await sink.send(worker_pb2.WorkerMessage(finished=self._finished))
                self._finished_sent.set()
                return
            else:
                await self.spool.wait_beyond(seq)

    def close(self) -> None:
        self.detach()
        self.spool.close()
