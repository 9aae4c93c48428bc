"""Buildsets started by other builds: the TriggerPort the dispatcher hands to build runners
(Trigger steps), and Dependent schedulers' follow-up of upstream buildsets that succeeded, both
as they finish (from domain events) and the start-up backlog of those that finished while no
coordinator ran."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.events import Event
from coordinator.domain.model import (
    Buildset,
    PropertyValue,
    SchedulerCommit,
    SourceStamp,
)
from coordinator.domain.scheduling.triggerable import (
    Dependent,
    Triggerable,
    wants_downstream,
)
from coordinator.domain.service_base import ServiceBase
from coordinator.domain.steps.trigger_port import Triggered

# The service's logger name, as before the split: log configuration and tests select it.
log = logging.getLogger("coordinator.domain.service")


class Downstream(ServiceBase):
    """Implements the TriggerPort; `_on_event` listens on the event bus (wired by the service)."""

    async def trigger(
        self,
        scheduler: str,
        sourcestamps: Sequence[SourceStamp],
        properties: Sequence[PropertyValue],
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

    async def _catch_up(self, sched: Dependent) -> None:
        """Make the downstream buildsets of upstream buildsets that succeeded while no
        coordinator ran (or before it could act); a disabled Dependent records them as skipped."""
        for upstream in await self.repo.dependent_backlog(sched.name, sched.upstream_name):
            log.info("scheduler %r: upstream buildset %d finished while the coordinator was down%s",
                     sched.name, upstream.id, "" if sched.enabled else " (disabled: skipped)")
            await self._downstream(sched, upstream)
