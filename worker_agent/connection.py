"""The agent's link to the coordinator: the only module that uses grpc.

`run_agent` dials out, says Hello, waits for Welcome, then serves one bidirectional stream until
it breaks, and reconnects with backoff. Commands keep running through a lost connection (each for
the missing_timeout its StartCommand gave) and are re-attached when the coordinator answers the
next Hello with Reattach. Cancelling `run_agent` is the graceful stop.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from dataclasses import dataclass

import grpc

from protos.gantry.v1 import worker_pb2, worker_pb2_grpc
from worker_agent import __version__
from worker_agent.backoff import Backoff
from worker_agent.channel import TlsSetupError, describe_failure, open_channel
from worker_agent.control import AgentControl
from worker_agent.files import FileOps
from worker_agent.options import AgentOptions
from worker_agent.registry import CommandRegistry
from worker_agent.runner import CommandRunner

log = logging.getLogger("gantry.worker")

DEFAULT_HEARTBEAT_INTERVAL = 10
DEFAULT_WINDOW = 8
# Missing this many heartbeat intervals means the coordinator is gone.
SILENT_INTERVALS = 3
# The longest reconnect delay while commands wait to be re-attached (a restarting coordinator
# is back within seconds; their grace period is minutes).
KEPT_RETRY_MAX = 2.0

_CHANNEL_OPTIONS = [
    # Keep NAT/firewall state alive between heartbeats; our heartbeats reset the server's
    # ping strikes, so this does not provoke "too many pings".
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Each connection attempt dials a new TCP connection. grpc would otherwise share one across
    # channels, and a reconnect after a network cut would ride the dead connection (its
    # retransmissions backed off for seconds) instead of starting afresh.
    ("grpc.use_local_subchannel_pool", 1),
]


class ConnectionLost(Exception):
    """The stream is unusable (silent peer, closed stream, protocol violation)."""


@dataclass
class _SessionEnd:
    welcomed: bool
    refused: bool
    detail: str
    # A file transfer was cut off: the coordinator waits to ask for the rest, reconnect soon.
    transferring: bool = False


async def run_agent(opts: AgentOptions, control: AgentControl | None = None) -> None:
    """Connect, serve, reconnect, until the coordinator tells a drained agent to exit (then
    return) or until cancelled (which kills running commands)."""
    registry = CommandRegistry()
    backoff = Backoff(opts.backoff_min, opts.backoff_max)
    control = control or AgentControl()
    try:
        while True:
            end = await _connect_once(opts, registry, control)
            if control.shutdown.is_set():  # drained (idle), or told to stop now
                await registry.kill_all()
                log.info("exiting: %s", control.shutdown_reason)
                return
            registry.detach_all()  # commands keep running, to re-attach on the next connection
            if end.welcomed:
                backoff.reset()
            # Commands kept for re-attaching wait on us: retry often (still jittered).
            delay = backoff.next_delay(KEPT_RETRY_MAX if registry.states() or end.transferring else None)
            wait = f"{delay:.3g}s"
            if end.refused:
                log.error(
                    "coordinator refused worker %s: wrong name or secret (will retry in %s)",
                    opts.name,
                    wait,
                )
            elif end.welcomed:
                log.warning(
                    "lost connection to %s; reconnecting in %s (%s)",
                    opts.coordinator,
                    wait,
                    end.detail,
                )
            else:
                log.warning(
                    "could not connect to %s; reconnecting in %s (%s)",
                    opts.coordinator,
                    wait,
                    end.detail,
                )
            await asyncio.sleep(delay)
    finally:
        await registry.kill_all()


async def _connect_once(opts: AgentOptions, registry: CommandRegistry, control: AgentControl) -> _SessionEnd:
    """One connection, from dialling to its end; never raises except on cancellation."""
    welcomed = False
    session: _Session | None = None
    try:
        channel = open_channel(opts, _CHANNEL_OPTIONS)
    except TlsSetupError as exc:
        return _SessionEnd(False, False, str(exc))
    call = None
    try:
        call = worker_pb2_grpc.WorkerServiceStub(channel).Connect()
        await call.write(worker_pb2.WorkerMessage(hello=_hello(opts, registry)))
        reply = await asyncio.wait_for(call.read(), opts.welcome_timeout)
        if reply is grpc.aio.EOF:
            return _SessionEnd(False, False, "stream closed before Welcome")
        if reply.WhichOneof("msg") != "welcome":
            return _SessionEnd(False, False, f"expected Welcome, got {reply.WhichOneof('msg')}")
        welcomed = True
        session = _Session(opts, call, reply.welcome, registry, control)
        log.info("connected to %s as %s", opts.coordinator, opts.name)
        await session.run()
        return _SessionEnd(True, False, "coordinator closed the stream")
    except grpc.aio.AioRpcError as exc:
        refused = exc.code() == grpc.StatusCode.UNAUTHENTICATED and not welcomed
        why = describe_failure(opts, exc.details() or "") if exc.code() == grpc.StatusCode.UNAVAILABLE else ""
        return _SessionEnd(welcomed, refused, why or f"{exc.code().name}: {exc.details()}", _transferring(session))
    except TimeoutError:
        return _SessionEnd(welcomed, False, f"no Welcome within {opts.welcome_timeout:g}s")
    except (ConnectionLost, asyncio.InvalidStateError) as exc:
        return _SessionEnd(welcomed, False, str(exc) or type(exc).__name__, _transferring(session))
    except Exception as exc:  # a bug: log it with its traceback, keep the agent alive
        log.exception("unexpected error on the connection to %s", opts.coordinator)
        return _SessionEnd(welcomed, False, repr(exc))
    finally:
        if call is not None:
            call.cancel()
        await channel.close(grace=None)


def _transferring(session: _Session | None) -> bool:
    return session is not None and session.transferring


def _hello(opts: AgentOptions, registry: CommandRegistry) -> worker_pb2.Hello:
    return worker_pb2.Hello(
        name=opts.name,
        secret=opts.secret,
        os=platform.system().lower(),
        arch=platform.machine(),
        labels=list(opts.labels),
        max_builds=opts.max_builds,
        version=__version__,
        running_command_ids=registry.running_ids(),
        commands=registry.states(),
    )


class _Outbox:
    """The connection's single bounded send queue (a runner's MessageSink): a full queue makes
    runners wait, so a slow stream slows the commands down instead of buffering."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[worker_pb2.WorkerMessage] = asyncio.Queue(maxsize=size)

    async def send(self, msg: worker_pb2.WorkerMessage) -> None:
        await self._queue.put(msg)

    def offer(self, msg: worker_pb2.WorkerMessage) -> bool:
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            return False
        return True

    async def get(self) -> worker_pb2.WorkerMessage:
        return await self._queue.get()

    def written(self) -> None:
        """The message last got is on the stream."""
        self._queue.task_done()

    async def flushed(self) -> None:
        """Every message queued so far is on the stream."""
        await self._queue.join()


