"""The running step's commands: on the worker (ShellCommand and friends) and on the coordinator
host (MasterShellCommand), each with its output in a log of the step. One per build, owned by
BuildRunner, which interrupts the running one when the build is stopped."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from coordinator.domain.builds.context import BuildContext
from coordinator.domain.builds.step_logs import StepLogs
from coordinator.domain.errors import StepError
from coordinator.domain.model import LogChunk
from coordinator.domain.ports import HostCommands
from coordinator.domain.properties.redaction import Redactor, StreamRedactor
from coordinator.domain.steps.logs import LineSplitter, OutputCollector, StepLog
from coordinator.domain.workers.commands import HEADER, CommandSpec, Finished, KeptCommand, WorkerLost
from coordinator.domain.workers.sessions import OutputHandler, WorkerSession


class StepCommands:
    """At most one command runs at a time (a step awaits each), remembered so that stopping
    the build interrupts it."""

    def __init__(
        self,
        context: BuildContext,
        logs: StepLogs,
        session: WorkerSession,
        builddir: str,
        host: HostCommands | None = None,
        *,
        missing_timeout: float | None = None,
        on_worker_wait: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._context = context  # the build, its running step and secrets, whether it was stopped
        self._logs = logs  # where the output goes
        self.session = session
        self.builddir = builddir
        self._host = host  # None unless the configuration allows commands on the coordinator
        self._current_command: str | None = None
        self._current_host: Any = None  # HostProcess of a running MasterShellCommand
        # How long a command waits for a lost worker (the builder's, else the worker's setting),
        # and what shows that it waits.
        self._missing_timeout = missing_timeout
        self._on_worker_wait = on_worker_wait
        # A step resumed after a coordinator restart: its first command is the one the worker
        # kept (what the worker reports, and the chunks its log already holds).
        self._adopting: tuple[asyncio.Future[KeptCommand | None], Sequence[LogChunk]] | None = None
        self._ran: list[str] = []  # the current step's command ids, released once it is committed

    def adopt(self, kept: asyncio.Future[KeptCommand | None], chunks: Sequence[LogChunk]) -> None:
        self._adopting = (kept, chunks)

    def release(self) -> None:
        """The step's end is committed: the worker may forget its commands."""
        if self._ran:
            self.session.release(self._ran)
            self._ran = []

    def interrupt(self, reason: str) -> None:
        """The build was stopped: interrupt the running command, if any."""
        if self._current_command:
            self.session.interrupt(self._current_command, reason)
        if self._current_host is not None:
            self._current_host.interrupt(reason)

    async def run_command(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str = "build",
        env: Mapping[str, str] | None = None,
        timeout: float = 1200,
        max_time: float = 0,
        log_name: str = "stdio",
        collect: OutputCollector | None = None,
    ) -> Finished:
        """Run a command on the worker, its output stored in a new log of the current step
        (and fed to `collect`, when given, for the step to read)."""
        context = self._context
        stdio = await self._logs.open_log(log_name)
        step = context.running_step("commands are")
        spec = CommandSpec(
            command_id=context.command_id(step),
            argv=[] if isinstance(command, str) else list(command),
            shell_command=command if isinstance(command, str) else "",
            builder_dir=self.builddir,
            workdir=workdir,
            env=dict(env or {}),
            timeout=timeout,
            max_time=max_time,
            redactions=tuple(context.secrets.values.items()),
            missing_timeout=(
                self._missing_timeout if self._missing_timeout is not None else self.session.missing_timeout
            ),
        )
        self._current_command = spec.command_id
        try:
            if context.interrupted:
                await stdio.write(HEADER, f"not run: {context.stopped_reason}\n".encode())
                return Finished(spec.command_id, -1, "interrupted")
            splitter = LineSplitter(self._logs.observers(log_name))
            adopting, self._adopting = self._adopting, None
            handler = _output_handler(stdio, collect, splitter)
            try:
                if adopting is not None:
                    finished = await self._adopt(*adopting, spec, handler, collect, splitter)
                else:
                    self._ran.append(spec.command_id)
                    finished = await self.session.run_command(spec, handler, self._on_worker_wait)
            finally:
                splitter.flush()
            if splitter.error is not None:
                raise splitter.error  # the step's EXCEPTION
            return finished
        finally:
            self._current_command = None

    async def _adopt(
        self, kept_future: asyncio.Future[KeptCommand | None], chunks: Sequence[LogChunk], spec: CommandSpec,
        handler: OutputHandler, collect: OutputCollector | None, lines: LineSplitter,
    ) -> Finished:
        """Continue the command the worker kept through a coordinator restart: what the log
        holds is fed to the step's collector and line observers again (not stored), the rest
        comes from the worker."""
        await self.session.wait_attached(self._on_worker_wait)
        kept = await kept_future
        if kept is None:
            raise WorkerLost(f"worker {self.session.name} came back without the command of this step")
        self._context.continue_after(kept.command_id)
        self._current_command = kept.command_id
        self._ran.append(kept.command_id)
        for chunk in chunks:
            if collect is not None:
                collect.feed(chunk.channel, chunk.data)
            lines.feed(chunk.channel, chunk.data)
        return await self.session.adopt_command(
            kept, len(chunks), handler, self._on_worker_wait, spec.missing_timeout,
            interrupted=self._context.stopped_reason or "",
        )

    async def run_master_command(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 1200,
        max_time: float = 0,
        log_name: str = "stdio",
    ) -> Finished:
        """Run a command on the coordinator host (MasterShellCommand), its output in a log of
        the current step. Refused unless the configuration allows it."""
        context = self._context
        if self._host is None:
            raise StepError("commands on the coordinator host are disabled (allow_master_commands=False)")
        stdio = await self._logs.open_log(log_name)
        text = command if isinstance(command, str) else shlex.join(command)
        await stdio.write(HEADER, context.redact(f"{text}\n in dir {workdir or '.'} (on the coordinator)\n").encode())
        if context.interrupted:
            await stdio.write(HEADER, f"not run: {context.stopped_reason}\n".encode())
            return Finished("master", -1, "interrupted")
        output = _RedactedOutput(stdio, self._context.secrets.redactor)
        proc = self._host.start(
            command, workdir=workdir, env=dict(env or {}), timeout=timeout, max_time=max_time,
            on_output=output.write,
        )
        self._current_host = proc
        try:
            rc, reason = await proc.wait()
        finally:
            self._current_host = None
        await output.flush()
        end = {
            "": f"program finished with exit code {rc}\n",
            "interrupted": f"interrupted: {context.stopped_reason}\n",
            "timeout": f"command timed out: {timeout:g} seconds without output, killed\n",
            "max_time": f"command timed out: {max_time:g} seconds elapsed, killed\n",
        }.get(reason, f"{reason}\n")
        await stdio.write(HEADER, end.encode())
        return Finished("master", rc, reason)



class _RedactedOutput:
    """Output of a command on the coordinator host with every secret hidden, per channel across
    reads (a value split between two reads is caught, as on the worker)."""

    def __init__(self, stdio: StepLog, redactor: Redactor) -> None:
        self._stdio = stdio
        self._redactor = redactor
        self._streams: dict[int, StreamRedactor] = {}

    async def write(self, channel: int, data: bytes) -> None:
        if not self._redactor:
            await self._stdio.write(channel, data)
            return
        stream = self._streams.setdefault(channel, self._redactor.stream())
        out = stream.feed(data)
        if out:
            await self._stdio.write(channel, out)

    async def flush(self) -> None:
        for channel, stream in self._streams.items():
            held = stream.flush()
            if held:
                await self._stdio.write(channel, held)


def _output_handler(stdio: StepLog, collect: OutputCollector | None, lines: LineSplitter) -> OutputHandler:
    if collect is None and not lines.observers:
        return stdio.write

    def write(channel: int, data: bytes, marks: tuple[int, ...] = ()) -> Awaitable[None]:
        if collect is not None:
            collect.feed(channel, data)
        lines.feed(channel, data)
        return stdio.write(channel, data, marks)

    return write
