"""The current step's logs, links and state string: the part of the StepContext a step
reports through (BuildRunner's base)."""

from __future__ import annotations

from coordinator.domain.builds.context import BuildContext
from coordinator.domain.steps.logs import LineObserver, StepLog
from coordinator.domain.workers.commands import HEADER


class StepLogs(BuildContext):
    """Logs of the running step: opened on first use, closed together by finish_step."""

    def add_log_observer(self, log_name: str, observer: LineObserver) -> None:
        """Call `observer(channel, line)` for each stdout/stderr line of the current step's
        logs named `log_name`, as the output is stored (registered for the current step only)."""
        self._observers.setdefault(log_name, []).append(observer)

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
