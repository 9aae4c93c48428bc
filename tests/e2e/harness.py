"""End-to-end harness: real coordinator and worker processes, and helpers to drive them.

Every process is a subprocess of the test, listening on loopback only (the coordinator on a port
the harness holds for it, see tests.net, so a restart finds it free; we parse the port it prints).
Readiness is read from the processes' own output or
from the status stream, each wait bounded by a generous deadline; nothing sleeps to
synchronise. A `Cluster` owns every process it started and always stops them (SIGTERM, then
SIGKILL), and its logs are printed when a test fails (see conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.gantry.v1 import (
    changes_pb2,
    changes_pb2_grpc,
    common_pb2,
    control_pb2,
    control_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    status_pb2,
    status_pb2_grpc,
)
from tests.net import port_of, reserve_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # a process becoming ready (slow CI machines import grpc slowly)
TIMEOUT = 60.0  # something a running system should do (a build finishing, an event arriving)
STOP_TIMEOUT = 15.0  # SIGTERM to exit; then SIGKILL
RESULTS = {v: k for k, v in common_pb2.Result.items()}  # 0 -> "SUCCESS", ...
SUCCESS, WARNINGS, FAILURE, SKIPPED, EXCEPTION, RETRY, CANCELLED = range(7)
LISTENING = re.compile(r"Gantry coordinator listening on (\S+):(\d+)")
MIB = 1024 * 1024
# A full ReadLog page (4 MiB of data plus framing, twice that for ALL with its segments) is
# larger than grpc's default 4 MiB receive limit; clients/client.py raises it the same way.
# Each channel has subchannels (connections) of its own. With gRPC's default global pool, a new
# channel to a coordinator restarted on the same port can be handed the previous channel's
# connection to the old process, still READY until something writes to it: channel_ready()
# returns at once and the first RPC dies with "Stream removed (Socket closed)".
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * MIB),
    ("grpc.use_local_subchannel_pool", 1),
]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: this checkout first on the path, unbuffered output."""
    env = dict(os.environ)
    paths = [str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["GRPC_VERBOSITY"] = "ERROR"
    env.setdefault("COLUMNS", "120")
    env.update(extra or {})
    return env


def config_source(body: str) -> str:
    """A master.py: the star import every test config uses, then `body` (which sets config)."""
    return "from coordinator.config import *\n\n" + body.strip() + "\n"


def pattern_bytes(label: str, size: int) -> bytes:
    """Deterministic, binary (all 256 byte values, NULs, CR/LF, invalid UTF-8) test data,
    identical in any Python: SHA-256 in counter mode. Kept in sync with PATTERN_SCRIPT."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


# The same generator as pattern_bytes, for a step to run as `python3 -c PATTERN_SCRIPT ...`.
PATTERN_SCRIPT = """\
import hashlib, sys
def pattern(label, size):
    out = bytearray(); counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}:{counter}".encode()).digest(); counter += 1
    return bytes(out[:size])
out_size, err_size = int(sys.argv[1]), int(sys.argv[2])
out, err = pattern("stdout", out_size), pattern("stderr", err_size)
step = 64 * 1024
for i in range(0, max(out_size, err_size), step):
    sys.stdout.buffer.write(out[i:i + step]); sys.stdout.buffer.flush()
    sys.stderr.buffer.write(err[i:i + step]); sys.stderr.buffer.flush()
