"""Periodic, Nightly (cron next-fire, time zones, DST), stored scheduler state and enabling /
disabling, through the scheduling objects on a fake clock and the in-memory storage."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest

from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.errors import FailedPrecondition, NotFound
from coordinator.domain.model import Change
from coordinator.domain.scheduling.build_control import BuildControl
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.scheduling.cron import CronSpec
from coordinator.domain.scheduling.downstream import Downstream
from coordinator.domain.scheduling.force import ForceScheduler
from coordinator.domain.scheduling.intake import ChangeIntake
from coordinator.domain.scheduling.schedulers import (
    AnyBranchScheduler,
    Scheduler,
    SingleBranchScheduler,
)
from coordinator.domain.scheduling.timed import Nightly, Periodic
from coordinator.domain.workers.sessions import WorkerRegistry
from tests.coordinator.fakes import FakeClock, RecordingStorage, dispatcher_on

UTC = dt.UTC


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: dt.tzinfo = UTC) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def utc(t: float | None) -> dt.datetime:
    assert t is not None
    return dt.datetime.fromtimestamp(t, UTC)


def spec(tz: str | None = "UTC", **fields: object) -> CronSpec:
    s, errors = CronSpec.parse(tz, **fields)
    assert errors == []
    return s


# ------------------------------------------------------------------------------ cron


def test_nightly_next_fire_for_cron_combinations() -> None:
    t0 = ts(2026, 1, 14, 12, 0)  # a Wednesday
    assert utc(spec(minute=0, hour=3).next_after(t0)) == dt.datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    assert utc(spec(minute=[0, 30], hour="*").next_after(t0)) == dt.datetime(2026, 1, 14, 12, 30, tzinfo=UTC)
    assert utc(spec(minute=0, hour=12).next_after(t0)) == dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # strictly after
    # dayOfWeek 0 is Monday (Buildbot), not Sunday (cron)
    assert utc(spec(minute=15, hour=1, dayOfWeek=0).next_after(t0)) == dt.datetime(2026, 1, 19, 1, 15, tzinfo=UTC)
    assert utc(spec(minute=0, hour=8, dayOfWeek=[5, 6]).next_after(t0)) == dt.datetime(2026, 1, 17, 8, 0, tzinfo=UTC)
    assert utc(spec(minute=0, hour=0, dayOfMonth=1).next_after(t0)) == dt.datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    april = dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert utc(spec(minute=0, hour=0, dayOfMonth=1, month=[4, 10]).next_after(t0)) == april
    # both day fields restricted: either matches (cron)
    friday = dt.datetime(2026, 1, 16, tzinfo=UTC)
    assert utc(spec(minute=0, hour=0, dayOfMonth=20, dayOfWeek=4).next_after(t0)) == friday
    # 29 February: the next leap year
    assert utc(spec(minute=0, hour=0, dayOfMonth=29, month=2).next_after(t0)) == dt.datetime(2028, 2, 29, tzinfo=UTC)


def test_nightly_in_a_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    t0 = ts(2026, 1, 14, 12, 0)
    # 03:00 in Berlin in winter is 02:00 UTC; in summer 01:00 UTC
    assert utc(spec("Europe/Berlin", minute=0, hour=3).next_after(t0)) == dt.datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
    summer = ts(2026, 7, 1, 12, 0)
    assert utc(spec("Europe/Berlin", minute=0, hour=3).next_after(summer)) == dt.datetime(2026, 7, 2, 1, 0, tzinfo=UTC)
    assert dt.datetime.fromtimestamp(spec("Europe/Berlin", minute=0, hour=3).next_after(summer) or 0, berlin).hour == 3


def test_nightly_across_daylight_saving_transitions() -> None:
    ny = "America/New_York"
    # Spring forward, 8 March 2026: 02:00 EST -> 03:00 EDT. 02:30 does not exist: it fires at
    # the instant it would have had (07:30 UTC = 03:30 EDT), once.
    s = spec(ny, minute=30, hour=2)
    first = s.next_after(ts(2026, 3, 7, 12, 0))
    assert utc(first) == dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert utc(s.next_after(first or 0)) == dt.datetime(2026, 3, 9, 6, 30, tzinfo=UTC)  # EDT again
    # Fall back, 1 November 2026: 01:30 happens twice; it fires at the first (EDT) only.
    s = spec(ny, minute=30, hour=1)
    first = s.next_after(ts(2026, 10, 31, 12, 0))
    assert utc(first) == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert utc(s.next_after(first or 0)) == dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    # Hourly across the fall back: 00:00, 01:00 (EDT), then 02:00 EST; never the repeated hour.
    s = spec(ny, minute=0, hour="*")
    seen, t = [], ts(2026, 11, 1, 3, 30)
    for _ in range(3):
        t = s.next_after(t) or 0
        seen.append(utc(t).hour)
    assert seen == [4, 5, 7]
    # Hourly across the spring forward: 01:00 EST, then 03:00 EDT (02:00 does not exist).
    s = spec(ny, minute=0, hour="*")
    t = ts(2026, 3, 8, 5, 30)  # 00:30 EST
    firsts = [utc(t := s.next_after(t) or 0) for _ in range(3)]
    assert [f.hour for f in firsts] == [6, 7, 8]  # 01:00 EST, 03:00 EDT, 04:00 EDT; no duplicate


def test_nightly_field_validation() -> None:
    assert Nightly("n", ["b"], minute=60).errors == ["minute values must be between 0 and 59, not 60"]
    assert "dayOfWeek" in Nightly("n", ["b"], dayOfWeek=7).errors[0]
    assert "hour must be an int" in Nightly("n", ["b"], hour="3").errors[0]
    assert "hour must be an int" in Nightly("n", ["b"], hour=[]).errors[0]
    assert "unknown timezone 'Mars/Base'" in Nightly("n", ["b"], timezone="Mars/Base").errors[0]
    assert "never occur together" in Nightly("n", ["b"], dayOfMonth=30, month=2).errors[0]
    assert Nightly("n", ["b"], minute=[0, 30], hour="*", dayOfWeek=[0, 4], timezone="UTC").errors == []
    assert "periodicBuildTimer" in Periodic("p", ["b"], periodicBuildTimer=0).errors[0]


# ------------------------------------------------------------------------------ service harness


class Coordinator:
    """The scheduling objects, composed as app.py does, over shared in-memory storage: make a
    new one to "restart"."""

    def __init__(self, repo: RecordingStorage, clock: FakeClock, schedulers: Sequence[Scheduler]) -> None:
        workers = WorkerRegistry(clock.now, repo.workers)
        self.dispatcher = dispatcher_on(repo, workers, clock)
        submitter = BuildsetSubmitter(repo.buildsets, repo.book, clock, self.dispatcher)
        self.schedulers = SchedulerControl(repo.schedulers, clock, submitter)
        self.downstream = Downstream(repo.buildsets, submitter, self.schedulers, self.dispatcher)
        self.intake = ChangeIntake(repo.changes, clock, self.schedulers)
        self.builds = BuildControl(repo.builds, repo.buildsets, submitter, self.schedulers, self.dispatcher)
        self.schedulers.configure(schedulers)

    async def start(self) -> Coordinator:
        await self.schedulers.start()
        await self.downstream.catch_up()
        return self

    async def settle(self) -> None:
        await asyncio.gather(*self.schedulers.background.pending)

    async def stop(self) -> None:
        await self.schedulers.aclose()
        await self.downstream.aclose()


def change(branch: str = "main", revision: str = "r1", files: list[str] | None = None) -> Change:
    return Change(author="a", revision=revision, branch=branch, repository="repo", files=files or [])


async def test_periodic_fires_at_start_then_every_interval_and_resumes_after_restart() -> None:
    repo, clock = RecordingStorage(), FakeClock(start=10_000.0)
    c = await Coordinator(repo, clock, [Periodic("p", ["b"], periodicBuildTimer=60)]).start()
    clock.advance(0)
    await c.settle()
    assert len(repo.submitted) == 1 and repo.commits[-1].last_run == 10_000.0
    assert c.schedulers.scheduler("p").next_fire_time() == 10_060.0
    clock.advance(59.9)
    await c.settle()
    assert len(repo.submitted) == 1
    clock.advance(0.1)
    clock.advance(60)
    await c.settle()
    assert [cm.last_run for cm in repo.commits] == [10_000.0, 10_060.0, 10_120.0]
    bs = repo.submitted[0]
    assert bs.scheduler == "p" and bs.builders == ["b"] and "Periodic scheduler named 'p'" in bs.reason
    await c.stop()

    # Restart 20 s after the last run: the next run keeps its time (40 s left).
    clock.advance(20)
    c = await Coordinator(repo, clock, [Periodic("p", ["b"], periodicBuildTimer=60)]).start()
    assert c.schedulers.scheduler("p").next_fire_time() == 10_180.0
    clock.advance(39.9)
    await c.settle()
    assert len(repo.submitted) == 3
    clock.advance(0.1)
    await c.settle()
    assert len(repo.submitted) == 4
    await c.stop()

    # Down for longer than the interval: one run at once, not one per missed interval.
    clock.advance(1000)
    c = await Coordinator(repo, clock, [Periodic("p", ["b"], periodicBuildTimer=60)]).start()
    clock.advance(0)
    await c.settle()
    assert len(repo.submitted) == 5 and repo.commits[-1].last_run == clock.now()
    await c.stop()


async def test_nightly_builds_at_its_times_and_never_twice_for_one_time() -> None:
    repo, clock = RecordingStorage(), FakeClock(start=ts(2026, 1, 14, 2, 0))
    make = lambda: [Nightly("n", ["b"], minute=0, hour=3, timezone="UTC", branch="main")]  # noqa: E731
    c = await Coordinator(repo, clock, make()).start()
    assert utc(c.schedulers.scheduler("n").next_fire_time()) == dt.datetime(2026, 1, 14, 3, 0, tzinfo=UTC)
    clock.advance(3600)
    await c.settle()
    (bs,) = repo.submitted
    assert bs.sourcestamps[0].branch == "main" and bs.sourcestamps[0].revision == "" and bs.change_ids == []
    await c.stop()
    # Restarted at the same instant: the 03:00 run is not repeated.
    c = await Coordinator(repo, clock, make()).start()
    clock.advance(0)
    await c.settle()
    assert len(repo.submitted) == 1
    assert utc(c.schedulers.scheduler("n").next_fire_time()) == dt.datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    await c.stop()
    # Down from before 03:00 the next day until after it: the missed run is not caught up.
    clock.advance(3 * 86400)
    c = await Coordinator(repo, clock, make()).start()
    clock.advance(0)
    await c.settle()
    assert len(repo.submitted) == 1
    assert utc(c.schedulers.scheduler("n").next_fire_time()) == dt.datetime(2026, 1, 18, 3, 0, tzinfo=UTC)
    await c.stop()


async def test_nightly_only_if_changed() -> None:
    repo, clock = RecordingStorage(), FakeClock(start=ts(2026, 1, 14, 2, 0))
    n = Nightly("n", ["b"], minute=0, hour=3, timezone="UTC", branch="main", onlyIfChanged=True,
                fileIsImportant=lambda ch: any(not f.endswith(".md") for f in ch.files))
    c = await Coordinator(repo, clock, [n]).start()
    # no change: no build, but the run is recorded
    clock.advance(3600)
    await c.settle()
    assert repo.submitted == [] and repo.commits[-1].last_run == ts(2026, 1, 14, 3, 0)
    # only an unimportant change: still no build; it is kept for the next one
    docs, = (await c.intake.submit_changes([change(revision="d1", files=["README.md"])]))[0]
    await c.intake.submit_changes([change(branch="other", revision="x", files=["a.c"])])  # not its branch
    clock.advance(86400)
    await c.settle()
    assert repo.submitted == []
    # an important change: one build with every collected change, at the latest revision
    await c.stop()
    c = await Coordinator(repo, clock, [n]).start()  # collected changes survive a restart
    (code,), _ = await c.intake.submit_changes([change(revision="c2", files=["main.c"])])
    clock.advance(86400)
    await c.settle()
    (bs,) = repo.submitted
    assert bs.change_ids == [docs, code] and bs.sourcestamps[0].revision == "c2"
    clock.advance(86400)
    await c.settle()
    assert len(repo.submitted) == 1 and not repo.classified
    await c.stop()


async def test_tree_stable_timer_resumes_after_restart_and_builds_exactly_once() -> None:
    repo, clock = RecordingStorage(), FakeClock()
    make = lambda: [SingleBranchScheduler("s", branch="main", tree_stable_timer=10, builders=["b"])]  # noqa: E731
    c = await Coordinator(repo, clock, make()).start()
    before = repo.transactions
    (cid,), _ = await c.intake.submit_changes([change()])
    assert repo.transactions == before + 1  # the classification commits with the change
    clock.advance(4)
    await c.stop()  # "killed" 4 s into the 10 s timer

    c = await Coordinator(repo, clock, make()).start()
    assert c.schedulers.scheduler("s").next_fire_time() == 1_010.0  # 6 s left, not 10
    clock.advance(5.9)
    await c.settle()
    assert repo.submitted == []
    clock.advance(0.1)
    await c.settle()
    (bs,) = repo.submitted
    assert bs.change_ids == [cid] and not repo.classified
    await c.stop()

    c = await Coordinator(repo, clock, make()).start()  # nothing left: no second build
    clock.advance(100)
    await c.settle()
    assert len(repo.submitted) == 1
    await c.stop()


async def test_timer_expired_while_down_fires_at_start_and_a_consumed_change_is_never_rebuilt() -> None:
    repo, clock = RecordingStorage(), FakeClock()
    make = lambda: [SingleBranchScheduler("s", branch="main", tree_stable_timer=10, builders=["b"])]  # noqa: E731
    c = await Coordinator(repo, clock, make()).start()
    (cid,), _ = await c.intake.submit_changes([change()])
    await c.stop()
    clock.advance(300)
    # Two coordinators restored from the same state race: only one buildset is stored.
    a = await Coordinator(repo, clock, make()).start()
    b = await Coordinator(repo, clock, make()).start()
    clock.advance(0)
    await a.settle()
    await b.settle()
    (bs,) = repo.submitted
    assert bs.change_ids == [cid]


async def test_disabled_scheduler_ignores_changes_and_timers_and_stays_disabled() -> None:
    repo, clock = RecordingStorage(), FakeClock()
    make = lambda: [  # noqa: E731
        SingleBranchScheduler("s", branch="main", tree_stable_timer=10, builders=["b"]),
        Periodic("p", ["b"], periodicBuildTimer=60),
        ForceScheduler("f", builders=["b"]),
    ]
    c = await Coordinator(repo, clock, make()).start()
    clock.advance(0)
    await c.settle()
    assert len(repo.submitted) == 1  # Periodic's first run
    (kept,), _ = await c.intake.submit_changes([change(revision="kept")])
    for name in ("s", "p", "f"):
        await c.schedulers.set_scheduler_enabled(name, False)
    assert c.schedulers.scheduler("s").next_fire_time() is None and c.schedulers.scheduler("p").next_fire_time() is None
    (ignored,), _ = await c.intake.submit_changes([change(revision="ignored")])
    clock.advance(600)
    await c.settle()
    assert len(repo.submitted) == 1
    await c.stop()

    c = await Coordinator(repo, clock, make()).start()  # still disabled after a restart
    assert [s.enabled for s in c.schedulers.list_schedulers()] == [False, False, False]
    clock.advance(600)
    await c.settle()
    assert len(repo.submitted) == 1
    c.dispatcher.builders = {"b": object()}  # type: ignore[dict-item]
    with pytest.raises(FailedPrecondition, match="'f'.*disabled"):
        await c.builds.force_build("b")
    with pytest.raises(NotFound, match="no scheduler named 'nope'"):
        await c.schedulers.set_scheduler_enabled("nope", True)

    # Enabled again: the change it took before being disabled is built; the ignored one is not.
    await c.schedulers.set_scheduler_enabled("s", True)
    clock.advance(0)
    await c.settle()
    assert repo.submitted[-1].change_ids == [kept]
    assert all(ignored not in bs.change_ids for bs in repo.submitted)
    await c.schedulers.set_scheduler_enabled("f", True)
    await c.builds.force_build("b")
    assert repo.submitted[-1].scheduler == "f"
    await c.stop()


async def test_any_branch_timers_resume_per_branch_after_restart() -> None:
    repo, clock = RecordingStorage(), FakeClock()
    make = lambda: [AnyBranchScheduler("any", ["b"], tree_stable_timer=10)]  # noqa: E731
    c = await Coordinator(repo, clock, make()).start()
    (main1,), _ = await c.intake.submit_changes([change("main", "m1")])
    clock.advance(5)
    (dev1,), _ = await c.intake.submit_changes([change("dev", "d1")])
    clock.advance(1)
    await c.stop()

    c = await Coordinator(repo, clock, make()).start()
    assert c.schedulers.scheduler("any").next_fire_time() == 1_010.0  # main's; dev's is at 1_015
    clock.advance(4)
    await c.settle()
    assert [(bs.change_ids, bs.sourcestamps[0].branch) for bs in repo.submitted] == [([main1], "main")]
    clock.advance(5)
    await c.settle()
    assert [(bs.change_ids, bs.sourcestamps[0].branch) for bs in repo.submitted] == [
        ([main1], "main"), ([dev1], "dev")]
    await c.stop()
