"""SingleBranchScheduler: Buildbot's tree-stable timer, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from coordinator.domain.model import Change, NewBuildset, SourceStamp
from coordinator.domain.scheduling.force import ForceScheduler
from coordinator.domain.scheduling.schedulers import SingleBranchScheduler
from tests.coordinator.fakes import FakeClock


class Harness:
    def __init__(self, scheduler: SingleBranchScheduler) -> None:
        self.scheduler = scheduler
        self.clock = FakeClock()
        self.submitted: list[NewBuildset] = []
        self._spawned: list[asyncio.Future[Any]] = []
        self._ids = 0

    async def _submit(self, bs: NewBuildset | None, commit: object = None) -> int:
        assert bs is not None
        self.submitted.append(bs)
        return len(self.submitted)

    def _spawn(self, aw: Awaitable[Any]) -> None:
        self._spawned.append(asyncio.ensure_future(aw))

    def change(self, branch: str = "main", revision: str = "") -> Change:
        self._ids += 1
        c = Change(author="a", revision=revision or f"r{self._ids}", branch=branch, repository="repo",
                   project="proj", properties={"n": self._ids}, id=self._ids)
        self.scheduler.on_change(c, self.clock, self._submit, self._spawn)
        return c

    async def buildsets(self) -> list[NewBuildset]:
        await asyncio.gather(*self._spawned)
        return list(self.submitted)


async def test_changes_within_the_timer_gather_into_one_buildset() -> None:
    h = Harness(SingleBranchScheduler("sbs", branch="main", tree_stable_timer=10, builders=["a", "b"]))
    c1 = h.change()
    h.clock.advance(4)
    c2 = h.change()
    h.clock.advance(9)  # 13s after c1, 9s after c2: each change restarts the timer
    c3 = h.change(revision="tip")
    h.clock.advance(9.99)
    assert await h.buildsets() == []
    h.clock.advance(0.01)
    (bs,) = await h.buildsets()
    assert bs.change_ids == [c1.id, c2.id, c3.id]
    assert bs.builders == ["a", "b"] and bs.scheduler == "sbs"
    assert bs.sourcestamps == [SourceStamp(repository="repo", branch="main", revision="tip", project="proj")]
    assert "sbs" in bs.reason
    props = {p.name: p.value for p in bs.properties}
    assert props["scheduler"] == "sbs"
    assert h.clock.pending == 0

    # After firing, the next change starts a fresh gathering.
    c4 = h.change()
    h.clock.advance(10)
    assert [b.change_ids for b in await h.buildsets()] == [[c1.id, c2.id, c3.id], [c4.id]]


async def test_change_on_another_branch_is_ignored_and_does_not_reset_the_timer() -> None:
    h = Harness(SingleBranchScheduler("sbs", branch="main", tree_stable_timer=10, builders=["a"]))
    c1 = h.change("main")
    h.clock.advance(6)
    h.change("feature")
    h.clock.advance(4)  # exactly 10s after c1
    (bs,) = await h.buildsets()
    assert bs.change_ids == [c1.id]

    h.change("feature")
    h.clock.advance(100)
    assert len(await h.buildsets()) == 1 and h.clock.pending == 0


async def test_no_timer_gives_one_buildset_per_change() -> None:
    h = Harness(SingleBranchScheduler("sbs", branch="main", tree_stable_timer=None, builders=["a"]))
    changes = [h.change() for _ in range(3)]
    h.change("other")
    assert h.clock.pending == 0
    assert [bs.change_ids for bs in await h.buildsets()] == [[c.id] for c in changes]


async def test_branch_none_takes_every_branch_and_camelcase_alias_works() -> None:
    h = Harness(SingleBranchScheduler("sbs", treeStableTimer=5, builders=["a"]))
    assert h.scheduler.tree_stable_timer == 5
    c1, c2 = h.change("main"), h.change("dev")
    h.clock.advance(5)
    assert [bs.change_ids for bs in await h.buildsets()] == [[c1.id, c2.id]]


async def test_stop_cancels_the_pending_timer() -> None:
    h = Harness(SingleBranchScheduler("sbs", branch="main", tree_stable_timer=10, builders=["a"]))
    h.change()
    h.scheduler.stop()
    h.clock.advance(60)
    assert await h.buildsets() == []


def test_force_scheduler_buildset() -> None:
    f = ForceScheduler("force", builders=["a"], priority=3)
    bs = f.buildset_for("a", reason="because", owner="bob", branch="main", revision="abc",
                        repository="r", project="p", properties=[])
    assert bs.builders == ["a"] and bs.priority == 3 and bs.scheduler == "force"
    assert bs.reason == "A build was forced by 'bob': because"
    props = {p.name: (p.value, p.source) for p in bs.properties}
    assert props["owner"] == ("bob", "Force Build Form") and props["scheduler"] == ("force", "Scheduler")