class _Session:
    """Serves one welcomed stream: a writer, a reader and a heartbeat/liveness loop."""

    def __init__(
        self,
        opts: AgentOptions,
        call: grpc.aio.StreamStreamCall,
        welcome: worker_pb2.Welcome,
        registry: CommandRegistry,
        control: AgentControl,
    ) -> None:
        self._opts = opts
        self._control = control
        self._announcing: asyncio.Future[None] | None = None
        self._call = call
        self._registry = registry
        self._interval = float(welcome.heartbeat_interval or DEFAULT_HEARTBEAT_INTERVAL)
        self._window = welcome.window if welcome.window > 0 else DEFAULT_WINDOW
        self._outbox = _Outbox(opts.outbox_size)
        self._last_received = 0.0
        self._files = FileOps(opts.basedir, self._outbox.send, self._window)
        self.transferring = False  # whether the stream ended with a file transfer in flight

    async def run(self) -> None:
        """Return when the coordinator closes the stream; raise when it breaks."""
        self._last_received = asyncio.get_running_loop().time()
        tasks = [
            asyncio.create_task(self._write_loop()),
            asyncio.create_task(self._read_loop()),
            asyncio.create_task(self._heartbeat_loop()),
            asyncio.create_task(self._control.shutdown.wait()),
        ]
        self._control.attach(self._announce_drain, self._announce_leave)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            self._control.detach()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.transferring = self._files.transferring
            await self._files.aclose()  # the coordinator asks again on the next stream (uploads resume)

    def _announce_drain(self, reason: str) -> None:
        msg = worker_pb2.WorkerMessage(draining=worker_pb2.Draining(reason=reason))
        if not self._outbox.offer(msg):  # a full outbox: queue it behind the output, not lose it
            self._announcing = asyncio.ensure_future(self._outbox.send(msg))

    async def _announce_leave(self, reason: str) -> None:
        await self._outbox.send(worker_pb2.WorkerMessage(draining=worker_pb2.Draining(reason=reason, stopping=True)))
        await self._outbox.flushed()

    async def _write_loop(self) -> None:
        while True:
            msg = await self._outbox.get()
            await self._call.write(msg)
            self._outbox.written()

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            msg = await self._call.read()
            if msg is grpc.aio.EOF:
                return
            self._last_received = loop.time()
            try:
                self._dispatch(msg)
            except Exception:  # one bad message must not end the stream
                log.exception("cannot handle %s message", msg.WhichOneof("msg"))

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        silent_limit = SILENT_INTERVALS * self._interval
        next_beat = loop.time() + self._interval
        while True:
            wake = min(next_beat, self._last_received + silent_limit)
            await asyncio.sleep(max(0.0, wake - loop.time()))
            now = loop.time()
            if now - self._last_received >= silent_limit:
                raise ConnectionLost(f"nothing from the coordinator for {silent_limit:g}s")
            if now >= next_beat:
                # Never wait behind a full outbox: liveness must keep being checked.
                beat = worker_pb2.Heartbeat(sent_at=time.time())
                self._outbox.offer(worker_pb2.WorkerMessage(heartbeat=beat))
                next_beat = now + self._interval

    def _dispatch(self, msg: worker_pb2.CoordinatorMessage) -> None:
        kind = msg.WhichOneof("msg")
        if kind == "start":
            self._start(msg.start)
        elif kind == "ack":
            runner = self._registry.get(msg.ack.command_id)
            if runner is not None:  # acks for forgotten commands are normal
                runner.ack(msg.ack.seq, msg.ack.finished)
        elif kind == "reattach":
            r = msg.reattach
            again = self._registry.reattach(r.command_id, self._outbox, r.stored_seq)
            if again is not None:
                log.info(
                    "re-attached command %s after output %d (%d bytes sent again)", r.command_id, r.stored_seq, again
                )
            else:
                log.info("re-attach of unknown command %s ignored", r.command_id)
        elif kind == "abandon":
            self._registry.abandon(msg.abandon.command_id, msg.abandon.reason)
        elif kind == "interrupt":
            runner = self._registry.get(msg.interrupt.command_id)
            if runner is None:
                log.info("interrupt for unknown command %s ignored", msg.interrupt.command_id)
            else:
                log.info("interrupting %s: %s", runner.describe(), msg.interrupt.reason)
                runner.interrupt(msg.interrupt.reason)
        elif kind == "file_command":
            self._files.command(msg.file_command)
        elif kind == "file_data":
            self._files.data(msg.file_data)
        elif kind == "file_ack":
            self._files.ack(msg.file_ack)
        elif kind == "file_cancel":
            self._files.cancel(msg.file_cancel)
        elif kind == "shutdown":
            self._control.exit(f"the coordinator says: {msg.shutdown.reason or 'drained'}")
        elif kind in ("heartbeat", "welcome"):
            pass  # liveness was noted by the reader
        else:
            log.warning("ignoring unknown message from the coordinator: %s", kind)

    def _start(self, start: worker_pb2.StartCommand) -> None:
        if start.command_id in self._registry:
            log.warning("command %s is already running; duplicate start ignored", start.command_id)
            return
        runner = CommandRunner(
            start, self._opts.basedir, self._outbox, window=self._window, spool_limit=self._opts.spool_limit
        )
        label = start.builder_dir or start.command_id
        log.info("running %s: %s", label, runner.describe())
        self._registry.start(runner, label)
