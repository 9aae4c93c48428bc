"""Runs one build: its steps in order on one worker, with Buildbot's result rules.

BuildRunner is the StepContext steps see. It has its parts, each in its own module: the build's
state, properties and secrets (BuildContext, context.py), the running step's logs (StepLogs,
step_logs.py), its commands (StepCommands, step_commands.py) and its file primitives and
artifacts (WorkerFiles, worker_files.py); the StepContext methods here delegate to them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from coordinator.domain import events
from coordinator.domain.builds import resume
from coordinator.domain.builds.context import BuildContext
from coordinator.domain.builds.journal import TESTS, TRIGGER, CannotContinue, StepJournal, fingerprint
from coordinator.domain.builds.locks import LockAccess, LockRegistry, LockSet, accesses
from coordinator.domain.builds.step_commands import StepCommands
from coordinator.domain.builds.step_logs import StepLogs
from coordinator.domain.builds.worker_files import WorkerFiles
from coordinator.domain.errors import StepError
from coordinator.domain.model import Artifact, Build, CaseResult, JournalEntry, PropertyValue, SourceStamp, Step
from coordinator.domain.ports import (
    ArtifactStore,
    BuildRecorder,
    ByteSink,
    Clock,
    HostCommands,
    JournalStore,
    LogReads,
    LogRecorder,
    SecretProvider,
)
from coordinator.domain.properties.renderables import render
from coordinator.domain.results import Result, combine
from coordinator.domain.steps.base import BuildStep
from coordinator.domain.steps.logs import LineObserver, LogWatchers, OutputCollector
from coordinator.domain.steps.trigger_port import Triggered, TriggerPort
from coordinator.domain.workers.commands import FileResult, Finished, TransferError, WorkerLost
from coordinator.domain.workers.sessions import WorkerSession
from coordinator.domain.workers.transfers import Chunks

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class BuildServices:
    """What every build of a coordinator uses: where it records, what it may reach, the locks
    all builds share. The dispatcher gives each BuildRunner its own."""

    builds: BuildRecorder
    logs: LogRecorder
    watchers: LogWatchers
    clock: Clock
    artifacts: ArtifactStore | None = None
    trigger_port: TriggerPort | None = None  # None: Trigger steps fail
    secrets: Sequence[SecretProvider] = ()  # the configuration's secretsProviders
    host: HostCommands | None = None  # runs MasterShellCommand; None unless allowed
    locks: LockRegistry = field(default_factory=LockRegistry)
    log_reads: LogReads | None = None  # what a build resumed after a restart reads of its logs
    journal: JournalStore | None = None  # the running steps' command journals (None: not kept)


class BuildRunner:
    """One running build. `run()` returns (result, state string)."""

    def __init__(
        self,
        build: Build,
        steps: Sequence[BuildStep],
        builddir: str,
        session: WorkerSession,
        services: BuildServices,
        sourcestamps: Sequence[SourceStamp] = (),
        build_locks: Sequence[LockAccess] = (),
        *,
        missing_timeout: float | None = None,
        resuming: bool = False,
    ) -> None:
        self.build = build
        self.step_defs = list(steps)
        self.builds = services.builds
        self.watchers = services.watchers
        self.clock = services.clock
        self.trigger_port = services.trigger_port
        self.locks = services.locks
        self.build_locks = list(build_locks)
        self.waiting_for_lock = ""  # name of the lock the build or its step waits for now
        self.context = BuildContext(build, session, sourcestamps, services.secrets)
        self.logs = StepLogs(self.context, services.builds, services.logs, services.watchers, services.clock)
        self.journal = StepJournal(build, services.journal)
        self._journal_store = services.journal
        self.commands = StepCommands(
            self.context, self.logs, session, builddir, services.host,
            missing_timeout=missing_timeout, on_worker_wait=self._worker_wait, journal=self.journal,
        )
        self.files = WorkerFiles(
            self.context, session, builddir, services.builds, services.clock, services.artifacts,
            journal=self.journal, on_worker_wait=self._worker_wait,
        )
        # Resumed after a coordinator restart: finished steps keep their stored results; the
        # running step is replayed from its journal and its command in flight adopted from the
        # worker (expected from now on, so that a worker reconnecting at once finds it awaited).
        self.resuming = resuming
        self._log_reads = services.log_reads
        running = resume.running_step(build) if resuming else None
        self._kept = session.expect(resume.command_prefix(build, running)) if running and running.logs else None

    # -- StepContext: the build (BuildContext)
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
        return self.context.interrupted

    @property
    def stopped_reason(self) -> str | None:
        return self.context.stopped_reason

    @property
    def sourcestamps(self) -> Sequence[SourceStamp]:
        return self.context.sourcestamps

    @property
    def worker_info(self) -> Mapping[str, Any]:
        return self.context.worker_info

    def get_property(self, name: str, default: Any = None) -> Any:
        return self.context.get_property(name, default)

    def has_property(self, name: str) -> bool:
        return self.context.has_property(name)

    def set_property(self, name: str, value: Any, source: str) -> None:
        self.context.set_property(name, value, source)

    # Buildbot's spellings, for @renderer functions written for Buildbot.
    getProperty = get_property
    hasProperty = has_property

    def get_secret(self, name: str) -> str:
        return self.context.get_secret(name)

    def redact(self, text: str) -> str:
        return self.context.redact(text)

    def render(self, value: Any) -> Any:
        """`value` with its Property/Interpolate/Transform/renderer parts rendered for this
        build (a @renderer function gets this runner, as Buildbot's get the properties)."""
        return render(value, self)

    # -- StepContext: logs, links and state (StepLogs)
    def add_log_observer(self, log_name: str, observer: LineObserver) -> None:
        self.logs.add_log_observer(log_name, observer)

    async def write_log(self, text: str, log_name: str = "stdio") -> None:
        await self.logs.write_log(text, log_name)

    async def add_log(self, name: str, text: str) -> None:
        await self.logs.add_log(name, text)

    async def record_tests(self, cases: Sequence[CaseResult]) -> None:
        step = self.context.running_step("record_tests is")
        # The revision tested: what the checkout step got, else what was asked for.
        revision = self.context.get_property("got_revision") or next(
            (ss.revision for ss in self.context.sourcestamps if ss.revision), ""
        )
        # Journaled with the cases (one transaction): a step replayed after a restart does not
        # record them twice.
        fp = fingerprint(TESTS, len(cases), [c.full_name for c in cases[:1]], str(revision))
        if await self.journal.next(TESTS, fp) is not None:
            return
        journal = [*self.journal.take_pending(), self.journal.entry(TESTS, fp)] if self.journal.durable else []
        await self.builds.add_test_results(self.build, step, str(revision), cases, journal=journal)
        if journal:
            self.journal.on_stored()

    async def add_url(self, name: str, url: str) -> None:
        await self.logs.add_url(name, url)

    def set_state(self, text: str) -> None:
        self.logs.set_state(text)

    # -- StepContext: commands (StepCommands)
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
        return await self.commands.run_command(
            command, workdir=workdir, env=env, timeout=timeout, max_time=max_time, log_name=log_name,
            collect=collect,
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
        return await self.commands.run_master_command(
            command, workdir=workdir, env=env, timeout=timeout, max_time=max_time, log_name=log_name
        )

    # -- StepContext: files on the worker and artifacts (WorkerFiles)
    async def mkdir(self, path: str) -> None:
        await self.files.mkdir(path)

    async def rmdir(self, path: str) -> None:
        await self.files.rmdir(path)

    async def stat(self, path: str) -> FileResult | None:
        return await self.files.stat(path)

    async def glob(self, pattern: str) -> list[str]:
        return await self.files.glob(pattern)

    async def upload(
        self, workersrc: str, sink: ByteSink, *, max_size: int = 0, directory: bool = False
    ) -> FileResult:
        return await self.files.upload(workersrc, sink, max_size=max_size, directory=directory)

    async def download(self, chunks: Chunks, workerdest: str, *, max_size: int = 0, mode: int = 0) -> FileResult:
        return await self.files.download(chunks, workerdest, max_size=max_size, mode=mode)

    @property
    def artifacts(self) -> ArtifactStore:
        return self.files.artifacts

    async def add_artifact(self, name: str, size: int, sha256: str) -> Artifact:
        return await self.files.add_artifact(name, size, sha256)

    # -- StepContext: the rest
    async def trigger(
        self, scheduler: str, sourcestamps: Sequence[SourceStamp], properties: Sequence[PropertyValue], *, wait: bool
    ) -> Triggered:
        if self.trigger_port is None:
            raise LookupError("this coordinator cannot trigger schedulers")
        parent = (self.build.builder, self.build.number)
        fp = fingerprint(TRIGGER, scheduler, sourcestamps, sorted((p.name, p.value) for p in properties), wait)
        replayed = await self.journal.next(TRIGGER, fp)
        if replayed is not None:  # triggered before the restart: follow the same buildset
            data = json.loads(replayed.data)
            return await self.trigger_port.follow(scheduler, data["buildset"], data["requests"], wait=wait)
        entry = self.journal.entry(TRIGGER, fp) if self.journal.durable else None
        return await self.trigger_port.trigger(
            scheduler, sourcestamps, properties, wait=wait, parent=parent, journal=entry
        )

    async def unless_stopped(self, aw: Awaitable[T]) -> T | None:
        work = asyncio.ensure_future(aw)
        stopped = asyncio.ensure_future(self.context.stopped.wait())
        try:
            await asyncio.wait((work, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not work.done():
                work.cancel()
        return work.result() if work.done() and not work.cancelled() else None

    @property
    def step_names(self) -> Sequence[str]:
        return [s.name for s in self.build.steps]

    async def add_steps(self, steps: Sequence[BuildStep]) -> None:
        """Buildbot's addStepsAfterLastStep: `steps` run after every step the build has now
        (a Pipeline step's, read from the checked-out revision)."""
        new = await self.builds.add_steps(self.build, [s.name for s in steps], first=len(self.build.steps))
        # Both lists grow together while _run_steps iterates them: the new steps run in turn.
        self.step_defs.extend(steps)
        self.build.steps.extend(new)

    # -- control
    def stop(self, reason: str) -> None:
        """Stop the build: interrupt the running command; only alwaysRun steps still run."""
        first_reason = self.context.stop(reason)  # also wakes a wait for a lock
        self.commands.interrupt(first_reason)
        self.files.abandon(first_reason)

    # -- the build
    async def run(self) -> tuple[Result, str]:
        build = self.build
        if len(build.steps) != len(self.step_defs):  # else stored with the build (start_build)
            build.steps = await self.builds.add_steps(build, [s.name for s in self.step_defs])
        steps = build.steps
        held = LockSet(self.locks, self.build_locks, self.worker)
        try:
            if not await held.acquire(self, self._wait_build, self.context.stopped):
                for step, step_def in zip(steps, self.step_defs, strict=True):
                    await self._skip(step, step_def)
                waited = self.waiting_for_lock
                return Result.CANCELLED, f"cancelled while waiting for lock {waited}" if waited else "cancelled"
            if held:
                self.waiting_for_lock = ""
                await self._set_build_state("building")
            return await self._run_steps(steps)
        finally:
            held.release(self)

    async def _wait_build(self, lock: str) -> None:
        self.waiting_for_lock = lock
        await self._set_build_state(f"waiting for lock {lock}")

    async def _set_build_state(self, text: str) -> None:
        self.build.state_string = text
        event = events.build_state(self.build, text, self.clock.now())
        await self.builds.set_build_state(self.build, text, [event])

    async def _worker_wait(self, text: str) -> None:
        """The worker went away ("worker disconnected, waiting up to N s") or is back ("")."""
        step = self.context.step
        if step is not None:
            await self._set_step_state(step, text or "running")

    async def _set_step_state(self, step: Step, text: str) -> None:
        step.state_string = text
        event = events.step_state(self.build, step, text, self.clock.now())
        await self.builds.set_step_state(step, text, [event])

    async def _finish_step(self, step: Step, result: Result, state: str, logs: list[int]) -> None:
        at = self.clock.now()
        event = events.step_finished(self.build, step, result, state, at)
        # With the properties so far: what a build resumed after a restart continues from.
        properties = self.context.final_properties()
        await self.builds.finish_step(self.build, step, result, state, at, logs, [event], properties)
        self.commands.release()  # committed: the worker may forget the step's commands

    async def _begin_step(self, step: Step, resumed: bool) -> None:
        """Bracket the step's run; a step resumed after a restart replays its journal, its logs
        go on where they end and its command in flight is the one the worker kept."""
        self.context.begin_step(step)
        self.logs.begin_step(resumed)
        replay: list[JournalEntry] = []
        if resumed and self._journal_store is not None and self._log_reads is not None:
            replay = await self._journal_store.step_journal(self.build.id, step.number)
            for info in step.logs:
                self.logs.reopen(info, await resume.stored_chunks(self._log_reads, info.id))
            if self._kept is not None:
                self.commands.adopt(self._kept)
                self._kept = None
        self.journal.begin_step(step, replay)

    async def _run_steps(self, steps: list[Step]) -> tuple[Result, str]:
        build = self.build
        result = Result.SUCCESS
        halted = False
        failed_step = ""
        for step, step_def in zip(steps, self.step_defs, strict=True):
            if self.resuming and step.finished_at is not None:  # done before the restart
                result, halted, failed_step = _fold(result, halted, failed_step, step, step_def, step.result)
                continue
            if (halted or self.stopped_reason is not None) and not step_def.alwaysRun:
                await self._skip(step, step_def)
                continue
            resumed = self.resuming and step.started_at is not None
            if not resumed:
                step.started_at = self.clock.now()
                started = events.step_started(build, step, step.started_at)
                await self.builds.start_step(build, step, step.started_at, [started])
            # As in Buildbot, a running build reads as its running step ("running 'make'").
            await self._set_build_state(self.redact(self._describe(step_def, None, done=False)))
            try:
                await self._begin_step(step, resumed)
                step_result = await self._run_locked_step(step, step_def)
            except CannotContinue as exc:
                step_result = await self._cannot_continue(step, str(exc))
            self.commands.end_step()
            self.journal.end_step()
            logs = self.logs.end_step()
            self.context.end_step()
            step.hidden = self._hidden(step_def, step_result)
            if step_result == Result.SKIPPED:
                state = "skipped"
            else:
                state = self.redact(self.logs.state or self._describe(step_def, step_result))
            await self._finish_step(step, step_result, state, logs)
            for log_id in logs:
                self.watchers.notify(log_id)  # followers of the log see it complete
            result, halted, failed_step = _fold(result, halted, failed_step, step, step_def, step_result)
        if self.stopped_reason is not None and result != Result.RETRY:
            result = Result.CANCELLED
        # Stored by finish_build, in the build's last commit (no write of its own).
        build.properties = self.context.final_properties()
        return result, _build_state(result, failed_step)

    async def _cannot_continue(self, step: Step, reason: str) -> Result:
        """The step resumed after a restart cannot go on: RETRY, saying why (its "err" log)."""
        log.warning("%s/%d: %s", self.build.builder, self.build.number, reason)
        self.logs.set_state(f"{step.name}: cannot continue after the coordinator restart")
        await self.logs.add_log("err", f"cannot continue after the coordinator restart: {reason}\n")
        return Result.RETRY

    async def _run_locked_step(self, step: Step, step_def: BuildStep) -> Result:
        """Run the step holding its own locks (taken after it started; state "waiting for lock
        L" meanwhile); CANCELLED if the build is stopped while it waits."""
        held = LockSet(self.locks, accesses(getattr(step_def, "locks", ())), self.worker)
        if not held:
            return await self._run_step(step_def)

        async def waiting(lock: str) -> None:
            self.waiting_for_lock = lock
            await self._set_step_state(step, f"waiting for lock {lock}")

        try:
            if not await held.acquire((self, step.number), waiting, self.context.stopped):
                return Result.CANCELLED
            if self.waiting_for_lock:
                self.waiting_for_lock = ""
                await self._set_step_state(step, "running")
            return await self._run_step(step_def)
        finally:
            self.waiting_for_lock = ""
            held.release((self, step.number))

    async def _skip(self, step: Step, step_def: BuildStep) -> None:
        step.hidden = self._hidden(step_def, Result.SKIPPED)
        await self._finish_step(step, Result.SKIPPED, "skipped", [])

    def _hidden(self, step_def: BuildStep, result: Result) -> bool:
        try:
            return step_def.is_hidden(result, self)
        except Exception:
            log.exception("hideStepIf of step %s raised; showing the step", step_def.name)
            return False

    def _describe(self, step_def: BuildStep, result: Result | None, done: bool = True) -> str:
        fallback = step_def.name if result is None else f"{step_def.name} ({result.label})"
        try:
            try:
                return step_def.describe(done, result, ctx=self)
            except TypeError:
                # A custom step overriding describe(done, result) from before renderables.
                return step_def.describe(done, result)
        except StepError:  # e.g. a missing secret in the command: already in the step's log
            return fallback
        except Exception:
            log.exception("describing step %s of %s/%d failed", step_def.name, self.build.builder, self.build.number)
            return fallback

    async def _run_step(self, step_def: BuildStep) -> Result:
        try:
            # As in Buildbot, the step starts, then doStepIf decides (an error in it: EXCEPTION).
            if not await step_def.should_run(self):
                return Result.SKIPPED
            return await step_def.run(self)
        except CannotContinue:
            raise
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
            await self.logs.note_failure(str(exc))
            return Result.FAILURE
        except Exception:
            log.exception("step %s of %s/%d raised", step_def.name, self.build.builder, self.build.number)
            return Result.EXCEPTION


def _fold(
    result: Result, halted: bool, failed_step: str, step: Step, step_def: BuildStep, step_result: Result | None
) -> tuple[Result, bool, str]:
    """The build's (result, halted, the step that made the result what it is) after `step` ended so."""
    if step_result is None:
        step_result = Result.SUCCESS
    if step_result == Result.RETRY:
        return Result.RETRY, True, failed_step
    new_result, halt = combine(result, step_def, step_result)
    if new_result != result:  # the summary names the step that made the final result
        failed_step = step.name
    return new_result, halted or halt, failed_step


def _build_state(result: Result, failed_step: str) -> str:
    if result == Result.SUCCESS:
        return "build successful"
    if result in (Result.FAILURE, Result.WARNINGS) and failed_step:
        return f"{'failed' if result == Result.FAILURE else 'warnings'} {failed_step}"
    return result.label

