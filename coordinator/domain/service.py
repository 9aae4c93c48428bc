"""The coordinator's use cases, called by the API adapters: submit changes, force and stop
builds, and the read side. Each write follows one path: decide -> persist -> publish event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from coordinator.domain.builders import Builder
from coordinator.domain.dispatcher import Dispatcher
from coordinator.domain.errors import InvalidArgument, NotFound
from coordinator.domain.events import Event, EventBus
from coordinator.domain.force import ForceScheduler as TypedForceScheduler
from coordinator.domain.force import ParameterInfo
from coordinator.domain.model import (
    Build,
    BuildRequest,
    Change,
    NewBuildset,
    Property,
    SourceStamp,
    WorkerRecord,
)
from coordinator.domain.ports import Clock, Notification, Repository
from coordinator.domain.schedulers import ChangeScheduler, ForceScheduler, Scheduler
from coordinator.domain.sessions import WorkerRegistry
from coordinator.domain.trigger_port import Triggered
from coordinator.domain.triggerable import (
    BuildsetFollower,
    Dependent,
    Triggerable,
    wants_downstream,
)
from coordinator.domain.validation import check_changes, check_length, check_properties

log = logging.getLogger(__name__)


class CoordinatorService:
    def __init__(
        self,
        repo: Repository,
        clock: Clock,
        dispatcher: Dispatcher,
        workers: WorkerRegistry,
        bus: EventBus | None = None,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.dispatcher = dispatcher
        self.workers = workers
        self.schedulers: list[Scheduler] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._follower = BuildsetFollower()
        dispatcher.trigger_port = self
        if bus is not None:
            bus.add_listener(self._on_event)

    def configure(self, builders: Sequence[Builder], schedulers: Sequence[Scheduler]) -> None:
        for old in self.schedulers:
            if isinstance(old, ChangeScheduler):
                old.stop()
        self.schedulers = list(schedulers)
        self.dispatcher.configure(builders)

    def _spawn(self, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)

        def done(t: asyncio.Future[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background work failed: %s", t.exception())

        task.add_done_callback(done)

    async def aclose(self) -> None:
        for s in self.schedulers:
            if isinstance(s, ChangeScheduler):
                s.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ writes

    async def submit_changes(self, changes: list[Change], idempotency_key: str = "") -> tuple[list[int], bool]:
        check_changes(changes, idempotency_key)
        now = self.clock.now()
        for c in changes:
            if not c.when:
                c.when = now
        ids, duplicate = await self.repo.add_changes(changes, idempotency_key, now)
        if not duplicate:
            for c, cid in zip(changes, ids, strict=True):
                c.id = cid
                for s in self.schedulers:
                    if isinstance(s, ChangeScheduler):
                        s.on_change(c, self.clock, self.submit_buildset, self._spawn)
        return ids, duplicate

    async def submit_buildset(self, bs: NewBuildset) -> tuple[int, dict[str, int]]:
        now = self.clock.now()
        bs_id, req_ids = await self.repo.add_buildset(bs, now)
        for builder, req_id in req_ids.items():
            self.dispatcher.add_request(
                BuildRequest(id=req_id, buildset_id=bs_id, builder=builder, priority=bs.priority, submitted_at=now)
            )
        return bs_id, req_ids

    async def trigger(
        self,
        scheduler: str,
        sourcestamps: Sequence[SourceStamp],
        properties: Sequence[Property],
        *,
        wait: bool,
        parent: tuple[str, int],
    ) -> Triggered:
        """A Trigger step's buildset (the TriggerPort the dispatcher hands to builds)."""
        sched = next((s for s in self.schedulers if s.name == scheduler), None)
        if not isinstance(sched, Triggerable):
            known = ", ".join(s.name for s in self.schedulers if isinstance(s, Triggerable)) or "none"
            what = "no scheduler" if sched is None else f"scheduler {scheduler!r} is not a Triggerable; no Triggerable"
            raise LookupError(f"{what} named {scheduler!r} (Triggerable schedulers: {known})")
        bs_id, req_ids = await self.submit_buildset(sched.buildset_for(sourcestamps, properties, parent))
        triggered = Triggered(scheduler, bs_id, req_ids)

        def stop(reason: str) -> None:
            for builder, number in triggered.builds:
                runner = self.dispatcher.find_running(builder, number)
                if runner is not None:
                    runner.stop(reason)

        triggered.stop = stop
        if wait:
            # No await since the commit: the buildset cannot have finished yet.
            self._follower.follow(triggered)
        return triggered

    def _on_event(self, event: Event) -> None:
        self._follower.on_event(event)
        if event.kind == "buildset.finished" and wants_downstream(event.result):
            if any(isinstance(s, Dependent) for s in self.schedulers):
                self._spawn(self._run_dependents(event.buildset_id))

    async def _run_dependents(self, buildset_id: int) -> None:
        upstream = await self.repo.get_buildset(buildset_id)
        if upstream is None:
            return
        for sched in self.schedulers:
            if isinstance(sched, Dependent) and sched.upstream_name == upstream.scheduler:
                await self.submit_buildset(sched.buildset_for(buildset_id, upstream.sourcestamps))

    async def force_build(
        self,
        builder: str,
        *,
        reason: str = "",
        owner: str = "",
        branch: str = "",
        revision: str = "",
        repository: str = "",
        project: str = "",
        properties: list[Property] | None = None,
        sourcestamps: list[SourceStamp] | None = None,
        scheduler: str = "",
    ) -> tuple[int, int]:
        if not builder:
            raise InvalidArgument("builder is required")
        self.builder(builder)
        for field, value, limit in (
            ("reason", reason, 1024), ("owner", owner, 256), ("branch", branch, 256),
            ("revision", revision, 256), ("repository", repository, 1024), ("project", project, 256),
        ):
            check_length(field, value, limit)
        props = properties or []
        check_properties(props)
        sched = self.force_scheduler(builder, scheduler)
        for i, stamp in enumerate(sourcestamps or ()):
            for field, value, limit in (
                ("codebase", stamp.codebase, 256), ("branch", stamp.branch, 256), ("revision", stamp.revision, 256),
                ("repository", stamp.repository, 1024), ("project", stamp.project, 256),
            ):
                check_length(f"sourcestamps[{i}].{field}", value, limit)
        if isinstance(sched, TypedForceScheduler):
            top = SourceStamp(repository=repository, branch=branch, revision=revision, project=project)
            bs = sched.force_buildset(
                builder, reason=reason, owner=owner, top=top, per_codebase=sourcestamps or [], properties=props,
            )
        else:
            if sourcestamps:
                raise InvalidArgument(f"ForceScheduler {sched.name!r} declares no codebases")
            bs = sched.buildset_for(
                builder, reason=reason, owner=owner, branch=branch, revision=revision,
                repository=repository, project=project, properties=props,
            )
        bs_id, req_ids = await self.submit_buildset(bs)
        return bs_id, req_ids[builder]

    def force_scheduler(self, builder: str, name: str = "") -> ForceScheduler:
        """The ForceScheduler named `name` (empty: the first one) that lists `builder`."""
        forcing = [s for s in self.schedulers if isinstance(s, ForceScheduler) and builder in s.builders]
        found = next((s for s in forcing if not name or s.name == name), None)
        if found is not None:
            return found
        if not forcing:
            raise InvalidArgument(
                f"builder {builder!r} cannot be forced: no ForceScheduler lists it in the configuration"
            )
        raise InvalidArgument(
            f"no ForceScheduler named {name!r} lists builder {builder!r} "
            f"(ForceSchedulers of {builder!r}: {', '.join(s.name for s in forcing)})"
        )

    def force_form(self, builder: str) -> tuple[str, list[ParameterInfo], list[SourceStamp]]:
        """What forcing `builder` takes: its ForceScheduler's name ("" if none), parameters and
        codebases with their defaults."""
        try:
            sched = self.force_scheduler(builder)
        except InvalidArgument:
            return "", [], []
        if not isinstance(sched, TypedForceScheduler):
            return sched.name, [], []
        return sched.name, sched.parameter_infos(), list((sched.codebases or {}).values())

    async def stop_build(self, builder: str, number: int, reason: str) -> bool:
        build = await self.get_build(builder, number)
        if build.complete:
            return False
        runner = self.dispatcher.find_running(builder, number)
        if runner is None:
            return False
        runner.stop(reason or "stopped by request")
        return True

    # ------------------------------------------------------------ reads

    def builder(self, name: str) -> Builder:
        b = self.dispatcher.builders.get(name)
        if b is None:
            known = ", ".join(sorted(self.dispatcher.builders)) or "none"
            raise NotFound(f"no builder named {name!r} (configured builders: {known})")
        return b

    def pending_count(self, builder: str) -> int:
        """Unstarted build requests of a builder."""
        return self.dispatcher.pending_count(builder)

    def list_builders(self) -> list[Builder]:
        return list(self.dispatcher.builders.values())

    async def get_build(self, builder: str, number: int) -> Build:
        build = await self.repo.get_build(builder, number)
        if build is None:
            raise NotFound(f"builder {builder!r} has no build number {number}")
        return build

    async def list_builds(self, builder: str, limit: int) -> list[Build]:
        if builder:
            self.builder(builder)
        return await self.repo.list_builds(builder, _limit(limit))

    async def list_changes(self, limit: int) -> list[Change]:
        return await self.repo.list_changes(_limit(limit))

    async def get_change(self, change_id: int) -> Change:
        change = await self.repo.get_change(change_id)
        if change is None:
            raise NotFound(f"no change with id {change_id}")
        return change

    async def list_notifications(self, limit: int, state: str) -> list[Notification]:
        if state not in NOTIFICATION_STATES:
            raise InvalidArgument(f"state must be one of pending, sent, failed (or empty), not {state!r}")
        return await self.repo.list_notifications(_limit(limit), state)

    async def list_workers(self) -> list[WorkerRecord]:
        stored = {w.name: w for w in await self.repo.list_workers()}
        out = []
        for name, decl in sorted(self.workers.decls.items()):
            rec = stored.get(name) or WorkerRecord(name=name, connected=False, since=None, max_builds=0)
            session = self.workers.sessions.get(name)
            rec.connected = session is not None
            rec.max_builds = decl.max_builds
            if session is not None:
                rec.since = session.connected_at
                rec.info = dict(session.info)
                rec.running_builds = sorted(b for b in session.builds if not b.startswith("request:"))
            out.append(rec)
        return out


NOTIFICATION_STATES = ("", "pending", "sent", "failed")


def _limit(limit: int) -> int:
    if limit < 0:
        raise InvalidArgument("limit must not be negative")
    return min(limit or 20, 1000)