"""


# Runs argv[1:] with SIGINT back to its default. A shell without job control starts background
# jobs (`pytest ... &`) with SIGINT ignored, which children inherit and Python then keeps
# ignoring; the tests that press Ctrl-C (SIGINT) need it delivered. (Not a preexec_fn: forking
# a process that runs grpc threads without exec'ing at once crashes grpc in the child.)
WITH_DEFAULT_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


class ProcessFailed(AssertionError):
    pass


class Process:
    """A child process whose merged stdout/stderr is drained into a log file and kept in
    memory, so a test can wait for a line."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.stop_signal = signal.SIGTERM  # what `stop()` sends first

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    async def start(self) -> None:
        self.lines = []
        self.note(" ".join(self.argv))
        self.proc = await asyncio.create_subprocess_exec(
            *WITH_DEFAULT_SIGINT,
            *self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # the terminal's Ctrl-C is for pytest, not for them
        )
        self._reader = asyncio.get_running_loop().create_task(self._read(self.proc))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with self.log_path.open("ab") as log:
            while True:
                raw = await proc.stdout.readline()
                if raw:
                    log.write(raw)
                    log.flush()
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                async with self._changed:
                    self._changed.notify_all()
                if not raw:
                    break
        await proc.wait()
        async with self._changed:
            self._changed.notify_all()

    def note(self, text: str) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name}: {text}\n".encode())

    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_line(
        self, pattern: str | re.Pattern[str], timeout: float = START_TIMEOUT, start: int = 0
    ) -> re.Match[str]:
        """The first output line from index `start` matching `pattern`; fails if the process
        ends or the deadline passes first."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            for line in self.lines[start:]:
                m = regex.search(line)
                if m:
                    return m
            return None

        async def wait() -> re.Match[str]:
            async with self._changed:
                while True:
                    m = found()
                    if m:
                        return m
                    if self._reader is None or self._reader.done():
                        raise ProcessFailed(
                            f"{self.name} exited with {self.returncode} before printing "
                            f"{regex.pattern!r}:\n{self.output()}"
                        )
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise ProcessFailed(
                f"{self.name} did not print {regex.pattern!r} within {timeout:g}s:\n{self.output()}"
            ) from None

    async def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader is not None:  # drain what it printed last (bounded: an orphaned
            with contextlib.suppress(TimeoutError):  # grandchild may hold the pipe open)
                await asyncio.wait_for(asyncio.shield(self._reader), 5)
        return code

    def send(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def stop(self, sig: int | None = None, timeout: float = STOP_TIMEOUT) -> int | None:
        """Stop it (idempotent): `sig` (default: its `stop_signal`), then SIGKILL after `timeout`."""
        if self.proc is None:
            return None
        sig = self.stop_signal if sig is None else sig
        if self.proc.returncode is None:
            self.send(sig)
            try:
                return await self.wait_exit(timeout)
            except TimeoutError:
                self.note(f"ignored signal {sig} for {timeout:g}s: killed")
                self.send(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await self.wait_exit(STOP_TIMEOUT)
        return self.proc.returncode


class EventRecorder:
    """Follows StatusService.Subscribe in the background and keeps every event it got."""

    def __init__(
        self,
        status: status_pb2_grpc.StatusServiceStub,
        since: int = 0,
        builders: Iterable[str] = (),
        kinds: Iterable[str] = (),
    ) -> None:
        self.request = status_pb2.SubscribeRequest(
            since_event_id=since, builders=list(builders), kinds=list(kinds)
        )
        self.status = status
        self.events: list[status_pb2.Event] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None

    async def start(self) -> EventRecorder:
        """Subscribe; returns once the coordinator says the subscription is live (it sends the
        initial metadata then), so whatever happens afterwards reaches this recorder."""
        self._call = self.status.Subscribe(self.request)
        await asyncio.wait_for(self._call.initial_metadata(), START_TIMEOUT)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            async for event in self._call:
                self.events.append(event)
                async with self._changed:
                    self._changed.notify_all()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - kept and reported by the waits
            self.error = exc
        finally:
            if self.error is None:
                self.error = EOFError("the status stream ended")
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[status_pb2.Event], bool],
        timeout: float = TIMEOUT,
        what: str = "",
    ) -> status_pb2.Event:
        """The first recorded event satisfying `predicate` (waiting for it if needed)."""

        async def wait() -> status_pb2.Event:
            async with self._changed:
                while True:
                    for event in self.events:
                        if predicate(event):
                            return event
                    if self._task is not None and self._task.done():
                        raise AssertionError(f"status stream ended ({self.error!r}) before {what}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no event {what} within {timeout:g}s; got:\n" + describe_events(self.events)
            ) from None

    async def wait_kind(
        self, kind: str, timeout: float = TIMEOUT, **fields: Any
    ) -> status_pb2.Event:
        """The first event of `kind` whose fields equal `fields` (e.g. builder="b")."""

        def match(e: status_pb2.Event) -> bool:
            return e.kind == kind and all(getattr(e, k) == v for k, v in fields.items())

        return await self.wait_for(match, timeout, what=f"{kind} {fields}")

    def of_kind(self, kind: str, **fields: Any) -> list[status_pb2.Event]:
        return [
            e
            for e in self.events
            if e.kind == kind and all(getattr(e, k) == v for k, v in fields.items())
        ]

    async def aclose(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def collect(
    status: status_pb2_grpc.StatusServiceStub,
    since: int,
    until: Callable[[status_pb2.Event], bool],
    timeout: float = TIMEOUT,
    builders: Iterable[str] = (),
    kinds: Iterable[str] = (),
) -> list[status_pb2.Event]:
    """Subscribe from `since` and return the events received up to and including the first
    one satisfying `until`; then unsubscribe."""
    call = status.Subscribe(
        status_pb2.SubscribeRequest(
            since_event_id=since, builders=list(builders), kinds=list(kinds)
        )
    )
    got: list[status_pb2.Event] = []

    async def read() -> list[status_pb2.Event]:
        async for event in call:
            got.append(event)
            if until(event):
                return got
        raise AssertionError("status stream ended early:\n" + describe_events(got))

    try:
        return await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(
            f"stream from {since} did not reach the awaited event in {timeout:g}s; got:\n"
            + describe_events(got)
        ) from None
    finally:
        call.cancel()


def normal(event: status_pb2.Event) -> tuple[Any, ...]:
    """Everything an event says, with details_json parsed (its key order carries no meaning)."""
    return (
        event.id,
        event.kind,
        event.at.ToNanoseconds(),
        event.builder,
        event.build_number,
        event.buildset_id,
        event.step_number,
        event.step_name,
        event.result,
        event.worker,
        json.dumps(json.loads(event.details_json or "{}"), sort_keys=True),
    )


def describe_events(events: Iterable[status_pb2.Event]) -> str:
    return "\n".join(
        f"  {e.id:4d} {e.kind:22s} {e.builder}/{e.build_number} step={e.step_number}:{e.step_name} "
        f"result={RESULTS.get(e.result, e.result)} worker={e.worker} bs={e.buildset_id} {e.details_json}"
        for e in events
    )


class Coordinator:
    """A coordinator subprocess plus a gRPC channel and stubs to it."""

    def __init__(
        self,
        cluster: Cluster,
        name: str,
        config_path: Path,
        data_dir: Path,
        db: str | None,
        heartbeat: float | None,
        extra_args: Sequence[str] = (),
        listen_host: str = "127.0.0.1",
    ) -> None:
        self.cluster = cluster
        self.listen_host = listen_host
        self.extra_args = list(extra_args)
        self.name = name
        self.config_path = config_path
        self.data_dir = data_dir
        self.db = db
        self.heartbeat = heartbeat
        self.host = "127.0.0.1"
        # Its port, chosen now and held (tests.net) until the cluster closes: a restart comes
        # back on the same port, which no other process can have taken in between.
        self._reserved = reserve_port()
        self.port = port_of(self._reserved)
        self.process: Process | None = None
        self.channel: grpc.aio.Channel | None = None
        self.recorders: list[EventRecorder] = []
        # Set for a coordinator serving TLS (tests/security): the harness's channel uses them.
        self.credentials: grpc.ChannelCredentials | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "coordinator",
            "start",
            "--config",
            str(self.config_path),
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"{self.listen_host}:{self.port}",
        ]
        if self.db:
            argv += ["--db", self.db]
        if self.heartbeat is not None:
            argv += ["--heartbeat", str(self.heartbeat)]
        return argv + self.extra_args

    async def start(self) -> None:
        """Start (or start again, on the same port) and wait until ready."""
        self.process = Process(
            self.name, self.argv(), self.cluster.log_dir / f"{self.name}.log", child_env()
        )
        self.cluster.processes.append(self.process)
        await self.process.start()
        m = await self.process.wait_line(LISTENING, START_TIMEOUT)
        self.host, self.port = m.group(1), int(m.group(2))
        if self.credentials is not None:
            self.channel = grpc.aio.secure_channel(self.address, self.credentials, options=CHANNEL_OPTIONS)
        else:
            self.channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        await asyncio.wait_for(self.channel.channel_ready(), START_TIMEOUT)
        # Ready means this process answers: a round trip, not only a connected socket.
        health = await health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=START_TIMEOUT, wait_for_ready=True
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING, health

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        for rec in self.recorders:
            await rec.aclose()
        self.recorders.clear()
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        return await self.process.stop(sig) if self.process else None

    def release_port(self) -> None:
        self._reserved.close()

    async def restart(self) -> None:
        code = await self.stop()
        assert code == 0, f"coordinator exited with {code} on SIGTERM:\n{self.process.output()}"  # type: ignore[union-attr]
        await self.start()

    # --- API stubs ---------------------------------------------------------------------------

    @property
    def changes(self) -> changes_pb2_grpc.ChangeServiceStub:
        return changes_pb2_grpc.ChangeServiceStub(self.channel)

    @property
    def control(self) -> control_pb2_grpc.ControlServiceStub:
        return control_pb2_grpc.ControlServiceStub(self.channel)

    @property
    def status(self) -> status_pb2_grpc.StatusServiceStub:
        return status_pb2_grpc.StatusServiceStub(self.channel)

    @property
    def logs(self) -> logs_pb2_grpc.LogServiceStub:
        return logs_pb2_grpc.LogServiceStub(self.channel)

    async def record(self, since: int = 0, **kw: Any) -> EventRecorder:
        """A started EventRecorder (closed with the coordinator)."""
        rec = await EventRecorder(self.status, since, **kw).start()
        self.recorders.append(rec)
        return rec

    # --- conveniences ------------------------------------------------------------------------

    async def submit(
        self, *changes: dict[str, Any], key: str = ""
    ) -> changes_pb2.SubmitChangesResponse:
        return await self.changes.SubmitChanges(
            changes_pb2.SubmitChangesRequest(
                changes=[make_change(**c) for c in changes], idempotency_key=key
            ),
            timeout=TIMEOUT,
        )

    async def force(
        self, builder: str, properties: dict[str, Any] | None = None, **kw: Any
    ) -> control_pb2.ForceBuildResponse:
        props = [
            common_pb2.Property(name=k, value_json=json.dumps(v))
            for k, v in (properties or {}).items()
        ]
        return await self.control.ForceBuild(
            control_pb2.ForceBuildRequest(builder=builder, properties=props, **kw), timeout=TIMEOUT
        )

    async def get_build(self, builder: str, number: int) -> control_pb2.Build:
        return await self.control.GetBuild(
            control_pb2.GetBuildRequest(builder=builder, number=number), timeout=TIMEOUT
        )

    async def list_builds(self, builder: str = "", limit: int = 100) -> list[control_pb2.Build]:
        resp = await self.control.ListBuilds(
            control_pb2.ListBuildsRequest(builder=builder, limit=limit), timeout=TIMEOUT
        )
        return list(resp.builds)

    async def workers(self) -> dict[str, control_pb2.Worker]:
        resp = await self.control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=TIMEOUT)
        return {w.name: w for w in resp.workers}

    async def read_log(
        self,
        builder: str,
        number: int,
        step: str,
        channel: logs_pb2.Channel = logs_pb2.ALL,
        log: str = "stdio",
    ) -> bytes:
        """The whole log channel, paging through ReadLog (at most 1 MiB a call)."""
        data = bytearray()
        while True:
            part = await self.logs.ReadLog(
                logs_pb2.ReadLogRequest(
                    builder=builder,
                    build_number=number,
                    step=step,
                    log=log,
                    offset=len(data),
                    channel=channel,
                ),
                timeout=TIMEOUT,
            )
            assert part.offset == len(data), (part.offset, len(data))
            data += part.data
            if part.eof:
                return bytes(data)
            assert part.data, "ReadLog returned no data before eof"


async def poll(
    check: Callable[[], Awaitable[T]], timeout: float = TIMEOUT, what: str = "condition"
) -> T:
    """Call an async check (an API query) until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g}s")
        await asyncio.sleep(0.2)


