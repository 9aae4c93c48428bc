"""The write path every buildset takes, whoever asks for it (a change's scheduler, a timer, a
force, a rebuild, a Trigger step, a Dependent): store it, then queue its requests for dispatch;
and the way back out for requests that have not started (cancel)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from coordinator.domain import events
from coordinator.domain.builds import bookkeeping
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.model import (
    BuildRequest,
    Buildset,
    NewBuildset,
    PropertyValue,
    SchedulerCommit,
)
from coordinator.domain.ports import Bookkeeper, BuildsetStore, Clock


class BuildsetSubmitter:
    def __init__(self, buildsets: BuildsetStore, book: Bookkeeper, clock: Clock, dispatcher: Dispatcher) -> None:
        self.buildsets = buildsets
        self.book = book
        self.clock = clock
        self.dispatcher = dispatcher
        # Matrix builder name -> its combinations' builders (scheduling/matrix.py; app.py sets it):
        # whoever asks for a matrix builder gets one request per combination.
        self.matrices: Mapping[str, Sequence[str]] = {}

    async def submit(
        self, bs: NewBuildset | None, commit: SchedulerCommit | None = None
    ) -> tuple[int, dict[str, int]]:
        """Store a buildset and queue its requests; `commit` (scheduler state it consumes) is
        applied in the same transaction. bs None stores only the commit."""
        now = self.clock.now()
        if bs is not None and any(b in self.matrices for b in bs.builders):
            bs.builders = list(dict.fromkeys(c for b in bs.builders for c in self.matrices.get(b, [b])))
        def announce(bs_id: int, requests: list[BuildRequest]) -> list[events.Event]:
            assert bs is not None  # only called for a stored buildset
            return [events.buildset_added(bs_id, bs, now), *(events.buildrequest_added(r, now) for r in requests)]

        bs_id, req_ids = await self.buildsets.add_buildset(bs, now, commit, announce)
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

    def matrices_of(self, builder: str) -> set[str]:
        """`builder` and the matrix builder it is a combination of, if any."""
        return {builder} | {m for m, combos in self.matrices.items() if builder in combos}

    async def cancel(self, request_ids: list[int], reason: str) -> tuple[list[int], dict[int, BuildRequest]]:
        """Cancel the requests that have not started; returns those cancelled and the state of
        every request asked about."""
        cancelled, now = await bookkeeping.cancel(self.book, request_ids, reason, self.clock.now())
        for rid in cancelled:
            self.dispatcher.drop_request(now[rid].builder, rid)
        return cancelled, now


def _as_stored(p: PropertyValue) -> PropertyValue:
    """The property as reading it back from storage gives it (JSON: tuples become lists)."""
    v = p.value
    if v is None or isinstance(v, (str, int, float, bool)):
        return p
    return PropertyValue(p.name, json.loads(json.dumps(v)), p.source)
