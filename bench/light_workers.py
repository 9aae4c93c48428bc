"""Light worker clients: many idle workers speaking the real protocol from one process.

Each worker has its own grpc.aio channel with a local subchannel pool, so each is its own TCP
connection (gRPC would otherwise share one connection between channels to the same target). A
worker sends Hello, waits for Welcome, then only answers the liveness contract: one Heartbeat
every `heartbeat_interval` (sent by one shared loop, not a task per worker) while a reader task
drains what the coordinator sends. They never run commands: they are for idle-memory scenarios.
"""

from __future__ import annotations

import asyncio
import platform
import time
from dataclasses import dataclass, field

import grpc

from protos.gantry.v1 import worker_pb2, worker_pb2_grpc

CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_permit_without_calls", 0),
]


@dataclass
class LightWorker:
    name: str
    secret: str
    channel: grpc.aio.Channel | None = None
    call: grpc.aio.StreamStreamCall | None = None
    reader: asyncio.Task[None] | None = None
    welcomed: bool = False
    closed: bool = False
    error: str = ""
    received: int = 0

    async def connect(self, address: str, timeout: float = 30.0) -> int:
        """Dial, say Hello, wait for Welcome; returns the heartbeat interval."""
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.call = worker_pb2_grpc.WorkerServiceStub(self.channel).Connect()
        await self.call.write(
            worker_pb2.WorkerMessage(
                hello=worker_pb2.Hello(
                    name=self.name, secret=self.secret, os=platform.system().lower(),
                    arch=platform.machine(), max_builds=1, version="bench-light",
                )
            )
        )
        reply = await asyncio.wait_for(self.call.read(), timeout)
        if reply is grpc.aio.EOF or reply.WhichOneof("msg") != "welcome":
            raise RuntimeError(f"{self.name}: expected Welcome, got {reply!r}")
        self.welcomed = True
        self.reader = asyncio.create_task(self._read(), name=f"light-{self.name}")
        return reply.welcome.heartbeat_interval or 10

    async def _read(self) -> None:
        assert self.call is not None
        try:
            while True:
                msg = await self.call.read()
                if msg is grpc.aio.EOF:
                    break
                self.received += 1
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
            if isinstance(exc, grpc.aio.AioRpcError):
                self.error = f"{exc.code().name}: {exc.details()}"
        finally:
            self.closed = True

    async def heartbeat(self) -> None:
        if self.call is None or self.closed:
            return
        try:
            await self.call.write(worker_pb2.WorkerMessage(heartbeat=worker_pb2.Heartbeat(sent_at=time.time())))
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            self.error = str(exc)
            self.closed = True

    async def close(self) -> None:
        if self.call is not None:
            try:
                await asyncio.wait_for(self.call.done_writing(), 2)
            except Exception:  # noqa: BLE001 - best effort on teardown
                pass
            self.call.cancel()
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        if self.channel is not None:
            await self.channel.close(grace=None)


@dataclass
class LightWorkerFleet:
    address: str
    names: list[tuple[str, str]]  # (name, secret)
    connect_concurrency: int = 50
    workers: list[LightWorker] = field(default_factory=list)
    interval: float = 10.0
    _beat: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 120.0) -> None:
        sem = asyncio.Semaphore(self.connect_concurrency)
        self.workers = [LightWorker(n, s) for n, s in self.names]
        intervals: list[int] = []

        async def one(w: LightWorker) -> None:
            async with sem:
                intervals.append(await w.connect(self.address))

        await asyncio.wait_for(asyncio.gather(*(one(w) for w in self.workers)), timeout)
        if intervals:
            self.interval = float(min(intervals))
        self._beat = asyncio.create_task(self._heartbeats(), name="light-heartbeats")

    async def _heartbeats(self) -> None:
        # Spread the beats over the interval like independent agents would.
        while True:
            n = max(1, len(self.workers))
            step = self.interval * 0.8 / n
            for w in self.workers:
                await w.heartbeat()
                await asyncio.sleep(step)

    @property
    def alive(self) -> int:
        return sum(1 for w in self.workers if w.welcomed and not w.closed)

    def errors(self) -> list[str]:
        return [f"{w.name}: {w.error}" for w in self.workers if w.error]

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        sem = asyncio.Semaphore(100)

        async def one(w: LightWorker) -> None:
            async with sem:
                await w.close()

        await asyncio.gather(*(one(w) for w in self.workers), return_exceptions=True)