class WorkerProcess:
    def __init__(self, name: str, process: Process, basedir: Path) -> None:
        self.name = name
        self.process = process
        self.basedir = basedir

    @property
    def pid(self) -> int:
        return self.process.pid


def make_change(**fields: Any) -> common_pb2.Change:
    """A valid change; override any field (properties as a dict of JSON-able values)."""
    props = fields.pop("properties", {})
    base: dict[str, Any] = dict(
        author="Jane Doe <jane@example.org>",
        repository="https://example.org/repo.git",
        branch="main",
        revision=os.urandom(20).hex(),
        comments="a change",
        files=["README"],
        project="proj",
    )
    base.update(fields)
    return common_pb2.Change(
        properties=[
            common_pb2.Property(name=k, value_json=json.dumps(v)) for k, v in props.items()
        ],
        **base,
    )


class Cluster:
    """Starts coordinators and workers for one test and stops them all at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log_dir = tmp / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[Process] = []
        self.coordinators: list[Coordinator] = []

    async def start_coordinator(
        self,
        config: str,
        *,
        db: str | None = None,
        heartbeat: float | None = None,
        extra_args: Sequence[str] = (),
        name: str = "coordinator",
        data_dir: Path | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        listen_host: str = "127.0.0.1",
    ) -> Coordinator:
        """`config` is the body of master.py after `from coordinator.config import *`."""
        data_dir = data_dir or self.tmp / f"{name}-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.tmp / f"{name}-master.py"
        config_path.write_text(config_source(config))
        coord = Coordinator(self, name, config_path, data_dir, db, heartbeat, extra_args, listen_host)
        coord.credentials = credentials
        self.coordinators.append(coord)
        await coord.start()
        return coord

    async def start_worker(
        self,
        coord: Coordinator,
        name: str,
        secret: str,
        *,
        max_builds: int | None = None,
        wait: bool = True,
        labels: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        address: str | None = None,
        wrap: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        """Start a worker agent; with `wait`, return once it logged that it connected.
        `address`: dial this instead of the coordinator's (a proxy); `wrap`: a command prefix
        (e.g. `ip netns exec NS`); `env`: added to its environment (its commands inherit it)."""
        secret_file = self.tmp / f"{name}.secret"
        secret_file.write_text(secret + "\n")
        basedir = self.tmp / f"{name}-basedir"
        argv = [
            *wrap,
            sys.executable,
            "-m",
            "worker_agent",
            "start",
            "--coordinator",
            address or coord.address,
            "--name",
            name,
            "--secret-file",
            str(secret_file),
            "--basedir",
            str(basedir),
        ]
        if max_builds is not None:
            argv += ["--max-builds", str(max_builds)]
        for label in labels:
            argv += ["--label", label]
        argv += extra_args
        process = Process(f"worker-{name}", argv, self.log_dir / f"worker-{name}.log", child_env(env))
        process.stop_signal = signal.SIGINT  # stop now (SIGTERM would drain: wait for running builds)
        self.processes.append(process)
        await process.start()
        if wait:
            await process.wait_line(rf"connected to \S+ as {re.escape(name)}\b", START_TIMEOUT)
        return WorkerProcess(name, process, basedir)

    async def start_workers(
        self, coord: Coordinator, *specs: tuple[str, str]
    ) -> list[WorkerProcess]:
        return list(await asyncio.gather(*(self.start_worker(coord, n, s) for n, s in specs)))

    async def aclose(self) -> None:
        """Stop everything, newest first (workers before their coordinator); never raises."""
        for coord in self.coordinators:
            for rec in coord.recorders:
                await rec.aclose()
            if coord.channel is not None:
                with contextlib.suppress(Exception):
                    await coord.channel.close()
        servers = [c.process for c in self.coordinators if c.process is not None]
        # Clients and workers first (a coordinator waits for open worker streams on shutdown).
        for process in [p for p in reversed(self.processes) if p not in servers] + servers[::-1]:
            with contextlib.suppress(Exception):
                await process.stop()
        for coord in self.coordinators:
            coord.release_port()

    def logs(self, tail: int = 150) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()
            parts.append(f"===== {path.name} (last {min(tail, len(lines))} of {len(lines)} lines)")
            parts.extend(lines[-tail:])
        return "\n".join(parts)


async def run_cli(
    *argv: str,
    timeout: float = TIMEOUT,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, bytes, bytes]:
    """`gantry ARGV...` as a subprocess: (exit code, stdout bytes, stderr bytes)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.cli",
        *argv,
        cwd=ROOT,
        env=child_env(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"gantry {' '.join(argv)} did not finish in {timeout:g}s:\n"
            f"{out.decode(errors='replace')}\n{err.decode(errors='replace')}"
        ) from None
    assert proc.returncode is not None
    return proc.returncode, out, err


def kill_orphan(pid_file: Path, name: str) -> None:
    """Kill the process whose pid a test command wrote to `pid_file` if it still runs `name`
    (a command left behind by a worker the test killed with SIGKILL)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text())
        if pid_alive(pid) and name in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is as good as dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
