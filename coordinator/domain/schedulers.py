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

from coordinator.domain.change_filters import ChangeFilter, importance
from coordinator.domain.codebases import parse_codebases, stamps_for_changes
from coordinator.domain.model import Change, NewBuildset, Property, SourceStamp
from coordinator.domain.ports import Clock, TimerHandle
from coordinator.domain.steps import caller_location

log = logging.getLogger(__name__)

Submit = Callable[[NewBuildset], Awaitable[Any]]


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

    def scheduler_properties(self) -> list[Property]:
        return [Property("scheduler", self.name, "Scheduler")] + [
            Property(k, v, "Scheduler") for k, v in self.properties.items()
        ]


class _Gathering:
    """Changes waiting under one tree-stable timer."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.timer: TimerHandle | None = None


class ChangeScheduler(Scheduler):
    """Base of the change-driven schedulers: filter, importance, tree-stable timers.

    An important change (re)starts its timer; an unimportant one (`fileIsImportant` says no) is
    kept and built along with the next important one, or dropped with `onlyImportant=True`.
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

    def on_change(self, change: Change, clock: Clock, submit: Submit, spawn: Callable[[Awaitable[Any]], Any]) -> None:
        if not self.wants(change):
            return
        important = self._important is None or self._important(change)
        if not important and self.onlyImportant:
            return
        key = self.gathering_key(change)
        gathering = self._gatherings.setdefault(key, _Gathering())
        gathering.changes.append(change)
        if not important:
            return  # waits for an important change

        def fire() -> None:
            done = self._gatherings.pop(key, None)
            if done is not None and done.changes:
                spawn(submit(self.buildset_for(done.changes)))

        if gathering.timer is not None:
            gathering.timer.cancel()
            gathering.timer = None
        if self.tree_stable_timer is None:
            fire()
        else:
            gathering.timer = clock.call_later(self.tree_stable_timer, fire)

    def stop(self) -> None:
        for gathering in self._gatherings.values():
            if gathering.timer is not None:
                gathering.timer.cancel()
                gathering.timer = None

    def buildset_for(self, changes: list[Change]) -> NewBuildset:
        props = [Property(k, v, "Change") for c in changes for k, v in c.properties.items()]
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
        return f"{change.codebase}\0{change.branch}"


class ForceScheduler(Scheduler):
    """Lets a person (API, CLI) force a build of its builders."""

    def buildset_for(
        self,
        builder: str,
        *,
        reason: str,
        owner: str,
        branch: str,
        revision: str,
        repository: str,
        project: str,
        properties: list[Property],
    ) -> NewBuildset:
        who = f" by '{owner}'" if owner else ""
        text = f"A build was forced{who}" + (f": {reason}" if reason else "")
        props = [Property(p.name, p.value, "Force Build Form") for p in properties]
        if owner:
            props.append(Property("owner", owner, "Force Build Form"))
        props.append(Property("reason", reason, "Force Build Form"))
        return NewBuildset(
            reason=text,
            scheduler=self.name,
            builders=[builder],
            sourcestamps=[SourceStamp(repository=repository, branch=branch, revision=revision, project=project)],
            properties=props + self.scheduler_properties(),
            priority=self.priority,
        )
