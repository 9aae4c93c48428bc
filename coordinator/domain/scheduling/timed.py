"""Timed schedulers: Periodic (every N seconds) and Nightly (cron-like), with Buildbot's semantics.

The last run is stored in the transaction of the buildset it created, guarded so that one
scheduled time never fires twice. After a restart:
- Periodic fires at last run + periodicBuildTimer, or at once if that passed while the
  coordinator was down (a first start fires at once, as in Buildbot);
- Nightly fires at the next matching time after now: a time missed while the coordinator was
  down is NOT caught up.
Nightly with onlyIfChanged collects the (classified, stored) changes since its last run and
builds only if one of them is important, at the latest change's revision.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from coordinator.domain.changes.filters import ChangeFilter
from coordinator.domain.model import (
    Change,
    NewBuildset,
    SchedulerCommit,
    SchedulerRecord,
    SourceStamp,
)
from coordinator.domain.ports import TimerHandle
from coordinator.domain.scheduling.cron import CronSpec
from coordinator.domain.scheduling.schedulers import ChangeScheduler, Runtime, _Gathering

log = logging.getLogger(__name__)


class Timed(ChangeScheduler):
    """Base of the timed schedulers: one timer to the next run time."""

    def __init__(
        self,
        name: str,
        builders: Sequence[str],
        *,
        branch: str | None = None,
        onlyIfChanged: bool = False,
        change_filter: ChangeFilter | None = None,
        fileIsImportant: Any = None,
        onlyImportant: bool = False,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
    ) -> None:
        super().__init__(
            name, builders, change_filter=change_filter, fileIsImportant=fileIsImportant,
            onlyImportant=onlyImportant, properties=properties, priority=priority,
        )
        self.branch = branch
        self.onlyIfChanged = onlyIfChanged
        self.last_run: float | None = None
        self._timer: TimerHandle | None = None
        self._next: float | None = None

    def next_run(self, now: float) -> float | None:
        """The next run time at or after `now` (given `last_run`); None: never."""
        raise NotImplementedError

    # ----------------------------------------------------------- changes (onlyIfChanged)

    def wants(self, change: Change) -> bool:
        return (
            self.onlyIfChanged
            and (self.branch is None or change.branch == self.branch)
            and super().wants(change)
        )

    def _arm(self, key: str, gathering: _Gathering) -> None:
        pass  # changes wait for the next run time, not for a tree-stable timer

    # ----------------------------------------------------------- timer

    def start(self, rt: Runtime, record: SchedulerRecord) -> None:
        super().start(rt, record)
        self.last_run = record.last_run
        if self.enabled:
            self._schedule()

    def stop(self) -> None:
        super().stop()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._next = None

    def next_fire_time(self) -> float | None:
        return self._next

    def _schedule(self) -> None:
        rt = self._rt
        assert rt is not None
        now = rt.clock.now()
        at = self.next_run(now)
        if at is None:
            return
        self._next = at
        self._timer = rt.clock.call_later(max(0.0, at - now), lambda: self._run(at))

    def _run(self, at: float) -> None:
        self._timer = None
        self._next = None
        if not self.enabled:
            return
        rt = self._rt
        assert rt is not None
        if rt.clock.now() < at - 1.0:
            # Timers run on the monotonic clock; the wall clock was set back meanwhile. Wait for
            # the wall-clock time the run is scheduled at.
            self._next = at
            self._timer = rt.clock.call_later(at - rt.clock.now(), lambda: self._run(at))
            return
        self.last_run = at
        gathering = self._gatherings.get("")
        changes = list(gathering.changes) if gathering is not None else []
        important = gathering is not None and gathering.last_important_at is not None
        if self.onlyIfChanged and not important:
            log.info("scheduler %r: no important change since the last run; not building", self.name)
            self._submit(None, SchedulerCommit(self.name, last_run=at))
        else:
            self._gatherings.pop("", None)
            bs = self.buildset_for(changes) if changes else self.buildset_without_changes()
            self._submit(bs, SchedulerCommit(self.name, [c.id for c in changes], last_run=at))
        self._schedule()

    def buildset_without_changes(self) -> NewBuildset:
        return NewBuildset(
            reason=f"The {self.kind} scheduler named '{self.name}' triggered this build",
            scheduler=self.name,
            builders=list(self.builders),
            sourcestamps=[SourceStamp(repository="", branch=self.branch or "", revision="", project="")],
            properties=self.scheduler_properties(),
            priority=self.priority,
        )


class Periodic(Timed):
    """Build every `periodicBuildTimer` seconds (Buildbot's Periodic)."""

    def __init__(
        self,
        name: str,
        builderNames: Sequence[str] = (),
        periodicBuildTimer: float = 0,
        branch: str | None = None,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        *,
        builders: Sequence[str] = (),
    ) -> None:
        super().__init__(name, list(builderNames) or list(builders), branch=branch,
                         properties=properties, priority=priority)
        self.periodicBuildTimer = periodicBuildTimer
        timer = periodicBuildTimer
        if isinstance(timer, bool) or not isinstance(timer, int | float) or timer <= 0:
            self.errors.append(f"periodicBuildTimer must be a number of seconds > 0, not {periodicBuildTimer!r}")

    def next_run(self, now: float) -> float | None:
        if self.last_run is None:
            return now
        return max(now, self.last_run + self.periodicBuildTimer)


class Nightly(Timed):
    """Build at times matching a cron-like pattern (Buildbot's Nightly); dayOfWeek 0 = Monday."""

    def __init__(
        self,
        name: str,
        builderNames: Sequence[str] = (),
        minute: Any = 0,
        hour: Any = "*",
        dayOfMonth: Any = "*",
        month: Any = "*",
        dayOfWeek: Any = "*",
        *,
        timezone: str | None = None,
        branch: str | None = None,
        onlyIfChanged: bool = False,
        change_filter: ChangeFilter | None = None,
        fileIsImportant: Any = None,
        onlyImportant: bool = False,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        builders: Sequence[str] = (),
    ) -> None:
        super().__init__(
            name, list(builderNames) or list(builders), branch=branch, onlyIfChanged=onlyIfChanged,
            change_filter=change_filter, fileIsImportant=fileIsImportant,
            onlyImportant=onlyImportant, properties=properties, priority=priority,
        )
        self.minute, self.hour, self.dayOfMonth, self.month, self.dayOfWeek = minute, hour, dayOfMonth, month, dayOfWeek
        self.timezone = timezone
        self.spec, errors = CronSpec.parse(
            timezone, minute=minute, hour=hour, dayOfMonth=dayOfMonth, month=month, dayOfWeek=dayOfWeek
        )
        self.errors.extend(errors)

    def next_run(self, now: float) -> float | None:
        if self.errors:
            return None
        # Strictly after the last run: one scheduled time never runs twice. Times missed while
        # the coordinator was down are not caught up (the search starts at now).
        return self.spec.next_after(max(now, self.last_run or 0.0))
