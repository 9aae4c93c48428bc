"""Schedulers: they turn changes (or a person's request) into buildsets.

Tree-stable-timer semantics are Buildbot's: an important change the scheduler wants (re)starts
the timer; when the tree has been quiet for `tree_stable_timer` seconds, ONE buildset is created
for all the changes gathered. With `tree_stable_timer=None`, every important change gets its own
buildset at once. AnyBranchScheduler keeps one timer per branch.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from coordinator.domain.changes.codebases import parse_codebases, stamps_for_changes
from coordinator.domain.changes.filters import ChangeFilter, importance
from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.location import caller_location
from coordinator.domain.model import (
    Change,
    NewBuildset,
    PropertyValue,
    SchedulerCommit,
    SchedulerRecord,
)
from coordinator.domain.ports import Clock, TimerHandle

log = logging.getLogger(__name__)

# Submit a buildset (None: only the state commit) with the scheduler state it consumes.
Submit = Callable[[NewBuildset | None, SchedulerCommit], Awaitable[Any]]
Spawn = Callable[[Awaitable[Any]], Any]


class Runtime:
    """What a started scheduler uses: time, the way to submit (buildset + state commit, in one
    transaction), and a way to run that submission in the background."""

    def __init__(self, clock: Clock, submit: Submit, spawn: Spawn) -> None:
        self.clock = clock
        self.submit = submit
        self.spawn = spawn


class Scheduler:
    def __init__(
        self,
        name: str,
        builders: Sequence[str],
        properties: dict[str, Any] | None = None,
        priority: int = 0,
    ) -> None:
        self.defined_at = caller_location()
        self.name = name
        self.builders = list(builders)
        self.properties = dict(properties or {})
        self.priority = priority
        self.errors: list[str] = []  # reported by checkconfig at `defined_at`
        self.enabled = True  # run-time state, stored; see SchedulerControl.set_scheduler_enabled
        self._rt: Runtime | None = None

    @property
    def kind(self) -> str:
        return type(self).__name__

    def scheduler_properties(self) -> list[PropertyValue]:
        return [PropertyValue("scheduler", self.name, "Scheduler")] + [
            PropertyValue(k, v, "Scheduler") for k, v in self.properties.items()
        ]

    def start(self, rt: Runtime, record: SchedulerRecord) -> None:
        """Begin (or resume, after a restart or being enabled) from the stored state."""
        self.stop()
        self._rt = rt
        self.enabled = record.enabled

    def stop(self) -> None:
        """Cancel timers; stored state stays for the next start."""

    def next_fire_time(self) -> float | None:
        """When a timer of this scheduler fires next (Unix time), if one is armed."""
        return None

    def _submit(self, bs: NewBuildset | None, commit: SchedulerCommit) -> None:
        rt = self._rt
        assert rt is not None, "scheduler not started"

        async def run() -> None:
            try:
                await rt.submit(bs, commit)
            except AlreadyScheduled as exc:
                log.info("scheduler %r: %s", self.name, exc)

        rt.spawn(run())


class _Gathering:
    """Changes waiting under one tree-stable timer."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.timer: TimerHandle | None = None
        self.deadline: float | None = None
        self.last_important_at: float | None = None


