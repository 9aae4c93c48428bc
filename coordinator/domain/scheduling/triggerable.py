"""Schedulers driven by other builds: Triggerable (started by a Trigger step) and Dependent
(started when an upstream scheduler's buildset succeeds), and the follower that resolves
triggered buildsets from domain events (never by polling the database)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from coordinator.domain.changes.codebases import parse_codebases, with_defaults
from coordinator.domain.events import Event
from coordinator.domain.model import NewBuildset, PropertyValue, SourceStamp
from coordinator.domain.results import Result
from coordinator.domain.scheduling.schedulers import Scheduler
from coordinator.domain.steps.trigger_port import Triggered


class Triggerable(Scheduler):
    """Builds only when a Trigger step names it (Buildbot's Triggerable)."""

    def __init__(
        self,
        name: str,
        builderNames: Sequence[str] = (),
        codebases: Any = None,
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        *,
        builders: Sequence[str] = (),
    ) -> None:
        super().__init__(name, list(builderNames) or list(builders), properties, priority)
        self.errors: list[str] = []
        self.codebases = parse_codebases(codebases, self.errors)

    def buildset_for(
        self, sourcestamps: Sequence[SourceStamp], properties: Sequence[PropertyValue], parent: tuple[str, int]
    ) -> NewBuildset:
        given = {p.name: p for p in self.scheduler_properties()}
        # The Trigger step's properties win over the scheduler's own (as in Buildbot).
        given.update({p.name: p for p in properties})
        return NewBuildset(
            reason=f"The Triggerable scheduler named '{self.name}' triggered this build "
            f"(from {parent[0]}/{parent[1]})",
            scheduler=self.name,
            builders=list(self.builders),
            sourcestamps=with_defaults(self.codebases, sourcestamps),
            properties=list(given.values()),
            priority=self.priority,
        )


class Dependent(Scheduler):
    """Builds the source stamps of each buildset of `upstream` that ends SUCCESS or WARNINGS
    (Buildbot's Dependent scheduler)."""

    def __init__(
        self,
        name: str,
        upstream: Scheduler | None = None,
        builderNames: Sequence[str] = (),
        properties: dict[str, Any] | None = None,
        priority: int = 0,
        *,
        builders: Sequence[str] = (),
    ) -> None:
        super().__init__(name, list(builderNames) or list(builders), properties, priority)
        self.errors: list[str] = []
        if not isinstance(upstream, Scheduler):
            self.errors.append(f"upstream must be a scheduler object (not its name), not {upstream!r}")
        self.upstream = upstream

    @property
    def upstream_name(self) -> str:
        return self.upstream.name if isinstance(self.upstream, Scheduler) else ""

    def buildset_for(self, upstream_id: int, sourcestamps: Sequence[SourceStamp]) -> NewBuildset:
        return NewBuildset(
            reason=f"downstream of buildset {upstream_id} (scheduler '{self.upstream_name}')",
            scheduler=self.name,
            builders=list(self.builders),
            sourcestamps=list(sourcestamps),
            properties=self.scheduler_properties(),
            priority=self.priority,
        )


def wants_downstream(result: Result | None) -> bool:
    return result in (Result.SUCCESS, Result.WARNINGS)


class BuildsetFollower:
    """Resolves followed buildsets from the event stream: records their builds as they start and
    their result when they finish. Only followed buildsets cost anything."""

    def __init__(self) -> None:
        self._followed: dict[int, list[Triggered]] = {}

    def follow(self, triggered: Triggered) -> None:
        triggered.finished = asyncio.get_running_loop().create_future()
        self._followed.setdefault(triggered.buildset_id, []).append(triggered)

        def release() -> None:
            waiting = self._followed.get(triggered.buildset_id, [])
            if triggered in waiting:
                waiting.remove(triggered)
            if not waiting:
                self._followed.pop(triggered.buildset_id, None)

        triggered.release = release

    def __len__(self) -> int:
        return len(self._followed)

    def on_event(self, event: Event) -> None:
        followers = self._followed.get(event.buildset_id) if event.buildset_id else None
        if not followers:
            return
        if event.kind == "build.started":
            for t in followers:
                t.builds.append((event.builder, event.build_number))
                t.progress.set()
        elif event.kind == "buildset.finished":
            self._followed.pop(event.buildset_id, None)
            for t in followers:
                if t.finished is not None and not t.finished.done():
                    t.finished.set_result(event.result if event.result is not None else Result.SUCCESS)
                t.progress.set()
