"""Scheduler management: the configured schedulers, started from their stored state, looked up
by name, enabled and disabled at run time. Their timers submit through the buildset submitter, in
the background. (Dependents' start-up backlog is the Downstream's, run right after `start`.)"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from coordinator.domain.auth import visibility
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.errors import NotFound
from coordinator.domain.model import NewBuildset, SchedulerCommit
from coordinator.domain.ports import Clock, SchedulerStateStore
from coordinator.domain.scheduling.background import Background
from coordinator.domain.scheduling.schedulers import Runtime, Scheduler
from coordinator.domain.scheduling.triggerable import Dependent

log = logging.getLogger(__name__)


class SchedulerControl:
    def __init__(self, store: SchedulerStateStore, clock: Clock, submitter: BuildsetSubmitter) -> None:
        self.store = store
        self.clock = clock
        self.submitter = submitter
        self.schedulers: list[Scheduler] = []
        self.background = Background(log)  # what started schedulers spawn (their submissions)

    def configure(self, schedulers: Sequence[Scheduler]) -> None:
        """Take a configuration; call `start` next (it reads their stored state)."""
        for old in self.schedulers:
            old.stop()
        self.schedulers = list(schedulers)

    async def start(self) -> None:
        """Start every scheduler from its stored state: enabled or not, pending changes (their
        tree-stable timers resume with the time left), last run of the timed ones."""
        await self._forget_unconfigured()
        await self._start_all(self.schedulers)

    async def swap(self, schedulers: Sequence[Scheduler]) -> None:
        """Replace the running schedulers by `schedulers` (a reconfig), each started from its
        stored state. If one fails to start, the previous ones run again and the error is
        raised: nothing changed. The stored state of schedulers no longer configured is dropped
        only once the new ones run."""
        previous = self.schedulers
        for old in previous:
            old.stop()
        try:
            await self._start_all(schedulers)
        except BaseException:
            await self._start_all(previous)
            raise
        self.schedulers = list(schedulers)
        await self._forget_unconfigured()

    async def _forget_unconfigured(self) -> None:
        names = [s.name for s in self.schedulers]
        dropped = await self.store.forget_schedulers(
            names, [s.name for s in self.schedulers if isinstance(s, Dependent)]
        )
        for name, count in sorted(dropped.items()):
            log.info("scheduler %r is no longer configured: dropped its %d pending change(s)", name, count)

    async def _start_all(self, schedulers: Sequence[Scheduler]) -> None:
        """Start each from its stored state; if one raises, stop those started and re-raise."""
        records = await self.store.load_scheduler_state([s.name for s in schedulers])
        started: list[Scheduler] = []
        try:
            for s in schedulers:
                s.start(self._runtime, records[s.name])
                started.append(s)
        except BaseException:
            for s in started:
                s.stop()
            raise

    @property
    def _runtime(self) -> Runtime:
        return Runtime(self.clock, self._submit_scheduled, self.background.spawn)

    async def _submit_scheduled(self, bs: NewBuildset | None, commit: SchedulerCommit) -> None:
        await self.submitter.submit(bs, commit)

    def current(self, name: str) -> Scheduler | None:
        """The configured scheduler named `name`, if any."""
        return next((s for s in self.schedulers if s.name == name), None)

    def scheduler(self, name: str) -> Scheduler:
        sched = self.current(name)
        if sched is None:
            known = ", ".join(sorted(s.name for s in self.schedulers)) or "none"
            raise NotFound(f"no scheduler named {name!r} (configured schedulers: {known})")
        return sched

    def list_schedulers(self) -> list[Scheduler]:
        """A reader scoped to some builders sees the schedulers that trigger one of them."""
        return sorted((s for s in self.schedulers if visibility.current() is None
                       or any(visibility.sees(b) for b in s.builders)), key=lambda s: s.name)

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> Scheduler:
        """Enable or disable a scheduler at run time; stored, so it survives a restart. A
        disabled scheduler ignores changes and timers; enabled again, it resumes from its stored
        state (changes it had taken before, last run)."""
        sched = self.scheduler(name)
        await self.store.set_scheduler_enabled(name, enabled)
        if enabled and not sched.enabled:
            record = (await self.store.load_scheduler_state([name]))[name]
            record.enabled = True
            if self.current(name) is sched:
                sched.start(self._runtime, record)
        elif not enabled:
            sched.enabled = False
            sched.stop()
        return sched

    async def aclose(self) -> None:
        """Stop every scheduler's timers and wait for the submissions already under way."""
        for s in self.schedulers:
            s.stop()
        await self.background.wait()