class ChangeScheduler(Scheduler):
    """Base of the change-driven schedulers: filter, importance, tree-stable timers.

    An important change (re)starts its timer; an unimportant one (`fileIsImportant` says no) is
    kept and built along with the next important one, or dropped with `onlyImportant=True`.
    The changes a scheduler accepted are stored with the change (see scheduler_state), so after
    a restart the timer resumes with the time it had left.
    """

    def __init__(
        self,
        name: str,
        builders: Sequence[str],
        *,
        tree_stable_timer: float | None = None,
        change_filter: ChangeFilter | None = None,
        fileIsImportant: Any = None,
        onlyImportant: bool = False,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        codebases: Any = None,
    ) -> None:
        super().__init__(name, builders, properties, priority)
        self.errors: list[str] = []
        # With codebases, only changes of those codebases count (Buildbot).
        self.codebases = parse_codebases(codebases, self.errors)
        self.tree_stable_timer = tree_stable_timer
        self.change_filter = change_filter
        self.file_is_important = fileIsImportant
        self._important = importance(fileIsImportant)
        self.onlyImportant = onlyImportant
        self._gatherings: dict[str, _Gathering] = {}

    def wants(self, change: Change) -> bool:
        if self.codebases is not None and change.codebase not in self.codebases:
            return False
        return self.change_filter is None or self.change_filter.matches(change)

    def gathering_key(self, change: Change) -> str:
        return ""

    def classify(self, change: Change) -> tuple[str, bool] | None:
        """(gathering key, important) if this scheduler takes the change, else None. Pure: it
        runs before the change is stored, so the classification commits with the change."""
        if not self.enabled or not self.wants(change):
            return None
        important = self._important is None or bool(self._important(change))
        if not important and self.onlyImportant:
            return None
        return self.gathering_key(change), important

    def on_change(self, change: Change, clock: Clock, submit: Submit, spawn: Spawn) -> None:
        """Classify and take a change in one go (the service classifies before storing and
        calls `add_classified` after the commit)."""
        if self._rt is None:
            self._rt = Runtime(clock, submit, spawn)
        verdict = self.classify(change)
        if verdict is not None:
            self.add_classified(change, verdict[0], verdict[1], clock.now())

    def add_classified(self, change: Change, key: str, important: bool, at: float) -> None:
        gathering = self._gatherings.setdefault(key, _Gathering())
        gathering.changes.append(change)
        if important:
            gathering.last_important_at = at
            self._arm(key, gathering)

    def start(self, rt: Runtime, record: SchedulerRecord) -> None:
        super().start(rt, record)
        self._gatherings = {}
        for p in sorted(record.pending, key=lambda p: p.change.id):
            gathering = self._gatherings.setdefault(p.key, _Gathering())
            gathering.changes.append(p.change)
            if p.important:
                at = gathering.last_important_at
                gathering.last_important_at = p.classified_at if at is None else max(at, p.classified_at)
        if self.enabled:
            for key, gathering in list(self._gatherings.items()):
                if gathering.last_important_at is not None:
                    self._arm(key, gathering)

    def _arm(self, key: str, gathering: _Gathering) -> None:
        """(Re)start the tree-stable timer from the last important change."""
        rt = self._rt
        assert rt is not None
        if gathering.timer is not None:
            gathering.timer.cancel()
            gathering.timer = None
        assert gathering.last_important_at is not None
        if self.tree_stable_timer is None:
            self._fire(key)
            return
        gathering.deadline = gathering.last_important_at + self.tree_stable_timer
        delay = max(0.0, gathering.deadline - rt.clock.now())
        gathering.timer = rt.clock.call_later(delay, lambda: self._fire(key))

    def _fire(self, key: str) -> None:
        done = self._gatherings.pop(key, None)
        if done is None or not done.changes or not self.enabled:
            return
        self._submit(self.buildset_for(done.changes), SchedulerCommit(self.name, [c.id for c in done.changes]))

    def stop(self) -> None:
        for gathering in self._gatherings.values():
            if gathering.timer is not None:
                gathering.timer.cancel()
                gathering.timer = None
                gathering.deadline = None

    def next_fire_time(self) -> float | None:
        deadlines = [g.deadline for g in self._gatherings.values() if g.timer is not None and g.deadline is not None]
        return min(deadlines) if deadlines else None

    def buildset_for(self, changes: list[Change]) -> NewBuildset:
        props = [PropertyValue(k, v, "Change") for c in changes for k, v in c.properties.items()]
        return NewBuildset(
            reason=f"The {type(self).__name__} scheduler named '{self.name}' triggered this build",
            scheduler=self.name,
            builders=list(self.builders),
            sourcestamps=stamps_for_changes(self.codebases, changes),
            properties=props + self.scheduler_properties(),
            change_ids=[c.id for c in changes],
            priority=self.priority,
        )


class SingleBranchScheduler(ChangeScheduler):
    """One branch (or whatever `change_filter` selects), one tree-stable timer."""

    def __init__(
        self,
        name: str,
        branch: str | None = None,
        tree_stable_timer: float | None = None,
        builders: Sequence[str] = (),
        *,
        treeStableTimer: float | None = None,
        change_filter: ChangeFilter | None = None,
        fileIsImportant: Any = None,
        onlyImportant: bool = False,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        codebases: Any = None,
    ) -> None:
        super().__init__(
            name, builders,
            tree_stable_timer=tree_stable_timer if tree_stable_timer is not None else treeStableTimer,
            change_filter=change_filter, fileIsImportant=fileIsImportant,
            onlyImportant=onlyImportant, properties=properties, priority=priority, codebases=codebases,
        )
        self.branch = branch

    def wants(self, change: Change) -> bool:
        return (self.branch is None or change.branch == self.branch) and super().wants(change)


class AnyBranchScheduler(ChangeScheduler):
    """Every branch its filter lets through, with one tree-stable timer (and build) per branch."""

    def __init__(
        self,
        name: str,
        builders: Sequence[str] = (),
        tree_stable_timer: float | None = None,
        *,
        treeStableTimer: float | None = None,
        branches: Sequence[str] | None = None,
        change_filter: ChangeFilter | None = None,
        fileIsImportant: Any = None,
        onlyImportant: bool = False,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        codebases: Any = None,
    ) -> None:
        super().__init__(
            name, builders,
            tree_stable_timer=tree_stable_timer if tree_stable_timer is not None else treeStableTimer,
            change_filter=change_filter, fileIsImportant=fileIsImportant,
            onlyImportant=onlyImportant, properties=properties, priority=priority, codebases=codebases,
        )
        self.branches = None if branches is None else list(branches)

    def wants(self, change: Change) -> bool:
        return (self.branches is None or change.branch in self.branches) and super().wants(change)

    def gathering_key(self, change: Change) -> str:
        return f"{change.codebase}\x1f{change.branch}"  # no NUL: PostgreSQL text refuses it
