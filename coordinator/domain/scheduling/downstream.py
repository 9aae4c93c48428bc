"""Buildsets started by other builds: the TriggerPort the dispatcher hands to build runners
(Trigger steps) with the follower of the buildsets they wait for, and Dependent schedulers'
follow-up of upstream buildsets that succeeded, both as they finish (from domain events) and the
start-up backlog of those that finished while no coordinator ran."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.events import Event
from coordinator.domain.model import (
    Buildset,
    JournalEntry,
    PropertyValue,
    SchedulerCommit,
    SourceStamp,
)
from coordinator.domain.ports import BuildHistory, DownstreamStore
from coordinator.domain.results import Result
from coordinator.domain.scheduling.background import Background
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.triggerable import (
    BuildsetFollower,
    Dependent,
    Triggerable,
    wants_downstream,
)
from coordinator.domain.steps.trigger_port import Triggered

log = logging.getLogger(__name__)


class Downstream:
    """Implements the TriggerPort; `on_event` is meant for the event bus (app.py adds it)."""

    def __init__(
        self,
        buildsets: DownstreamStore,
        submitter: BuildsetSubmitter,
        schedulers: SchedulerControl,
        dispatcher: Dispatcher,
        builds: BuildHistory | None = None,
    ) -> None:
        self.buildsets = buildsets
        self.builds = builds  # which builds a buildset followed again after a restart started
        self.submitter = submitter
        self.schedulers = schedulers
        self.dispatcher = dispatcher  # finds the running builds of a stopped trigger
        self.follower = BuildsetFollower()  # the Trigger steps' buildsets with `wait`
        self.background = Background(log)  # the Dependents' follow-ups

    async def trigger(
        self,
        scheduler: str,
        sourcestamps: Sequence[SourceStamp],
        properties: Sequence[PropertyValue],
        *,
        wait: bool,
        parent: tuple[str, int],
        journal: JournalEntry | None = None,
    ) -> Triggered:
        """A Trigger step's buildset (the TriggerPort the dispatcher hands to builds), stored
        with the step's journal `entry` when given."""
        configured = self.schedulers.schedulers
        sched = next((s for s in configured if s.name == scheduler), None)
        if isinstance(sched, Triggerable) and not sched.enabled:
            raise LookupError(
                f"Triggerable scheduler {scheduler!r} is disabled (`gantry scheduler enable {scheduler}`)"
            )
        if not isinstance(sched, Triggerable):
            known = ", ".join(s.name for s in configured if isinstance(s, Triggerable)) or "none"
            what = "no scheduler" if sched is None else f"scheduler {scheduler!r} is not a Triggerable; no Triggerable"
            raise LookupError(f"{what} named {scheduler!r} (Triggerable schedulers: {known})")
        commit = SchedulerCommit(scheduler, journal=journal) if journal is not None else None
        bs_id, req_ids = await self.submitter.submit(sched.buildset_for(sourcestamps, properties, parent), commit)
        return self._triggered(scheduler, bs_id, req_ids, wait)

    async def follow(self, scheduler: str, buildset_id: int, requests: dict[str, int], *, wait: bool) -> Triggered:
        """A Trigger step's buildset of before a coordinator restart, followed again."""
        triggered = self._triggered(scheduler, buildset_id, dict(requests), wait)
        if not wait:
            return triggered
        # Followed first, then read: a build starting or the buildset finishing in between is
        # seen by one or the other (builds are not listed twice).
        started = await self.builds.builds_of_buildset(buildset_id) if self.builds is not None else []
        seen = set(triggered.builds)
        triggered.builds[:0] = [b for b in started if b not in seen]
        stored = await self.buildsets.get_buildset(buildset_id)
        finished = triggered.finished
        if stored is not None and stored.complete and finished is not None and not finished.done():
            finished.set_result(stored.result if stored.result is not None else Result.SUCCESS)
        triggered.progress.set()
        return triggered

    def _triggered(self, scheduler: str, bs_id: int, req_ids: dict[str, int], wait: bool) -> Triggered:
        triggered = Triggered(scheduler, bs_id, req_ids)

        async def stop(reason: str) -> None:
            # Cancel first, so what has not started cannot start; then stop what has.
            await self.submitter.cancel(list(req_ids.values()), reason)
            for builder, number in triggered.builds:
                runner = self.dispatcher.find_running(builder, number)
                if runner is not None:
                    runner.stop(reason)

        triggered.stop = stop
        if wait:
            # No await since the commit: the buildset cannot have finished yet.
            self.follower.follow(triggered)
        return triggered

    def on_event(self, event: Event) -> None:
        self.follower.on_event(event)
        if event.kind == "buildset.finished" and wants_downstream(event.result):
            if any(isinstance(s, Dependent) for s in self.schedulers.schedulers):
                self.background.spawn(self._run_dependents(event.buildset_id))

    async def catch_up(self) -> None:
        """Make the downstream buildsets of upstream buildsets that succeeded while no
        coordinator ran (or before it could act); call it once the schedulers have started."""
        for s in self.schedulers.schedulers:
            if isinstance(s, Dependent) and s.upstream_name:
                await self._catch_up(s)

    async def aclose(self) -> None:
        """Wait for the follow-ups already under way."""
        await self.background.wait()

    async def _run_dependents(self, buildset_id: int) -> None:
        upstream = await self.buildsets.get_buildset(buildset_id)
        if upstream is None:
            return
        for sched in self.schedulers.schedulers:
            if isinstance(sched, Dependent) and sched.upstream_name == upstream.scheduler:
                await self._downstream(sched, upstream)

    async def _downstream(self, sched: Dependent, upstream: Buildset) -> None:
        """One upstream buildset's downstream, recorded with it so it is made exactly once (a
        disabled Dependent records the upstream buildset as skipped)."""
        bs = sched.buildset_for(upstream.id, upstream.sourcestamps) if sched.enabled else None
        try:
            await self.submitter.submit(bs, SchedulerCommit(sched.name, upstream_buildset_id=upstream.id))
        except AlreadyScheduled:
            log.debug("scheduler %r: upstream buildset %d was already handled", sched.name, upstream.id)

    async def _catch_up(self, sched: Dependent) -> None:
        """A disabled Dependent records the backlog as skipped."""
        for upstream in await self.buildsets.dependent_backlog(sched.name, sched.upstream_name):
            log.info("scheduler %r: upstream buildset %d finished while the coordinator was down%s",
                     sched.name, upstream.id, "" if sched.enabled else " (disabled: skipped)")
            await self._downstream(sched, upstream)
