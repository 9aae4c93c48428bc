"""The running step's logs, line observers, links and state string: what a step reports
through. One per build, owned by BuildRunner; the runner brackets each step with
begin_step()/end_step()."""

from __future__ import annotations

from collections.abc import Sequence

from coordinator.domain import events
from coordinator.domain.builds.context import BuildContext
from coordinator.domain.builds.journal import StepJournal
from coordinator.domain.model import LogChunk, LogInfo
from coordinator.domain.ports import BuildRecorder, Clock, LogRecorder
from coordinator.domain.steps.logs import LineObserver, LogWatchers, StepLog
from coordinator.domain.workers.commands import HEADER


class StepLogs:
    """Logs of the running step: opened on first use, closed together by finish_step."""

    def __init__(
        self, context: BuildContext, builds: BuildRecorder, logs: LogRecorder, watchers: LogWatchers, clock: Clock
    ) -> None:
        self._context = context  # the running step; redacts what is written
        self.build = context.build
        self.builds = builds
        self.store = logs
        self.watchers = watchers
        self.clock = clock
        self._logs: dict[str, StepLog] = {}  # the current step's logs, by name
        self._observers: dict[str, list[LineObserver]] = {}
        self.state: str | None = None  # the current step's own state string, when it set one
        # The step was resumed after a restart: what its replay adds again (a text log, a link)
        # and the step already has is not added twice.
        self._resumed = False

    # -- the runner's brackets around a step
    def begin_step(self, resumed: bool = False) -> None:
        self._observers = {}
        self.state = None
        self._resumed = resumed

    def end_step(self) -> list[int]:
        """The step's open logs (ids), closed by finish_step's commit (one write for all)."""
        ids = [stdio.log_id for stdio in self._logs.values()]
        self._logs = {}
        self._observers = {}
        return ids

    def reopen(self, info: LogInfo, chunks: Sequence[LogChunk]) -> StepLog:
        """The running step's log `info` as stored before a coordinator restart (`chunks`):
        written on from where it ended."""
        stdio = StepLog(info.id, info.name, self.store, self.watchers, self.clock.now)
        stdio.resume_after(chunks)
        self._logs[info.name] = stdio
        return stdio

    # -- what a step reports
    def add_log_observer(self, log_name: str, observer: LineObserver) -> None:
        """Call `observer(channel, line)` for each stdout/stderr line of the current step's
        logs named `log_name`, as the output is stored (registered for the current step only)."""
        self._observers.setdefault(log_name, []).append(observer)

    def observers(self, log_name: str) -> list[LineObserver]:
        return self._observers.get(log_name, [])

    async def write_log(self, text: str, log_name: str = "stdio") -> None:
        """Add a line of explanation (header channel) to a log of the current step."""
        stdio = await self.open_log(log_name)
        line = text if text.endswith("\n") else text + "\n"
        await stdio.write(HEADER, self._context.redact(line).encode())

    async def open_log(self, name: str, journal: StepJournal | None = None) -> StepLog:
        """The current step's log `name`, created on first use (a step's commands may share one
        log, as a Git step's do). A new log carries `journal`'s pending entries in its commit."""
        step = self._context.running_step("logs are")
        stdio = self._logs.get(name)
        if stdio is None:
            riding = journal.take_pending() if journal is not None else []
            info = await self.store.add_log(step, name, "s", riding)
            if riding and journal is not None:
                journal.on_stored()
            step.logs.append(info)
            stdio = self._logs[name] = StepLog(info.id, name, self.store, self.watchers, self.clock.now)
        return stdio

    async def add_log(self, name: str, text: str) -> None:
        """Add a complete text log to the current step (Buildbot's addCompleteLog)."""
        step = self._context.running_step("add_log is")
        if self._resumed and any(i.name == name for i in step.logs):
            return  # added before the restart
        info = await self.store.add_log(step, name, "t")
        step.logs.append(info)
        try:
            await StepLog(info.id, name, self.store, self.watchers, self.clock.now).write(1, text.encode())
        finally:
            await self.store.finish_log(info.id)
            self.watchers.notify(info.id)

    async def add_url(self, name: str, url: str) -> None:
        step = self._context.running_step("add_url is")
        if self._resumed and (name, url) in step.urls:
            return  # linked before the restart
        step.urls.append((name, url))
        await self.builds.set_step_urls(step, [events.step_urls(self.build, step, self.clock.now())])

    def set_state(self, text: str) -> None:
        """The current step's state string when it finishes, e.g. "12 tests, 2 failed"
        (Buildbot's setStateString), instead of its description."""
        self.state = text

    async def note_failure(self, message: str) -> None:
        """The step failed with an expected error: say so in its state and an "error" log."""
        step = self._context.step
        self.set_state(f"{step.name if step else 'step'} failed: {message}")
        if step is not None:
            await self.add_log("error", message + "\n")
