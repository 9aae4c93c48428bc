"""What every part of the coordinator's service shares: its collaborators, the configured
schedulers, background work, and the write path every buildset takes (store, then queue)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.eta import EtaEstimator
from coordinator.domain.model import (
    BuildRequest,
    Buildset,
    NewBuildset,
    PropertyValue,
    SchedulerCommit,
)
from coordinator.domain.ports import ArtifactStore, Clock, Repository
from coordinator.domain.scheduling.schedulers import Scheduler
from coordinator.domain.scheduling.triggerable import BuildsetFollower
from coordinator.domain.workers.sessions import WorkerRegistry

# The service's logger name, as before the split: log configuration and tests select it.
log = logging.getLogger("coordinator.domain.service")


class ServiceBase:
    """The state behind :class:`~coordinator.domain.service.CoordinatorService`; its parts
    (scheduler control, downstream builds, reads) are mixins over this base."""

    # Set by CoordinatorService.__init__ (the one constructor; its parts only read them).
    repo: Repository
    artifacts: ArtifactStore | None
    clock: Clock
    dispatcher: Dispatcher
    workers: WorkerRegistry
    estimator: EtaEstimator | None  # None: no estimates (it must be fed finished builds to stay fresh)
    schedulers: list[Scheduler]
    _tasks: set[asyncio.Future[Any]]
    _follower: BuildsetFollower  # the Trigger steps' buildsets with `wait` (downstream.py)

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

    async def _cancel(self, request_ids: list[int], reason: str) -> tuple[list[int], dict[int, BuildRequest]]:
        cancelled, now = await self.repo.cancel_requests(request_ids, reason, self.clock.now())
        for rid in cancelled:
            self.dispatcher.drop_request(now[rid].builder, rid)
        return cancelled, now


def _as_stored(p: PropertyValue) -> PropertyValue:
    """The property as reading it back from storage gives it (JSON: tuples become lists)."""
    v = p.value
    if v is None or isinstance(v, (str, int, float, bool)):
        return p
    return PropertyValue(p.name, json.loads(json.dumps(v)), p.source)
