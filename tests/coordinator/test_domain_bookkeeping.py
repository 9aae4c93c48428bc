"""The bookkeeping rules (domain/builds/bookkeeping.py) on the in-memory storage: what ending,
collapsing and cancelling do to requests and buildsets, and the events they say it with."""

from __future__ import annotations

import pytest

from coordinator.domain import events
from coordinator.domain.builds import bookkeeping
from coordinator.domain.events import Event
from coordinator.domain.model import Build, BuildRequest, NewBuildset
from coordinator.domain.results import Result
from coordinator.storage.memory import MemoryStorage

T0 = 1_000.0


class World:
    def __init__(self) -> None:
        self.published: list[Event] = []
        self.storage = MemoryStorage(self.published.extend)

    async def buildset(self, *builders: str) -> list[BuildRequest]:
        bs = NewBuildset("r", "s", list(builders), [])
        bs_id, ids = await self.storage.buildsets.add_buildset(bs, T0, None, lambda *_: [])
        return [BuildRequest(id=ids[b], buildset_id=bs_id, builder=b, priority=0, submitted_at=T0) for b in builders]

    async def build(self, req: BuildRequest, coordinator: str = "c1") -> Build:
        assert await self.storage.buildsets.claim_request(req.id, coordinator, T0)
        return await self.storage.builds.start_build(req, "w1", [], T0, ["s"], lambda b: [])

    def kinds(self) -> list[tuple[str, Result | None]]:
        return [(e.kind, e.result) for e in self.published]


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([], Result.SUCCESS),
        ([Result.SUCCESS, None], None),
        ([Result.WARNINGS, Result.SUCCESS], Result.WARNINGS),
        ([Result.FAILURE, Result.CANCELLED, Result.SKIPPED], Result.CANCELLED),
    ],
)
def test_a_buildset_ends_with_the_worst_result_once_every_request_is_complete(
    results: list[Result | None], expected: Result | None
) -> None:
    assert bookkeeping.buildset_result(results) == expected


async def test_the_last_request_to_finish_ends_the_buildset() -> None:
    w = World()
    a, b = await w.buildset("a", "b")
    build_a, build_b = await w.build(a), await w.build(b)
    assert not await bookkeeping.finish_build(w.storage.book, build_a, Result.WARNINGS, "warnings", T0 + 1)
    assert w.kinds() == [("build.finished", Result.WARNINGS)]  # b still runs: the buildset goes on
    assert not await bookkeeping.finish_build(w.storage.book, build_b, Result.FAILURE, "failed", T0 + 2)
    assert w.kinds()[1:] == [("build.finished", Result.FAILURE), ("buildset.finished", Result.FAILURE)]
    stored = await w.storage.buildsets.get_buildset(a.buildset_id)
    assert stored is not None and stored.complete and stored.result == Result.FAILURE


async def test_a_retry_puts_the_request_back_and_the_buildset_waits() -> None:
    w = World()
    (req,) = await w.buildset("a")
    build = await w.build(req)
    assert await bookkeeping.finish_build(w.storage.book, build, Result.RETRY, "retry", T0 + 1)
    assert w.kinds() == [("build.finished", Result.RETRY), ("buildrequest.retried", None)]
    assert [r.id for r in await w.storage.buildsets.unclaimed_requests()] == [req.id]
    stored = await w.storage.buildsets.get_buildset(req.buildset_id)
    assert stored is not None and not stored.complete


async def test_build_finished_has_one_shape_also_for_a_dead_coordinators_builds() -> None:
    w = World()
    first, second = await w.buildset("a", "b")
    ended = await w.build(first)
    await bookkeeping.finish_build(w.storage.book, ended, Result.SUCCESS, "build successful", T0 + 5)
    orphan = await w.build(second, coordinator="dead")
    assert await bookkeeping.release_orphans(w.storage.book, "dead", T0 + 7) == 1
    normal, restarted = [e for e in w.published if e.kind == "build.finished"]
    assert normal == events.build_finished(ended, Result.SUCCESS, "build successful", T0 + 5).with_id(normal.id)
    assert restarted == events.build_finished(orphan, Result.RETRY, "retry: coordinator restarted", T0 + 7).with_id(
        restarted.id
    )
    assert (restarted.worker, restarted.details["duration"]) == ("w1", 7.0)


async def test_collapse_and_cancel_leave_claimed_requests_alone() -> None:
    w = World()
    (into,), (claimed,), (free,) = [await w.buildset("a") for _ in range(3)]
    assert await w.storage.buildsets.claim_request(claimed.id, "c2", T0)
    assert await bookkeeping.collapse(w.storage.book, into, [claimed.id, free.id], T0 + 1) == [free.id]
    # Its own buildset ends with it: SKIPPED counts for less than SUCCESS (Buildbot's worst_status).
    assert w.kinds() == [("buildrequest.collapsed", Result.SKIPPED), ("buildset.finished", Result.SUCCESS)]
    cancelled, now = await bookkeeping.cancel(w.storage.book, [claimed.id, free.id, into.id], "no", T0 + 2)
    assert cancelled == [into.id]  # claimed: running elsewhere; free: already absorbed
    assert now[free.id].absorbed_by == into.id and now[claimed.id].claimed and not now[claimed.id].complete
    assert w.kinds()[2:] == [("buildrequest.cancelled", Result.CANCELLED), ("buildset.finished", Result.CANCELLED)]
