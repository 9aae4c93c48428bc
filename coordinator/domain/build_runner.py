"""Runs one build: its steps in order on one worker, with Buildbot's result rules."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import AsyncIterator, Awaitable, Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from coordinator.domain.commands import (
    DOWNLOAD,
    GLOB,
    HEADER,
    MKDIR,
    RMDIR,
    STAT,
    UPLOAD,
    UPLOAD_DIR,
    CommandSpec,
    FileCommand,
    FileResult,
    Finished,
    TransferError,
    WorkerLost,
)
from coordinator.domain.errors import StepError
from coordinator.domain.locks import LockAccess, LockRegistry, LockSet, accesses
from coordinator.domain.logs import (
    LineObserver,
    LineSplitter,
    LogWatchers,
    OutputCollector,
    StepLog,
)
from coordinator.domain.model import Artifact, Build, Property, SourceStamp, Step
from coordinator.domain.ports import (
    ArtifactStore,
    ByteSink,
    Clock,
    HostCommands,
    Repository,
    SecretProvider,
)
from coordinator.domain.renderables import render
from coordinator.domain.results import Result, worst
from coordinator.domain.secrets import BuildSecrets
from coordinator.domain.sessions import OutputHandler, WorkerSession
from coordinator.domain.steps import BuildStep
from coordinator.domain.trigger_port import Triggered, TriggerPort

log = logging.getLogger(__name__)
T = TypeVar("T")


class ResultFlags(Protocol):
    """The flags that fold a result into an overall one (a step, or a ShellSequence's ShellArg)."""

    haltOnFailure: bool
    flunkOnFailure: bool
    warnOnFailure: bool
    warnOnWarnings: bool
    flunkOnWarnings: bool


def combine(build_result: Result, step: ResultFlags, step_result: Result) -> tuple[Result, bool]:
    """Fold a step's result into the build's (Buildbot's Build.stepDone); returns
    (new build result, whether the build must halt)."""
    halt = False
    overall = step_result
    if step_result == Result.FAILURE:
        overall = Result.SUCCESS
        if step.warnOnFailure:
            overall = Result.WARNINGS
        if step.flunkOnFailure:
            overall = Result.FAILURE
        halt = step.haltOnFailure
    elif step_result == Result.WARNINGS:
        overall = Result.WARNINGS if step.warnOnWarnings else Result.SUCCESS
        if step.flunkOnWarnings:
            overall = Result.FAILURE
    elif step_result in (Result.EXCEPTION, Result.RETRY, Result.CANCELLED):
        halt = True
    return worst(build_result, overall), halt


class BuildRunner:
    """One running build. `run()` returns (result, state string, whether to requeue)."""

    def __init__(
        self,
        build: Build,
        steps: Sequence[BuildStep],
        builddir: str,
        session: WorkerSession,
        repo: Repository,
        watchers: LogWatchers,
        clock: Clock,
        sourcestamps: Sequence[SourceStamp] = (),
        artifacts: ArtifactStore | None = None,
        trigger_port: TriggerPort | None = None,
        *,
        secrets: Sequence[SecretProvider] = (),
        host: HostCommands | None = None,
        locks: LockRegistry | None = None,
        build_locks: Sequence[LockAccess] = (),
    ) -> None:
        self.build = build
        self._artifacts = artifacts
        self.trigger_port = trigger_port
        self.locks = locks or LockRegistry()
        self.build_locks = list(build_locks)
        self.waiting_for_lock = ""  # name of the lock the build or its step waits for now
        self._stopped = asyncio.Event()
        self._sourcestamps = list(sourcestamps or build.sourcestamps)
        self.step_defs = list(steps)
        self.builddir = builddir
        self.session = session
        self.repo = repo
        self.watchers = watchers
        self.clock = clock
        self.properties: dict[str, Property] = {p.name: p for p in build.properties}
        self.stopped_reason: str | None = None
        self._stopped_step: Step | None = None  # the step running when the build was stopped
        self._current_command: str | None = None
        self._current_transfer: str | None = None
        self._current_step: Step | None = None
        self._command_seq = 0
        self._observers: dict[str, list[LineObserver]] = {}
        self._logs: dict[str, StepLog] = {}  # the current step's logs, by name
        self._current_host: Any = None  # HostProcess of a running MasterShellCommand
        self._host = host
        self.secrets = BuildSecrets(secrets)
        self._state: str | None = None  # the current step's own state string, when it set one

    # -- StepContext
    @property
    def builder(self) -> str:
        return self.build.builder

    @property
    def worker(self) -> str:
        return self.build.worker

    @property
    def build_number(self) -> int:
        return self.build.number

    @property
    def interrupted(self) -> bool:
        """Whether the running step was stopped. An alwaysRun step that runs after a stop is
        not: as in Buildbot, it runs its commands normally."""
        return self.stopped_reason is not None and self._current_step is self._stopped_step

    def get_property(self, name: str, default: Any = None) -> Any:
        p = self.properties.get(name)
        return default if p is None else p.value

    def add_log_observer(self, log_name: str, observer: LineObserver) -> None:
        """Call `observer(channel, line)` for each stdout/stderr line of the current step's
        logs named `log_name`, as the output is stored (registered for the current step only)."""
        self._observers.setdefault(log_name, []).append(observer)

    def has_property(self, name: str) -> bool:
        return name in self.properties

    def set_property(self, name: str, value: Any, source: str) -> None:
        self.properties[name] = Property(name, value, source)

    # Buildbot's spellings, for @renderer functions written for Buildbot.
    getProperty = get_property
    hasProperty = has_property

    @property
    def sourcestamps(self) -> Sequence[SourceStamp]:
        return self._sourcestamps

    @property
    def worker_info(self) -> Mapping[str, Any]:
        """What %(worker:KEY)s reads: the worker's name, what it advertised (os, arch, version,
        labels) and its configured properties."""
        info: dict[str, Any] = {"name": self.build.worker, "workername": self.build.worker}
        info.update(self.session.info)
        for p in self.properties.values():
            if p.source == "Worker" and p.name not in ("workername",) and not p.name.startswith("worker_"):
                info.setdefault(p.name, p.value)
        return info

    def get_secret(self, name: str) -> str:
        """The secret's value; remembered, so that it is hidden from logs, state strings and
        stored properties."""
        return self.secrets.get(name)

    def redact(self, text: str) -> str:
        """`text` with every secret value of this build replaced by ``<secret NAME>``."""
        return self.secrets.redact(text)

    def render(self, value: Any) -> Any:
        """`value` with its Property/Interpolate/Transform/renderer parts rendered for this build."""
        return render(value, self)

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
        stdio = await self._open_log(log_name)
        step = self._current_step
        assert step is not None
        self._command_seq += 1
        spec = CommandSpec(
            command_id=f"{self.build.id}-{step.number}-{self._command_seq}",
            argv=[] if isinstance(command, str) else list(command),
            shell_command=command if isinstance(command, str) else "",
            builder_dir=self.builddir,
            workdir=workdir,
            env=dict(env or {}),
            timeout=timeout,
            max_time=max_time,
            redactions=tuple(self.secrets.values.items()),
        )
        self._current_command = spec.command_id
        try:
            if self.interrupted:
                await stdio.write(HEADER, f"not run: {self.stopped_reason}\n".encode())
                return Finished(spec.command_id, -1, "interrupted")
            splitter = LineSplitter(self._observers.get(log_name, []))
            try:
                finished = await self.session.run_command(spec, _output_handler(stdio, collect, splitter))
            finally:
                splitter.flush()
            if splitter.error is not None:
                raise splitter.error  # the step's EXCEPTION
            return finished
        finally:
            self._current_command = None

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
        stdio = await self._open_log(log_name)
        text = command if isinstance(command, str) else shlex.join(command)
        await stdio.write(HEADER, self.redact(f"{text}\n in dir {workdir or '.'} (on the coordinator)\n").encode())
        if self.interrupted:
            await stdio.write(HEADER, f"not run: {self.stopped_reason}\n".encode())
            return Finished("master", -1, "interrupted")
        proc = self._host.start(
            command, workdir=workdir, env=dict(env or {}), timeout=timeout, max_time=max_time,
            on_output=self._redacting(stdio),
        )
        self._current_host = proc
        try:
            rc, reason = await proc.wait()
        finally:
            self._current_host = None
        end = {
            "": f"program finished with exit code {rc}\n",
            "interrupted": f"interrupted: {self.stopped_reason}\n",
            "timeout": f"command timed out: {timeout:g} seconds without output, killed\n",
            "max_time": f"command timed out: {max_time:g} seconds elapsed, killed\n",
        }.get(reason, f"{reason}\n")
        await stdio.write(HEADER, end.encode())
        return Finished("master", rc, reason)

    def _redacting(self, stdio: StepLog) -> OutputHandler:
        """Output of a command on the coordinator host with each secret value hidden. Unlike
        on the worker, a value split between two reads is not caught here."""
        if not self.secrets:
            return stdio.write
        return lambda channel, data: stdio.write(channel, self.secrets.redact_bytes(data))

    async def write_log(self, text: str, log_name: str = "stdio") -> None:
        """Add a line of explanation (header channel) to a log of the current step."""
        stdio = await self._open_log(log_name)
        await stdio.write(HEADER, self.redact(text if text.endswith("\n") else text + "\n").encode())

    async def _open_log(self, name: str) -> StepLog:
        """The current step's log `name`, created on first use (a step's commands may share one
        log, as a Git step's do)."""
        step = self._current_step
        assert step is not None, "logs are only available while a step runs"
        stdio = self._logs.get(name)
        if stdio is None:
            info = await self.repo.add_log(step, name, "s")
            step.logs.append(info)
            stdio = self._logs[name] = StepLog(info.id, name, self.repo, self.watchers)
        return stdio

    def _take_logs(self) -> list[int]:
        """The current step's open logs (ids), closed by finish_step's commit (one write for all)."""
        ids = [stdio.log_id for stdio in self._logs.values()]
        self._logs = {}
        return ids

    # -- files on the worker (paths relative to the builder directory unless absolute)
    def _file_command(self, op: str, path: str, max_size: int = 0, mode: int = 0) -> FileCommand:
        step = self._current_step
        assert step is not None, "file operations are only available while a step runs"
        self._command_seq += 1
        rid = f"{self.build.id}-{step.number}-{self._command_seq}"
        return FileCommand(rid, op, self.builddir, path, max_size, mode)

    async def _transfer(self, cmd: FileCommand, run: Coroutine[Any, Any, FileResult]) -> FileResult:
        """Run a file primitive as the step's current one (so stopping the build cancels it)."""
        if self.interrupted:
            run.close()  # never started
            raise TransferError(f"interrupted: {self.stopped_reason}")
        self._current_transfer = cmd.request_id
        try:
            return await run
        finally:
            self._current_transfer = None

    async def _request(self, op: str, path: str) -> FileResult:
        cmd = self._file_command(op, path)
        return await self._transfer(cmd, self.session.files.request(cmd))

    async def mkdir(self, path: str) -> None:
        """Create the directory `path` (and its parents) on the worker."""
        await self._request(MKDIR, path)

    async def rmdir(self, path: str) -> None:
        """Remove `path` on the worker, recursively (nothing to do if it does not exist)."""
        await self._request(RMDIR, path)

    async def stat(self, path: str) -> FileResult | None:
        """`path` on the worker (is_dir, size, mtime), or None when it does not exist."""
        result = await self._request(STAT, path)
        return result if result.exists else None

    async def glob(self, pattern: str) -> list[str]:
        """Paths on the worker matching `pattern` (relative patterns give relative paths)."""
        return list((await self._request(GLOB, pattern)).paths)

    async def upload(
        self, workersrc: str, sink: ByteSink, *, max_size: int = 0, directory: bool = False
    ) -> FileResult:
        """Copy the worker's file (or directory, as a tar stream) `workersrc` into `sink`;
        the sink is committed once all bytes arrived with the right sha256, else aborted.
        Raises TransferError (missing file, too large, damaged) or WorkerLost."""
        cmd = self._file_command(UPLOAD_DIR if directory else UPLOAD, workersrc, max_size)
        try:
            result = await self._transfer(cmd, self.session.files.receive(cmd, sink.write))
        except BaseException:
            await sink.abort()
            raise
        await sink.commit()
        return result

    async def download(
        self, chunks: AsyncIterator[bytes], workerdest: str, *, max_size: int = 0, mode: int = 0
    ) -> FileResult:
        """Write `chunks` into the worker's file `workerdest` (verified by sha256, in place
        only once complete)."""
        cmd = self._file_command(DOWNLOAD, workerdest, max_size, mode)
        return await self._transfer(cmd, self.session.files.send(cmd, chunks))

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            raise RuntimeError("this coordinator has no artifact store")
        return self._artifacts

    async def add_artifact(self, name: str, size: int, sha256: str) -> Artifact:
        """Record an artifact of this build, produced by the current step."""
        step = self._current_step
        assert step is not None
        return await self.repo.add_artifact(self.build, step, name, size, sha256, self.clock.now())

    async def add_log(self, name: str, text: str) -> None:
        """Add a complete text log to the current step (Buildbot's addCompleteLog)."""
        step = self._current_step
        assert step is not None
        info = await self.repo.add_log(step, name, "t")
        step.logs.append(info)
        try:
            await StepLog(info.id, name, self.repo, self.watchers).write(1, text.encode())
        finally:
            await self.repo.finish_log(info.id)
            self.watchers.notify(info.id)

    async def add_url(self, name: str, url: str) -> None:
        step = self._current_step
        assert step is not None, "add_url is only available while a step runs"
        step.urls.append((name, url))
        await self.repo.set_step_urls(self.build, step, self.clock.now())

    def set_state(self, text: str) -> None:
        """The current step's state string when it finishes, e.g. "12 tests, 2 failed"
        (Buildbot's setStateString), instead of its description."""
        self._state = text

    async def _note_failure(self, message: str) -> None:
        step = self._current_step
        self.set_state(f"{step.name if step else 'step'} failed: {message}")
        if step is not None:
            await self.add_log("error", message + "\n")

    async def trigger(
        self, scheduler: str, sourcestamps: Sequence[SourceStamp], properties: Sequence[Property], *, wait: bool
    ) -> Triggered:
        if self.trigger_port is None:
            raise LookupError("this coordinator cannot trigger schedulers")
        return await self.trigger_port.trigger(
            scheduler, sourcestamps, properties, wait=wait, parent=(self.build.builder, self.build.number)
        )

    async def unless_stopped(self, aw: Awaitable[T]) -> T | None:
        work = asyncio.ensure_future(aw)
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait((work, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not work.done():
                work.cancel()
        return work.result() if work.done() and not work.cancelled() else None

    # -- control
    def stop(self, reason: str) -> None:
        """Stop the build: interrupt the running command; only alwaysRun steps still run."""
        if self.stopped_reason is None:
            self.stopped_reason = reason or "stopped"
            self._stopped_step = self._current_step
        self._stopped.set()  # wakes a wait for a lock
        if self._current_command:
            self.session.interrupt(self._current_command, self.stopped_reason)
        if self._current_host is not None:
            self._current_host.interrupt(self.stopped_reason)
        if self._current_transfer:
            self.session.files.abandon(self._current_transfer, self.stopped_reason)

    # -- the build
    async def run(self) -> tuple[Result, str, bool]:
        build = self.build
        if len(build.steps) != len(self.step_defs):  # else stored with the build (start_build)
            build.steps = await self.repo.add_steps(build, [s.name for s in self.step_defs])
        steps = build.steps
        held = LockSet(self.locks, self.build_locks, self.worker)
        try:
            if not await held.acquire(self, self._wait_build, self._stopped):
                for step, step_def in zip(steps, self.step_defs, strict=True):
                    await self._skip(step, step_def)
                waited = self.waiting_for_lock
                return Result.CANCELLED, f"cancelled while waiting for lock {waited}" if waited else "cancelled", False
            if held:
                self.waiting_for_lock = ""
                await self.repo.set_build_state(build, "building", self.clock.now())
            return await self._run_steps(steps)
        finally:
            held.release(self)

    async def _wait_build(self, lock: str) -> None:
        self.waiting_for_lock = lock
        await self.repo.set_build_state(self.build, f"waiting for lock {lock}", self.clock.now())

    async def _run_steps(self, steps: list[Step]) -> tuple[Result, str, bool]:
        build = self.build
        result = Result.SUCCESS
        halted = False
        failed_step = ""
        for step, step_def in zip(steps, self.step_defs, strict=True):
            if (halted or self.stopped_reason is not None) and not step_def.alwaysRun:
                await self._skip(step, step_def)
                continue
            step.started_at = self.clock.now()
            await self.repo.start_step(build, step, step.started_at)
            self._current_step = step
            self._observers = {}
            self._state = None
            step_result = await self._run_locked_step(step, step_def)
            logs = self._take_logs()
            self._current_step = None
            self._observers = {}
            step.hidden = self._hidden(step_def, step_result)
            if step_result == Result.SKIPPED:
                state = "skipped"
            else:
                state = self.redact(self._state or self._describe(step_def, step_result))
            await self.repo.finish_step(build, step, step_result, state, self.clock.now(), logs=logs)
            for log_id in logs:
                self.watchers.notify(log_id)  # followers of the log see it complete
            if step_result == Result.RETRY:
                result = Result.RETRY
                halted = True
                continue
            new_result, halt = combine(result, step_def, step_result)
            if new_result != result and not failed_step and new_result != Result.SUCCESS:
                failed_step = step.name
            result = new_result
            halted = halted or halt
        if self.stopped_reason is not None and result != Result.RETRY:
            result = Result.CANCELLED
        # Stored by finish_build, in the build's last commit (no write of its own).
        build.properties = [Property(p.name, self.secrets.redact_value(p.value), p.source) for p in self.properties.values()]
        return result, _build_state(result, failed_step), result == Result.RETRY

    async def _run_locked_step(self, step: Step, step_def: BuildStep) -> Result:
        """Run the step holding its own locks (taken after it started; state "waiting for lock
        L" meanwhile); CANCELLED if the build is stopped while it waits."""
        held = LockSet(self.locks, accesses(getattr(step_def, "locks", ())), self.worker)
        if not held:
            return await self._run_step(step_def)

        async def waiting(lock: str) -> None:
            self.waiting_for_lock = lock
            await self.repo.set_step_state(self.build, step, f"waiting for lock {lock}", self.clock.now())

        try:
            if not await held.acquire((self, step.number), waiting, self._stopped):
                return Result.CANCELLED
            if self.waiting_for_lock:
                self.waiting_for_lock = ""
                await self.repo.set_step_state(self.build, step, "running", self.clock.now())
            return await self._run_step(step_def)
        finally:
            self.waiting_for_lock = ""
            held.release((self, step.number))

    async def _skip(self, step: Step, step_def: BuildStep) -> None:
        step.hidden = self._hidden(step_def, Result.SKIPPED)
        await self.repo.finish_step(self.build, step, Result.SKIPPED, "skipped", self.clock.now())

    def _hidden(self, step_def: BuildStep, result: Result) -> bool:
        try:
            return step_def.is_hidden(result, self)
        except Exception:
            log.exception("hideStepIf of step %s raised; showing the step", step_def.name)
            return False

    def _describe(self, step_def: BuildStep, result: Result) -> str:
        try:
            try:
                return step_def.describe(True, result, ctx=self)
            except TypeError:
                # A custom step overriding describe(done, result) from before renderables.
                return step_def.describe(True, result)
        except StepError:  # e.g. a missing secret in the command: already in the step's log
            return f"{step_def.name} ({result.label})"
        except Exception:
            log.exception("describing step %s of %s/%d failed", step_def.name, self.build.builder, self.build.number)
            return f"{step_def.name} ({result.label})"

    async def _run_step(self, step_def: BuildStep) -> Result:
        try:
            # As in Buildbot, the step starts, then doStepIf decides (an error in it: EXCEPTION).
            if not await step_def.should_run(self):
                return Result.SKIPPED
            return await step_def.run(self)
        except WorkerLost as exc:
            log.warning("%s/%d: %s", self.build.builder, self.build.number, exc)
            return Result.RETRY
        except StepError as exc:
            await self.write_log(str(exc), "err")
            return Result.EXCEPTION
        except TransferError as exc:
            if self.interrupted:
                return Result.CANCELLED
            # An expected failure of a file primitive: the step fails with its message.
            log.info("%s/%d: step %s: %s", self.build.builder, self.build.number, step_def.name, exc)
            await self._note_failure(str(exc))
            return Result.FAILURE
        except Exception:
            log.exception("step %s of %s/%d raised", step_def.name, self.build.builder, self.build.number)
            return Result.EXCEPTION


def _output_handler(stdio: StepLog, collect: OutputCollector | None, lines: LineSplitter) -> OutputHandler:
    if collect is None and not lines.observers:
        return stdio.write

    def write(channel: int, data: bytes) -> Awaitable[None]:
        if collect is not None:
            collect.feed(channel, data)
        lines.feed(channel, data)
        return stdio.write(channel, data)

    return write


def _build_state(result: Result, failed_step: str) -> str:
    if result == Result.SUCCESS:
        return "build successful"
    if result in (Result.FAILURE, Result.WARNINGS) and failed_step:
        return f"{'failed' if result == Result.FAILURE else 'warnings'} {failed_step}"
    return result.label

