"""Schedulers: they turn changes (or a person's request) into buildsets.

Tree-stable-timer semantics are Buildbot's: a change on the scheduler's branch (re)starts the
timer; when the tree has been quiet for `tree_stable_timer` seconds, ONE buildset is created for
all the changes gathered. With `tree_stable_timer=None`, every change gets its own buildset.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

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


class SingleBranchScheduler(Scheduler):
    def __init__(
        self,
        name: str,
        branch: str | None = None,
        tree_stable_timer: float | None = None,
        builders: Sequence[str] = (),
        *,
        treeStableTimer: float | None = None,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
    ) -> None:
        super().__init__(name, builders, properties, priority)
        self.branch = branch
        self.tree_stable_timer = tree_stable_timer if tree_stable_timer is not None else treeStableTimer
        # runtime state
        self._pending: list[Change] = []
        self._timer: TimerHandle | None = None

    def wants(self, change: Change) -> bool:
        return self.branch is None or change.branch == self.branch

    def on_change(self, change: Change, clock: Clock, submit: Submit, spawn: Callable[[Awaitable[Any]], Any]) -> None:
        if not self.wants(change):
            return
        if self.tree_stable_timer is None:
            spawn(submit(self.buildset_for([change])))
            return
        self._pending.append(change)
        if self._timer is not None:
            self._timer.cancel()

        def fire() -> None:
            self._timer = None
            gathered, self._pending = self._pending, []
            if gathered:
                spawn(submit(self.buildset_for(gathered)))

        self._timer = clock.call_later(self.tree_stable_timer, fire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def buildset_for(self, changes: list[Change]) -> NewBuildset:
        last = changes[-1]
        props = [Property(k, v, "Change") for c in changes for k, v in c.properties.items()]
        return NewBuildset(
            reason=f"The SingleBranchScheduler scheduler named '{self.name}' triggered this build",
            scheduler=self.name,
            builders=list(self.builders),
            sourcestamps=[
                SourceStamp(
                    repository=last.repository,
                    branch=last.branch,
                    revision=last.revision,
                    project=last.project,
                    codebase=last.codebase,
                )
            ],
            properties=props + self.scheduler_properties(),
            change_ids=[c.id for c in changes],
            priority=self.priority,
        )


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
