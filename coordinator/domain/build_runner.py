"""Runs one build: its steps in order on one worker, with Buildbot's result rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from coordinator.domain.commands import HEADER, CommandSpec, Finished, WorkerLost
from coordinator.domain.logs import (
    LineObserver,
    LineSplitter,
    LogWatchers,
    OutputCollector,
    StepLog,
)
from coordinator.domain.model import Build, Property, SourceStamp, Step
from coordinator.domain.ports import Clock, Repository
from coordinator.domain.renderables import render
from coordinator.domain.results import Result, worst
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
        trigger_port: TriggerPort | None = None,
    ) -> None:
        self.build = build
        self.trigger_port = trigger_port
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
        self._current_command: str | None = None
        self._current_step: Step | None = None
        self._command_seq = 0
        self._observers: dict[str, list[LineObserver]] = {}

    # -- StepContext
    @property
    def builder(self) -> str:
        return self.build.builder

    @property
    def worker(self) -> str:
        return self.build.worker

    @property
    def interrupted(self) -> bool:
        return self.stopped_reason is not None

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
        step = self._current_step
        assert step is not None, "run_command is only available while a step runs"
        info = await self.repo.add_log(step, log_name, "s")
        step.logs.append(info)
        stdio = StepLog(info.id, log_name, self.repo, self.watchers)
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
            await self.repo.finish_log(info.id)
            self.watchers.notify(info.id)

    async def add_url(self, name: str, url: str) -> None:
        step = self._current_step
        assert step is not None, "add_url is only available while a step runs"
        step.urls.append((name, url))
        await self.repo.set_step_urls(step)

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
        self._stopped.set()
        if self._current_command:
            self.session.interrupt(self._current_command, self.stopped_reason)

    # -- the build
    async def run(self) -> tuple[Result, str, bool]:
        build = self.build
        steps = await self.repo.add_steps(build, [s.name for s in self.step_defs])
        build.steps = steps
        result = Result.SUCCESS
        halted = False
        failed_step = ""
        for step, step_def in zip(steps, self.step_defs, strict=True):
            if (halted or self.interrupted) and not step_def.alwaysRun:
                await self._skip(step, step_def)
                continue
            step.started_at = self.clock.now()
            await self.repo.start_step(build, step, step.started_at)
            self._current_step = step
            self._observers = {}
            step_result = await self._run_step(step_def)
            self._current_step = None
            self._observers = {}
            step.hidden = self._hidden(step_def, step_result)
            state = "skipped" if step_result == Result.SKIPPED else self._describe(step_def, step_result)
            await self.repo.finish_step(build, step, step_result, state, self.clock.now())
            if step_result == Result.RETRY:
                result = Result.RETRY
                halted = True
                continue
            new_result, halt = combine(result, step_def, step_result)
            if new_result != result and not failed_step and new_result != Result.SUCCESS:
                failed_step = step.name
            result = new_result
            halted = halted or halt
        if self.interrupted and result != Result.RETRY:
            result = Result.CANCELLED
        await self.repo.set_build_properties(build, list(self.properties.values()))
        return result, _build_state(result, failed_step), result == Result.RETRY

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

