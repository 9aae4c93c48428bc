"""The coordinator's use cases, called by the API adapters: submit changes, force and stop
builds, and the read side. Each write follows one path: decide -> persist -> publish event."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

from coordinator.domain.builders import Builder
from coordinator.domain.dispatcher import Dispatcher
from coordinator.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from coordinator.domain.eta import BuildEstimate, EtaEstimator, expected_starts
from coordinator.domain.events import Event, EventBus
from coordinator.domain.force import ForceScheduler as TypedForceScheduler
from coordinator.domain.force import ParameterInfo
from coordinator.domain.model import (
    Artifact,
    Build,
    BuildRequest,
    Buildset,
    Change,
    NewBuildset,
    PendingRequest,
    Property,
    SourceStamp,
    WorkerRecord,
)
from coordinator.domain.ports import ArtifactStore, Clock, Notification, Repository
from coordinator.domain.scheduler_state import AlreadyScheduled, Classified, SchedulerCommit
from coordinator.domain.schedulers import ChangeScheduler, ForceScheduler, Runtime, Scheduler
from coordinator.domain.sessions import WorkerRegistry
from coordinator.domain.trigger_port import Triggered
from coordinator.domain.triggerable import (
    BuildsetFollower,
    Dependent,
    Triggerable,
    wants_downstream,
)
from coordinator.domain.validation import (
    MAX_CHANGES_PER_REQUEST,
    check_changes,
    check_length,
    check_properties,
    fit_polled_change,
)

log = logging.getLogger(__name__)


class CoordinatorService:
    def __init__(
        self,
        repo: Repository,
        clock: Clock,
        dispatcher: Dispatcher,
        workers: WorkerRegistry,
        bus: EventBus | None = None,
        estimator: EtaEstimator | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self.repo = repo
        self.artifacts = artifacts
        self.clock = clock
        self.dispatcher = dispatcher
        self.workers = workers
        self.estimator = estimator  # None: no estimates (it must be fed finished builds to stay fresh)
        self.schedulers: list[Scheduler] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._follower = BuildsetFollower()
        dispatcher.trigger_port = self
        if bus is not None:
            bus.add_listener(self._on_event)

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

    async def _catch_up(self, sched: Dependent) -> None:
        """Make the downstream buildsets of upstream buildsets that succeeded while no
        coordinator ran (or before it could act); a disabled Dependent records them as skipped."""
        for upstream in await self.repo.dependent_backlog(sched.name, sched.upstream_name):
            log.info("scheduler %r: upstream buildset %d finished while the coordinator was down%s",
                     sched.name, upstream.id, "" if sched.enabled else " (disabled: skipped)")
            await self._downstream(sched, upstream)

    @property
    def _runtime(self) -> Runtime:
        return Runtime(self.clock, self._submit_scheduled, self._spawn)

    async def _submit_scheduled(self, bs: NewBuildset | None, commit: SchedulerCommit) -> None:
        await self.submit_buildset(bs, commit)

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
            s.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------ writes

    async def submit_changes(self, changes: list[Change], idempotency_key: str = "") -> tuple[list[int], bool]:
        check_changes(changes, idempotency_key)
        now = self.clock.now()
        for c in changes:
            if not c.when:
                c.when = now
        classified = self._classify(changes)
        ids, duplicate = await self.repo.add_changes(changes, idempotency_key, now, classified)
        if not duplicate:
            self._take(changes, ids, classified, now)
        return ids, duplicate

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

    # change sources (GitPoller) store what they saw with what they submit: see change_sources.py

    async def change_source_state(self, name: str) -> dict[str, str] | None:
        return await self.repo.get_change_source_state(name)

    async def submit_polled_changes(
        self, name: str, changes: list[Change], state: dict[str, str], previous: dict[str, str] | None
    ) -> None:
        for c in changes:
            fit_polled_change(c)
        for i in range(0, len(changes), MAX_CHANGES_PER_REQUEST):
            check_changes(changes[i : i + MAX_CHANGES_PER_REQUEST], "")
        now = self.clock.now()
        classified = self._classify(changes)
        ids = await self.repo.add_polled_changes(name, changes, state, now, previous, classified)
        self._take(changes, ids, classified, now)

    async def submit_buildset(
        self, bs: NewBuildset | None, commit: SchedulerCommit | None = None
    ) -> tuple[int, dict[str, int]]:
        """Store a buildset and queue its requests; `commit` (scheduler state it consumes) is
        applied in the same transaction. bs None stores only the commit."""
        now = self.clock.now()
        bs_id, req_ids = await self.repo.add_buildset(bs, now, commit)
        if bs is None:
            return bs_id, req_ids
        # What the dispatcher needs of the buildset (properties, source stamps, collapse checks)
        # travels with its requests: no read of the buildset just committed when they start.
        stored = Buildset(
            id=bs_id, reason=bs.reason, scheduler=bs.scheduler, submitted_at=now,
            sourcestamps=list(bs.sourcestamps), properties=[_as_stored(p) for p in bs.properties],
            change_ids=list(bs.change_ids),
        )
        for builder, req_id in req_ids.items():
            self.dispatcher.add_request(
                BuildRequest(id=req_id, buildset_id=bs_id, builder=builder, priority=bs.priority, submitted_at=now,
                             buildset=stored)
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
        if isinstance(sched, Triggerable) and not sched.enabled:
            raise LookupError(f"Triggerable scheduler {scheduler!r} is disabled (`gantry scheduler enable {scheduler}`)")
        if not isinstance(sched, Triggerable):
            known = ", ".join(s.name for s in self.schedulers if isinstance(s, Triggerable)) or "none"
            what = "no scheduler" if sched is None else f"scheduler {scheduler!r} is not a Triggerable; no Triggerable"
            raise LookupError(f"{what} named {scheduler!r} (Triggerable schedulers: {known})")
        bs_id, req_ids = await self.submit_buildset(sched.buildset_for(sourcestamps, properties, parent))
        triggered = Triggered(scheduler, bs_id, req_ids)

        async def stop(reason: str) -> None:
            # Cancel first, so what has not started cannot start; then stop what has.
            await self._cancel(list(req_ids.values()), reason)
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
                await self._downstream(sched, upstream)

    async def _downstream(self, sched: Dependent, upstream: Buildset) -> None:
        """One upstream buildset's downstream, recorded with it so it is made exactly once (a
        disabled Dependent records the upstream buildset as skipped)."""
        bs = sched.buildset_for(upstream.id, upstream.sourcestamps) if sched.enabled else None
        try:
            await self.submit_buildset(bs, SchedulerCommit(sched.name, upstream_buildset_id=upstream.id))
        except AlreadyScheduled:
            log.debug("scheduler %r: upstream buildset %d was already handled", sched.name, upstream.id)

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
        priority: int | None = None,
        sourcestamps: list[SourceStamp] | None = None,
        scheduler: str = "",
    ) -> tuple[int, int]:
        if not builder:
            raise InvalidArgument("builder is required")
        self.builder(builder)
        if priority is not None and not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidArgument(
                f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY} (higher runs first), not {priority}"
            )
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
        if priority is not None:
            bs.priority = priority
        bs_id, req_ids = await self.submit_buildset(bs)
        return bs_id, req_ids[builder]

    def force_scheduler(self, builder: str, name: str = "") -> ForceScheduler:
        """The ForceScheduler named `name` (empty: the first one) that lists `builder`."""
        forcing = [s for s in self.schedulers if isinstance(s, ForceScheduler) and builder in s.builders]
        found = [s for s in forcing if not name or s.name == name]
        if found:
            sched = next((s for s in found if s.enabled), None)
            if sched is None:
                raise FailedPrecondition(
                    f"builder {builder!r} cannot be forced: its ForceScheduler {found[0].name!r} is disabled; "
                    f"enable it with `gantry scheduler enable {found[0].name}`"
                )
            return sched
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
        except (InvalidArgument, FailedPrecondition):
            return "", [], []
        if not isinstance(sched, TypedForceScheduler):
            return sched.name, [], []
        return sched.name, sched.parameter_infos(), list((sched.codebases or {}).values())

    async def rebuild_build(self, builder: str, number: int) -> tuple[int, int]:
        """Buildbot's rebuild: a new buildset with the build's source stamps, buildset
        properties and changes, for the build's builder only."""
        if not builder:
            raise InvalidArgument("builder is required")
        build = await self.get_build(builder, number)
        self.builder(builder)  # it must still be configured to run
        old = await self.repo.get_buildset(build.buildset_id)
        if old is None:  # a build always has its buildset; only a damaged database lacks it
            raise NotFound(f"the buildset {build.buildset_id} of build {builder} #{number} no longer exists")
        # The rebuild keeps the original request's priority (as Buildbot's rebuild does).
        requests = await self.repo.list_build_requests(builder, build.buildset_id, 1000)
        priority = next((r.priority for r in requests if r.id == build.build_request_id), 0)
        props = [p for p in old.properties if p.name != "rebuilt_buildid"]
        props.append(Property("rebuilt_buildid", build.id, "Rebuild"))
        bs_id, req_ids = await self.submit_buildset(NewBuildset(
            reason=f"rebuild of {builder} #{number}",
            scheduler="rebuild",
            builders=[builder],
            sourcestamps=list(old.sourcestamps),
            properties=props,
            change_ids=list(old.change_ids),
            priority=priority,
        ))
        return bs_id, req_ids[builder]

    async def stop_build(self, builder: str, number: int, reason: str) -> bool:
        build = await self.get_build(builder, number)
        if build.complete:
            return False
        runner = self.dispatcher.find_running(builder, number)
        if runner is None:
            return False
        runner.stop(reason or "stopped by request")
        return True

    async def cancel_build_request(self, request_id: int, reason: str) -> BuildRequest:
        """Cancel a request that has not started (Buildbot's cancel of a pending request)."""
        if request_id <= 0:
            raise InvalidArgument("request_id must be a positive build request id")
        check_length("reason", reason, 1024)
        cancelled, now = await self._cancel([request_id], reason or "cancelled by request")
        req = now.get(request_id)
        if req is None:
            raise NotFound(f"no build request with id {request_id}")
        if cancelled:
            return req
        if req.complete:
            how = f"collapsed into request {req.absorbed_by}" if req.absorbed_by else (
                f"result {req.result.label}" if req.result is not None else "done")
            raise FailedPrecondition(f"build request {request_id} is already complete ({how}); nothing to cancel")
        raise FailedPrecondition(
            f"build request {request_id} has already started on builder {req.builder!r}; "
            f"stop its build instead (`gantry builds --builder {req.builder}` lists it, `gantry stop` stops it)"
        )

    async def _cancel(self, request_ids: list[int], reason: str) -> tuple[list[int], dict[int, BuildRequest]]:
        cancelled, now = await self.repo.cancel_requests(request_ids, reason, self.clock.now())
        for rid in cancelled:
            self.dispatcher.drop_request(now[rid].builder, rid)
        return cancelled, now

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

    # ------------------------------------------------------------ reads

    def scheduler(self, name: str) -> Scheduler:
        sched = self._current(name)
        if sched is None:
            known = ", ".join(sorted(s.name for s in self.schedulers)) or "none"
            raise NotFound(f"no scheduler named {name!r} (configured schedulers: {known})")
        return sched

    def list_schedulers(self) -> list[Scheduler]:
        return sorted(self.schedulers, key=lambda s: s.name)

    def builder(self, name: str) -> Builder:
        b = self.dispatcher.builders.get(name)
        if b is None:
            known = ", ".join(sorted(self.dispatcher.builders)) or "none"
            raise NotFound(f"no builder named {name!r} (configured builders: {known})")
        return b

    def pending_count(self, builder: str) -> int:
        """Unstarted build requests of a builder."""
        return self.dispatcher.pending_count(builder)

    async def next_expected_start(self, builder: str) -> float | None:
        """When the builder's next queued request can expect to start (see `expected_starts`)."""
        head = self.dispatcher.next_pending(builder)
        if head is None:
            return None
        return (await self._expected_starts(builder, [head.id])).get(head.id)

    async def _expected_starts(self, builder: str, queue: list[int]) -> dict[int, float]:
        """Expected start of each queued request (in dispatch order): the slots of the builder's
        connected workers free at their builds' ETAs; a build whose ETA is unknown, and each
        queued request, take the builder's median successful build. Reads one build per slot in
        use, and only for a builder with a queue."""
        configured = self.dispatcher.builders.get(builder)
        if not queue or self.estimator is None or configured is None:
            return {}
        estimator = self.estimator
        sessions = [
            s for w in configured.workers
            if (s := self.workers.sessions.get(w)) is not None and not s.closed
        ]
        etas: list[float | None] = []
        for session in sessions:
            for label in sorted(session.builds):
                name, _, number = label.rpartition("/")
                build = await self.repo.get_build(name, int(number)) if number.isdigit() else None
                etas.append(None if build is None else (await estimator.estimate(build)).eta)
        duration = (await estimator.history(builder)).build_duration
        slots = sum(s.max_builds for s in sessions)
        return expected_starts(queue, slots, etas, duration, self.clock.now())

    async def list_pending(self, builder: str) -> list[PendingRequest]:
        """Unstarted requests in start order, each with why it waits and, when the builder's
        history allows an estimate, when it is expected to start (one builder, or all)."""
        if builder:
            self.builder(builder)
        pending = self.dispatcher.pending_requests(builder)
        by_builder: dict[str, list[PendingRequest]] = {}
        for p in pending:
            by_builder.setdefault(p.builder, []).append(p)
        for name, queue in by_builder.items():
            starts = await self._expected_starts(name, [p.id for p in queue])
            for p in queue:
                p.expected_start = starts.get(p.id, 0.0)
        return pending

    async def list_build_requests(self, builder: str, buildset_id: int, limit: int) -> list[BuildRequest]:
        if builder:
            self.builder(builder)
        if buildset_id < 0:
            raise InvalidArgument("buildset_id must not be negative")
        return await self.repo.list_build_requests(builder, buildset_id, _limit(limit))

    def list_builders(self) -> list[Builder]:
        return list(self.dispatcher.builders.values())

    async def get_build(self, builder: str, number: int) -> Build:
        build = await self.repo.get_build(builder, number)
        if build is None:
            raise NotFound(f"builder {builder!r} has no build number {number}")
        return build

    async def estimate(self, build: Build) -> BuildEstimate | None:
        """ETA and expected step durations of a running build (None once it finished)."""
        if build.complete or self.estimator is None:
            return None
        return await self.estimator.estimate(build)

    async def list_artifacts(self, builder: str, number: int) -> list[Artifact]:
        return (await self.get_build(builder, number)).artifacts

    async def open_artifact(self, builder: str, number: int, name: str) -> tuple[Artifact, AsyncIterator[bytes]]:
        """An artifact's record and its bytes (in chunks)."""
        if not name:
            raise InvalidArgument("name is required")
        await self.get_build(builder, number)
        artifact = await self.repo.get_artifact(builder, number, name)
        if artifact is None or self.artifacts is None:
            raise NotFound(
                f"build {builder}/{number} has no artifact {name!r} (`gantry artifacts {builder} {number}` lists them)"
            )
        if self.artifacts.file_size_of_artifact(builder, number, name) is None:
            raise NotFound(f"the file of artifact {name!r} of build {builder}/{number} is missing on the coordinator")
        return artifact, self.artifacts.read_artifact(builder, number, name)

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
MIN_PRIORITY, MAX_PRIORITY = -1000, 1000  # of a forced build request


def _limit(limit: int) -> int:
    if limit < 0:
        raise InvalidArgument("limit must not be negative")
    return min(limit or 20, 1000)


def _as_stored(p: Property) -> Property:
    """The property as reading it back from storage gives it (JSON: tuples become lists)."""
    v = p.value
    if v is None or isinstance(v, (str, int, float, bool)):
        return p
    return Property(p.name, json.loads(json.dumps(v)), p.source)
