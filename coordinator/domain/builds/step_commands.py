"""The running step's commands: on the worker (ShellCommand and friends) and on the coordinator
host (MasterShellCommand), each with its output in a log of the step. One per build, owned by
BuildRunner, which interrupts the running one when the build is stopped."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from coordinator.domain.builds.context import BuildContext
from coordinator.domain.builds.journal import COMMAND, MASTER, CannotContinue, StepJournal, fingerprint
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
        journal: StepJournal,
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
        # A step resumed after a coordinator restart: the commands of the step the worker kept
        # (what it reports when it reconnects); the one not journaled is the one in flight.
        self._adopting: asyncio.Future[list[KeptCommand]] | None = None
        self._ran: list[str] = []  # the current step's command ids, released once committed
        self.journal = journal
        journal.on_stored = self.release  # a journaled command is committed: the worker may forget it

    def adopt(self, kept: asyncio.Future[list[KeptCommand]]) -> None:
        self._adopting = kept

    def end_step(self) -> None:
        """The step ended: kept commands it did not adopt are forgotten by the worker."""
        kept, self._adopting = self._adopting, None
        if kept is not None:
            kept.add_done_callback(self._forget_all)

    def _forget_all(self, kept: asyncio.Future[list[KeptCommand]]) -> None:
        if not kept.cancelled():
            for k in kept.result():
                self.session.forget(k.command_id, "the step does not run it any more")

    def release(self) -> None:
        """What the step's commands did is committed: the worker may forget them."""
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
        stdio = await self._logs.open_log(log_name, self.journal)
        step = context.running_step("commands are")
        argv = [] if isinstance(command, str) else list(command)
        shell = command if isinstance(command, str) else ""
        env = dict(env or {})
        fp = fingerprint(COMMAND, argv, shell, workdir, env, log_name)
        splitter = LineSplitter(self._logs.observers(log_name))
        replayed = await self.journal.next(COMMAND, fp)
        if replayed is not None:  # done before the restart: its output is in the log already
            context.continue_after(replayed.command_id)
            _feed(stdio.replay(replayed.end_chunk), collect, splitter)
            return Finished(replayed.command_id, replayed.rc, replayed.reason)
        spec = CommandSpec(
            command_id=context.command_id(step),
            argv=argv,
            shell_command=shell,
            builder_dir=self.builddir,
            workdir=workdir,
            env=env,
            timeout=timeout,
            max_time=max_time,
            redactions=tuple(context.secrets.values.items()),
            missing_timeout=(
                self._missing_timeout if self._missing_timeout is not None else self.session.missing_timeout
            ),
        )
        self._current_command = spec.command_id
        first = stdio.position
        try:
            if context.interrupted:
                await stdio.write(HEADER, f"not run: {context.stopped_reason}\n".encode())
                finished = Finished(spec.command_id, -1, "interrupted")
            else:
                finished = await self._run(spec, stdio, collect, splitter)
            self.journal.done(self.journal.entry(
                COMMAND, fp, command_id=finished.command_id or spec.command_id, rc=finished.rc,
                reason=finished.reason, log_name=log_name, first_chunk=first, end_chunk=stdio.position,
            ))
            return finished
        finally:
            self._current_command = None

    async def _run(
        self, spec: CommandSpec, stdio: StepLog, collect: OutputCollector | None, splitter: LineSplitter
    ) -> Finished:
        # Only the step's first action after the replayed ones can be the one in flight.
        adopting = self._adopting if self.journal.first_live else None
        handler = _output_handler(stdio, collect, splitter)
        try:
            kept = await self._kept(adopting) if adopting is not None else None
            in_flight = stdio.rest()
            if kept is not None:
                finished = await self._adopt(kept, spec, in_flight, handler, collect, splitter)
            elif in_flight:
                # Its output is stored but the worker does not have it (it restarted too).
                raise WorkerLost(f"worker {self.session.name} came back without the command of this step")
            else:  # not started before the restart, or a step that was not resumed
                self._ran.append(spec.command_id)
                finished = await self.session.run_command(spec, handler, self._on_worker_wait)
        finally:
            splitter.flush()
        if splitter.error is not None:
            raise splitter.error  # the step's EXCEPTION
        return finished

    async def _kept(self, adopting: asyncio.Future[list[KeptCommand]]) -> KeptCommand | None:
        """The command in flight at the restart, among those the worker kept for this step (the
        others were journaled: the worker forgets them)."""
        await self.session.wait_attached(self._on_worker_wait)
        journaled = self.journal.journaled_ids()
        in_flight: KeptCommand | None = None
        self._adopting = None
        for k in await adopting:
            if k.command_id in journaled or in_flight is not None:
                self.session.forget(k.command_id, "done before the restart")
            else:
                in_flight = k
        return in_flight

    async def _adopt(
        self, kept: KeptCommand, spec: CommandSpec, chunks: Sequence[LogChunk],
        handler: OutputHandler, collect: OutputCollector | None, lines: LineSplitter,
    ) -> Finished:
        """Continue the command the worker kept through a coordinator restart: what the log
        holds of it is fed to the step's collector and line observers again (not stored), the
        rest comes from the worker."""
        self._context.continue_after(kept.command_id)
        self._current_command = kept.command_id
        self._ran.append(kept.command_id)
        _feed(chunks, collect, lines)
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
        if self._host is None:
            raise StepError("commands on the coordinator host are disabled (allow_master_commands=False)")
        stdio = await self._logs.open_log(log_name)
        env = dict(env or {})
        fp = fingerprint(MASTER, command, workdir, env, log_name)
        replayed = await self.journal.next(MASTER, fp)
        if replayed is not None:
            stdio.replay(replayed.end_chunk)
            return Finished("master", replayed.rc, replayed.reason)
        first = stdio.position
        if stdio.rest():
            # Its process ran on the coordinator host and died (or was orphaned) with the
            # coordinator: nothing can re-attach to it, and running it again could repeat it.
            raise CannotContinue(
                "a MasterShellCommand was running on the coordinator host when the coordinator "
                "stopped; its process went with the coordinator and cannot be continued"
            )
        finished = await self._run_master(command, workdir, env, timeout, max_time, stdio)
        self.journal.done(self.journal.entry(
            MASTER, fp, command_id="", rc=finished.rc, reason=finished.reason, log_name=log_name,
            first_chunk=first, end_chunk=stdio.position,
        ))
        return finished

    async def _run_master(
        self, command: Sequence[str] | str, workdir: str, env: dict[str, str], timeout: float, max_time: float,
        stdio: StepLog,
    ) -> Finished:
        context = self._context
        text = command if isinstance(command, str) else shlex.join(command)
        await stdio.write(HEADER, context.redact(f"{text}\n in dir {workdir or '.'} (on the coordinator)\n").encode())
        if context.interrupted:
            await stdio.write(HEADER, f"not run: {context.stopped_reason}\n".encode())
            return Finished("master", -1, "interrupted")
        assert self._host is not None
        output = _RedactedOutput(stdio, self._context.secrets.redactor)
        proc = self._host.start(
            command, workdir=workdir, env=env, timeout=timeout, max_time=max_time,
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


def _feed(chunks: Sequence[LogChunk], collect: OutputCollector | None, lines: LineSplitter) -> None:
    """Output stored before a restart, to the step's collector and line observers again."""
    for chunk in chunks:
        if collect is not None:
            collect.feed(chunk.channel, chunk.data)
        lines.feed(chunk.channel, chunk.data)


def _output_handler(stdio: StepLog, collect: OutputCollector | None, lines: LineSplitter) -> OutputHandler:
    if collect is None and not lines.observers:
        return stdio.write

    def write(channel: int, data: bytes, marks: tuple[int, ...] = ()) -> Awaitable[None]:
        if collect is not None:
            collect.feed(channel, data)
        lines.feed(channel, data)
        return stdio.write(channel, data, marks)

    return write
