"""Try jobs on the in-memory storage: what is refused before anything is stored, and that a try
job is neither collapsed with another nor superseded by a push to its branch."""

from __future__ import annotations

import base64

import pytest

from coordinator.domain.errors import FailedPrecondition, InvalidArgument
from coordinator.domain.model import SourceStamp
from coordinator.domain.results import Result
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.try_ import TryJob, TryJobs, TryScheduler
from tests.coordinator.test_domain_cancellers import SUPERSEDE, World
from tests.coordinator.test_domain_cancellers import world as world  # noqa: F401  (the fixture)


def jobs(w: World, *schedulers: TryScheduler) -> TryJobs:
    assert w.submitter is not None
    control = SchedulerControl(w.repo.schedulers, w.clock, w.submitter)
    control.configure(list(schedulers))
    return TryJobs(control, w.submitter)


async def test_what_a_try_job_is_refused_for(world: World) -> None:
    await world.start(["test", "docs"], [], {"w1": 1})
    t = jobs(world, TryScheduler("try", builderNames=["test"], max_patch_size=10))
    job = TryJob(builders=["test"], patch=b"diff --git a/x b/x\n", author="Dev <dev@example.org>")
    with pytest.raises(InvalidArgument, match=r"the patch is 19 bytes \(19 bytes\); TryScheduler 'try' "
                                              r"accepts at most 10 bytes \(its max_patch_size\)"):
        await t.submit_try(job)
    small = TryJob(builders=["docs"], patch=b"x\n", author="Dev")
    with pytest.raises(InvalidArgument, match=r"builder 'docs' does not take try jobs \(builders that do: test\)"):
        await t.submit_try(small)
    for bad, message in [(TryJob(["test"], b"  \n", "Dev"), "the patch is empty"),
                         (TryJob(["test"], b"x", " "), "author is required"),
                         (TryJob([], b"x", "Dev"), "name at least one builder")]:
        with pytest.raises(InvalidArgument, match=message):
            await t.submit_try(bad)
    with pytest.raises(InvalidArgument, match="takes no try jobs"):
        await jobs(world).submit_try(small)
    off = TryScheduler("try", builderNames=["test"])
    off.enabled = False
    with pytest.raises(FailedPrecondition, match="is disabled; enable it with `gantry scheduler enable try`"):
        await jobs(world, off).submit_try(TryJob(["test"], b"x", "Dev"))
    assert world.repo.submitted == []  # nothing stored


async def test_a_try_job_is_not_collapsed_nor_superseded(world: World) -> None:
    await world.start(["test"], SUPERSEDE, {"w1": 1})
    busy = await world.push("r0", ["test"], branch="other")
    await world.until(lambda: ("test", 1) in world.gates)
    t = jobs(world, TryScheduler("try", builderNames=["test"]))
    first, ids, sched = await t.submit_try(TryJob(["test"], b"one\n", "Dev", branch="main", revision="r1",
                                                 comment="try one"))
    second, _, _ = await t.submit_try(TryJob(["test"], b"two\n", "Ann", branch="main", revision="r1"))
    assert sched == "try" and list(ids) == ["test"]
    stored = world.repo.submitted[-2]
    assert stored.reason == "try job by 'Dev': try one"
    assert stored.sourcestamps[0].patch == base64.b64encode(b"one\n").decode()
    assert {p.name: p.value for p in stored.properties}["patch_author"] == "Dev"
    await world.push("r2", ["test"], branch="main")  # a push to the try jobs' branch
    world.open(("test", 1))
    for number in (2, 3, 4):
        await world.until(lambda n=number: ("test", n) in world.gates)  # type: ignore[misc]
        world.open(("test", number))
    await world.until(lambda: all(r.complete for r in world.repo.requests.values()))
    assert world.result_of(first, "test") == Result.SUCCESS == world.result_of(second, "test")
    assert world.result_of(busy, "test") == Result.SUCCESS
    assert not world.repo.collapsed


def test_two_stamps_differing_only_by_patch_are_not_compatible() -> None:
    from coordinator.domain.builds.dispatcher import compatible
    from coordinator.domain.model import Buildset

    def bs(patch: str) -> Buildset:
        return Buildset(1, "r", "s", 0.0, [SourceStamp("repo", "main", "r1", patch=patch)], [], [])

    assert compatible(bs("a"), bs("a")) and not compatible(bs("a"), bs("b"))
