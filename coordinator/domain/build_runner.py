"""Runs one build: its steps in order on one worker, with Buildbot's result rules."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from coordinator.domain.commands import HEADER, CommandSpec, Finished, WorkerLost
from coordinator.domain.logs import LogWatchers, StepLog
from coordinator.domain.model import Build, Property, Step
from coordinator.domain.ports import Clock, Repository
from coordinator.domain.results import Result, worst
from coordinator.domain.sessions import WorkerSession
from coordinator.domain.steps import BuildStep

log = logging.getLogger(__name__)


def combine(build_result: Result, step: BuildStep, step_result: Result) -> tuple[Result, bool]:
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
    ) -> None:
        self.build = build
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

    def set_property(self, name: str, value: Any, source: str) -> None:
        self.properties[name] = Property(name, value, source)

    async def run_command(
        self,
        command: Sequence[str] | str,
        *,
        workdir: str,
        env: Mapping[str, str],
        timeout: float,
        max_time: float,
        log_name: str = "stdio",
    ) -> Finished:
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
            env=dict(env),
            timeout=timeout,
            max_time=max_time,
        )
        self._current_command = spec.command_id
        try:
            if self.interrupted:
                await stdio.write(HEADER, f"not run: {self.stopped_reason}\n".encode())
                return Finished(spec.command_id, -1, "interrupted")
            return await self.session.run_command(spec, stdio.write)
        finally:
            self._current_command = None
            await self.repo.finish_log(info.id)
            self.watchers.notify(info.id)

    # -- control
    def stop(self, reason: str) -> None:
        """Stop the build: interrupt the running command; only alwaysRun steps still run."""
        if self.stopped_reason is None:
            self.stopped_reason = reason or "stopped"
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
                await self.repo.finish_step(build, step, Result.SKIPPED, "skipped", self.clock.now())
                continue
            step.started_at = self.clock.now()
            await self.repo.start_step(build, step, step.started_at)
            self._current_step = step
            step_result = await self._run_step(step_def)
            self._current_step = None
            step.hidden = bool(step_def.hideStepIf)
            await self.repo.finish_step(
                build, step, step_result, step_def.describe(True, step_result), self.clock.now()
            )
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

    async def _run_step(self, step_def: BuildStep) -> Result:
        try:
            return await step_def.run(self)
        except WorkerLost as exc:
            log.warning("%s/%d: %s", self.build.builder, self.build.number, exc)
            return Result.RETRY
        except Exception:
            log.exception("step %s of %s/%d raised", step_def.name, self.build.builder, self.build.number)
            return Result.EXCEPTION


def _build_state(result: Result, failed_step: str) -> str:
    if result == Result.SUCCESS:
        return "build successful"
    if result in (Result.FAILURE, Result.WARNINGS) and failed_step:
        return f"{'failed' if result == Result.FAILURE else 'warnings'} {failed_step}"
    return result.label

