"""Scheduler management: taking a configuration, starting the schedulers from their stored
state, classifying submitted changes for them, looking them up, enabling and disabling them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from coordinator.domain.builds.builders import Builder
from coordinator.domain.errors import NotFound
from coordinator.domain.model import (
    Change,
    Classified,
    NewBuildset,
    SchedulerCommit,
)
from coordinator.domain.scheduling.downstream import Downstream
from coordinator.domain.scheduling.schedulers import ChangeScheduler, Runtime, Scheduler
from coordinator.domain.scheduling.triggerable import (
    Dependent,
)

# The service's logger name, as before the split: log configuration and tests select it.
log = logging.getLogger("coordinator.domain.service")


class SchedulerControl(Downstream):
    """Builds on :class:`Downstream`: starting the schedulers includes the Dependents' backlog."""

    def configure(self, builders: Sequence[Builder], schedulers: Sequence[Scheduler]) -> None:
        """Take a configuration; call `start_schedulers` next (it reads their stored state)."""
        for old in self.schedulers:
            old.stop()
        self.schedulers = list(schedulers)
        self.dispatcher.configure(builders)

    async def start_schedulers(self) -> None:
        """Start every scheduler from its stored state: enabled or not, pending changes (their
        tree-stable timers resume with the time left), last run of the timed ones."""
        names = [s.name for s in self.schedulers]
        dropped = await self.repo.forget_schedulers(
            names, [s.name for s in self.schedulers if isinstance(s, Dependent)]
        )
        for name, count in sorted(dropped.items()):
            log.info("scheduler %r is no longer configured: dropped its %d pending change(s)", name, count)
        records = await self.repo.load_scheduler_state(names)
        for s in self.schedulers:
            s.start(self._runtime, records[s.name])
        for s in self.schedulers:
            if isinstance(s, Dependent) and s.upstream_name:
                await self._catch_up(s)

    @property
    def _runtime(self) -> Runtime:
        return Runtime(self.clock, self._submit_scheduled, self._spawn)

    async def _submit_scheduled(self, bs: NewBuildset | None, commit: SchedulerCommit) -> None:
        await self.submit_buildset(bs, commit)

    def _classify(self, changes: list[Change]) -> list[Classified]:
        """Which schedulers take each change: decided before storing, so it commits with the
        changes (no extra commit per change); the schedulers see them once stored (`_take`)."""
        return [
            Classified(i, s.name, verdict[0], verdict[1])
            for i, c in enumerate(changes)
            for s in self.schedulers
            if isinstance(s, ChangeScheduler) and (verdict := s.classify(c)) is not None
        ]

    def _take(self, changes: list[Change], ids: list[int], classified: list[Classified], now: float) -> None:
        for c, cid in zip(changes, ids, strict=True):
            c.id = cid
        for k in classified:
            sched = self._current(k.scheduler)
            if isinstance(sched, ChangeScheduler) and sched.enabled:
                sched.add_classified(changes[k.index], k.key, k.important, now)

    def _current(self, name: str) -> Scheduler | None:
        return next((s for s in self.schedulers if s.name == name), None)

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> Scheduler:
        """Enable or disable a scheduler at run time; stored, so it survives a restart. A
        disabled scheduler ignores changes and timers; enabled again, it resumes from its stored
        state (changes it had taken before, last run)."""
        sched = self.scheduler(name)
        await self.repo.set_scheduler_enabled(name, enabled)
        if enabled and not sched.enabled:
            record = (await self.repo.load_scheduler_state([name]))[name]
            record.enabled = True
            if self._current(name) is sched:
                sched.start(self._runtime, record)
        elif not enabled:
            sched.enabled = False
            sched.stop()
        return sched

    def scheduler(self, name: str) -> Scheduler:
        sched = self._current(name)
        if sched is None:
            known = ", ".join(sorted(s.name for s in self.schedulers)) or "none"
            raise NotFound(f"no scheduler named {name!r} (configured schedulers: {known})")
        return sched

    def list_schedulers(self) -> list[Scheduler]:
        return sorted(self.schedulers, key=lambda s: s.name)
