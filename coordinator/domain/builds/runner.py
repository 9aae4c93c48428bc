"""Runs one build: its steps in order on one worker, with Buildbot's result rules.

BuildRunner is the StepContext; its read-only part, step logs and worker files are in
build_context.py, build_logs.py and build_files.py."""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

from coordinator.domain.builds.locks import LockSet, accesses
from coordinator.domain.builds.step_logs import StepLogs
from coordinator.domain.builds.worker_files import WorkerFiles
from coordinator.domain.errors import StepError
from coordinator.domain.model import PropertyValue, SourceStamp, Step
from coordinator.domain.results import Result, combine
from coordinator.domain.steps.base import BuildStep
from coordinator.domain.steps.logs import LineSplitter, OutputCollector, StepLog
from coordinator.domain.steps.trigger_port import Triggered
from coordinator.domain.workers.commands import (
    HEADER,
    CommandSpec,
    Finished,
    TransferError,
    WorkerLost,
)
from coordinator.domain.workers.sessions import OutputHandler

log = logging.getLogger(__name__)
T = TypeVar("T")


class BuildRunner(StepLogs, WorkerFiles):
    """One running build. `run()` returns (result, state string, whether to requeue)."""

    # -- StepContext: commands
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

    async def trigger(
        self, scheduler: str, sourcestamps: Sequence[SourceStamp], properties: Sequence[PropertyValue], *, wait: bool
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
        build.properties = [PropertyValue(p.name, self.secrets.redact_value(p.value), p.source) for p in self.properties.values()]
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

